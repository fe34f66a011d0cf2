"""The nut station's config: the cycle, the station layout, tolerances and rewards."""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Literal

from mjxbot.disturbances.config import DisturbanceConfig, PartsConfig, PushConfig
from mjxbot.env.config import EnvConfig
from mjxbot.envs.nut_station.wrist import WRIST_NAMES
from mjxbot.errors import ConfigError
from mjxbot.robot import RobotConfig

SIDES = ("left", "right")
# Per side, the arm joints the station drives: the humanoid's four and the wrist it adds
# (`envs/nut_station/wrist.py`).
ARM_JOINTS = ("shoulder_pitch", "shoulder_roll", "shoulder_yaw", "elbow", *WRIST_NAMES)


def _nut_station_disturbances() -> DisturbanceConfig:
    # Nut pose in the feeder, part jitter and magnetism (parts), mild pushes.
    return DisturbanceConfig(
        push=PushConfig(enabled=True, force=(10.0, 40.0), interval=(1.5, 3.0)),
        parts=PartsConfig(enabled=True),
    )


def _nut_station_robot() -> RobotConfig:
    # Stiffer arm PD than the default (60, 2): position-controlled arms at the station
    # (the default lets the 0.3 kg m^2 arm move only a few percent of a target step per
    # control step). The wrist moves the hand alone (about 0.012 kg m^2 with its armature).
    gains = {**RobotConfig().gains, "shoulder|elbow": (300.0, 10.0), "wrist": (40.0, 1.0)}
    return RobotConfig(mjcf="nut_station.xml", gains=gains)


@dataclasses.dataclass(frozen=True)
class NutStationConfig(EnvConfig):
    """`nut_station` settings. Lengths in m, angles in rad, times in s.

    Cycle:
      takt: cycle time; the episode is one cycle, so `episode_length` must be
        `takt / ctrl_dt` control steps. (The pilot's takt is 76 s; simulation
        uses a short one.)
      arrival_time: time the conveyor takes to bring the part to the station.
      conveyor_travel: distance the part travels (along +y) to the station.

    Success (per side, see `seat_success`):
      position_tolerance: nut centre to seat point distance.
      yaw_tolerance: spline yaw error modulo the spline symmetry.
      tilt_tolerance: angle between nut axis and seat normal.
      max_nut_speed: linear speed below which the nut is at rest.
      max_nut_spin: angular speed below which the nut is at rest.
      spline_teeth: rotational symmetry order of the spline (6: hex).

    Gripper model:
      capture_radius: grip point to nut centre distance at which closing the
        fingers engages the spline (the grip point is inside the bore).
      capture_yaw: spline yaw error (modulo the symmetry) allowed to engage.
      finger_closed: finger joint position (of 0.04) above which a finger
        counts as closed; both fingers of a hand must be closed to hold.

    Layout, jitter and magnetism:
      part_position_jitter: part x/y offset at the station when
        `disturbances.parts` is on (nuts use `disturbances.parts` itself).
      part_yaw_jitter: part yaw at the station when `disturbances.parts` is on.
      steel_depth: depth of each seat's steel point below the seat; the part's
        magnetism (`disturbances.parts.magnet_*`) pulls nuts toward these.
      drop_height: a nut whose centre is below this height has been dropped.

    Actions:
      policy_mode: `joint`: the policy's action is the env's action (joint
        targets of arms, legs and waist, finger commands). `residual`: the env
        applies the scripted controller's action (`reference_action`) plus
        `residual_scale` times the policy's, clipped to `[-1, 1]`, and observes
        the scripted action; the zero action is the scripted controller.
      residual_scale: weight of the policy's action in `residual` mode.
      residual_actuators: regex over actuator names: in `residual` mode the
        policy acts on these only (its action has one entry per match, in
        actuator order); the others take the scripted action as it is.
      arm_action_scale: target offset (rad) of arm joints for an action of 1
        (legs and waist use `action_scale`).
      finger_action_scale: finger target (m) for an action of 1; the fingers
        open at -1 and close at +1.

    Rewards:
      reach_sigma, carry_sigma, align_sigma: length scales of the phase terms.
      lift_height: lift above the feeder that earns the full lift term.
    """

    robot: RobotConfig = dataclasses.field(default_factory=_nut_station_robot)
    episode_length: int = 200
    takt: float = 4.0
    arrival_time: float = 0.6
    conveyor_travel: float = 0.5
    position_tolerance: float = 0.002
    yaw_tolerance: float = math.radians(5.0)
    tilt_tolerance: float = math.radians(5.0)
    max_nut_speed: float = 0.01
    max_nut_spin: float = 0.5
    spline_teeth: int = 6
    capture_radius: float = 0.005
    capture_yaw: float = math.radians(7.0)
    finger_closed: float = 0.03
    part_position_jitter: tuple[float, float] = (-0.01, 0.01)
    part_yaw_jitter: tuple[float, float] = (-0.05, 0.05)
    steel_depth: float = 0.01
    drop_height: float = 0.7
    policy_mode: Literal["joint", "residual"] = "joint"
    residual_scale: float = 0.2
    residual_actuators: str = "."
    arm_action_scale: float = 1.5
    finger_action_scale: float = 0.04
    reach_sigma: float = 0.05
    carry_sigma: float = 0.05
    align_sigma: float = 0.01
    lift_height: float = 0.03
    disturbances: DisturbanceConfig = dataclasses.field(default_factory=_nut_station_disturbances)
    reward_scales: dict[str, float] = dataclasses.field(
        default_factory=lambda: {
            "reach": 0.5,
            "grasp": 1.0,
            "lift": 1.0,
            "carry": 1.0,
            "align": 1.0,
            "seat": 5.0,
            "drop": 2.0,
            "fall": 10.0,
            "energy": 1e-3,
            "action_rate": 0.01,
        }
    )

    def __post_init__(self):
        super().__post_init__()
        steps = self.takt / self.ctrl_dt
        if abs(steps - round(steps)) > 1e-6 or round(steps) != self.episode_length:
            raise ConfigError(
                f"nut_station runs one cycle per episode: episode_length must be "
                f"takt / ctrl_dt = {steps:g}, got {self.episode_length}"
            )
        try:
            re.compile(self.residual_actuators)
        except re.error as e:
            raise ConfigError(f"residual_actuators: not a regex ({e})") from e
        if not 0.0 < self.residual_scale <= 2.0:
            raise ConfigError(f"residual_scale must be in (0, 2], got {self.residual_scale}")
        if self.spline_teeth < 1:
            raise ConfigError(f"spline_teeth must be >= 1, got {self.spline_teeth}")
