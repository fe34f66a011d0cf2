"""Test-wide settings (CPU only), jitted env functions and CLI subprocess helpers.

The CLI helpers run `train.py`/`eval.py` in subprocesses that share one
persistent JAX compilation cache (`SUBPROCESS_CACHE`), so runs of the same
program (same task, sizes and device layout) skip the MJX compile. `TINY`
is the tiny humanoid overlay: `configs/ci.yaml` (8 envs x 10 steps, 4 iterations,
50-step episodes) over the reach task. `MINI` is the same overlay and task on the
4-actuator `tests/data/mini_biped.xml`, its pelvis standing in for a hand: the trainer,
checkpoint, resume, fault and eval tests, which exercise plumbing rather than humanoid
physics, train it (its compile and steps cost a fraction of the humanoid's). `full_run`,
the uninterrupted `MINI` reference run, is trained once per session.
"""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("WANDB_MODE", "disabled")
# No persistent compilation cache in this process (compiled functions are shared through
# session fixtures instead): a full CI run once segfaulted while JAX wrote the QP-controller
# rollout's executable to it, at the end of a long session; the same test alone passed.

import contextlib  # noqa: E402
import functools  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

import jax  # noqa: E402
import pytest  # noqa: E402
from filelock import FileLock  # noqa: E402

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


# Test files, costliest first, by the summed `--durations` of a full run (other files follow
# in collection order). With `--dist loadfile --no-loadscope-reorder` (pyproject addopts) a
# worker takes the next file when it finishes one, so the long files start first and the
# run does not end with one worker alone on a long file while the others idle.
COSTLIEST_FIRST = (
    "test_env.py",
    "test_train.py",
    "test_eval.py",
    "test_nut_station.py",
    "test_wbc.py",
    "test_tasks.py",
    "test_plant.py",
    "test_gpu_check.py",
    "test_disturbances.py",
    "test_curriculum.py",
    "test_export.py",
    "test_qp.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(COSTLIEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: file order kept


# In-process programs compile with XLA's optimizations off (`jax_disable_most_optimizations`):
# most of the suite's programs are compiled for a few tiny steps, and this cuts the compile of
# an MJX step by about 40% (humanoid rollout: 21 s to 12 s) for about 6x its run time. Tests
# whose time goes into running long rollouts are marked `optimized` and keep the optimizations.
# Set at each test's setup, before its fixtures: a module's compiled fixtures follow the
# module's marker. CLI subprocesses follow the same rule (`subprocess_env`).
@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    optimized = item.get_closest_marker("optimized") is not None
    jax.config.update("jax_disable_most_optimizations", not optimized)


# ------------------------------------------------------------ CLI subprocesses

ROOT = Path(__file__).resolve().parents[1]
TASK = "reach" if "reach" in mjxbot.ALL_ENVS else "stand"
TINY = ["--config", f"configs/{TASK}.yaml", "--config", "configs/ci.yaml"]
TOTAL_STEPS = 320  # configs/ci.yaml: 4 iterations of 8 envs x 10 steps
STEPS_PER_IT = 80  # configs/ci.yaml: 8 envs x 10 steps
# The mini biped (two legs, no hands, pelvis at 0.52 m) standing: `MINI_CONFIGS`
# overlaid with `MINI_SETS`, the robot's names and gains (as in test_env's MINI_BIPED)
# and a fall height below its pelvis (in-process trainings and gpu_check).
MINI_BIPED = ROOT / "tests" / "data" / "mini_biped.xml"
MINI_CONFIGS = ["configs/stand.yaml", "configs/ci.yaml"]
MINI_ROBOT = [
    f"env.robot.mjcf={MINI_BIPED}",
    "env.robot.torso_body=pelvis",
    "env.robot.feet=[l_sole, r_sole]",
    "env.robot.gains={hip: [80.0, 3.0], ankle: [40.0, 2.0]}",
    "env.robot.push_bodies=[pelvis]",
    "env.robot.floor_geom=ground",
    "env.fall_height=0.3",
]
MINI_SETS = [*MINI_ROBOT, "env.robot.hands=[]"]


def cli_args(configs: list[str], sets: list[str]) -> list[str]:
    """`--config C ... --set S ...` for train.py / eval.py."""
    return [
        *(arg for path in configs for arg in ("--config", path)),
        *(arg for item in sets for arg in ("--set", item)),
    ]


# The CLI runs: the mini biped on `TASK` (reach), its pelvis standing in for a hand, a
# task with a goal, so that the eval tests' success, cycle times and shift mode have
# something to count. One run serves the trainer's and the eval tests (one compile fewer).
MINI_TASK = TASK
MINI = cli_args(
    [f"configs/{MINI_TASK}.yaml", "configs/ci.yaml"], [*MINI_ROBOT, "env.robot.hands=[pelvis]"]
)
# Kept between sessions: entries are keyed by the compiled program. One folder for every
# pytest-xdist worker, so a program one worker compiled is loaded by the other. A size bound
# (`SUBPROCESS_CACHE_BYTES`) is what makes JAX lock the folder around each read and write
# (`jax._src.lru_cache`), so two processes never see a half-written entry.
SUBPROCESS_CACHE = Path(tempfile.gettempdir()) / "mjxbot-test-jax-cache" / "shared"
SUBPROCESS_CACHE_BYTES = 16 * 2**30


# CLI subprocesses compile with XLA's optimizations off too: a test's train.py runs a few
# tiny iterations, where compiling is most of the time (measured alone, the `MINI` run took
# 84 CPU-s optimized and 55 without; humanoid reach with the QP in the loop 197 and 151).
# Every training is compiled the same way, so runs that a test compares match. `env=XLA_OPT`
# for a call whose time goes into running: eval.py's shift and robustness rollouts (the
# `evaluated` fixture: 85 CPU-s optimized, 124 without).
XLA_OPT = {"JAX_DISABLE_MOST_OPTIMIZATIONS": "0"}


def subprocess_env(cache: Path, **extra: str) -> dict[str, str]:
    """This process's environment for a CLI subprocess: CPU, shared cache, W&B disabled,
    XLA's optimizations off unless `extra` says `XLA_OPT`."""
    inherited = ("WANDB_", "XLA_FLAGS", "JAX_DISABLE_MOST_OPTIMIZATIONS")
    env = {k: v for k, v in os.environ.items() if not k.startswith(inherited)}
    env.update(
        JAX_PLATFORMS="cpu",
        TF_CPP_MIN_LOG_LEVEL="3",
        JAX_COMPILATION_CACHE_DIR=str(cache),
        JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
        JAX_COMPILATION_CACHE_MAX_SIZE=str(SUBPROCESS_CACHE_BYTES),
        JAX_DISABLE_MOST_OPTIMIZATIONS="1",
        WANDB_MODE="disabled",
        WANDB_SILENT="true",
    )
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def cache() -> Path:
    """The compilation cache directory shared by every CLI subprocess."""
    SUBPROCESS_CACHE.mkdir(parents=True, exist_ok=True)
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


def train_main(argv: list[str]) -> tuple[int, list[str]]:
    """`train.main(argv)` in-process: (exit code, stderr lines)."""
    sys.path.insert(0, str(ROOT))
    try:
        import train
    finally:
        sys.path.remove(str(ROOT))
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = train.main(argv)
    return code, error_lines(err.getvalue())


def assert_cli_error(argv: list[str], expected: str) -> str:
    """In-process `train.main(argv)` exits 2 with a last `error:` line naming `expected`."""
    code, err = train_main(argv)
    assert code == 2 and err and err[-1].startswith("error: "), err[-3:]
    assert expected in err[-1], err[-1]
    return err[-1]


def complete_steps(run_dir: Path) -> list[int]:
    """The steps of the complete checkpoints of `run_dir`, ascending."""
    ckpts = run_dir / "checkpoints"
    return (
        sorted(int(p.name) for p in ckpts.iterdir() if p.name.isdigit()) if ckpts.is_dir() else []
    )


def copy_run(run_dir: Path, tmp_path: Path) -> Path:
    """A copy of `run_dir` (without its W&B files) as `tmp_path / "run"`, to damage freely."""
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns("wandb*"))
    return copy


