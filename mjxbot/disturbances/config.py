"""The disturbance families' settings, one frozen dataclass each with an `enabled` switch."""

from __future__ import annotations

import dataclasses

from mjxbot.config import check_range, check_value
from mjxbot.errors import ConfigError

# ---------------------------------------------------------------- disturbances
# One frozen dataclass per disturbance family, each with an `enabled` switch.
# Ranges are `(min, max)` of a uniform distribution. `validate()` runs once, on
# construction; names of bodies and
# geoms are checked against the model when the env is built.


@dataclasses.dataclass(frozen=True)
class PushConfig:
    """External pushes: a wrench on a random body for a random duration.

    A push starts on a control-step boundary, lasts `duration` (rounded to
    physics substeps, at least one) and the next one starts `interval` later
    (rounded to control steps, at least one). Forces act at the body's centre
    of mass in the world frame. Magnitudes are multiplied by the curriculum.

    Attributes:
      enabled: switch for the family.
      force: push force magnitude (N).
      torque: push torque magnitude (N m), random direction; `(0, 0)` for none.
      vertical_share: the vertical component of the unit force direction is
        uniform in `[-vertical_share, vertical_share]`, the rest is horizontal
        with a uniform heading; 0 gives horizontal pushes.
      duration: push duration (s).
      interval: time from the start of one push to the start of the next (s).
      kick_probability: chance that a push also kicks the base velocity.
      kick_speed: horizontal base-velocity change of a kick (m/s).
    """

    enabled: bool = False
    force: tuple[float, float] = (50.0, 150.0)
    torque: tuple[float, float] = (0.0, 0.0)
    vertical_share: float = 0.2
    duration: tuple[float, float] = (0.05, 0.2)
    interval: tuple[float, float] = (1.0, 3.0)
    kick_probability: float = 0.0
    kick_speed: tuple[float, float] = (0.1, 0.5)

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        check_range("disturbances.push.force", self.force, lower=0.0)
        check_range("disturbances.push.torque", self.torque, lower=0.0)
        check_value("disturbances.push.vertical_share", self.vertical_share, 0.0, 1.0)
        check_range("disturbances.push.duration", self.duration, lower=0.0)
        check_range("disturbances.push.interval", self.interval, lower=0.0)
        check_value("disturbances.push.kick_probability", self.kick_probability, 0.0, 1.0)
        check_range("disturbances.push.kick_speed", self.kick_speed, lower=0.0)


