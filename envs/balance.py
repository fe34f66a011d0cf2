"""`balance`: stand and recover from pushes, with per-episode physics randomization."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import mujoco
from mujoco import mjx

from mjxbot import rewards
from mjxbot.disturbances.config import (
    DisturbanceConfig,
    PhysicsRandConfig,
    PushConfig,
    SensingConfig,
)
from mjxbot.env import HumanoidEnv, TaskMetrics, torso_rotation, torso_velocity
from mjxbot.env.config import EnvConfig
from mjxbot.env.state import Observation


def _balance_disturbances() -> DisturbanceConfig:
    # Bumps at a workstation: 40-120 N for 0.05-0.2 s (2-24 N s) every 2-4 s.
    # The PD hold survives about half of its 10 s episodes under them and the
    # whole-body QP more (docs/plant.md): recoverable, with room to learn.
    return DisturbanceConfig(
        push=PushConfig(enabled=True, force=(40.0, 120.0), interval=(2.0, 4.0)),
        physics=PhysicsRandConfig(enabled=True),
        # The torso velocity channels come from a state estimator on a real
        # robot: white noise of 0.1 m/s stands in for its error.
        sensing=SensingConfig(enabled=True, extra_noise=0.1),
    )


@dataclasses.dataclass(frozen=True)
class BalanceConfig(EnvConfig):
    """`balance` settings.

    Attributes:
      height_sigma: width (m) of the Gaussian torso-height reward.
      com_sigma: width (m) of the Gaussian reward on the horizontal distance
        between the centre of mass and the middle of the feet.
      survive_window: seconds the robot must stay up after a push starts for
        the push to count as survived.
    """

    episode_length: int = 500
    height_sigma: float = 0.05
    com_sigma: float = 0.05
    survive_window: float = 1.0
    disturbances: DisturbanceConfig = dataclasses.field(default_factory=_balance_disturbances)
    reward_scales: dict[str, float] = dataclasses.field(
        default_factory=lambda: {
            "upright": 1.0,
            "height": 1.0,
            "com_over_support": 1.0,
            "posture": 0.1,
            "feet_in_place": 2.0,
            "torque": 0.05,
            "action_rate": 0.01,
            "alive": 1.0,
            "termination": -100.0,
        }
    )


def survival_update(
    book: dict[str, jax.Array],
    push_started: jax.Array,
    push_impulse: jax.Array,
    fell: jax.Array,
    window_steps: int,
) -> tuple[dict[str, jax.Array], jax.Array]:
    """Judges pushes as survived once the robot stays up `window_steps` after them.

    Args:
      book: `pending` impulse (N s) of the last unjudged push (0 if none),
        `since` control steps since it started, `max_survived` impulse.
      push_started: a push started this step.
      push_impulse: its impulse magnitude (N s).
      fell: the robot fell this step.
      window_steps: control steps to survive.

    Returns:
      `(updated book, survived)`: `survived` is 1.0 when a push was judged
      survived this step (a new push also closes the previous one).
    """
    pending = book["pending"] > 0
    due = pending & ((book["since"] + 1 >= window_steps) | push_started)
    survived = due & ~fell
    max_survived = jnp.where(
        survived, jnp.maximum(book["max_survived"], book["pending"]), book["max_survived"]
    )
    cleared = jnp.where(due | fell, 0.0, book["pending"])
    updated = {
        "pending": jnp.where(push_started, push_impulse, cleared),
        "since": jnp.where(push_started, 0, book["since"] + 1),
        "max_survived": max_survived,
    }
    return updated, survived.astype(jnp.float32)


class Balance(HumanoidEnv):
    """Hold `home` against pushes; terminated by a fall."""

    config_class = BalanceConfig
    task_metrics = TaskMetrics(
        falls="balance/falls",
        pushes_survived="balance/pushes_survived",
        max_impulse="balance/max_impulse_survived",
    )

    def __init__(self, config: BalanceConfig | None = None):
        super().__init__(config)
        data = mujoco.MjData(self.mj_model)
        data.qpos[:] = self.robot.home_qpos
        mujoco.mj_kinematics(self.mj_model, data)
        self._feet_home = jnp.asarray(data.xpos[self.robot.foot_ids, :2])
        self._window = max(round(self.config.survive_window / self.config.ctrl_dt), 1)

    def observe(self, data: mjx.Data, info: dict[str, Any]) -> Observation:
        """Proprioception plus the torso's linear velocity in its own frame, `[3]`.

        A push shows first as base velocity; the capture point a recovery needs
        is that velocity scaled by the pendulum's time constant. Real humanoids
        estimate it (leg odometry fused with the IMU); the actor gets it with
        the sensing family's `extra_noise`, the critic clean.
        """
        obs = super().observe(data, info)
        linear, _ = torso_velocity(self.robot, data)
        return {k: jnp.concatenate([v, linear]) for k, v in obs.items()}

    def sample_task(self, rng: jax.Array) -> dict[str, jax.Array]:
        del rng
        zero = jnp.zeros(())
        return {
            "survival": {"pending": zero, "since": jnp.zeros((), jnp.int32), "max_survived": zero}
        }

    def advance_task(
        self, data: mjx.Data, prev_info: dict[str, Any], info: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, jax.Array]]:
        fell = self.fallen(data)
        if "push" in info:
            started = prev_info["push"]["countdown"] <= 0
            impulse = info["push"]["impulse"]
        else:
            started, impulse = jnp.zeros((), bool), jnp.zeros(())
        book, survived = survival_update(info["survival"], started, impulse, fell, self._window)
        metrics = {
            "balance/falls": fell.astype(jnp.float32),
            "balance/pushes_survived": survived,
            "balance/max_impulse_survived": book["max_survived"],
        }
        return {"survival": book}, metrics

    def reward_terms(
        self, data: mjx.Data, action: jax.Array, info: dict[str, Any]
    ) -> dict[str, jax.Array]:
        robot = self.robot
        cfg = self.config
        feet = data.xpos[self.robot.foot_ids, :2]
        com_offset = data.subtree_com[self.robot.torso_id, :2] - feet.mean(axis=0)
        return {
            "upright": rewards.upright(torso_rotation(self.robot, data)),
            "height": rewards.height(data.qpos[2], robot.home_qpos[2], cfg.height_sigma),
            "com_over_support": jnp.exp(-jnp.sum(jnp.square(com_offset)) / cfg.com_sigma**2),
            "posture": rewards.posture(data.qpos[robot.qpos_adr], robot.home_joint_targets),
            "feet_in_place": -jnp.sum(jnp.square(feet - self._feet_home)),
            "torque": rewards.torque(
                robot.ctrl_to_torque(data.ctrl), self.robot.torque_limit[:, 1]
            ),
            "action_rate": rewards.action_rate(action, info["last_action"]),
            "alive": rewards.alive(),
            # 1 on the step of a fall: weighted by ctrl_dt like every term, so a
            # scale of -100 costs 2 per fall at 0.02 s (two seconds of `alive`).
            "termination": rewards.fell(self.fallen(data)),
        }
