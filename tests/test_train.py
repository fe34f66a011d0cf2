"""train.py end to end: tiny runs in subprocesses that share a compilation cache.

Every run is conftest's `MINI` (`configs/ci.yaml` over `reach` with the mini
biped): these tests check the trainer's plumbing (files, checkpoints, resume),
not humanoid physics. One `MINI` run on two local devices serves both scale tests: it
is compared with the one-device `full_run`, and with two processes of one device each
(the same global program). Runs that compile
the same program hit the persistent JAX cache, so only the first of them pays for the
MJX compile. The reference run `full_run` is conftest's (trained once per session).
"""

from __future__ import annotations

import json
import math
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import (
    MINI,
    MINI_TASK,
    ROOT,
    TINY,
    TOTAL_STEPS,
    assert_one_line_error,
    copy_run,
    error_lines,
    metrics,
    run_train,
    subprocess_env,
    without_timing,
)

from mjxbot.training import config as tconfig

# Two devices compile each env batch half as wide, so float sums round differently and
# the biped's contacts amplify those last-bit differences within the first rollout.
# Per-step reward terms are O(1): a sharding error (an env counted twice, a device's
# envs lost) moves their batch means by 1e-2 or more. Measured on the mini biped's reach
# run: 1.7e-3 on `action_rate` (-0.71), 1.2e-3 on `posture` (-0.022), 2e-5 on the total.
FIRST_ROLLOUT_ATOL = 5e-3  # the first rollout runs from identical params
EVAL_RTOL = 0.01  # final eval return after 4 updates (measured: 0.4% apart)
# Two processes against two local devices: the same program, the same sums.
PROCESS_RTOL = 1e-6
SIGTERM_EXIT = 128 + signal.SIGTERM


def _train_on_two_devices(cache, run_dir: Path, run: list[str]) -> Path:
    proc = run_train(
        cache,
        *run,
        "--run-dir",
        str(run_dir),
        env={"XLA_FLAGS": "--xla_force_host_platform_device_count=2"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run_dir


@pytest.fixture(scope="module")
def mini_two_device_run(cache, tmp_path_factory) -> Path:
    """`MINI` on two local devices: against one device, and the program two processes run."""
    return _train_on_two_devices(cache, tmp_path_factory.mktemp("mini_two_dev") / "run", MINI)


# ------------------------------------------------------------------ config


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--set", "ppo.num_env=8"], "valid keys of ppo:"),
        (["--set", "ppo.learning_rate=fast"], "ppo.learning_rate: expected a number"),
        (["--set", "env_name=stand", "--set", "env.episode_lenght=5"], "episode_length"),
        (["--set", "env_name=nope"], "registered envs:"),
        (["--config", "configs/does_not_exist.yaml"], "does not exist"),
        (["--set", "ppo.num_envs=10", "--set", "ppo.num_minibatches=4"], "must divide"),
        (["--set", "env.wbc.scaling=-1"], "wbc.scaling: -1 must be >= 0"),
        (["--set", "env.wbc.warm_scaling=0"], "wbc.warm_scaling: 0 must be >= 1"),
    ],
)
def test_config_errors_are_one_line(args, expected, capsys):
    sys.path.insert(0, str(ROOT))
    try:
        import train
    finally:
        sys.path.remove(str(ROOT))
    assert train.main([*TINY, *args]) == 2
    err = error_lines(capsys.readouterr().err)
    assert len(err) == 1 and err[0].startswith("error: "), err
    assert expected in err[0]


def test_configs_load_and_roundtrip():
    for path in sorted((ROOT / "configs").glob("*.yaml")):
        config = tconfig.load([path])
        assert tconfig.from_yaml_text(tconfig.dump(config)) == config, path.name


def test_resolve_auto_sizes_for_hardware():
    config = tconfig.load([], ["env_name=stand"])
    cpu = tconfig.resolve_auto(config, "cpu")
    gpu = tconfig.resolve_auto(config, "gpu", device_count=8)
    assert 8 <= cpu.ppo.num_envs <= 128 and gpu.ppo.num_envs >= 1024
    assert gpu.ppo.num_envs % (8 * gpu.ppo.num_minibatches) == 0


# -------------------------------------------------------------- full run


