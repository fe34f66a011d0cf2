"""Faults, bad input and hostile files: what mjxbot guarantees (README, "Fault guarantees").

CLI runs are conftest's `TINY` run, so they share the compiled program of
`tests/test_train.py` through the persistent cache; only the absurd-push run
compiles a program of its own (push magnitudes are constants of the traced
step). Config fuzzing and most error paths run in-process and stop before
any compile.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import pickle
import random
import re
import shutil
import subprocess
import sys
import time
import typing
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml
from conftest import (
    ROOT,
    TINY,
    TOTAL_STEPS,
    assert_one_line_error,
    error_lines,
    metrics,
    run_train,
    subprocess_env,
    without_timing,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mjxbot.errors import run_cli
from mjxbot.training import config as tconfig
from mjxbot.training import logging as tlogging
from mjxbot.types import TrainConfig

STEPS_PER_IT = 80  # configs/ci.yaml: 8 envs x 10 steps
KILL_SEED = 9
KILLS = 2  # the first during the first checkpoint write, the other at a random moment
MAX_KILL_DELAY_S = 2.5  # after the process's second checkpoint commit began
SAVE_PAUSE_S = 0.5  # widens each checkpoint write (see SLOW_SAVES)
WAIT_S = 600
# `train.py` with every checkpoint's commit (orbax's atomic rename of the
# finished temporary directory) delayed and announced on stderr, so that a
# kill can land inside a checkpoint write.
SLOW_SAVES = f"""
import runpy, sys, time
from orbax.checkpoint._src.path import atomicity

finalize = atomicity.AtomicRenameTemporaryPath.finalize

async def slow_finalize(self):
    name = self.get().name  # items (state, policy, meta) finalize inside the step's directory
    if name[0].isdigit():
        print(f"finalizing {{name}}", file=sys.stderr, flush=True)
        time.sleep({SAVE_PAUSE_S})
    await finalize(self)