def trained_once(tmp_path_factory, name: str, train_into) -> Path:
    """`run_dir` trained by `train_into(run_dir)` once per session, whatever the worker.

    pytest-xdist's recipe for session fixtures: under xdist every worker shares
    the session's temporary root, and the first worker to ask trains the run
    under a file lock while the others wait and reuse it. Without this, each of
    the two CI workers trained `full_run` for itself (one
    train.py compile each). `done` marks a finished run, so a failed one is
    trained again by the next worker rather than reused.
    """
    if "PYTEST_XDIST_WORKER" not in os.environ:
        run_dir = tmp_path_factory.mktemp(name) / "run"
        train_into(run_dir)
        return run_dir
    root = tmp_path_factory.getbasetemp().parent
    run_dir = root / name / "run"
    with FileLock(str(root / f"{name}.lock")):
        if not (root / name / "done").exists():
            shutil.rmtree(root / name, ignore_errors=True)
            train_into(run_dir)
            (root / name / "done").touch()
    return run_dir


@pytest.fixture(scope="session")
def full_run(cache, tmp_path_factory) -> Path:
    """The uninterrupted `MINI` reference run, W&B offline, with a learning curve.

    Shared by every test that reads a trained run, the eval tests' included (copy it with
    `copy_run` to change it).
    """

    def train_into(run_dir: Path) -> None:
        proc = run_train(
            cache,
            *MINI,
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

    return trained_once(tmp_path_factory, "full", train_into)
