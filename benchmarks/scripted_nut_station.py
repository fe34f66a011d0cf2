"""Success of the scripted nut_station controller over seeds, with or without disturbances.

    JAX_PLATFORMS=cpu python benchmarks/scripted_nut_station.py --disturbances off --seeds 0 1 2 3

One cycle (one episode) per env; the envs of seed `s` start from
`jax.random.split(jax.random.key(s), envs_per_seed)`, as in
`tests/test_nut_station.py` (which runs seed 0 without disturbances). All
seeds run as one vmapped batch, compiled once.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import mjxbot  # noqa: E402
from mjxbot.disturbances.config import DisturbanceConfig  # noqa: E402
from mjxbot.envs.nut_station import reference_action  # noqa: E402


def scripted_cycles(env, keys: jax.Array) -> dict[str, np.ndarray]:
    """`[batch]` final metrics of one cycle per env under the scripted controller."""

    def run(keys):
        state = jax.vmap(env.reset)(keys)

        def body(state, _):
            state = jax.vmap(env.step)(
                state, jax.vmap(functools.partial(reference_action, env))(state.data, state.info)
            )
            return state, state.metrics

        return jax.lax.scan(body, state, None, length=env.config.episode_length)[1]

    metrics = jax.jit(run)(keys)
    # The last step of a one-cycle episode reports that cycle's outcome; falls end it earlier.
    final = {k: np.asarray(v[-1]) for k, v in metrics.items()}
    final["falls"] = np.asarray(metrics["falls"]).max(axis=0)
    return final


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--disturbances", choices=("on", "off"), default="off")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    p.add_argument("--envs-per-seed", type=int, default=12)
    args = p.parse_args()

    env = mjxbot.load_env("nut_station")
    if args.disturbances == "off":
        config = dataclasses.replace(env.config, disturbances=DisturbanceConfig())
        env = mjxbot.load_env("nut_station", config)
    n = args.envs_per_seed
    keys = jnp.concatenate([jax.random.split(jax.random.key(s), n) for s in args.seeds])
    t0 = time.perf_counter()
    final = scripted_cycles(env, keys)
    wall = time.perf_counter() - t0

    print(f"scripted nut_station, disturbances {args.disturbances}, {n} cycles per seed")
    header = ("seed", 6), ("dual", 8), ("left", 8), ("right", 8), ("cycle s", 9), ("drops", 7)
    print("".join(f"{name:>{width}s}" for name, width in header) + f"{'falls':>7s}")
    rows = [(str(s), slice(i * n, (i + 1) * n)) for i, s in enumerate(args.seeds)]
    for label, idx in [*rows, ("all", slice(None))]:
        dual = final["success/dual"][idx]
        cycle = final["cycle_time"][idx][dual > 0]
        mean_cycle = f"{cycle.mean():.2f}" if cycle.size else "-"
        print(
            f"{label:>6s}{f'{dual.sum():.0f}/{dual.size}':>8s}"
            f"{final['success/left'][idx].sum():8.0f}{final['success/right'][idx].sum():8.0f}"
            f"{mean_cycle:>9s}{final['drops'][idx].sum():7.0f}{final['falls'][idx].sum():7.0f}"
        )
    total = final["success/dual"]
    print(f"dual-side success {total.mean():.1%}; wall {wall:.0f} s (compile included)")


if __name__ == "__main__":
    main()
