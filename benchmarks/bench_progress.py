"""Survival against env steps: every checkpoint of a run, judged like train.py's table.

Each checkpoint's policy runs the evaluation of `train.py`'s closing table and
`eval.py` (`mjxbot.evaluation.Evaluator`: deterministic actions, disturbances at
full strength, the run's `eval.seed` and `eval.num_envs` unless given), next to
the PD hold on the same seeds. The table gives 10 s survival with Wilson 95%
intervals per checkpoint, and the first checkpoint whose survival reaches
`--target`. Keep checkpoints with `checkpoint.max_to_keep` large enough
(`configs/balance_long.yaml` keeps all of them).

Usage:
  JAX_PLATFORMS=cpu nice python benchmarks/bench_progress.py runs/balance_long [--target 0.8]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

from mjxbot.evaluation import Evaluator, wilson_interval  # noqa: E402
from mjxbot.registry import load_env  # noqa: E402
from mjxbot.training import config as tconfig  # noqa: E402
from mjxbot.training.checkpoint import Checkpointer  # noqa: E402
from mjxbot.training.policy import deterministic_act, restore_policy_params  # noqa: E402


def row(name: str, survived: float, episodes: int) -> str:
    lo, hi = wilson_interval(int(survived), episodes)
    rate = survived / episodes
    return f"{name:>12}  {int(survived):>4}/{episodes:<4} {rate:6.1%}  {lo:6.1%}-{hi:6.1%}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--episodes", type=int, default=0, help="0: the run's eval.num_envs")
    parser.add_argument("--target", type=float, default=0.8, help="survival to report reaching")
    args = parser.parse_args()
    config_path = args.run_dir / "config.yaml"
    if not config_path.is_file():
        print(f"error: {config_path} not found: not a train.py run", file=sys.stderr)
        return 2
    config = tconfig.from_yaml_text(config_path.read_text())
    episodes = args.episodes or config.eval.num_envs
    env = load_env(config.env_name, config.env)
    steps = Checkpointer(args.run_dir / "checkpoints", create=False).all_steps()
    networks, _, _ = restore_policy_params(args.run_dir, steps[-1])
    evaluate = Evaluator(env, deterministic_act(networks), episodes, config.eval.seed)

    seed = config.eval.seed
    print(f"{args.run_dir}: {len(steps)} checkpoints, {episodes} episodes each, seed {seed}")
    print(f"{'env steps':>12}  survived    rate  95% interval")
    reached = None
    for step in steps:
        _, params, _ = restore_policy_params(args.run_dir, step)
        survived = evaluate(params).survival.successes
        print(row(f"{step:,}", survived, episodes), flush=True)
        if reached is None and survived / episodes >= args.target:
            reached = step
    print(row("PD hold", evaluate(params, "pd_hold").survival.successes, episodes))
    verdict = f"{reached:,} env steps" if reached is not None else "not reached"
    print(f"first checkpoint at {args.target:.0%} survival or more: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