@dataclasses.dataclass(frozen=True)
class PhysicsRandConfig:
    """Per-episode physics, resampled at every reset of an env (that env only).

    Scales multiply the model's nominal value; a range equal to its neutral
    value (`(1, 1)` for scales, `(0, 0)` for offsets and latency) is skipped
    and adds no work to the step.

    Attributes:
      enabled: switch for the family.
      per_episode: resample at every auto-reset; False keeps the values drawn
        at the first `reset` for the whole run (the Brax/Playground scheme).
      floor_friction: sliding friction coefficient of the floor; `(0, 0)` skips.
      mass_scale: per-body mass scale; inertia is scaled by the same factor.
      com_offset: per-body, per-axis centre-of-mass offset (m).
      damping_scale: per-dof joint damping scale.
      armature_scale: per-dof armature scale.
      frictionloss: per actuated joint dry friction (N m or N), absolute;
        `(0, 0)` skips, otherwise min must be positive (MJX treats a zero
        frictionloss row as a soft joint lock).
      strength_scale: per-actuator torque scale (torque and its limit).
      kp_scale: per-actuator proportional gain scale of the PD law.
      kd_scale: per-actuator derivative gain scale of the PD law.
      latency: action latency in control steps, `(min, max)` integers; the
        applied action is the policy's action from `latency` steps earlier.
      gravity_tilt: angle (rad) between gravity and the floor normal, with a
        uniform heading: a sloped floor.
    """

    enabled: bool = False
    per_episode: bool = True
    floor_friction: tuple[float, float] = (0.4, 1.2)
    mass_scale: tuple[float, float] = (0.9, 1.1)
    com_offset: tuple[float, float] = (-0.02, 0.02)
    damping_scale: tuple[float, float] = (0.8, 1.2)
    armature_scale: tuple[float, float] = (0.8, 1.2)
    frictionloss: tuple[float, float] = (0.0, 0.0)
    strength_scale: tuple[float, float] = (0.9, 1.1)
    kp_scale: tuple[float, float] = (0.9, 1.1)
    kd_scale: tuple[float, float] = (0.9, 1.1)
    latency: tuple[int, int] = (0, 2)
    gravity_tilt: tuple[float, float] = (0.0, 0.01)

    def __post_init__(self):
        self.validate()

    @classmethod
    def only(cls, **ranges: tuple[float, float]) -> PhysicsRandConfig:
        """Enabled, with every range at its neutral value except the `ranges` given.

        For measuring one randomization alone, e.g. `only(floor_friction=(0.4, 0.4))`.
        """
        neutral = {
            "floor_friction": (0.0, 0.0),
            "mass_scale": (1.0, 1.0),
            "com_offset": (0.0, 0.0),
            "damping_scale": (1.0, 1.0),
            "armature_scale": (1.0, 1.0),
            "strength_scale": (1.0, 1.0),
            "kp_scale": (1.0, 1.0),
            "kd_scale": (1.0, 1.0),
            "latency": (0, 0),
            "gravity_tilt": (0.0, 0.0),
        }
        return cls(enabled=True, **{**neutral, **ranges})

    def validate(self) -> None:
        where = "disturbances.physics"
        check_range(f"{where}.floor_friction", self.floor_friction, lower=0.0)
        for name in ("mass_scale", "damping_scale", "armature_scale", "strength_scale"):
            check_range(f"{where}.{name}", getattr(self, name), lower=0.0)
        check_range(f"{where}.kp_scale", self.kp_scale, lower=0.0)
        check_range(f"{where}.kd_scale", self.kd_scale, lower=0.0)
        check_range(f"{where}.com_offset", self.com_offset)
        check_range(f"{where}.frictionloss", self.frictionloss, lower=0.0)
        if self.frictionloss[1] > 0 and self.frictionloss[0] <= 0:
            raise ConfigError(
                f"{where}.frictionloss: min must be > 0 when max > 0 (got {self.frictionloss}); "
                "use (0, 0) to leave joint friction alone"
            )
        check_range(f"{where}.latency", self.latency, lower=0)
        check_range(f"{where}.gravity_tilt", self.gravity_tilt, lower=0.0, upper=1.5)
        if self.floor_friction != (0.0, 0.0) and self.floor_friction[0] <= 0:
            raise ConfigError(f"{where}.floor_friction: min must be > 0, got {self.floor_friction}")


@dataclasses.dataclass(frozen=True)
class SensingConfig:
    """Corruption of the actor's observation `obs["state"]` (the critic's stays clean).

    The channel layout is that of `HumanoidEnv.proprioception`: gravity (3),
    gyro (3), joint positions, joint velocities, last action, then any task
    channels. Noise is in observation units.

    Attributes:
      enabled: switch for the family.
      gravity_noise: std of white noise on the gravity-direction channels.
      gyro_noise: std of white noise on the angular-rate channels.
      joint_pos_noise: std of white noise on joint positions.
      joint_vel_noise: std of white noise on (scaled) joint velocities.
      extra_noise: std of white noise on task channels after the last action.
      gravity_bias: per-episode, per-channel IMU bias on gravity direction.
      gyro_bias: per-episode, per-channel IMU bias on angular rate.
      drop_probability: chance per step that the observation is all zeros.
      stale_probability: chance per step that the previous observation is
        repeated (never on the first step of an episode).
    """

    enabled: bool = False
    gravity_noise: float = 0.02
    gyro_noise: float = 0.05
    joint_pos_noise: float = 0.01
    joint_vel_noise: float = 0.05
    extra_noise: float = 0.0
    gravity_bias: tuple[float, float] = (-0.03, 0.03)
    gyro_bias: tuple[float, float] = (-0.05, 0.05)
    drop_probability: float = 0.01
    stale_probability: float = 0.02

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        where = "disturbances.sensing"
        for name in ("gravity_noise", "gyro_noise", "joint_pos_noise", "joint_vel_noise"):
            check_value(f"{where}.{name}", getattr(self, name), 0.0)
        check_value(f"{where}.extra_noise", self.extra_noise, 0.0)
        check_range(f"{where}.gravity_bias", self.gravity_bias)
        check_range(f"{where}.gyro_bias", self.gyro_bias)
        check_value(f"{where}.drop_probability", self.drop_probability, 0.0, 1.0)
        check_value(f"{where}.stale_probability", self.stale_probability, 0.0, 1.0)
        if self.drop_probability + self.stale_probability > 1.0:
            raise ConfigError(
                f"{where}: drop_probability + stale_probability must be <= 1, got "
                f"{self.drop_probability} + {self.stale_probability}"
            )


