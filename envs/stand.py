"""`stand`: hold the home pose. The smallest task that exercises the env core."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
from mujoco import mjx

from mjxbot.env import HumanoidEnv, gravity_in_torso
from mjxbot.registry import register
from mjxbot.types import EnvConfig


@dataclasses.dataclass(frozen=True)
class StandConfig(EnvConfig):
    """`stand` settings. Reward terms: height, upright, posture, action_rate, alive.

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


@register("stand")
class Stand(HumanoidEnv):
    """Stand at `home`: rewarded for torso height and uprightness."""

    config_class = StandConfig
    reward_names = ("height", "upright", "posture", "action_rate", "alive")

    def reward_terms(
        self, data: mjx.Data, action: jax.Array, info: dict[str, Any]
    ) -> dict[str, jax.Array]:
        height_error = (data.qpos[2] - self._home_qpos[2]) / self.config.height_sigma
        posture_error = data.qpos[self._qpos_adr] - self._home_targets
        return {
            "height": jnp.exp(-jnp.square(height_error)),
            "upright": -gravity_in_torso(self.robot, data)[2],
            "posture": -jnp.sum(jnp.square(posture_error)),
            "action_rate": -jnp.sum(jnp.square(action - info["last_action"])),
            "alive": jnp.ones(()),
        }