atomicity.AtomicRenameTemporaryPath.finalize = slow_finalize
sys.argv = ["train.py", *sys.argv[1:]]
runpy.run_path("train.py", run_name="__main__")
"""


def _train_main(argv: list[str]) -> tuple[int, list[str]]:
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


def _assert_cli_error(argv: list[str], expected: str) -> str:
    code, err = _train_main(argv)
    assert code == 2 and err and err[-1].startswith("error: "), err[-3:]
    assert expected in err[-1], err[-1]
    return err[-1]


# ------------------------------------------------------------- 1. pre-emption


def _complete_steps(run_dir: Path) -> list[int]:
    ckpts = run_dir / "checkpoints"
    return (
        sorted(int(p.name) for p in ckpts.iterdir() if p.name.isdigit()) if ckpts.is_dir() else []
    )


def _wait_for(log: Path, proc: subprocess.Popen, pattern: str) -> bool:
    """Polls `log` until `pattern` appears (True) or the process ends (False)."""
    deadline = time.time() + WAIT_S
    while time.time() < deadline:
        if log.is_file() and re.search(pattern, log.read_text()):
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.02)
    raise TimeoutError(f"{pattern!r} not seen in {log}")


def test_sigkill_at_random_moments_resumes_from_newest_complete_checkpoint(
    full_run, cache, tmp_path
):
    rng = random.Random(KILL_SEED)
    run_dir = tmp_path / "run"
    first = [*TINY, "--set", f"checkpoint.every_steps={STEPS_PER_IT}", "--run-dir", str(run_dir)]
    resume = ["--run-dir", str(run_dir), "--resume"]
    newest = []  # newest complete checkpoint after each kill
    for attempt in range(KILLS):
        log = tmp_path / f"stderr{attempt}.txt"
        with log.open("w") as err:
            proc = subprocess.Popen(
                [sys.executable, "-c", SLOW_SAVES, *(resume if attempt else first)],
                cwd=ROOT,
                env=subprocess_env(cache),
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
            if attempt == 0:
                started = _wait_for(log, proc, r"finalizing \d+\.orbax-checkpoint-tmp")
            else:  # once this process's first checkpoint is complete (the second commit starts)
                started = _wait_for(log, proc, r"(?s)finalizing.*finalizing")
                time.sleep(rng.uniform(0.0, MAX_KILL_DELAY_S))
            proc.kill()
            proc.wait()
        assert started, log.read_text()[-3000:]
        if attempt == 0:  # killed inside the first checkpoint write
            assert list((run_dir / "checkpoints").glob("*.orbax-checkpoint-tmp*"))
            assert _complete_steps(run_dir) == []
        assert proc.returncode == -9, log.read_text()[-3000:]  # not finished before the kill
        newest.append(max(_complete_steps(run_dir), default=0))
    assert newest[0] == 0 < newest[-1], newest

    final = run_train(cache, *resume)
    assert final.returncode == 0, final.stderr[-3000:]
    # Each resumed process started from the newest complete checkpoint left by the
    # kill before it, and its first metrics step is the iteration after that one.
    logs = [(tmp_path / f"stderr{i}.txt").read_text() for i in range(1, len(newest))]
    for step, text in zip(newest, [*logs, final.stderr], strict=True):
        origin = f"checkpoint {step}" if step else "the start (no complete checkpoint)"
        assert f"from {origin}" in text, text[-2000:]
        first_step = re.search(r"step ([\d,]+)/", text)
        if first_step:
            assert int(first_step.group(1).replace(",", "")) == step + STEPS_PER_IT
    assert without_timing(metrics(run_dir)) == without_timing(metrics(full_run))
    assert _complete_steps(run_dir) == [TOTAL_STEPS - STEPS_PER_IT, TOTAL_STEPS]
    assert not list((run_dir / "checkpoints").glob("*tmp*")), "half-written checkpoint left"


# ------------------------------------------------------- 2. unwritable run dir


@contextlib.contextmanager
def read_only(path: Path):
    """Makes the directory `path` unwritable (as root also immutable, `chattr +i`)."""
    path.chmod(0o555)
    immutable = os.geteuid() == 0 and shutil.which("chattr")
    if immutable:
        subprocess.run(["chattr", "+i", str(path)], check=False, capture_output=True)
    try:
        try:
            (path / "probe").touch()
        except OSError:
            yield path
        else:
            pytest.skip("cannot make a read-only directory here")
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(path)], check=False, capture_output=True)
        path.chmod(0o755)


@pytest.fixture
def read_only_dir(tmp_path):
    path = tmp_path / "ro"
    path.mkdir()
    with read_only(path):
        yield path


def test_read_only_run_dir_fails_before_training(read_only_dir):
    t0 = time.perf_counter()
    err = _assert_cli_error([*TINY, "--run-dir", str(read_only_dir / "run")], "not writable")
    assert str(read_only_dir / "run") in err
    assert time.perf_counter() - t0 < 60  # no env was built, nothing compiled


def test_full_disk_fails_before_training(tmp_path, monkeypatch):
    from mjxbot.training import checkpoint

    monkeypatch.setattr(
        checkpoint.shutil, "disk_usage", lambda _: SimpleNamespace(free=2**20, total=2**30)
    )
    _assert_cli_error([*TINY, "--run-dir", str(tmp_path / "run")], "1 MiB free; checkpoints need")
    assert not _complete_steps(tmp_path / "run")


def test_failed_save_mid_run_is_one_error_naming_the_last_checkpoint(tmp_path):
    from mjxbot.training import Checkpointer, CheckpointError

    ckpt = Checkpointer(tmp_path / "checkpoints", 2)
    tree = {"w": np.ones(3, np.float32)}
    ckpt.save(80, tree, tree, {})
    with read_only(ckpt.directory), pytest.raises(CheckpointError) as error:
        ckpt.save(160, tree, tree, {})
    assert "could not write checkpoint" in str(error.value)
    assert str(error.value).endswith("the newest complete one is 80")
    assert ckpt.all_steps() == [80]


# ------------------------------------------------------------ 3. config fuzzing

SECTIONS = {"ppo", "network", "logging", "checkpoint", "eval"}
FIELD_TYPES = {
    f"{section}.{name}": tp
    for section in SECTIONS
    for name, tp in typing.get_type_hints(type(getattr(TrainConfig(), section))).items()
    if tp in (int, float, bool, str)
}
OUT_OF_RANGE = {
    "ppo.num_envs": st.integers(max_value=-1),
    "ppo.num_timesteps": st.integers(max_value=-1),
    "ppo.unroll_length": st.integers(max_value=0),
    "ppo.num_minibatches": st.integers(max_value=0),
    "ppo.num_updates_per_batch": st.integers(max_value=0),
    "ppo.learning_rate": st.floats(max_value=0.0) | st.floats(min_value=1.0, exclude_min=True),
    "ppo.discounting": st.floats(min_value=1.0, exclude_min=True) | st.floats(max_value=-1e-9),
    "ppo.gae_lambda": st.floats(min_value=1.0, exclude_min=True),
    "ppo.entropy_cost": st.floats(max_value=-1e-9),
    "ppo.clipping_epsilon": st.floats(max_value=-1e-9),
    "logging.log_every": st.integers(max_value=0),
    "checkpoint.max_to_keep": st.integers(max_value=0),
    "checkpoint.every_steps": st.integers(max_value=-1),
    "eval.num_envs": st.integers(max_value=-1),
    "network.policy_hidden_layer_sizes": st.lists(st.integers(max_value=0), min_size=1),
    "env.disturbances.curriculum": st.floats(min_value=1.0, exclude_min=True),
}
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=8),
    st.lists(st.integers(), max_size=3),
)


def _wrong_type(tp: type) -> st.SearchStrategy:
    def wrong(v):
        if tp is float:
            return isinstance(v, bool) or not isinstance(v, int | float)
        return isinstance(v, bool) != (tp is bool) or not isinstance(v, tp)

    return SCALARS.filter(wrong)


def _nested(key: str, value) -> dict:
    for part in reversed(key.split(".")):
        value = {part: value}
    return value


@st.composite
def wrong_configs(draw) -> bytes:
    """The bytes of a config file that must be rejected."""
    kind = draw(st.sampled_from(["unknown", "type", "range", "nonfinite", "empty", "garbage"]))
    if kind == "unknown":  # no field of any section starts with "zz"
        section = draw(st.sampled_from(["", *sorted(SECTIONS), "env", "env.disturbances"]))
        name = "zz" + draw(st.from_regex(r"[a-z_0-9]{0,10}", fullmatch=True))
        data = _nested(f"{section}.{name}" if section else name, draw(SCALARS))
    elif kind == "type":
        key = draw(st.sampled_from(sorted(FIELD_TYPES)))
        data = _nested(key, draw(_wrong_type(FIELD_TYPES[key])))
    elif kind == "range":
        key = draw(st.sampled_from(sorted(OUT_OF_RANGE)))
        data = _nested(key, draw(OUT_OF_RANGE[key]))
    elif kind == "nonfinite":
        key = draw(st.sampled_from([k for k, tp in FIELD_TYPES.items() if tp is float]))
        data = _nested(key, draw(st.sampled_from([math.nan, math.inf, -math.inf])))
    elif kind == "empty":
        return draw(st.sampled_from([b"", b"\n", b"# only a comment\n", b"---\n", b"~\n"]))
    else:  # not YAML, or YAML that is not a mapping
        raw = draw(st.binary(max_size=64) | st.text(max_size=64).map(str.encode))
        try:
            parsed = yaml.safe_load(raw)
        except Exception:  # noqa: BLE001 - any parse failure is what we want
            return raw
        return raw if not isinstance(parsed, dict) else b"[" + raw
    return yaml.safe_dump(data).encode()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content=wrong_configs())
def test_fuzzed_wrong_configs_give_one_error_line(content, tmp_path_factory):
    path = tmp_path_factory.mktemp("fuzz") / "bad.yaml"
    path.write_bytes(content)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run_cli(tconfig.load, [ROOT / "configs" / "reach.yaml", path])
    lines = err.getvalue().splitlines()
    assert code == 2, (content, out.getvalue())
    assert len(lines) == 1 and lines[0].startswith("error: "), (content, lines)


def test_binary_config_file_exits_2_without_traceback(cache, tmp_path):
    # The fuzz test above runs in-process; this checks the real process's exit code.
    (tmp_path / "bad.yaml").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    proc = run_train(cache, *TINY, "--config", str(tmp_path / "bad.yaml"))
    assert_one_line_error(proc, "not a text file")


@pytest.mark.parametrize(
    "override, expected",
    [("env.sim_dt=0", "multiple of sim_dt"), ("env.episode_length=0", "episode_length")],
)
def test_env_level_config_errors_are_one_line(tmp_path, override, expected):
    _assert_cli_error([*TINY, "--set", override, "--run-dir", str(tmp_path / "r")], expected)


# ---------------------------------------------------------------- 4. model input

BIPED = ROOT / "tests" / "data" / "mini_biped.xml"


def _robot_yaml(tmp_path: Path, mjcf: Path, **robot) -> str:
    data = {
        "env_name": "stand",
        "env": {
            "robot": {
                "mjcf": str(mjcf),
                "torso_body": "pelvis",
                "feet": ["l_sole", "r_sole"],
                "hands": [],
                "gains": {"hip": [80.0, 3.0], "ankle": [40.0, 2.0]},
                **robot,
            }
        },
    }
    path = tmp_path / "robot.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


@pytest.mark.parametrize(
    "edit, expected",
    [
        (lambda x: x.replace("</worldbody>", ""), "cannot load MJCF"),
        (
            lambda x: x.replace('<freejoint name="float"/>', "").replace(
                'qpos="0 0 0.52 1 0 0 0 ', 'qpos="'
            ),
            "no free joint",
        ),
        (
            lambda x: x.replace('timestep="0.004"', 'timestep="0.004" integrator="implicit"'),
            "feature MJX (jax) does not support: mjtIntegrator.mjINT_IMPLICIT",
        ),
    ],
    ids=["malformed", "no_floating_base", "unsupported_by_mjx"],
)
def test_bad_robot_models_name_the_problem(tmp_path, edit, expected):
    mjcf = tmp_path / "robot.xml"
    text = edit(BIPED.read_text())
    assert text != BIPED.read_text()
    mjcf.write_text(text)
    config = _robot_yaml(tmp_path, mjcf)
    args = ["--config", config, "--config", "configs/ci.yaml", "--run-dir", str(tmp_path / "r")]
    _assert_cli_error(args, expected)


# ------------------------------------------------------------ 5. numerical faults


def _all_finite(tree) -> bool:
    import jax

    return all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(tree))


def test_absurd_pushes_blow_up_envs_but_training_goes_on(tmp_path):
    import orbax.checkpoint as ocp

    from mjxbot.training import Checkpointer
    from mjxbot.training.loop import train

    absurd = [
        "env.disturbances.push.enabled=true",
        "env.disturbances.push.force=[1000.0, 1.0e+12]",
        "env.disturbances.push.interval=[0.02, 0.3]",
    ]
    config = tconfig.load([ROOT / "configs" / "reach.yaml", ROOT / "configs" / "ci.yaml"], absurd)
    config = tconfig.resolve_auto(config, "cpu")
    records = []
    ckpt = Checkpointer(tmp_path / "checkpoints", 1)
    _, params, _ = train(
        config, checkpointer=ckpt, progress_fn=lambda _, m: records.append(m), evaluate=False
    )
    ckpt.close()
    resets = [r["env/nonfinite_resets_total"] + r["env/diverged_resets_total"] for r in records]
    assert len(records) == TOTAL_STEPS // STEPS_PER_IT  # every iteration ran
    assert resets[-1] > 0, resets  # some envs blew up (NaN or diverged), were reset and counted
    bound = config.env.guard.max_reward
    assert all(r["reward/max_abs"] <= bound for r in records)  # none of it reached PPO
    for r in records:
        losses = {k: v for k, v in r.items() if k.startswith(("loss/", "reward/total"))}
        assert all(math.isfinite(v) for v in losses.values()), losses
    state = ocp.StandardCheckpointer().restore(
        tmp_path / "checkpoints" / str(TOTAL_STEPS) / "state"
    )
    assert _all_finite(params) and _all_finite(state)  # params, normalizer, Adam moments


# --------------------------------------------------------------- 6. no pickle


class _Payload:
    """Unpickling this creates `marker` (a stand-in for arbitrary code)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (str(self.marker),)


