"""Policy exports: parity with the training policy (jax.export and ONNX), refusals.

No MJX program is compiled: the run is a checkpoint written directly with
random params and a non-trivial normalizer for the tiny reach setup
(`configs/ci.yaml`), whose env is only traced for its observation sizes.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys

import jax
import numpy as np
import pytest
from conftest import ROOT, TASK, TINY, assert_one_line_error, subprocess_env

import mjxbot
from mjxbot import export
from mjxbot.training import config as tconfig
from mjxbot.training.checkpoint import Checkpointer
from mjxbot.training.loop import run_meta
from mjxbot.training.policy import deterministic_act, networks_from_meta, restore_policy_params
from mjxbot.training.ppo import init_policy_params, strip_weak_types

STEP = 320
BATCHES = (1, 7)
# Action errors are `export.action_error`: |a - b| / max(1, |b|).
# Exported vs training: the eager Brax policy and the compiled export round
# float32 differently (3e-7 to 6e-7 measured at batch 1 to 256); a missing
# normalizer or wrong params would differ by ~1.
JAX_PARITY_TOL = 2e-6
# onnxruntime vs jax: 3e-7 to 1e-6 measured at batch 1 to 256.
ONNX_PARITY_TOL = 1e-5


def _params(meta: dict, seed: int):
    """Random `(networks, (normalizer, policy, value))`: normalizer far from identity, and
    policy weights perturbed so that actions are O(1) whatever the network's init."""
    networks = networks_from_meta(meta)
    obs_size = {k: tuple(v) for k, v in meta["observation_size"].items()}
    normalizer, params = init_policy_params(networks, obs_size, jax.random.PRNGKey(seed))
    rng = np.random.default_rng(seed)
    normalizer = normalizer.replace(
        mean={k: rng.normal(size=v.shape).astype(np.float32) for k, v in normalizer.mean.items()},
        std={
            k: rng.uniform(0.5, 2.0, v.shape).astype(np.float32) for k, v in normalizer.std.items()
        },
    )
    policy = jax.tree.map(lambda p: p + rng.normal(0.0, 0.2, p.shape), params.policy)
    return networks, strip_weak_types((normalizer, policy, params.value))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A `train.py`-shaped run directory (config.yaml and one checkpoint), without training."""
    run = tmp_path_factory.mktemp("export_run") / "run"
    config = tconfig.load([ROOT / p for p in TINY[1::2]])
    meta = run_meta(config, mjxbot.load_env(config.env_name, config.env))
    _, params = _params(meta, seed=1)
    ckpt = Checkpointer(run / "checkpoints")
    ckpt.save(STEP, {"iteration": np.zeros(1)}, params, meta)
    ckpt.close()
    (run / "config.yaml").write_text(tconfig.dump(config))
    return run


@pytest.fixture(scope="module")
def exported(run_dir, tmp_path_factory):
    return export.export_run(run_dir, tmp_path_factory.mktemp("export") / "policy")


def _obs(meta: dict, batch: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        k: rng.normal(0.0, 2.0, (batch, *v)).astype(np.float32)
        for k, v in meta["observation_size"].items()
    }


def _copy(src, dst):
    dst.mkdir()
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


# ----------------------------------------------------------------- parity
@pytest.mark.parametrize("batch", BATCHES)
def test_exported_policy_matches_training_policy(run_dir, exported, batch):
    networks, params, meta = restore_policy_params(run_dir)
    policy, export_meta = export.load_policy(exported)
    obs = _obs(meta, batch, seed=batch)
    want = np.asarray(deterministic_act(networks)(params, obs))
    got = np.asarray(policy(obs))
    assert got.shape == (batch, meta["action_size"])
    assert export.action_error(got, want) <= JAX_PARITY_TOL
    # The policy's own entry alone gives the same actions as the whole dict.
    np.testing.assert_array_equal(np.asarray(policy(obs[export_meta["policy_obs_key"]])), got)
    assert np.abs(want).max() > 0.1  # not a degenerate all-zero policy


def test_single_observation_without_batch_axis(exported):
    policy, meta = export.load_policy(exported)
    obs = _obs(meta, 3)
    single = {k: v[1] for k, v in obs.items()}
    got, want = np.asarray(policy(single)), np.asarray(policy(obs))[1]
    assert got.shape == want.shape and export.action_error(got, want) <= JAX_PARITY_TOL


@pytest.mark.parametrize("batch", BATCHES)
def test_onnx_matches_jax(exported, batch):
    policy, meta = export.load_policy(exported)
    x = _obs(meta, batch, seed=10 + batch)[meta["policy_obs_key"]]
    (got,) = export.load_onnx(exported).run(["action"], {"obs": x})
    assert got.shape == (batch, meta["action_size"])
    assert export.action_error(got, np.asarray(policy(x))) <= ONNX_PARITY_TOL
    assert meta["onnx_max_error"] <= ONNX_PARITY_TOL


def test_meta_describes_the_run(exported):
    meta = json.loads((exported / export.META_FILE).read_text())
    assert meta["format"] == export.FORMAT and meta["format_version"] == export.FORMAT_VERSION
    assert meta["env_name"] == TASK and meta["step"] == STEP and meta["controller"] == "pd"
    assert meta["robot"]["mjcf"] == meta["env_config"]["robot"]["mjcf"]
    assert meta["env_config"]["episode_length"] == 50  # configs/ci.yaml's
    assert set(meta["sha256"]) == {export.JAX_FILE, export.ONNX_FILE}


# ---------------------------------------------------------------- refusals
def test_corrupted_program_is_refused(exported, tmp_path):
    bad = _copy(exported, tmp_path / "bad")
    data = bytearray((bad / export.JAX_FILE).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (bad / export.JAX_FILE).write_bytes(bytes(data))
    with pytest.raises(export.ExportError, match="corrupted: its SHA-256 differs"):
        export.load_policy(bad)
    with pytest.raises(export.ExportError, match="corrupted"):
        (bad / export.ONNX_FILE).write_bytes(b"\0" + (bad / export.ONNX_FILE).read_bytes())
        export.load_onnx(bad)


def test_corrupted_meta_is_refused(exported, tmp_path):
    bad = _copy(exported, tmp_path / "bad")
    text = (bad / export.META_FILE).read_text()
    (bad / export.META_FILE).write_text(text[: len(text) // 2])
    with pytest.raises(export.ExportError, match="meta.json is corrupted: not JSON"):
        export.load_policy(bad)


def test_other_format_version_is_refused(exported, tmp_path):
    bad = _copy(exported, tmp_path / "v99")
    meta = json.loads((bad / export.META_FILE).read_text())
    (bad / export.META_FILE).write_text(json.dumps({**meta, "format_version": 99}))
    with pytest.raises(export.ExportError, match="format version 99; this mjxbot reads version 1"):
        export.load_policy(bad)


def test_foreign_files_are_refused(run_dir, tmp_path):
    (tmp_path / "weights.npz").write_bytes(b"PK\x03\x04 not an export")
    with pytest.raises(export.ExportError, match="is not a policy export \\(a file"):
        export.load_policy(tmp_path / "weights.npz")
    with pytest.raises(export.ExportError, match="a directory without meta.json"):
        export.load_policy(run_dir)
    # A JSON meta of another format: an orbax checkpoint's item metadata.
    other = tmp_path / "other"
    other.mkdir()
    (other / export.META_FILE).write_text(json.dumps({"version": 1, "env_name": TASK}))
    with pytest.raises(export.ExportError, match="is not an mjxbot-policy-export directory"):
        export.load_policy(other)


class _Payload:
    """Creates `path` when unpickled: what a malicious pickle could do instead."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_pickle_payload_is_refused_without_running(exported, tmp_path):
    live = tmp_path / "live"
    pickle.loads(pickle.dumps(_Payload(live))).close()
    assert live.exists()  # the payload does run when unpickled
    sentinel = tmp_path / "sentinel"
    payload = pickle.dumps(_Payload(sentinel))

    # In place of the program, with a matching checksum in meta.json.
    planted = _copy(exported, tmp_path / "planted")
    (planted / export.JAX_FILE).write_bytes(payload)
    meta = json.loads((planted / export.META_FILE).read_text())
    meta["sha256"][export.JAX_FILE] = export.sha256(payload)
    (planted / export.META_FILE).write_text(json.dumps(meta))
    with pytest.raises(export.ExportError, match="is not a jax.export program"):
        export.load_policy(planted)
    # As the export itself, and as a directory holding only a pickle.
    (tmp_path / "policy.pkl").write_bytes(payload)
    with pytest.raises(export.ExportError, match="not a policy export"):
        export.load_policy(tmp_path / "policy.pkl")
    only = tmp_path / "only_pickle"
    only.mkdir()
    (only / "policy.pkl").write_bytes(payload)
    with pytest.raises(export.ExportError, match="not a policy export"):
        export.load_policy(only)
    assert not sentinel.exists()


