"""`reach`: move one hand to a random target while staying balanced.

Cheap enough to show learning on a laptop-class CPU in minutes; the task of the
tiny CI training config.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import mujoco
from mujoco import mjx

from mjxbot import rewards
from mjxbot.env import HumanoidEnv, TaskMetrics, torso_rotation
from mjxbot.env.config import EnvConfig
from mjxbot.env.state import Observation
from mjxbot.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class ReachConfig(EnvConfig):
    """`reach` settings.

    Attributes:
      hand: index into `robot.hands` of the reaching hand.
      target_box: half-widths (m) of the box, centred on the hand's home
        position, that targets are drawn from uniformly.
      success_radius: hand-to-target distance (m) that counts as reached.
      distance_sigma: length scale (m) of the shaped reach reward.
    """

    episode_length: int = 150
    hand: int = 0
    target_box: tuple[float, float, float] = (0.12, 0.12, 0.12)
    success_radius: float = 0.05
    distance_sigma: float = 0.1
    reward_scales: dict[str, float] = dataclasses.field(
        default_factory=lambda: {
            "reach": 2.0,
            "upright": 0.5,
            "posture": 0.05,
            "action_rate": 0.01,
            "alive": 0.2,
        }
    )


class Reach(HumanoidEnv):
    """Bring `robot.hands[hand]` to a target sampled at every reset."""

    config_class = ReachConfig
    task_metrics = TaskMetrics(success="reach/success", other=("reach/distance",))

    def __init__(self, config: ReachConfig | None = None):
        super().__init__(config)
        if not 0 <= self.config.hand < len(self.robot.hand_ids):
            raise ConfigError(f"hand={self.config.hand} is out of range for robot.hands")
        self._hand_id = int(self.robot.hand_ids[self.config.hand])
        data = mujoco.MjData(self.mj_model)
        data.qpos[:] = self.robot.home_qpos
        mujoco.mj_kinematics(self.mj_model, data)
        self._hand_home = jnp.asarray(data.xpos[self._hand_id])

    def sample_task(self, rng: jax.Array) -> dict[str, jax.Array]:
        box = jnp.asarray(self.config.target_box)
        return {"target": self._hand_home + jax.random.uniform(rng, (3,), minval=-box, maxval=box)}

    def _hand_to_target(self, data: mjx.Data, info: dict[str, Any]) -> jax.Array:
        """`[3]` target minus hand position, world frame."""
        return info["target"] - data.xpos[self._hand_id]

    def observe(self, data: mjx.Data, info: dict[str, Any]) -> Observation:
        obs = super().observe(data, info)
        rotation = torso_rotation(self.robot, data)
        task = jnp.concatenate(
            [
                rotation.T @ (info["target"] - data.xpos[self.robot.torso_id]),
                rotation.T @ self._hand_to_target(data, info),
            ]
        )
        return {k: jnp.concatenate([v, task]) for k, v in obs.items()}

    def advance_task(
        self, data: mjx.Data, prev_info: dict[str, Any], info: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, jax.Array]]:
        distance = jnp.linalg.norm(self._hand_to_target(data, info))
        success = (distance < self.config.success_radius).astype(jnp.float32)
        return {}, {"reach/distance": distance, "reach/success": success}

    def reward_terms(
        self, data: mjx.Data, action: jax.Array, info: dict[str, Any]
    ) -> dict[str, jax.Array]:
        robot = self.robot
        distance = jnp.linalg.norm(self._hand_to_target(data, info))
        return {
            "reach": jnp.exp(-jnp.square(distance / self.config.distance_sigma)),
            "upright": rewards.upright(torso_rotation(robot, data)),
            "posture": rewards.posture(data.qpos[robot.qpos_adr], robot.home_joint_targets),
            "action_rate": rewards.action_rate(action, info["last_action"]),
            "alive": rewards.alive(),
        }
