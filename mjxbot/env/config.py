"""Settings of every humanoid task (`EnvConfig`) and of its divergence guard."""

from __future__ import annotations

import dataclasses
from typing import Literal

from mjxbot.disturbances.config import DisturbanceConfig
from mjxbot.errors import ConfigError
from mjxbot.robot import RobotConfig
from mjxbot.wbc.config import WBCConfig

# Relative tolerance for ctrl_dt being an integer multiple of sim_dt.
DT_RATIO_TOL = 1e-6


@dataclasses.dataclass(frozen=True)
class GuardConfig:
    """Bounds past which an env's physics counts as diverged (`mjxbot.env.diverged`).

    A diverged env is reset inside the jitted step like a non-finite one, its
    reward and metrics for that step are zeroed, and it is counted in
    `diverged_resets`. The bounds sit far outside anything a standing or
    stepping humanoid reaches (docs/plant.md: under 10 rad/s when PD-held, a
    few tens when pushed) and far inside where float32 physics has lost meaning.

    Attributes:
      max_joint_speed: actuated-joint speed (rad/s or m/s).
      max_base_speed: floating-base linear speed (m/s).
      max_base_angular_speed: floating-base angular speed (rad/s).
      joint_range_margin: how far (rad or m) a limited joint may pass its range.
      max_base_distance: horizontal distance (m) of the base from the origin.
      max_reward: largest `|reward|` of one control step that reaches the
        learner; a step beyond it is treated as diverged. Rewards are
        `ctrl_dt`-scaled, so this is 250 weighted units per second at 0.02 s.
    """

    max_joint_speed: float = 100.0
    max_base_speed: float = 20.0
    max_base_angular_speed: float = 50.0
    joint_range_margin: float = 0.5
    max_base_distance: float = 100.0
    max_reward: float = 5.0

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if not value > 0:
                raise ConfigError(f"guard.{field.name}: must be > 0, got {value}")


@dataclasses.dataclass(frozen=True)
class EnvConfig:
    """Settings shared by every humanoid task.

    Attributes:
      robot: the robot model and its names.
      impl: MJX implementation, `jax` everywhere or `warp` where installed.
      ctrl_dt: control period in seconds (one `step` call).
      sim_dt: physics timestep; `ctrl_dt` must be a multiple of it.
      solver_iterations: constraint-solver iterations (`opt.iterations`); 0
        keeps the MJCF's. Too few leave contacts unconverged: feet chatter
        and slide (docs/plant.md).
      ls_iterations: line-search iterations (`opt.ls_iterations`); 0 keeps the MJCF's.
      episode_length: control steps before an episode is truncated.
      continuous: an episode that ends by time-out (not by a failure) hands its
        robot state (base and joint positions and velocities) to the next one,
        whose scene is fresh: continuous operation, such as a shift of cycles
        at a station. Off: every episode starts at `home`.
      action_scale: joint-target offset (rad or m) for an action of 1.
      init_qpos_noise: half-width of the uniform noise added to `home` joints.
      init_qvel_noise: half-width of the uniform initial joint-velocity noise.
      fall_height: torso height (m) below which the robot has fallen.
      fall_tilt: torso tilt from vertical (rad) beyond which it has fallen.
      reward_scales: reward term name -> weight; unknown terms are rejected.
        A step's reward is `ctrl_dt * sum(weight * term)`, so a return reads
        in weighted seconds (Playground's convention).
      guard: bounds of the divergence guard.
      disturbances: pushes, per-episode physics, sensing and part randomization
        sampled inside the jitted `reset`/`step`; all families off by default.
      controller: `pd` turns actions into joint targets of the PD law; `qp`
        reads actions as task targets of the whole-body QP (`mjxbot.wbc`).
      wbc: whole-body QP settings, used when `controller` is `qp`.
    """

    robot: RobotConfig = dataclasses.field(default_factory=RobotConfig)
    impl: Literal["jax", "warp"] = "jax"
    ctrl_dt: float = 0.02
    sim_dt: float = 0.004
    solver_iterations: int = 0
    ls_iterations: int = 0
    episode_length: int = 500
    continuous: bool = False
    action_scale: float = 0.3
    init_qpos_noise: float = 0.02
    init_qvel_noise: float = 0.05
    fall_height: float = 0.55
    fall_tilt: float = 0.8
    reward_scales: dict[str, float] = dataclasses.field(default_factory=dict)
    guard: GuardConfig = dataclasses.field(default_factory=lambda: GuardConfig())
    disturbances: DisturbanceConfig = dataclasses.field(default_factory=lambda: DisturbanceConfig())
    controller: Literal["pd", "qp"] = "pd"
    wbc: WBCConfig = dataclasses.field(default_factory=lambda: WBCConfig())

    def __post_init__(self):
        ratio = self.ctrl_dt / self.sim_dt if self.sim_dt > 0 else 0.0
        if ratio < 1 or abs(ratio - round(ratio)) > DT_RATIO_TOL * ratio:
            raise ConfigError(
                f"ctrl_dt={self.ctrl_dt} must be a positive multiple of sim_dt={self.sim_dt}"
            )
        if self.episode_length < 1:
            raise ConfigError(f"episode_length must be >= 1, got {self.episode_length}")
        if self.solver_iterations < 0 or self.ls_iterations < 0:
            raise ConfigError(
                "solver_iterations and ls_iterations must be >= 0 (0 keeps the MJCF's)"
            )

    @property
    def n_substeps(self) -> int:
        """Physics steps per control step."""
        return round(self.ctrl_dt / self.sim_dt)
