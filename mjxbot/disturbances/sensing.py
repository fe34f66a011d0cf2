"""Sensor noise, bias, dropped and stale observations."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from mjxbot.disturbances.config import (
    SensingConfig,
)
from mjxbot.disturbances.sampling import uniform


def sample_sensor_bias(key: jax.Array, cfg: SensingConfig) -> jax.Array:
    """`[6]` per-episode IMU bias: gravity-direction channels, then gyro channels."""
    key_gravity, key_gyro = jax.random.split(key)
    return jnp.concatenate(
        [
            uniform(key_gravity, cfg.gravity_bias, (3,)),  # cfg.gravity_bias
            uniform(key_gyro, cfg.gyro_bias, (3,)),  # cfg.gyro_bias
        ]
    )


def noise_std(cfg: SensingConfig, nu: int, size: int) -> np.ndarray:
    """`[size]` per-channel noise std over the `proprioception` layout, then task channels."""
    std = np.concatenate(
        [
            np.full(3, cfg.gravity_noise),
            np.full(3, cfg.gyro_noise),
            np.full(nu, cfg.joint_pos_noise),
            np.full(nu, cfg.joint_vel_noise),
            np.zeros(nu),  # the last action is known exactly
        ]
    )
    return np.concatenate([std, np.full(size - std.size, cfg.extra_noise)])[:size]


def corrupt_observation(
    key: jax.Array,
    obs: jax.Array,
    previous: jax.Array | None,
    bias: jax.Array,
    std: np.ndarray,
    cfg: SensingConfig,
    can_stale: jax.Array | bool = True,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Adds bias and noise, then maybe drops the observation or repeats the last one.

    Args:
      key: PRNG key.
      obs: `[obs]` clean actor observation.
      previous: `[obs]` the observation delivered last step, or None when
        there is none (first step of an episode): then nothing is stale.
      bias: `[6]` from `sample_sensor_bias`, added to the first 6 channels.
      std: `[obs]` per-channel noise std from `noise_std`.
      cfg: the sensing family config.
      can_stale: bool scalar; False forbids repeating `previous` (e.g. right
        after an auto-reset).

    Returns:
      `(observation [obs], dropped, stale)`, the last two bool scalars.
    """
    key_noise, key_event = jax.random.split(key)
    noisy = obs.at[:6].add(bias) + std * jax.random.normal(key_noise, obs.shape)  # cfg.*_noise
    u = jax.random.uniform(key_event)
    dropped = u < cfg.drop_probability  # cfg.drop_probability
    if previous is None:
        stale = jnp.zeros((), bool)
    else:
        # cfg.stale_probability, exclusive with a drop
        stale = (u >= cfg.drop_probability) & (u < cfg.drop_probability + cfg.stale_probability)
        stale = stale & can_stale
        noisy = jnp.where(stale, previous, noisy)
    return jnp.where(dropped, 0.0, noisy), dropped, stale