@dataclasses.dataclass(frozen=True)
class PartsConfig:
    """Spawn jitter and magnetic interference for manipulated parts.

    Used by manipulation tasks through `mjxbot.disturbances.sample_part_pose`
    and `magnetic_force`; the base env adds nothing for it.

    Attributes:
      enabled: switch for the family.
      position_jitter: per-axis offset of the spawn position in x and y (m).
      height_jitter: offset of the spawn height (m).
      yaw_jitter: rotation about the vertical axis (rad).
      tilt_jitter: rotation about a random horizontal axis (rad).
      magnet_strength: per-episode attraction (N) toward a steel point at
        `magnet_reference` distance.
      magnet_falloff: exponent p of the force law `(magnet_reference / r) ** p`.
      magnet_reference: distance (m) at which the force equals the strength.
      magnet_cutoff: no attraction beyond this distance (m).
      magnet_min_distance: distances are clamped to at least this (m), which
        bounds the force near contact.
    """

    enabled: bool = False
    position_jitter: tuple[float, float] = (-0.01, 0.01)
    height_jitter: tuple[float, float] = (0.0, 0.0)
    yaw_jitter: tuple[float, float] = (-0.3, 0.3)
    tilt_jitter: tuple[float, float] = (0.0, 0.05)
    magnet_strength: tuple[float, float] = (0.0, 0.5)
    magnet_falloff: float = 2.0
    magnet_reference: float = 0.02
    magnet_cutoff: float = 0.1
    magnet_min_distance: float = 0.005

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        where = "disturbances.parts"
        check_range(f"{where}.position_jitter", self.position_jitter)
        check_range(f"{where}.height_jitter", self.height_jitter)
        check_range(f"{where}.yaw_jitter", self.yaw_jitter)
        check_range(f"{where}.tilt_jitter", self.tilt_jitter, lower=0.0)
        check_range(f"{where}.magnet_strength", self.magnet_strength, lower=0.0)
        check_value(f"{where}.magnet_falloff", self.magnet_falloff, 0.0)
        for name in ("magnet_reference", "magnet_min_distance"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{where}.{name}: must be > 0, got {getattr(self, name)}")
        check_value(f"{where}.magnet_cutoff", self.magnet_cutoff, 0.0)


@dataclasses.dataclass(frozen=True)
class DisturbanceConfig:
    """All disturbance families of an env; each is off unless `enabled`.

    Attributes:
      push: external pushes and base-velocity kicks.
      physics: per-episode physics parameters and action latency.
      sensing: observation noise, IMU bias, dropped and stale observations.
      parts: part spawn jitter and magnetic interference (task-side).
      curriculum: initial curriculum scale in `[0, 1]`, carried in
        `info["curriculum"]`; it multiplies push forces, torques and kicks.
    """

    push: PushConfig = dataclasses.field(default_factory=PushConfig)
    physics: PhysicsRandConfig = dataclasses.field(default_factory=PhysicsRandConfig)
    sensing: SensingConfig = dataclasses.field(default_factory=SensingConfig)
    parts: PartsConfig = dataclasses.field(default_factory=PartsConfig)
    curriculum: float = 1.0

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        check_value("disturbances.curriculum", self.curriculum, 0.0, 1.0)

    @property
    def env_active(self) -> bool:
        """True when a family that the base env applies (push, physics, sensing) is on."""
        return self.push.enabled or self.physics.enabled or self.sensing.enabled


# ---------------------------------------------------------------- whole-body QP