def test_full_run_writes_everything(full_run):
    config = tconfig.from_yaml_text((full_run / "config.yaml").read_text())
    assert config.env_name == MINI_TASK and config.ppo.num_envs == 8
    assert config.env.robot.torso_body == "pelvis"  # the mini biped
    records = metrics(full_run)
    train_steps = [r["step"] for r in records if "time/sps" in r]
    assert train_steps == [80, 160, 240, 320]
    first = records[0]
    assert any(k.startswith("reward/") for k in first)
    assert "env/nonfinite_resets_total" in first and "env/diverged_resets_total" in first
    assert 0.0 <= first["curriculum/level"] <= 1.0 and first["reward/max_abs"] >= 0.0
    assert sorted(p.name for p in (full_run / "checkpoints").iterdir()) == ["160", "320"]
    assert (full_run / "learning_curve.png").stat().st_size > 1000
    info = json.loads((full_run / "run_info.json").read_text())
    assert info["train_step_traces"] == 1  # one compile per run
    assert info["first_iteration_s"] > 0
    assert {"eval/return", "eval_pd/return"} <= set(records[-1])
    # eval.json: eval.py's schema, the closing evaluation's figures (metrics.jsonl's last record).
    evals = json.loads((full_run / "eval.json").read_text())
    assert set(evals["results"]) == {"policy", "pd_hold"}
    policy = evals["results"]["policy"]
    assert policy["episodes"] == records[-1]["eval/episodes"] == config.eval.num_envs
    assert 0 <= policy["survival"]["successes"] <= policy["episodes"]
    assert policy["survival"]["successes"] == records[-1]["eval/survived"]
    assert policy["mean_return"] == pytest.approx(records[-1]["eval/return"])
    assert evals["plots"]["learning_curve"] == str(full_run / "learning_curve.png")
    table = (full_run / "stdout.txt").read_text()
    assert "policy vs PD hold" in table and "95% interval" in table


def test_wandb_offline_run_holds_metrics(full_run):
    run_id = (full_run / "wandb_run_id").read_text().strip()
    runs = list((full_run / "wandb").glob(f"offline-run-*-{run_id}"))
    assert runs, list((full_run / "wandb").iterdir())
    assert list(runs[0].glob("*.wandb")), "no W&B data file"


def test_policy_of_a_checkpoint_without_training_code(full_run):
    import numpy as np

    from mjxbot.training import deterministic_act, restore_policy_params

    networks, params, meta = restore_policy_params(full_run)
    assert meta["env_name"] == MINI_TASK and meta["step"] == TOTAL_STEPS
    act = deterministic_act(networks)
    obs = {k: np.zeros(v, np.float32) for k, v in meta["observation_size"].items()}
    action = act(params, obs)
    assert action.shape == (meta["action_size"],)
    assert np.all(np.isfinite(np.asarray(action)))
    # Deterministic: the same observation gives the same action (the env clips it).
    np.testing.assert_array_equal(np.asarray(act(params, obs)), np.asarray(action))


# ---------------------------------------------------------------- resume


