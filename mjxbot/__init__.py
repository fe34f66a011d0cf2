"""mjxbot: massively parallel MJX humanoid training with in-jit disturbances."""

import contextlib
import importlib
import io
import sys

# MJX tries the optional `warp` package on import and prints two lines when it
# is missing ("Failed to import warp: ...", "Failed to import mujoco_warp: ...").
# mjxbot never asks for warp: those two lines are dropped, all other output passes.
_WARP_NOTICES = ("Failed to import warp:", "Failed to import mujoco_warp:")


class _DropWarpNotices(io.TextIOBase):
    def __init__(self, target):
        self.target = target
        self.pending = ""

    def write(self, text: str) -> int:
        *lines, self.pending = (self.pending + text).split("\n")
        for line in lines:
            if not line.startswith(_WARP_NOTICES):
                self.target.write(line + "\n")
        return len(text)

    def flush(self) -> None:
        if self.pending and not self.pending.startswith(_WARP_NOTICES):
            self.target.write(self.pending)
        self.pending = ""
        self.target.flush()


def _import_mjx_quietly() -> None:
    if "mujoco.mjx" in sys.modules:
        return
    quiet = _DropWarpNotices(sys.stdout)
    try:
        with contextlib.redirect_stdout(quiet):
            importlib.import_module("mujoco.mjx")
    finally:
        quiet.flush()


_import_mjx_quietly()

from mjxbot.env import HumanoidEnv
from mjxbot.env.config import EnvConfig
from mjxbot.env.state import State
from mjxbot.errors import ConfigError, MjxbotError, ModelError
from mjxbot.registry import ALL_ENVS, load_env, register
from mjxbot.robot import RobotConfig

__all__ = [
    "ALL_ENVS",
    "ConfigError",
    "EnvConfig",
    "HumanoidEnv",
    "MjxbotError",
    "ModelError",
    "RobotConfig",
    "State",
    "export",
    "load_env",
    "load_policy",
    "register",
]
__version__ = "0.1.0"


def __getattr__(name: str):
    # Imported on first use, not here: `python -m mjxbot.export` must find the
    # module unimported (runpy warns otherwise), and `import mjxbot` stays light.
    if name in ("export", "load_policy"):
        export = importlib.import_module("mjxbot.export")
        return export if name == "export" else export.load_policy
    raise AttributeError(f"module 'mjxbot' has no attribute {name!r}")
