"""Is the plant calm? PD hold across the randomization range, per solver setting.

One run prints, for each contact-solver setting (`--iterations`), the PD hold
(zero action) on `balance` from `home` with the default reset noise, for
`--episodes` envs of 10 s, one row per case: each randomization family alone
at its range ends (floor friction, mass, CoM offset, gains, strength, latency,
gravity tilt), every default physics and sensing range together, and the
default pushes alone. Columns: envs that stood the whole episode with a
Wilson 95% interval, the largest actuated-joint speed seen while up (over
every env, fallen ones before their fall), and env steps per second of the
`everything off` case (compile excluded) as a ratio to the first setting.

    JAX_PLATFORMS=cpu python benchmarks/bench_plant.py [--episodes 128] [--iterations 2 6]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

import mjxbot
from mjxbot.disturbances.config import DisturbanceConfig, PhysicsRandConfig
from mjxbot.evaluation import wilson_interval


def physics_case(**ranges) -> DisturbanceConfig:
    return DisturbanceConfig(physics=PhysicsRandConfig.only(**ranges))


def cases() -> dict[str, DisturbanceConfig]:
    """Case name -> disturbances: each range end alone, then the defaults together."""
    out = {"everything off": DisturbanceConfig()}
    for mu in (0.3, 0.4, 0.8, 1.2):
        out[f"floor friction {mu}"] = physics_case(floor_friction=(mu, mu))
    balance = mjxbot.ALL_ENVS["balance"].config_class()
    defaults = balance.disturbances.physics
    for name in ("mass_scale", "strength_scale", "kp_scale", "kd_scale", "damping_scale"):
        lo, hi = getattr(defaults, name)
        for end in (lo, hi):
            out[f"{name} {end}"] = physics_case(**{name: (end, end)})
    lo, hi = defaults.com_offset
    out[f"com_offset {lo}..{hi}"] = physics_case(com_offset=(lo, hi))
    out[f"latency {defaults.latency[1]}"] = physics_case(latency=(defaults.latency[1],) * 2)
    tilt = defaults.gravity_tilt[1]
    out[f"gravity tilt {tilt}"] = physics_case(gravity_tilt=(tilt, tilt))
    out["default physics + sensing"] = DisturbanceConfig(
        physics=defaults, sensing=balance.disturbances.sensing
    )
    out["default pushes only"] = DisturbanceConfig(push=balance.disturbances.push)
    return out


def pd_hold(env, episodes: int, seed: int) -> tuple[np.ndarray, np.ndarray, float]:
    """`(stood [N] bool, max joint speed while up [N], env steps/s)` of zero action."""
    length = env.config.episode_length
    keys = jax.random.split(jax.random.key(seed), episodes)
    joints = jnp.asarray(env.robot.qvel_adr)

    @jax.jit
    def run(keys):
        state = jax.vmap(env.reset)(keys)
        zero = jnp.zeros((episodes, env.action_size))

        def body(carry, _):
            s, up, speed = carry
            ns = jax.vmap(env.step)(s, zero)
            fell = ns.done * (1.0 - ns.info["truncation"])
            # Speed of the transition, before an auto-reset replaced the state.
            v = jnp.abs(ns.data.qvel[:, joints]).max(axis=1)
            speed = jnp.where(up > 0, jnp.maximum(speed, v), speed)
            up = up * (1.0 - fell)
            return (ns, up, speed), None

        init = (state, jnp.ones(episodes), jnp.zeros(episodes))
        (_, up, speed), _ = jax.lax.scan(body, init, None, length=length)
        return up, speed

    jax.block_until_ready(run(keys))  # compile
    start = time.perf_counter()
    up, speed = jax.block_until_ready(run(keys))
    rate = episodes * length / (time.perf_counter() - start)
    return np.asarray(up) > 0, np.asarray(speed), rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--episodes", type=int, default=128)
    parser.add_argument("--iterations", type=int, nargs="+", default=[2, 6])
    parser.add_argument("--ls-iterations", type=int, default=0, help="0 keeps the MJCF's")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cases", nargs="*", help="substrings of case names to run")
    args = parser.parse_args()
    selected = {
        k: v for k, v in cases().items() if not args.cases or any(c in k for c in args.cases)
    }
    print(f"load average at start: {os.getloadavg()[0]:.1f}; {args.episodes} envs x 10 s each")
    base_rate = None
    for iterations in args.iterations:
        print(f"\nsolver iterations {iterations}")
        print(f"{'case':<30} {'stood 10 s':>12} {'95% interval':>14} {'max |qd| rad/s':>15}")
        for name, dist in selected.items():
            config = dataclasses.replace(
                mjxbot.ALL_ENVS["balance"].config_class(),
                solver_iterations=iterations,
                ls_iterations=args.ls_iterations,
                disturbances=dist,
            )
            env = mjxbot.load_env("balance", config)
            stood, speed, rate = pd_hold(env, args.episodes, args.seed)
            lo, hi = wilson_interval(int(stood.sum()), args.episodes)
            print(
                f"{name:<30} {int(stood.sum()):>5}/{args.episodes:<6} "
                f"{f'{lo:.2f}-{hi:.2f}':>14} {speed.max():>15.1f}"
            )
            if name == "everything off":
                base_rate = base_rate or rate
                print(f"{'  env steps/s (ratio)':<30} {rate:>12,.0f} {rate / base_rate:>14.3f}")


if __name__ == "__main__":
    main()
