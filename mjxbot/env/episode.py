"""The episode stage: divergence guard, truncation, auto-reset and the step's counters.

Pure functions over one env's step; `HumanoidEnv.step` composes them after
the physics and the task's reward.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from mujoco import mjx

from mjxbot.env.config import GuardConfig
from mjxbot.robot import Robot


def tree_where(cond: jax.Array, on_true: Any, on_false: Any) -> Any:
    """Selects between two pytrees of equal structure with a scalar condition."""
    return jax.tree.map(lambda a, b: jnp.where(cond, a, b), on_true, on_false)


def diverged(robot: Robot, data: mjx.Data, guard: GuardConfig) -> jax.Array:
    """True when finite physics has left every plausible state (`GuardConfig` bounds).

    Checks actuated-joint speeds and positions (against the model's ranges
    widened by `joint_range_margin`), base linear and angular speed, and the
    base's horizontal distance from the origin.
    """
    joint_speed = jnp.abs(data.qvel[robot.qvel_adr]).max()
    qpos = data.qpos[robot.qpos_adr]
    lo, hi = robot.joint_range[:, 0], robot.joint_range[:, 1]
    margin = guard.joint_range_margin
    out_of_range = robot.joint_limited & ((qpos < lo - margin) | (qpos > hi + margin))
    return (
        (joint_speed > guard.max_joint_speed)
        | out_of_range.any()
        | (jnp.linalg.norm(data.qvel[0:3]) > guard.max_base_speed)
        | (jnp.linalg.norm(data.qvel[3:6]) > guard.max_base_angular_speed)
        | (jnp.linalg.norm(data.qpos[0:2]) > guard.max_base_distance)
    )


class Health(NamedTuple):
    """Why a step's physics is thrown away (bool scalars; at most one is true)."""

    nonfinite: jax.Array
    diverged: jax.Array

    @property
    def broken(self) -> jax.Array:
        return self.nonfinite | self.diverged


def check_health(robot: Robot, data: mjx.Data, reward: jax.Array, guard: GuardConfig) -> Health:
    """NaN/inf physics, or finite but absurd physics or reward (reset like a NaN)."""
    nonfinite = ~(jnp.isfinite(data.qpos).all() & jnp.isfinite(data.qvel).all())
    blown = diverged(robot, data, guard) | ~(jnp.abs(reward) <= guard.max_reward)
    return Health(nonfinite, blown & ~nonfinite)


class Ending(NamedTuple):
    """How a step ends its episode (bool scalars)."""

    terminated: jax.Array
    truncated: jax.Array

    @property
    def done(self) -> jax.Array:
        return self.terminated | self.truncated


def ending(failed: jax.Array, health: Health, steps: jax.Array, episode_length: int) -> Ending:
    """A failure or broken physics terminates; the time limit truncates what is left."""
    terminated = failed | health.broken
    return Ending(terminated, (steps >= episode_length) & ~terminated)


def step_metrics(
    previous: dict[str, jax.Array],
    terms: dict[str, jax.Array],
    task_metrics: dict[str, jax.Array],
    health: Health,
) -> dict[str, jax.Array]:
    """A step's metrics: reward terms and task metrics (0 on broken physics), reset counts.

    `nonfinite_resets` and `diverged_resets` accumulate over the env's life.
    """
    hide = health.broken
    metrics = {f"reward/{k}": jnp.where(hide, 0.0, v) for k, v in terms.items()}
    metrics["nonfinite_resets"] = previous["nonfinite_resets"] + health.nonfinite
    metrics["diverged_resets"] = previous["diverged_resets"] + health.diverged
    metrics.update({k: jnp.where(hide, 0.0, v) for k, v in task_metrics.items()})
    return metrics