# --------------------------------------------------------------------- CLI
def test_cli_exports_a_run(run_dir, tmp_path, capsys):
    out = tmp_path / "cli"
    assert export.main([str(run_dir), str(out), "--step", str(STEP), "--no-onnx"]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {out}"
    assert sorted(p.name for p in out.iterdir()) == [export.META_FILE, export.JAX_FILE]
    assert export.main([str(run_dir), str(out), "--no-onnx"]) == 2  # never overwrites
    assert "already exists" in capsys.readouterr().err


def test_cli_errors_are_one_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "mjxbot.export", str(tmp_path / "nope"), str(tmp_path / "out")],
        cwd=ROOT,
        env=subprocess_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert_one_line_error(proc, "not a train.py run directory")
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------ eval.py
def _eval_main(argv) -> int:
    sys.path.insert(0, str(ROOT))
    try:
        import eval as eval_cli
    finally:
        sys.path.remove(str(ROOT))
    return eval_cli.main(argv)


def test_eval_runs_an_export_with_the_qp_controller(exported, tmp_path):
    """The exported policy drives the whole-body QP env (trained with PD: a note says so)."""
    out = tmp_path / "eval"
    argv = [str(exported), "--controller", "qp", "--episodes", "2", "--baselines", "none"]
    assert _eval_main([*argv, "--robustness-points", "0", "--out", str(out)]) == 0
    report = json.loads((out / "eval.json").read_text())
    assert report["source"]["kind"] == "export"
    assert report["settings"]["controller"] == "qp"
    assert list(report["results"]) == ["policy"]
    assert report["results"]["policy"]["episodes"] == 2
    assert any("evaluated with qp" in note for note in report["notes"])


