"""Pushes: a wrench on a random body for a random duration, at random intervals."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mjxbot.disturbances.config import (
    PushConfig,
)
from mjxbot.disturbances.sampling import random_direction, uniform, unit_sphere


def sample_push(
    key: jax.Array,
    cfg: PushConfig,
    body_ids: jax.Array,
    scale: jax.Array,
    sim_dt: float,
    ctrl_dt: float,
) -> dict[str, jax.Array]:
    """Draws one push (used when a push starts).

    Args:
      key: PRNG key.
      cfg: the push family config.
      body_ids: `[n]` candidate body ids.
      scale: scalar curriculum scale multiplying force, torque and kick.
      sim_dt: physics timestep; durations are rounded to it.
      ctrl_dt: control period; intervals are rounded to it.

    Returns:
      `body` int32 scalar, `wrench` `[6]` (world-frame force then torque),
      `substeps` int32 scalar (>= 1), `interval` int32 control steps (>= 1),
      `kick` `[3]` world-frame base-velocity change (zero unless kicked),
      `impulse` the push force's impulse magnitude (N s).
    """
    (
        key_body,
        key_force,
        key_direction,
        key_torque,
        key_torque_axis,
        key_duration,
        key_interval,
        key_kicked,
        key_kick_direction,
        key_kick_speed,
    ) = jax.random.split(key, 10)
    body = jax.random.choice(key_body, body_ids)  # uniform over cfg.bodies
    # cfg.force along a direction with cfg.vertical_share
    force = uniform(key_force, cfg.force) * random_direction(key_direction, cfg.vertical_share)
    torque = uniform(key_torque, cfg.torque) * unit_sphere(key_torque_axis)  # cfg.torque
    duration = uniform(key_duration, cfg.duration)  # cfg.duration
    interval = uniform(key_interval, cfg.interval)  # cfg.interval
    kicked = jax.random.bernoulli(key_kicked, cfg.kick_probability)  # cfg.kick_probability
    kick_direction = random_direction(key_kick_direction, 0.0)
    kick_speed = uniform(key_kick_speed, cfg.kick_speed)  # cfg.kick_speed
    substeps = jnp.maximum(jnp.round(duration / sim_dt), 1).astype(jnp.int32)
    return {
        "body": body.astype(jnp.int32),
        "wrench": scale * jnp.concatenate([force, torque]),
        "substeps": substeps,
        "impulse": scale * jnp.linalg.norm(force) * substeps * sim_dt,
        "interval": jnp.maximum(jnp.round(interval / ctrl_dt), 1).astype(jnp.int32),
        "kick": jnp.where(kicked, scale * kick_speed, 0.0) * kick_direction,
    }


def initial_push_schedule(key: jax.Array, cfg: PushConfig, ctrl_dt: float) -> dict[str, jax.Array]:
    """The push schedule of a fresh episode: no push yet, the first after one interval.

    Returns:
      `countdown` int32 control steps until the next push starts, `remaining`
      int32 substeps left of the current push, `body` int32, `wrench` `[6]`,
      `impulse` (N s) of the latest push.
    """
    interval = uniform(key, cfg.interval)  # cfg.interval
    return {
        "countdown": jnp.maximum(jnp.round(interval / ctrl_dt), 1).astype(jnp.int32),
        "remaining": jnp.zeros((), jnp.int32),
        "body": jnp.zeros((), jnp.int32),
        "wrench": jnp.zeros(6),
        "impulse": jnp.zeros(()),
    }


def advance_push(
    schedule: dict[str, jax.Array], sample: dict[str, jax.Array], n_substeps: int
) -> tuple[dict[str, jax.Array], dict[str, jax.Array], jax.Array]:
    """Starts a push when due and plans this control step's substeps.

    Args:
      schedule: the schedule from `initial_push_schedule` or the last step.
      sample: a fresh `sample_push` draw, used only if a push starts now.
      n_substeps: physics substeps per control step.

    Returns:
      `(schedule after this step, active push, started)`: the active push has
      `body`, `wrench` `[6]` and `substeps` (how many of this step's substeps
      it acts on); `started` is a bool scalar.
    """
    started = schedule["countdown"] <= 0
    body = jnp.where(started, sample["body"], schedule["body"])
    wrench = jnp.where(started, sample["wrench"], schedule["wrench"])
    remaining = jnp.where(started, sample["substeps"], schedule["remaining"])
    countdown = jnp.where(started, sample["interval"], schedule["countdown"]) - 1
    active = {"body": body, "wrench": wrench, "substeps": jnp.minimum(remaining, n_substeps)}
    after = {
        "countdown": countdown,
        "remaining": jnp.maximum(remaining - n_substeps, 0),
        "body": body,
        "wrench": wrench,
        "impulse": jnp.where(started, sample["impulse"], schedule["impulse"]),
    }
    return after, active, started


def push_xfrc(nbody: int, push: dict[str, jax.Array], substep: jax.Array) -> jax.Array:
    """`[nbody, 6]` `xfrc_applied` at substep `substep` of a control step (zero when idle)."""
    on = substep < push["substeps"]
    return jnp.zeros((nbody, 6)).at[push["body"]].set(jnp.where(on, push["wrench"], 0.0))