def _pickle_payload(marker: Path) -> bytes:
    payload = pickle.dumps(_Payload(marker))
    pickle.loads(payload)  # the payload is live: loading it runs code
    assert marker.is_dir()
    marker.rmdir()
    return payload


def _plant(directory: Path, payload: bytes) -> None:
    files = [f for f in directory.rglob("*") if f.is_file()]
    assert files, directory
    for f in files:
        f.write_bytes(payload)
    (directory / "checkpoint.pkl").write_bytes(payload)


def _copy_run(full_run: Path, tmp_path: Path) -> Path:
    run_dir = tmp_path / "run"
    shutil.copytree(full_run, run_dir, ignore=shutil.ignore_patterns("wandb*"))
    return run_dir


@pytest.mark.parametrize("items", [("meta",), ("policy", "state")])
def test_pickle_planted_in_checkpoint_is_refused_unexecuted(full_run, tmp_path, items):
    from mjxbot.training import CheckpointError, load_policy

    run_dir = _copy_run(full_run, tmp_path)
    marker = tmp_path / "pwned"
    payload = _pickle_payload(marker)
    for item in items:
        _plant(run_dir / "checkpoints" / str(TOTAL_STEPS) / item, payload)
    with pytest.raises(CheckpointError, match="unreadable"):
        load_policy(run_dir)
    assert not marker.exists(), "the pickle payload ran"


