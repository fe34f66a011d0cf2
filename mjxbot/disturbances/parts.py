"""Part-level disturbances: part poses in the feeder and fixture, magnetic pull."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mjxbot.disturbances.config import (
    PartsConfig,
)
from mjxbot.disturbances.sampling import random_direction, uniform


def quat_mul(a: jax.Array, b: jax.Array) -> jax.Array:
    """Hamilton product of `[4]` quaternions `(w, x, y, z)`."""
    w1, x1, y1, z1 = a
    w2, x2, y2, z2 = b
    return jnp.stack(
        [
            w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
            w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
            w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
            w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
        ]
    )


def axis_angle_quat(axis: jax.Array, angle: jax.Array) -> jax.Array:
    """`[4]` quaternion of a rotation by `angle` about unit `axis` `[3]`."""
    return jnp.concatenate([jnp.cos(angle / 2)[None], jnp.sin(angle / 2) * axis])


def sample_part_pose(
    key: jax.Array, cfg: PartsConfig, position: jax.Array, quat: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Jitters a part's spawn pose.

    Args:
      key: PRNG key.
      cfg: the parts family config.
      position: `[3]` nominal world position.
      quat: `[4]` nominal world orientation `(w, x, y, z)`.

    Returns:
      `(position [3], quat [4])`: the position offset by `position_jitter` in
      x and y and `height_jitter` in z; the orientation turned by `yaw_jitter`
      about world z and `tilt_jitter` about a random horizontal axis.
    """
    key_xy, key_z, key_yaw, key_tilt, key_axis = jax.random.split(key, 5)
    offset = jnp.concatenate(
        [
            uniform(key_xy, cfg.position_jitter, (2,)),  # cfg.position_jitter
            uniform(key_z, cfg.height_jitter, (1,)),  # cfg.height_jitter
        ]
    )
    yaw = axis_angle_quat(jnp.array([0.0, 0.0, 1.0]), uniform(key_yaw, cfg.yaw_jitter))
    tilt_axis = random_direction(key_axis, 0.0)
    tilt = axis_angle_quat(tilt_axis, uniform(key_tilt, cfg.tilt_jitter))  # cfg.tilt_jitter
    return position + offset, quat_mul(tilt, quat_mul(yaw, quat))


def sample_magnet_strength(key: jax.Array, cfg: PartsConfig) -> jax.Array:
    """Scalar per-episode magnet strength (N)."""
    return uniform(key, cfg.magnet_strength)  # cfg.magnet_strength


def magnetic_force(
    part: jax.Array, steel: jax.Array, strength: jax.Array, cfg: PartsConfig
) -> jax.Array:
    """`[3]` attraction of a steel part toward nearby steel points.

    Each steel point within `cfg.magnet_cutoff` pulls the part toward it with
    `strength * (magnet_reference / r) ** magnet_falloff`, where the distance
    `r` is clamped below at `magnet_min_distance`; the pulls add up.

    Args:
      part: `[3]` part position (its centre of mass).
      steel: `[n, 3]` positions of steel points.
      strength: scalar strength (N at `magnet_reference`).
      cfg: the parts family config (force law).
    """
    delta = steel - part
    distance = jnp.linalg.norm(delta, axis=-1)
    direction = delta / jnp.maximum(distance, 1e-9)[:, None]
    r = jnp.maximum(distance, cfg.magnet_min_distance)
    magnitude = strength * (cfg.magnet_reference / r) ** cfg.magnet_falloff
    magnitude = jnp.where(distance <= cfg.magnet_cutoff, magnitude, 0.0)
    return jnp.sum(magnitude[:, None] * direction, axis=0)
