"""The plant under the PD hold: converged contacts across the randomization range.

The full table (128 envs per case, every range end, old vs new solver
settings, throughput) is `benchmarks/bench_plant.py`; these are its
small-batch checks. A PD hold that cannot stand measures the contact solver,
not a controller, so every baseline and policy figure rests on these.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

import mjxbot
from mjxbot.disturbances.config import DisturbanceConfig, PhysicsRandConfig, SensingConfig

FRICTIONS = (0.3, 0.4, 0.8, 1.2)
ENVS_PER_FRICTION = 4
# A calm stand: joint speeds stay far below what chattering contacts produce
# (150-490 rad/s at the unconverged `iterations="2"`).
MAX_JOINT_SPEED = 10.0
# Default physics and sensing ranges, no pushes: the PD hold must not fall by itself.
RANDOMIZED_ENVS = 32
MIN_RANDOMIZED_SURVIVAL = 0.95


def pd_hold(env, state, steps: int):
    """Zero action for `steps` control steps: `(stood [B], max joint speed [B])`."""
    joints = jnp.asarray(env.robot.qvel_adr)
    zero = jnp.zeros((state.done.shape[0], env.action_size))

    @jax.jit
    def run(state):
        def body(carry, _):
            s, up, speed = carry
            s = jax.vmap(env.step)(s, zero)
            speed = jnp.maximum(speed, jnp.abs(s.data.qvel[:, joints]).max(axis=1))
            return (s, up * (1.0 - s.done * (1.0 - s.info["truncation"])), speed), None

        init = (state, jnp.ones_like(state.done), jnp.zeros_like(state.done))
        (_, up, speed), _ = jax.lax.scan(body, init, None, length=steps)
        return up, speed

    up, speed = run(state)
    return np.asarray(up) > 0, np.asarray(speed)


def balance(disturbances: DisturbanceConfig):
    config = mjxbot.ALL_ENVS["balance"].config_class()
    return mjxbot.load_env("balance", dataclasses.replace(config, disturbances=disturbances))


def test_pd_hold_stands_calmly_at_every_floor_friction():
    # Floor friction alone is randomized; each env then gets one of FRICTIONS.
    physics = PhysicsRandConfig.only(floor_friction=(min(FRICTIONS), max(FRICTIONS)))
    env = balance(DisturbanceConfig(physics=physics))
    n = len(FRICTIONS) * ENVS_PER_FRICTION
    state = jax.jit(jax.vmap(env.reset))(jax.random.split(jax.random.key(0), n))
    mu = jnp.repeat(jnp.asarray(FRICTIONS, jnp.float32), ENVS_PER_FRICTION)
    state = state.replace(
        info={**state.info, "physics": {**state.info["physics"], "floor_friction": mu}}
    )
    stood, speed = pd_hold(env, state, env.config.episode_length)
    for i, friction in enumerate(FRICTIONS):
        rows = slice(i * ENVS_PER_FRICTION, (i + 1) * ENVS_PER_FRICTION)
        assert stood[rows].all(), f"fell at floor friction {friction}: {stood[rows]}"
        assert speed[rows].max() < MAX_JOINT_SPEED, (
            f"joint speed {speed[rows].max():.1f} rad/s at floor friction {friction}"
        )


def test_pd_hold_survives_default_physics_and_sensing_without_pushes():
    physics = mjxbot.ALL_ENVS["balance"].config_class().disturbances.physics
    env = balance(DisturbanceConfig(physics=physics, sensing=SensingConfig(enabled=True)))
    keys = jax.random.split(jax.random.key(1), RANDOMIZED_ENVS)
    state = jax.jit(jax.vmap(env.reset))(keys)
    stood, _ = pd_hold(env, state, env.config.episode_length)
    assert stood.mean() >= MIN_RANDOMIZED_SURVIVAL, f"{stood.sum()}/{RANDOMIZED_ENVS} stood"
