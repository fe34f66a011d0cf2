"""Reward terms shared by the tasks: small pure functions of one env's state.

Each function takes plain arrays of a single (unbatched) env and returns the
unscaled term, a scalar `[]`; `vmap` for a batch. Penalties are returned
negative (`<= 0`), so every scale in a config's `reward_scales` is a positive
weight, except where a task chooses otherwise (`balance`'s `termination`).
Task-specific terms (reach, grasp, support polygon) stay in their task.

A task's terms are the keys of its config's default `reward_scales`
(Playground's convention); `HumanoidEnv` checks that `reward_terms` returns
exactly those and sums `ctrl_dt * scale * term`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def upright(torso_rotation: jax.Array) -> jax.Array:
    """Cosine of the torso's tilt from vertical: 1 upright, 0 lying, -1 upside down.

    Args:
      torso_rotation: `[3, 3]` world-from-torso rotation matrix (`data.xmat`).

    Returns:
      `[]` minus the z component of gravity's unit direction in the torso frame.
    """
    gravity = torso_rotation.T @ jnp.array([0.0, 0.0, -1.0])
    return -gravity[2]


def height(z: jax.Array, target: jax.Array, sigma: float) -> jax.Array:
    """Gaussian kernel of the torso height error: 1 at `target`, `exp(-1)` at `sigma` off.

    Args:
      z: `[]` torso (free-base) height in m.
      target: `[]` the height rewarded most, in m (e.g. home height).
      sigma: width of the kernel in m.

    Returns:
      `[]` `exp(-((z - target) / sigma)^2)`, in `(0, 1]`.
    """
    return jnp.exp(-jnp.square((z - target) / sigma))


def posture(joint_pos: jax.Array, home: jax.Array) -> jax.Array:
    """Penalty on the squared distance of the actuated joints from home.

    Args:
      joint_pos: `[nu]` actuated joint positions (rad or m).
      home: `[nu]` their home targets.

    Returns:
      `[]` `-sum((joint_pos - home)^2)`, 0 at home.
    """
    return -jnp.sum(jnp.square(joint_pos - home))


def action_rate(action: jax.Array, last_action: jax.Array) -> jax.Array:
    """Penalty on the change of the action between control steps.

    Args:
      action: `[nu]` this step's action.
      last_action: `[nu]` the previous step's action.

    Returns:
      `[]` `-sum((action - last_action)^2)`, 0 for equal actions.
    """
    return -jnp.sum(jnp.square(action - last_action))


def alive() -> jax.Array:
    """`[]` 1 for every step the episode goes on."""
    return jnp.ones(())


def fell(fallen: jax.Array) -> jax.Array:
    """Indicator of a fall on this step (scale it negative to penalize it).

    Args:
      fallen: `[]` bool, true when the robot has fallen (`HumanoidEnv.fallen`).

    Returns:
      `[]` float32, 1.0 on a fall, else 0.0.
    """
    return fallen.astype(jnp.float32)


def torque(joint_torque: jax.Array, torque_limit: jax.Array) -> jax.Array:
    """Penalty on joint torques relative to their limits.

    Args:
      joint_torque: `[nu]` joint torques (N m or N, gear included).
      torque_limit: `[nu]` their limits; magnitudes under 1e-6 count as 1e-6.

    Returns:
      `[]` `-mean((joint_torque / |torque_limit|)^2)`, in `[-1, 0]` within the limits.
    """
    return -jnp.mean(jnp.square(joint_torque / jnp.maximum(jnp.abs(torque_limit), 1e-6)))


def energy(joint_torque: jax.Array, joint_vel: jax.Array) -> jax.Array:
    """Penalty on the mechanical power of the actuators, positive or negative work alike.

    Args:
      joint_torque: `[nu]` joint torques (N m or N, gear included).
      joint_vel: `[nu]` the joints' velocities (rad/s or m/s).

    Returns:
      `[]` `-sum(|joint_torque * joint_vel|)` in W.
    """
    return -jnp.sum(jnp.abs(joint_torque * joint_vel))
