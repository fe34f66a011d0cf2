"""`benchmarks/gpu_check.py` at its tiny sizes on the CPU: every part runs, the JSON is whole.

The check runs as a user runs it, in a subprocess, on the mini biped (conftest's
`MINI_SETS`, which name the push body and floor `balance` needs): its compiles cost a
fraction of the humanoid's. The figures of a tiny run only show that each part works.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from conftest import MINI_SETS, cli_args, run_script

PARTS = ("meta", "env", "warp", "qp", "train", "compile", "policy", "video")


def positive(value) -> bool:
    """A finite number above zero (no bool)."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return number and math.isfinite(value) and value > 0


def skipped(part: dict) -> bool:
    return isinstance(part.get("skipped"), str) and bool(part["skipped"])


def check_survival(figures: dict, episodes: int) -> None:
    lo, hi = figures["ci95"]
    assert figures["episodes"] == episodes and 0 <= figures["survived"] <= episodes
    assert 0 <= lo <= figures["rate"] <= hi <= 1


def test_tiny_check_writes_every_part(cache, tmp_path):
    out = tmp_path / "gpu_check.json"
    proc = run_script(
        cache,
        "benchmarks/gpu_check.py",
        "--tiny",
        "--out",
        str(out),
        *cli_args([], MINI_SETS),
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(out.read_text())
    assert set(PARTS) <= set(results), sorted(results)
    assert not [name for name, part in results.items() if "error" in part]
    assert results["meta"]["tiny"] and results["meta"]["backend"] == "cpu"
    assert all(name in proc.stdout for name in PARTS[1:]), proc.stdout

    env = results["env"]
    assert env["disturbances_on"] == ["push", "physics", "sensing"]
    (row,) = env["rows"]
    assert all(positive(row[k]) for k in ("env_physics_sps", "raw_physics_sps", "raw_over_env"))
    warp = results["warp"]
    assert skipped(warp) or all(positive(r["env_physics_sps"]) for r in warp["rows"])

    qp = results["qp"]
    assert [r["batch"] for r in qp["rows"]] == [4]
    assert all(positive(r["us_per_qp"]) and 0 <= r["solved"] <= 1 for r in qp["rows"])
    assert positive(qp["osqp_c"]["us_per_qp"])  # osqp is a dev dependency

    (train,) = results["train"]["rows"]  # tiny: the training run's env count only
    assert train["num_envs"] == 8 and positive(train["sps"])
    (first,) = results["compile"]["rows"]
    assert positive(first["first_iteration_s"])

    policy = results["policy"]
    assert positive(policy["training"]["env_steps"]) and positive(policy["training"]["train_s"])
    check_survival(policy["policy"], 4)
    check_survival(policy["pd_hold"], 4)

    video = results["video"]
    assert skipped(video) or (positive(video["frames"]) and Path(video["path"]).is_file())
