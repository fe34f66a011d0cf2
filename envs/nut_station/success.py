"""When a nut counts as seated: pose tolerances around the seat, spline symmetry."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mjxbot.envs.nut_station.config import NutStationConfig


def heading(rot: jax.Array) -> jax.Array:
    """Yaw (rad) of a frame's x axis projected on the horizontal plane; `rot` is `[3, 3]`."""
    return jnp.arctan2(rot[1, 0], rot[0, 0])


def symmetric_angle(angle: jax.Array, teeth: int) -> jax.Array:
    """`angle` wrapped to `[-pi/teeth, pi/teeth)`: the error of a `teeth`-fold symmetric spline."""
    period = 2 * jnp.pi / teeth
    return jnp.mod(angle + period / 2, period) - period / 2


def yaw_quat(yaw: jax.Array) -> jax.Array:
    """`[4]` quaternion of a rotation by `yaw` about world z."""
    return jnp.stack([jnp.cos(yaw / 2), 0.0 * yaw, 0.0 * yaw, jnp.sin(yaw / 2)])


def seat_success(
    nut_pos: jax.Array,
    nut_rot: jax.Array,
    nut_linvel: jax.Array,
    nut_angvel: jax.Array,
    seat_pos: jax.Array,
    seat_rot: jax.Array,
    cfg: NutStationConfig,
) -> jax.Array:
    """The per-side success predicate: the nut is seated. Pure; vmappable.

    Args:
      nut_pos: `[3]` nut centre.
      nut_rot: `[3, 3]` nut orientation (its z axis is the bore axis).
      nut_linvel: `[3]` nut linear velocity.
      nut_angvel: `[3]` nut angular velocity.
      seat_pos: `[3]` where a seated nut's centre is.
      seat_rot: `[3, 3]` seat orientation (z: seat normal, x: spline reference).
      cfg: tolerances `position_tolerance`, `yaw_tolerance`, `tilt_tolerance`,
        `max_nut_speed`, `max_nut_spin` and the symmetry `spline_teeth`.

    Returns:
      Bool scalar: within position, yaw (modulo the spline symmetry) and tilt
      tolerance, and at rest.
    """
    position_ok = jnp.linalg.norm(nut_pos - seat_pos) <= cfg.position_tolerance
    yaw_error = symmetric_angle(heading(nut_rot) - heading(seat_rot), cfg.spline_teeth)
    yaw_ok = jnp.abs(yaw_error) <= cfg.yaw_tolerance
    tilt_ok = jnp.dot(nut_rot[:, 2], seat_rot[:, 2]) >= jnp.cos(cfg.tilt_tolerance)
    at_rest = (jnp.linalg.norm(nut_linvel) <= cfg.max_nut_speed) & (
        jnp.linalg.norm(nut_angvel) <= cfg.max_nut_spin
    )
    return position_ok & yaw_ok & tilt_ok & at_rest


def dual_seat_success(
    nut_pos: jax.Array,
    nut_rot: jax.Array,
    nut_linvel: jax.Array,
    nut_angvel: jax.Array,
    seat_pos: jax.Array,
    seat_rot: jax.Array,
    cfg: NutStationConfig,
) -> tuple[jax.Array, jax.Array]:
    """`seat_success` for both sides (arguments with a leading `[2]` axis, left then right).

    Returns:
      `(dual, per_side)`: bool scalar, both sides seated; bool `[2]`.
    """
    per_side = jax.vmap(lambda *a: seat_success(*a, cfg))(
        nut_pos, nut_rot, nut_linvel, nut_angvel, seat_pos, seat_rot
    )
    return jnp.all(per_side), per_side


def smoothstep(x: jax.Array) -> jax.Array:
    x = jnp.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)
