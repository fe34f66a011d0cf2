"""No pickle: live pickle payloads planted in checkpoints and `!!python/...` YAML tags
are refused and never run; no load path can unpickle (README, "Guarantees under faults").

The checkpoints are copies of conftest's session-wide `full_run`.
"""

from __future__ import annotations

import json
import os
import pickle
import re
from pathlib import Path

import pytest
from conftest import (
    ROOT,
    TINY,
    TOTAL_STEPS,
    assert_cli_error,
    assert_one_line_error,
    copy_run,
    run_train,
)


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


@pytest.mark.parametrize("items", [("meta",), ("policy", "state")])
def test_pickle_planted_in_checkpoint_is_refused_unexecuted(full_run, tmp_path, items):
    from mjxbot.training import CheckpointError, restore_policy_params

    run_dir = copy_run(full_run, tmp_path)
    marker = tmp_path / "pwned"
    payload = _pickle_payload(marker)
    for item in items:
        _plant(run_dir / "checkpoints" / str(TOTAL_STEPS) / item, payload)
    with pytest.raises(CheckpointError, match="unreadable"):
        restore_policy_params(run_dir)
    assert not marker.exists(), "the pickle payload ran"


def test_pickle_planted_checkpoint_is_refused_by_resume(full_run, cache, tmp_path):
    run_dir = copy_run(full_run, tmp_path)
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
    assert_cli_error([*TINY, "--config", str(tmp_path / "evil.yaml")], "not valid YAML")
    # The same file through a resumed run's saved config.yaml.
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text((tmp_path / "evil.yaml").read_text())
    assert_cli_error(["--run-dir", str(run_dir), "--resume"], "not valid YAML")
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
