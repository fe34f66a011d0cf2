"""Pre-emption: a run killed at any moment resumes (README, "Guarantees under faults").

The runs are conftest's `MINI` run (the trainer's plumbing, not humanoid
physics), so they share the compiled program of `full_run` and
`tests/test_train.py` through the persistent cache.
"""

from __future__ import annotations

import random
import re
import subprocess
import sys
import time
from pathlib import Path

from conftest import (
    MINI,
    ROOT,
    STEPS_PER_IT,
    TOTAL_STEPS,
    complete_steps,
    metrics,
    run_train,
    subprocess_env,
    without_timing,
)

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
    first = [*MINI, "--set", f"checkpoint.every_steps={STEPS_PER_IT}", "--run-dir", str(run_dir)]
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
            assert complete_steps(run_dir) == []
        assert proc.returncode == -9, log.read_text()[-3000:]  # not finished before the kill
        newest.append(max(complete_steps(run_dir), default=0))
    assert newest[0] == 0 < newest[-1], newest

    final = run_train(cache, *resume)
    assert final.returncode == 0, final.stderr[-3000:]
    # Each resumed process started from the newest complete checkpoint left by the
    # kill before it, and its first metrics step is the iteration after that one.
    logs = [(tmp_path / f"stderr{i}.txt").read_text() for i in range(1, len(newest))]
    for step, text in zip(newest, [*logs, final.stderr], strict=True):
        origin = f"checkpoint {step}" if step else "the start (no complete checkpoint)"
        assert f"from {origin}" in text, text[-2000:]
        if step == TOTAL_STEPS:  # resumed from the last checkpoint: no iteration left to log
            continue
        # Every iteration logs a progress line before its checkpoint is written, so each
        # resumed process that trained at all printed one.
        first_step = re.search(r"step ([\d,]+)/", text)
        assert first_step, f"no progress line after resuming from {origin}: {text[-2000:]}"
        assert int(first_step.group(1).replace(",", "")) == step + STEPS_PER_IT
    assert without_timing(metrics(run_dir)) == without_timing(metrics(full_run))
    assert complete_steps(run_dir) == [TOTAL_STEPS - STEPS_PER_IT, TOTAL_STEPS]
    assert not list((run_dir / "checkpoints").glob("*tmp*")), "half-written checkpoint left"