def test_pickle_planted_checkpoint_is_refused_by_resume(full_run, cache, tmp_path):
    run_dir = _copy_run(full_run, tmp_path)
    marker = tmp_path / "pwned"
    _plant(run_dir / "checkpoints" / str(TOTAL_STEPS), _pickle_payload(marker))
    assert_one_line_error(run_train(cache, "--run-dir", str(run_dir), "--resume"), "unreadable")
    assert not marker.exists(), "the pickle payload ran"


@pytest.mark.parametrize(
    "tag",
    [
        "!!python/object/apply:os.mkdir [{marker}]",
        "!!python/object/new:os.mkdir [{marker}]",
        "!!python/name:os.system",
    ],
)
def test_yaml_object_tags_are_refused_unexecuted(tmp_path, tag):
    marker = tmp_path / "pwned"
    (tmp_path / "evil.yaml").write_text(f"seed: {tag.format(marker=json.dumps(str(marker)))}\n")
    _assert_cli_error([*TINY, "--config", str(tmp_path / "evil.yaml")], "not valid YAML")
    # The same file through a resumed run's saved config.yaml.
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text((tmp_path / "evil.yaml").read_text())
    _assert_cli_error(["--run-dir", str(run_dir), "--resume"], "not valid YAML")
    assert not marker.exists()


