"""Unwritable or full run dir, and a save failing mid-run (README, "Guarantees under faults").

All in-process: the CLI fails before anything is compiled.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import TINY, assert_cli_error, complete_steps


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
    err = assert_cli_error([*TINY, "--run-dir", str(read_only_dir / "run")], "not writable")
    assert str(read_only_dir / "run") in err
    assert time.perf_counter() - t0 < 60  # no env was built, nothing compiled


def test_full_disk_fails_before_training(tmp_path, monkeypatch):
    from mjxbot.training import checkpoint

    monkeypatch.setattr(
        checkpoint.shutil, "disk_usage", lambda _: SimpleNamespace(free=2**20, total=2**30)
    )
    # The humanoid's checkpoints need more than the 1 MiB left (the mini biped's would not).
    assert_cli_error([*TINY, "--run-dir", str(tmp_path / "run")], "1 MiB free; checkpoints need")
    assert not complete_steps(tmp_path / "run")


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
