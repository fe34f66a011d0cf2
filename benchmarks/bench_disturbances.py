"""Env step throughput with disturbances on against off, and per-episode vs per-run physics.

Runs `stand` at one batch size with a jitted `lax.scan` of `N_STEPS` batched
steps (the shape of a training rollout) and prints a table: median env steps
per second over `--repeats` timed runs (variants interleaved so they share
the machine's load), and each variant's ratio to the undisturbed env.

Variants:
  off             every family off (the undisturbed env)
  on              push (with kicks), per-episode physics (default ranges,
                  latency up to 2 steps) and sensing on
  on, per-run     as `on` but physics drawn once per env at the first reset
                  and kept (the Brax / Playground scheme)
  on+frictionloss as `on` plus per-joint frictionloss (adds constraint rows)

Usage:
  JAX_PLATFORMS=cpu python benchmarks/bench_disturbances.py [--batch 256] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import mjxbot  # noqa: E402

ON = {
    "push": {"enabled": True, "kick_probability": 0.3},
    "physics": {"enabled": True},
    "sensing": {"enabled": True},
}
VARIANTS = {
    "off": {},
    "on": ON,
    "on, per-run physics": {**ON, "physics": {"enabled": True, "per_episode": False}},
    "on+frictionloss": {**ON, "physics": {"enabled": True, "frictionloss": [0.05, 0.2]}},
}


def make_rollout(env, n_steps: int):
    """Jitted `(state) -> state` running `n_steps` batched steps with zero actions."""
    step = jax.vmap(env.step)

    @jax.jit
    def rollout(state):
        actions = jnp.zeros((n_steps, state.done.shape[0], env.action_size))
        state, _ = jax.lax.scan(lambda s, a: (step(s, a), None), state, actions)
        return state

    return rollout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=10, help="steps per timed rollout")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS))
    args = parser.parse_args()

    runs = {}
    for name in args.variants:
        env = mjxbot.load_env("stand", disturbances=VARIANTS[name])
        rollout = make_rollout(env, args.steps)
        state = jax.jit(jax.vmap(env.reset))(jax.random.split(jax.random.key(0), args.batch))
        t0 = time.perf_counter()
        state = jax.block_until_ready(rollout(state))
        compile_s = time.perf_counter() - t0
        runs[name] = {"rollout": rollout, "state": state, "compile": compile_s, "times": []}
        print(f"compiled {name!r} in {compile_s:.1f} s", flush=True)

    for _ in range(args.repeats):
        for run in runs.values():
            t0 = time.perf_counter()
            run["state"] = jax.block_until_ready(run["rollout"](run["state"]))
            run["times"].append(time.perf_counter() - t0)

    print(
        f"\nstand, batch {args.batch}, {args.steps} steps per rollout, "
        f"median of {args.repeats} ({jax.devices()[0].platform}, jax {jax.__version__})"
    )
    header = (
        f"{'variant':<22}{'steps/s':>10}{'ms/step':>10}{'vs off':>9}"
        f"{'best steps/s':>14}{'best vs off':>13}{'compile s':>11}"
    )
    print(header)
    print("-" * len(header))
    base = best_base = None
    for name, run in runs.items():
        median = statistics.median(run["times"])
        rate = args.batch * args.steps / median
        best = args.batch * args.steps / min(run["times"])
        if name == "off":
            base, best_base = rate, best
        ratio = f"{rate / base:.2f}" if base else "-"
        best_ratio = f"{best / best_base:.2f}" if best_base else "-"
        print(
            f"{name:<22}{rate:>10.0f}{1e3 * median / args.steps:>10.1f}{ratio:>9}"
            f"{best:>14.0f}{best_ratio:>13}{run['compile']:>11.1f}"
        )
    if "on" in runs and "on, per-run physics" in runs:
        episode, once = runs["on"]["times"], runs["on, per-run physics"]["times"]
        print(
            "\nper-episode / per-run physics step time: "
            f"median {statistics.median(episode) / statistics.median(once):.3f}, "
            f"best {min(episode) / min(once):.3f}"
        )


if __name__ == "__main__":
    main()
