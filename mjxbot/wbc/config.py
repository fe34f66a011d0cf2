"""Settings of the whole-body QP controller."""

from __future__ import annotations

import dataclasses
from typing import Literal

from mjxbot.config import check_value
from mjxbot.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class WBCConfig:
    """Whole-body QP controller (`mjxbot.wbc`, docs/wbc.md).

    Every task is a weighted least-squares cost on accelerations; a PD law in
    task space gives its desired acceleration (`kp * error - kd * velocity`).

    Attributes:
      rate: `substep` solves a QP at every physics substep, `control` once per
        control step and holds the torques over its substeps.
      iterations: if > 0, exactly this many ADMM iterations per tick (no
        data-dependent loop); 0 (default) iterates to `eps`, at most `max_iter`.
        Measured: fixed budgets of 40 and 150 iterations let the humanoid fall
        within 2 s, iterating to 1e-3 keeps it standing (docs/wbc.md).
      max_iter: iteration bound of the default mode; a tick that reaches it
        uses the last ADMM iterate. It bounds the worst tick (and, under vmap,
        the batch, which runs until its slowest env is done). Under pushes twice
        the standing test's, 200 stood with 1.2 cm of foot travel, 100 with 4.5 cm.
      eps: absolute and relative solver tolerance.
      scaling: Ruiz equilibration passes of each tick's QP from no scaling, when
        `warm_scaling` is None. Measured (docs/wbc.md): 2 passes cut one robot's
        closed-loop tick by about a third against 10 but lengthen the iteration tail,
        so a vmapped batch of 32 envs ran 2x slower; 0 passes do not converge.
      warm_scaling: Ruiz passes of each tick starting from the previous tick's scaling
        (carried in the warm start; an episode's first tick starts from none), or None
        to scale every tick from scratch with `scaling` passes. Consecutive ticks' QPs
        are alike, so one pass (default) keeps the scaling converged: measured against
        10 passes from scratch (docs/wbc.md), the vmapped 32-env balance rollout ran
        17 % faster with the same survival and a shorter iteration tail. At least 1:
        with 0 an episode's ticks are never scaled, and they diverge.
      contact_height: a sole point at most this high (m) above the floor is active.
      max_normal_force: bound on each contact's normal force (N).
      joint_limit_horizon: look-ahead (s) of the joint-limit acceleration bounds.
      max_joint_acc: cap (rad/s^2 or m/s^2) of those bounds.
      w_com, w_height, w_orientation, w_feet, w_hands, w_posture: task weights.
      w_qacc, w_force: Tikhonov regularization of accelerations and
        (normalized) contact forces.
      kp_com, kd_com, kp_height, kd_height, kp_orientation, kd_orientation,
        kp_feet, kd_feet, kp_hands, kd_hands, kp_posture, kd_posture: task PD gains (1/s^2, 1/s).
      height_range: base height offset (m) of a `+-1` action.
      orientation_range: torso roll/pitch/yaw offset (rad) of a `+-1` action.
      com_range: horizontal CoM offset (m) of a `+-1` action.
      hand_range: hand position offset (m, torso frame) of a `+-1` action.
      step_range: horizontal swing-foot target offset (m) of a `+-1` action,
        around the foot's home place relative to the torso (heading frame).
      swing_threshold: a foot's swing entry above this releases its contacts and
        sends it to its step target (one foot at a time: the larger entry wins).
        Above zero, so the zero action stands on both feet and small exploration
        noise does not lift a foot.
      swing_height: height (m) above its home height a swinging foot is lifted to.
      landing_depth: a stance foot with no sole point in contact (landing after a
        step) is driven toward this far (m) below its home height, so it lands.
      kp_swing, kd_swing: PD gains (1/s^2, 1/s) of a swinging or landing foot.
      residual_range: posture residual (rad or m) of a `+-1` action.
      residual_joints: regex over actuator names: the joints with a posture
        residual in the action (the remaining joints track `home`).
    """

    rate: Literal["substep", "control"] = "substep"
    iterations: int = 0
    max_iter: int = 200
    eps: float = 1e-3
    scaling: int = 10
    warm_scaling: int | None = 1
    contact_height: float = 0.01
    max_normal_force: float = 1500.0
    joint_limit_horizon: float = 0.1
    max_joint_acc: float = 500.0
    w_com: float = 10.0
    w_height: float = 10.0
    w_orientation: float = 10.0
    w_feet: float = 100.0
    w_hands: float = 0.1
    w_posture: float = 0.1
    w_qacc: float = 1e-4
    w_force: float = 1e-3
    kp_com: float = 100.0
    kd_com: float = 20.0
    kp_height: float = 100.0
    kd_height: float = 20.0
    kp_orientation: float = 200.0
    kd_orientation: float = 28.0
    kp_feet: float = 100.0
    kd_feet: float = 30.0
    kp_hands: float = 100.0
    kd_hands: float = 20.0
    kp_posture: float = 100.0
    kd_posture: float = 20.0
    height_range: float = 0.08
    orientation_range: float = 0.2
    com_range: float = 0.03
    hand_range: float = 0.15
    step_range: float = 0.2
    swing_threshold: float = 0.5
    swing_height: float = 0.05
    landing_depth: float = 0.02
    kp_swing: float = 400.0
    kd_swing: float = 40.0
    residual_range: float = 0.3
    residual_joints: str = "waist|hip_pitch|knee|ankle_pitch"

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        if self.rate not in ("substep", "control"):
            raise ConfigError(f"wbc.rate must be 'substep' or 'control', got {self.rate!r}")
        check_value("wbc.iterations", self.iterations, 0)
        check_value("wbc.max_iter", self.max_iter, 1)
        check_value("wbc.eps", self.eps, 0.0)
        check_value("wbc.scaling", self.scaling, 0)
        if self.warm_scaling is not None:  # 0 would never scale: a first tick starts from none
            check_value("wbc.warm_scaling", self.warm_scaling, 1)
        check_value("wbc.swing_threshold", self.swing_threshold, 0.0, 1.0)
        for name in (
            "contact_height",
            "max_normal_force",
            "joint_limit_horizon",
            "step_range",
            "swing_height",
            "landing_depth",
        ):
            check_value(f"wbc.{name}", getattr(self, name), 0.0)
        if self.joint_limit_horizon <= 0:
            raise ConfigError("wbc.joint_limit_horizon must be > 0")