def test_interrupted_and_resumed_run_matches(full_run, cache, tmp_path):
    run_dir = tmp_path / "run"
    wandb_env = {"WANDB_MODE": "offline"}
    args = [*MINI, "--set", "logging.wandb.mode=auto", "--run-dir", str(run_dir)]
    # SIGTERM once the first iteration is logged; --stop-after is the safety
    # net should the signal land after the last iteration.
    proc = subprocess.Popen(
        [sys.executable, "train.py", *args, "--stop-after", "240"],
        cwd=ROOT,
        env=subprocess_env(cache, **wandb_env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 900
    while time.time() < deadline and proc.poll() is None:
        path = run_dir / "metrics.jsonl"
        if path.is_file() and path.read_text().strip():
            proc.send_signal(signal.SIGTERM)
            break
        time.sleep(0.05)
    _, stderr = proc.communicate(timeout=900)
    assert proc.returncode == SIGTERM_EXIT, stderr[-3000:]
    assert "checkpoint saved" in stderr
    stopped_at = json.loads((run_dir / "run_info.json").read_text())
    assert stopped_at["status"] == "interrupted"
    run_id = (run_dir / "wandb_run_id").read_text()

    resumed = run_train(cache, "--run-dir", str(run_dir), "--resume", env=wandb_env)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert without_timing(metrics(run_dir)) == without_timing(metrics(full_run))
    assert (run_dir / "wandb_run_id").read_text() == run_id  # same W&B run continued
    assert json.loads((run_dir / "run_info.json").read_text())["train_step_traces"] == 1


def test_resume_without_checkpoint_fails(cache, tmp_path):
    assert_one_line_error(
        run_train(cache, "--run-dir", str(tmp_path), "--resume"), "no run to resume"
    )
    (tmp_path / "config.yaml").write_text(
        (ROOT / "configs" / "stand.yaml").read_text()
    )  # a run dir without checkpoints
    assert_one_line_error(
        run_train(cache, "--run-dir", str(tmp_path), "--resume"), "no checkpoint directory"
    )


def test_corrupted_checkpoint_fails(full_run, cache, tmp_path):
    run_dir = copy_run(full_run, tmp_path)
    for f in (run_dir / "checkpoints" / "320" / "state").rglob("*"):
        if f.is_file():
            f.write_bytes(b"\x00garbage")
    assert_one_line_error(run_train(cache, "--run-dir", str(run_dir), "--resume"), "unreadable")


@pytest.mark.parametrize(
    "field, value", [("env_name", "balance"), ("observation_size", {"state": [3]})]
)
def test_foreign_checkpoint_fails(full_run, cache, tmp_path, field, value):
    run_dir = copy_run(full_run, tmp_path)
    meta_file = run_dir / "checkpoints" / "320" / "meta" / "metadata"  # orbax JsonSave
    meta = json.loads(meta_file.read_text())
    meta[field] = value
    meta_file.write_text(json.dumps(meta))
    assert_one_line_error(
        run_train(cache, "--run-dir", str(run_dir), "--resume"), "different setup"
    )


def test_half_written_checkpoint_is_not_latest(full_run, tmp_path):
    from mjxbot.training import Checkpointer

    run_dir = copy_run(full_run, tmp_path)
    # What orbax leaves behind when killed mid-save: a temporary directory.
    shutil.copytree(
        run_dir / "checkpoints" / "320", run_dir / "checkpoints" / "400.orbax-checkpoint-tmp-1"
    )
    assert Checkpointer(run_dir / "checkpoints", create=False).latest_step() == 320


# ----------------------------------------------------------------- scale


def test_two_devices_match_one(full_run, mini_two_device_run):
    one, two = metrics(full_run), metrics(mini_two_device_run)
    assert [r["step"] for r in one] == [r["step"] for r in two]
    terms = [key for key in one[0] if key.startswith("reward/")]
    assert len(terms) > 2
    for key in terms:
        assert math.isclose(one[0][key], two[0][key], abs_tol=FIRST_ROLLOUT_ATOL), key
    assert math.isclose(one[-1]["eval/return"], two[-1]["eval/return"], rel_tol=EVAL_RTOL)
    # W&B `disabled` (configs/ci.yaml) writes nothing.
    assert not (mini_two_device_run / "wandb").exists()
    assert not (mini_two_device_run / "wandb_run_id").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def test_two_processes_with_jax_distributed(mini_two_device_run, cache, tmp_path):
    """Two processes of one device each run the same global program as one process with
    two devices: every metric agrees (measured: bit-equal on the mini biped)."""
    run_dir = tmp_path / "run"
    port = _free_port()
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "train.py",
                *MINI,
                "--run-dir",
                str(run_dir),
                "--coordinator",
                f"localhost:{port}",
                "--num-processes",
                "2",
                "--process-id",
                str(i),
            ],
            cwd=ROOT,
            env=subprocess_env(cache),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    outs = [p.communicate(timeout=900) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-3000:]
    assert "2 process(es)" in outs[0][1]
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["160", "320"]
    two_devices, two_processes = metrics(mini_two_device_run), metrics(run_dir)
    assert [r["step"] for r in two_devices] == [r["step"] for r in two_processes]
    for a, b in zip(without_timing(two_devices), without_timing(two_processes), strict=True):
        assert a.keys() == b.keys()
        for key, value in a.items():  # None: no episode finished in that iteration
            other = b[key]
            same = (
                other is None if value is None else math.isclose(value, other, rel_tol=PROCESS_RTOL)
            )
            assert same, (key, value, other)


def test_learning_curve_axis_ignores_a_diverged_spike():
    from mjxbot.evaluation.plots import robust_limits

    returns = [float(r) for r in range(100)] + [-1.46e16]
    lo, hi = robust_limits(returns)
    assert -20.0 < lo < 0.0 and 99.0 < hi < 120.0, (lo, hi)
