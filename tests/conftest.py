"""Test-wide settings (CPU only), jitted env functions and CLI subprocess helpers.

The CLI helpers run `train.py`/`eval.py` in subprocesses that share one
persistent JAX compilation cache (`SUBPROCESS_CACHE`), so runs of the same
program (same task, sizes and device layout) skip the MJX compile. `TINY`
is the tiny run every CLI test uses: `configs/ci.yaml` (8 envs x 10 steps,
4 iterations, 50-step episodes) over the reach task.
"""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("WANDB_MODE", "disabled")
# No persistent compilation cache in this process (compiled functions are shared through
# session fixtures instead): a full CI run once segfaulted while JAX wrote the QP-controller
# rollout's executable to it, at the end of a long session; the same test alone passed.

import functools  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

import jax  # noqa: E402
import pytest  # noqa: E402

import mjxbot  # noqa: E402


class Compiled:
    """An env with its jitted functions, compiled once per test session.

    `rollout` runs vmapped steps over the leading axis of its actions in one `lax.scan`, counts
    its traces, so the batching and the compile-once tests share one compile.
    """

    def __init__(self, env):
        self.env = env
        self.rollout_traces = 0

        def rollout(keys, actions):
            self.rollout_traces += 1
            state = jax.vmap(env.reset)(keys)

            def body(s, action):
                s = jax.vmap(env.step)(s, action)
                return s, s

            return jax.lax.scan(body, state, actions)[1]

        self.reset = jax.jit(env.reset)
        self.step = jax.jit(env.step)
        self.rollout = jax.jit(rollout)


@pytest.fixture(scope="session")
def compiled_env():
    """`compiled_env(name)`: a default-config env with jitted functions, built once per session."""
    return functools.cache(lambda name: Compiled(mjxbot.load_env(name)))


# ------------------------------------------------------------ CLI subprocesses

ROOT = Path(__file__).resolve().parents[1]
TASK = "reach" if "reach" in mjxbot.ALL_ENVS else "stand"
TINY = ["--config", f"configs/{TASK}.yaml", "--config", "configs/ci.yaml"]
TOTAL_STEPS = 320  # configs/ci.yaml: 4 iterations of 8 envs x 10 steps
# Kept between sessions: entries are keyed by the compiled program.
SUBPROCESS_CACHE = Path(tempfile.gettempdir()) / "mjxbot-test-jax-cache"


def subprocess_env(cache: Path, **extra: str) -> dict[str, str]:
    """This process's environment for a CLI subprocess: CPU, shared cache, W&B disabled."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "XLA_FLAGS"))}
    env.update(
        JAX_PLATFORMS="cpu",
        TF_CPP_MIN_LOG_LEVEL="3",
        JAX_COMPILATION_CACHE_DIR=str(cache),
        JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
        WANDB_MODE="disabled",
        WANDB_SILENT="true",
    )
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def cache() -> Path:
    """The compilation cache directory shared by every CLI subprocess."""
    SUBPROCESS_CACHE.mkdir(exist_ok=True)
    return SUBPROCESS_CACHE


def run_script(
    cache: Path, script: str, *args: str, env: dict | None = None, timeout: float = 900
) -> subprocess.CompletedProcess:
    """Runs `python <script> <args>` in the repository root; output captured as text."""
    return subprocess.run(
        [sys.executable, script, *args],
        cwd=ROOT,
        env=subprocess_env(cache, **(env or {})),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_train(cache: Path, *args: str, env: dict | None = None, timeout: float = 900):
    return run_script(cache, "train.py", *args, env=env, timeout=timeout)


def metrics(run_dir: Path) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def without_timing(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if not k.startswith("time/")} for r in records]


def error_lines(stderr: str) -> list[str]:
    """Non-empty stderr lines, without the warnings of the warp import."""
    return [line for line in stderr.splitlines() if line.strip() and "warp" not in line]


def assert_one_line_error(proc: subprocess.CompletedProcess, expected: str) -> None:
    """`proc` exited 2 with an `error:` line naming `expected` and no traceback."""
    assert proc.returncode == 2, proc.stderr[-3000:]
    err = error_lines(proc.stderr)
    assert err and err[-1].startswith("error: ") and expected in err[-1], err[-3:]
    assert "Traceback" not in proc.stderr


@pytest.fixture(scope="session")
def full_run(cache, tmp_path_factory) -> Path:
    """The uninterrupted tiny reference run, W&B offline, with a learning curve."""
    run_dir = tmp_path_factory.mktemp("full") / "run"
    proc = run_train(
        cache,
        *TINY,
        "--set",
        "logging.wandb.mode=auto",
        "--set",
        "logging.plot=true",
        "--run-dir",
        str(run_dir),
        env={"WANDB_MODE": "offline"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run_dir / "stdout.txt").write_text(proc.stdout)
    return run_dir
