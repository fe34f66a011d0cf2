"""The controller stage: from an action to joint torques over one control period.

A controller turns the policy's action into a command once per control step
(`command`), then the command into joint torques (`torque`), at every physics
substep (`per_substep`) or once per control step. `control_period` is the one
substep loop every controller and every disturbance runs through.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import numpy as np
from mujoco import mjx

from mjxbot.disturbances import push_xfrc
from mjxbot.robot import Robot
from mjxbot.wbc import WholeBodyController

Drive = dict[str, jax.Array]
# The zero action's actor name in evaluations, per controller: what the zero action does.
ZERO_ACTION_ACTORS = {"pd": "pd_hold", "qp": "qp_only"}


class Controller(Protocol):
    """The contract of a controller; its state rides in `info["controller"]`."""

    per_substep: bool

    def init_state(self) -> Any:
        """The controller's state at an episode start (a pytree, `{}` when stateless)."""

    def command(self, action: jax.Array) -> Any:
        """What the action asks for this control step (joint or task targets)."""

    def torque(
        self, model: mjx.Model, data: mjx.Data, command: Any, state: Any, drive: Drive | None
    ) -> tuple[jax.Array, Any]:
        """`([nu] joint torques, next state)` toward `command`."""


def pd_torque(
    robot: Robot, data: mjx.Data, targets: jax.Array, drive: Drive | None = None
) -> jax.Array:
    """`[nu]` PD joint torques toward `targets`, clipped to the actuator limits.

    These are torques at the joints (`Robot.torque_limit`, gear included).
    `drive` optionally holds per-episode `[nu]` scales `kp_scale` and
    `kd_scale` on the gains (`mjxbot.disturbances.drive_scales`).
    """
    drive = drive or {}
    kp = robot.kp * drive["kp_scale"] if "kp_scale" in drive else robot.kp
    kd = robot.kd * drive["kd_scale"] if "kd_scale" in drive else robot.kd
    error = targets - data.qpos[robot.qpos_adr]
    torque = kp * error - kd * data.qvel[robot.qvel_adr]
    return jnp.clip(torque, robot.torque_limit[:, 0], robot.torque_limit[:, 1])


@dataclasses.dataclass(frozen=True)
class PDController:
    """Joint targets `home + action_scale * clip(action)`, a PD law at every substep.

    Attributes:
      robot: the robot (gains, limits, home).
      action_scale: `[nu]` radians per unit action.
    """

    robot: Robot
    action_scale: np.ndarray
    per_substep: bool = True

    def init_state(self) -> dict:
        return {}

    def command(self, action: jax.Array) -> jax.Array:
        """`[nu]` joint position targets for an action in `[-1, 1]^nu`."""
        return self.robot.home_joint_targets + self.action_scale * jnp.clip(action, -1.0, 1.0)

    def torque(self, model, data, command, state, drive):
        del model
        return pd_torque(self.robot, data, command, drive), state


@dataclasses.dataclass(frozen=True)
class QPController:
    """The whole-body QP (`mjxbot.wbc`): task targets from the action, torques from the QP.

    Solved at every substep or once per control step (`WBCConfig.rate`),
    warm-started from the previous solution. PD gain scales do not apply.
    """

    wbc: WholeBodyController
    per_substep: bool

    def init_state(self) -> Any:
        return self.wbc.init_state()

    def command(self, action: jax.Array) -> Any:
        return self.wbc.targets(action)

    def torque(self, model, data, command, state, drive):
        del drive
        tau, solution = self.wbc(model, data, command, state)
        return tau, self.wbc.reset_warm(solution)


def control_period(
    robot: Robot,
    controller: Controller,
    model: mjx.Model,
    data: mjx.Data,
    command: Any,
    state: Any,
    n_substeps: int,
    drive: Drive | None = None,
    push: dict[str, jax.Array] | None = None,
) -> tuple[mjx.Data, Any]:
    """Advances one control period: `n_substeps` `mjx.step`s under `controller`.

    Args:
      robot: the robot (`torque_to_ctrl` divides by the gear).
      controller: the controller stage.
      model: the (per-episode) model.
      data: the physics state.
      command: `controller.command(action)` for this control step.
      state: the controller's state.
      n_substeps: physics steps per control step.
      drive: optional per-episode scales: `strength` `[nu]` scales the torque
        of any controller; the PD law also reads `kp_scale` and `kd_scale`.
      push: optional active push (`mjxbot.disturbances.advance_push`): its
        wrench is written to `xfrc_applied` for its first substeps, and
        `xfrc_applied` is zero again when this returns.

    Returns:
      `(data, controller state)` after the period.
    """
    strength = drive.get("strength") if drive is not None else None

    def torque(d: mjx.Data, s: Any) -> tuple[jax.Array, Any]:
        tau, s = controller.torque(model, d, command, s, drive)
        return (tau if strength is None else tau * strength), s

    tau = jnp.zeros(robot.nu, data.qvel.dtype)
    if not controller.per_substep:
        tau, state = torque(data, state)

    def substep(carry: tuple, i: jax.Array) -> tuple[tuple, None]:
        d, tau, s = carry
        if controller.per_substep:
            tau, s = torque(d, s)
        d = d.replace(ctrl=robot.torque_to_ctrl(tau))
        if push is not None:
            d = d.replace(xfrc_applied=push_xfrc(d.xfrc_applied.shape[0], push, i))
        return (mjx.step(model, d), tau, s), None

    (data, _, state), _ = jax.lax.scan(substep, (data, tau, state), jnp.arange(n_substeps))
    if push is not None:
        data = data.replace(xfrc_applied=jnp.zeros_like(data.xfrc_applied))
    return data, state
