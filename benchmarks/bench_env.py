"""Env step throughput against raw `mjx.step` and MuJoCo C (issue: env core).

One run prints, per batch size, physics steps per second of
  * the full env step (PD substeps, reward, obs, auto-reset, NaN guard),
  * raw `mjx.step` on the same model (a scan of `n_substeps` steps, vmapped),
  * MuJoCo C `mj_step`, single thread,
and the ratio raw/env (the env's overhead factor; target <= 1.25).

    JAX_PLATFORMS=cpu python benchmarks/bench_env.py [--batches 1 64 256] [--repeats 5]
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
from mujoco import mjx

import mjxbot

CONTROL_STEPS = 20  # control steps per timed call (each is n_substeps physics steps)


def median_rate(fn, args, steps: int, repeats: int) -> float:
    """Median physics steps per second of `fn(*args)` over `repeats` timed calls."""
    jax.block_until_ready(fn(*args))  # compile
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return steps / float(np.median(times))


def env_rollout(env, batch: int):
    keys = jax.random.split(jax.random.key(0), batch)
    state = jax.jit(jax.vmap(env.reset))(keys)
    zeros = jnp.zeros((batch, env.action_size))

    @jax.jit
    def run(s):
        return jax.lax.scan(
            lambda s, _: (jax.vmap(env.step)(s, zeros), None), s, None, CONTROL_STEPS
        )[0]

    return run, (state,)


def raw_rollout(env, batch: int):
    data = jax.vmap(lambda _: env.initial_data(jax.random.key(0)))(jnp.arange(batch))
    model = env.mjx_model
    length = CONTROL_STEPS * env.n_substeps

    @jax.jit
    def run(d):
        return jax.lax.scan(
            lambda d, _: (jax.vmap(mjx.step, (None, 0))(model, d), None), d, None, length
        )[0]

    return run, (data,)


def mujoco_c_rate(env, seconds: float = 2.0) -> float:
    model = env.mj_model
    data = mujoco.MjData(model)
    data.qpos[:] = env.robot.home_qpos
    mujoco.mj_forward(model, data)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(100):
            mujoco.mj_step(model, data)
        steps += 100
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="stand")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 64, 256])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    env = mjxbot.load_env(args.env)
    c_rate = mujoco_c_rate(env)
    print(f"env={args.env} backend={jax.default_backend()} n_substeps={env.n_substeps}")
    print("physics steps per second (an env step is n_substeps physics steps)")
    print(f"{'batch':>6} {'env':>12} {'raw mjx.step':>12} {'MuJoCo C':>12} {'raw/env':>8}")
    for batch in args.batches:
        physics_steps = batch * CONTROL_STEPS * env.n_substeps
        env_rate = median_rate(*env_rollout(env, batch), physics_steps, args.repeats)
        raw_rate = median_rate(*raw_rollout(env, batch), physics_steps, args.repeats)
        rates = f"{env_rate:>12,.0f} {raw_rate:>12,.0f} {c_rate:>12,.0f}"
        print(f"{batch:>6} {rates} {raw_rate / env_rate:>8.2f}")


if __name__ == "__main__":
    main()
