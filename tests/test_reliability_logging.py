"""Logging faults: W&B unreachable, failing mid-run or without network, and a torn
metrics line never stop a run's logging (README, "Guarantees under faults").

In-process, no env is built.
"""

from __future__ import annotations

import contextlib
import io
import sys
from types import SimpleNamespace

import pytest
from conftest import ROOT, TOTAL_STEPS

from mjxbot.training import config as tconfig
from mjxbot.training import logging as tlogging


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