def test_no_load_path_can_unpickle():
    unsafe = re.compile(
        r"\bimport (c?pickle|dill|cloudpickle|joblib)\b|yaml\.(unsafe_)?load\(|"
        r"allow_pickle\s*=\s*True|torch\.load|yaml\.Loader\b|yaml\.UnsafeLoader"
    )
    sources = [ROOT / "train.py", ROOT / "eval.py", *sorted((ROOT / "mjxbot").rglob("*.py"))]
    hits = [
        f"{p.relative_to(ROOT)}:{i}: {line.strip()}"
        for p in sources
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if unsafe.search(line)
    ]
    assert not hits, hits


# ------------------------------------------------------------------------ 8. W&B


@pytest.fixture
def online_config():
    return tconfig.load(
        [ROOT / "configs" / "reach.yaml", ROOT / "configs" / "ci.yaml"],
        ["logging.wandb.mode=online"],
    )


def _log_three(logger) -> None:
    for step in (80, 160, 240):
        logger.log(step, {"reward/total": 1.0, "time/sps": 10.0})
    logger.close({"eval/return": 1.0})


def test_wandb_unreachable_with_bad_key_does_not_stop_logging(online_config, tmp_path, monkeypatch):
    # A real `wandb.init` against a closed port with a made-up key.
    monkeypatch.setenv("WANDB_API_KEY", "0" * 40)
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("WANDB_INIT_TIMEOUT", "5")
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        logger = tlogging.RunLogger(online_config, tmp_path, TOTAL_STEPS)
        _log_three(logger)
    assert "warning: W&B disabled for this run" in err.getvalue()
    assert [r["step"] for r in tlogging.read_metrics(tmp_path)] == [80, 160, 240]


def test_wandb_error_mid_run_does_not_stop_logging(online_config, tmp_path, monkeypatch):
    class Run:
        dir = str(tmp_path / "wandb" / "files")
        summary: dict = {}
        calls = 0

        def log(self, metrics, step):
            Run.calls += 1
            if Run.calls == 2:
                raise ConnectionError("W&B server went away")

        def finish(self):
            raise RuntimeError("finish failed too")

    fake = SimpleNamespace(init=lambda **_: Run(), Settings=lambda **_: None)
    monkeypatch.setitem(sys.modules, "wandb", fake)
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        logger = tlogging.RunLogger(online_config, tmp_path, TOTAL_STEPS)
        _log_three(logger)
    assert "warning: W&B logging stopped (ConnectionError" in err.getvalue()
    assert Run.calls == 2  # no W&B call after the failure
    assert [r["step"] for r in tlogging.read_metrics(tmp_path)] == [80, 160, 240]


def test_no_network_picks_offline_wandb(monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_API_KEY", "0" * 40)
    monkeypatch.setattr(tlogging, "_online", lambda *a, **k: False)
    assert tlogging.wandb_mode(tconfig.load([], []).logging.wandb) == "offline"


def test_torn_last_metrics_line_is_dropped(tmp_path):
    (tmp_path / tlogging.METRICS_FILE).write_text('{"step": 80}\n{"step": 160}\n{"step": 2')
    assert tlogging.read_metrics(tmp_path) == [{"step": 80}, {"step": 160}]