def _eval_error(argv, capsys) -> str:
    assert _eval_main(argv) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "warp" not in line]
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_eval_refuses_export_for_another_task(exported, capsys):
    other = next(t for t in sorted(mjxbot.ALL_ENVS) if t != TASK)
    assert f"trained for task {TASK!r}, not {other!r}" in _eval_error(
        [str(exported), "--task", other], capsys
    )


def test_eval_refuses_export_for_another_robot(exported, tmp_path, capsys):
    meta = json.loads((exported / export.META_FILE).read_text())
    meta = {**meta, "observation_size": {"state": [7], "privileged_state": [9]}, "action_size": 3}
    networks, params = _params(meta, seed=2)
    other = export.write_export(tmp_path / "other", networks, params, meta, onnx=False)
    assert "another robot" in _eval_error([str(other), "--controller", "qp"], capsys)


def test_eval_refuses_a_pickle(tmp_path, capsys):
    sentinel = tmp_path / "sentinel"
    (tmp_path / "policy.pkl").write_bytes(pickle.dumps(_Payload(sentinel)))
    assert "not a policy export" in _eval_error([str(tmp_path / "policy.pkl")], capsys)
    assert not sentinel.exists() and os.listdir(tmp_path) == ["policy.pkl"]


@pytest.mark.parametrize("shipped", sorted(p.name for p in (ROOT / "policies").iterdir()))
def test_shipped_export_loads_as_eval_reads_it(shipped):
    """Each export under `policies/` builds its env config in today's schema and acts.

    The shipped balance policy once kept the keys that moved to the robot config,
    so `eval.py policies/balance` (the README's command) stopped at the config.
    """
    from mjxbot.evaluation import source as sources

    path = ROOT / "policies" / shipped
    source = sources.load_source(path)
    task = sources.check_task(source, None)
    config = sources.task_config(source, task)
    assert config.robot.mjcf == export.read_meta(path)["robot"]["mjcf"]
    policy, meta = export.load_policy(path)
    action = np.asarray(policy(np.zeros((2, meta["input"]["shape"][1]), np.float32)))
    assert action.shape == (2, meta["action_size"]) and np.isfinite(action).all()
