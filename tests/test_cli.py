"""The three command lines (train.py, eval.py, python -m mjxbot.export) and what every
one of them shares: tyro-made flags, one-line errors, quiet imports, no GL needed.

Flag errors run in-process and stop before anything is built; the subprocesses
only import the package (a few seconds each, nothing compiled).
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys

import pytest
from conftest import ROOT, TINY, error_lines

from mjxbot import export
from mjxbot.training import config as tconfig
from mjxbot.training import logging as tlogging


def _script(name: str):
    sys.path.insert(0, str(ROOT))
    try:
        return __import__(name)
    finally:
        sys.path.remove(str(ROOT))


def _main(cli: str):
    if cli == "export":
        return export.main
    return _script(cli).main


def _run_main(cli: str, argv: list[str]) -> tuple[int, list[str], str]:
    """`main(argv)` of a CLI in-process: (exit code, stderr lines, raw stderr)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            code = _main(cli)(argv)
        except SystemExit as stop:
            code = stop.code
    return code, error_lines(err.getvalue()), err.getvalue()


def _python(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k != "MUJOCO_GL"}
    base.update(JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3", **(env or {}))
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=base, capture_output=True, text=True, timeout=300
    )


# ------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "cli, argv, expected",
    [
        ("train", ["--bogus"], "Unrecognized options: --bogus"),
        ("train", ["--stop-after", "soon"], "--stop-after"),
        ("train", ["--run-dirr", "x"], "did you mean --run-dir"),
        ("train", ["--config", "no/such.yaml"], "no/such.yaml"),
        ("eval", ["/no/such/run", "--bogus"], "Unrecognized options: --bogus"),
        ("eval", ["/no/such/run", "--episodes", "many"], "--episodes"),
        ("eval", ["/no/such/run", "--controller", "lqr"], "lqr"),
        ("eval", [], "missing argument SOURCE"),
        ("eval", ["/no/such/run"], "no run directory or exported policy"),
        ("export", ["run"], "missing argument OUT"),
        ("export", ["run", "out", "--step", "last"], "--step"),
        ("export", ["run", "out", "--bogus"], "Unrecognized options: --bogus"),
        ("export", ["/no/such/run", "out"], "not a train.py run directory"),
    ],
)
def test_bad_input_is_one_error_line(cli, argv, expected):
    code, err, raw = _run_main(cli, argv)
    assert code == 2, raw[-2000:]
    assert len(err) == 1 and err[0].startswith("error: "), err
    assert expected in err[0], err[0]
    assert "Traceback" not in raw and "╭" not in raw


def test_flags_keep_their_names_and_defaults():
    train = _script("train")
    args = train.parse_args([*TINY, "--set", "a=1", "--set", "b=2", "--run-dir", "r", "--resume"])
    assert args.config == [TINY[1], TINY[3]] and args.set == ["a=1", "b=2"]
    assert (args.run_dir, args.resume, args.stop_after) == ("r", True, 0)
    assert (args.coordinator, args.num_processes, args.process_id) == (None, None, None)
    args = _script("eval").parse_args(["RUN", "--baselines", "pd,qp", "--shift-hours", "2"])
    assert (args.source, args.episodes, args.seed, args.disturbances) == ("RUN", 0, None, "on")
    assert args.baseline_set == {"pd", "qp"} and args.shift_hours == 2.0
    assert (args.robustness_points, args.video, args.video_size) == (6, None, "640x480")


# --------------------------------------------------------- quiet imports
def test_import_prints_no_warp_notice():
    proc = _python("-c", "import mjxbot; print('imported')")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Failed to import" not in proc.stderr + proc.stdout
    assert proc.stdout.strip() == "imported"


def test_import_starts_no_xla_backend():
    # train.py parses flags with mjxbot.cli before jax.distributed.initialize,
    # which must come before any backend starts.
    code = (
        "import mjxbot, mjxbot.cli, mjxbot.export, mjxbot.training.loop\n"
        "from jax._src import xla_bridge\n"
        "print(sorted(xla_bridge._backends))"
    )
    proc = _python("-c", code)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "[]"


# ------------------------------------------------------------------ no GL
@pytest.mark.parametrize("asked", [None, "osmesa"])
def test_eval_help_needs_no_gl_library(asked):
    # MJXBOT_GL=none: eval.py finds no GL library, as on a machine without libosmesa6.
    env = {"MJXBOT_GL": "none", **({"MUJOCO_GL": asked} if asked else {})}
    proc = _python("eval.py", "--help", env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "usage: python eval.py" in proc.stdout and "--video" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_setup_gl_never_forces_a_missing_library(monkeypatch):
    eval_cli = _script("eval")
    monkeypatch.setattr(eval_cli, "_gl", None)
    for name in ("MUJOCO_GL", "PYOPENGL_PLATFORM"):
        monkeypatch.setenv(name, "")  # restored (or removed) after the test
        monkeypatch.delenv(name)
    monkeypatch.setenv("MJXBOT_GL", "none")
    backend, why = eval_cli.setup_gl()
    assert backend is None and "MUJOCO_GL" not in os.environ
    assert "libOSMesa" in why and "libosmesa6" in why and "EGL" in why
    # A backend whose library is found is set.
    monkeypatch.setattr(eval_cli, "_gl", None)
    monkeypatch.setattr(eval_cli, "find_gl_library", lambda b: f"lib{b}.so")
    assert eval_cli.setup_gl() in (("osmesa", None), ("egl", None))


# ------------------------------------------------------------- progress
def test_plain_progress_says_it_is_compiling_until_the_first_iteration(tmp_path):
    config = tconfig.load([ROOT / "configs" / "reach.yaml", ROOT / "configs" / "ci.yaml"], [])
    assert not config.logging.progress_bar
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        logger = tlogging.RunLogger(config, tmp_path, 320)
        compiling = err.getvalue()
        logger.log(80, {"reward/total": 1.0, "time/sps": 10.0})
        logger.log(160, {"reward/total": 1.0, "time/sps": 10.0})
        logger.close()
    assert tlogging.COMPILING in compiling and "compiling" in compiling
    lines = err.getvalue().splitlines()
    assert [line for line in lines if "compiling" in line] == compiling.splitlines()
    assert lines[-2].startswith("step 80/320") and "10 steps/s" in lines[-2]
    assert not logger.compiling
