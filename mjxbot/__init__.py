"""mjxbot: massively parallel MJX humanoid training with in-jit disturbances."""

import importlib

from mjxbot import envs as _tasks  # noqa: E402,F401  (registers the tasks)
from mjxbot.env import HumanoidEnv
from mjxbot.errors import ConfigError, MjxbotError, ModelError
from mjxbot.registry import ALL_ENVS, load_env, register
from mjxbot.types import EnvConfig, RobotConfig, State

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
