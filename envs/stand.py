"""`stand`: hold the home pose. The smallest task that exercises the env core."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
from mujoco import mjx

from mjxbot import rewards
from mjxbot.env import HumanoidEnv, torso_rotation
from mjxbot.env.config import EnvConfig


@dataclasses.dataclass(frozen=True)
class StandConfig(EnvConfig):
    """`stand` settings. Reward terms: the keys of `reward_scales`.

    Attributes:
      height_sigma: width (m) of the Gaussian height reward around home height.
    """

    height_sigma: float = 0.05
    reward_scales: dict[str, float] = dataclasses.field(
        default_factory=lambda: {
            "height": 1.0,
            "upright": 1.0,
            "posture": 0.1,
            "action_rate": 0.01,
            "alive": 0.5,
        }
    )


class Stand(HumanoidEnv):
    """Stand at `home`: rewarded for torso height and uprightness."""

    config_class = StandConfig

    def reward_terms(
        self, data: mjx.Data, action: jax.Array, info: dict[str, Any]
    ) -> dict[str, jax.Array]:
        robot = self.robot
        return {
            "height": rewards.height(data.qpos[2], robot.home_qpos[2], self.config.height_sigma),
            "upright": rewards.upright(torso_rotation(robot, data)),
            "posture": rewards.posture(data.qpos[robot.qpos_adr], robot.home_joint_targets),
            "action_rate": rewards.action_rate(action, info["last_action"]),
            "alive": rewards.alive(),
        }
