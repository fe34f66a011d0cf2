"""Types shared across mjxbot: the env state pytree and the config schema.

Config classes are frozen dataclasses: the schema that YAML experiment files
and `--set key=value` overrides are validated against (see `mjxbot.config`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import jax
from flax import struct
from mujoco import mjx

from mjxbot.errors import ConfigError

Observation = dict[str, jax.Array]


@struct.dataclass
class State:
    """The state of one env (or a batch of envs, with a leading batch axis).

    Attributes:
      data: MJX physics state.
      obs: `{"state": [obs], "privileged_state": [priv]}`; the critic may read
        the privileged entry, the actor reads only `state`.
      reward: scalar reward of the last step.
      done: 1.0 when the last step ended an episode (the env was then reset and
        `obs` is the first observation of the next episode).
      metrics: per-step scalars (reward terms, counters) for logging.
      info: bookkeeping carried across steps (rng, step count, last action,
        `truncation`, task-specific entries).
    """

    data: mjx.Data
    obs: Observation
    reward: jax.Array
    done: jax.Array
    metrics: dict[str, jax.Array] = struct.field(default_factory=dict)
    info: dict[str, Any] = struct.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class RobotConfig:
    """Which MJCF humanoid to load and how its parts are named.

    Attributes:
      mjcf: path to the scene XML; relative paths are resolved against the
        packaged assets folder first, then the working directory.
      torso_body: the floating-base body (it must own the free joint).
      feet: foot body names.
      hands: hand body names.
      home_key: the nominal standing pose and PD target: a keyframe name
        (`"home"`), a keyframe index (`0`, for models whose keyframes have no
        names), or `"qpos0"` (reserved: the model's default pose, for models
        without keyframes; it wins over a keyframe named "qpos0"). A pose given
        by index or `"qpos0"` must pass the standing check of
        `mjxbot.robot.check_standing`; a named keyframe is trusted as is.
      home_height_tolerance: standing check (m): the lowest foot-geom point must
        lie within this distance of the floor (z = 0), and the torso origin at
        least this far above every foot body's origin.
      gains: regex over actuator names -> (kp, kd); the first match wins and
        every actuator must match one entry.
    """

    mjcf: str = "humanoid.xml"
    torso_body: str = "torso"
    feet: tuple[str, ...] = ("left_foot", "right_foot")
    hands: tuple[str, ...] = ("left_hand", "right_hand")
    home_key: str | int = "home"
    home_height_tolerance: float = 0.05
    gains: dict[str, tuple[float, float]] = dataclasses.field(
        default_factory=lambda: {
            "hip": (600.0, 10.0),
            "knee": (800.0, 12.0),
            "ankle": (500.0, 8.0),
            "waist": (300.0, 6.0),
            "shoulder|elbow": (60.0, 2.0),
            "finger": (200.0, 5.0),
        }
    )

    def __post_init__(self):
        key = self.home_key
        if isinstance(key, bool) or not isinstance(key, str | int):
            raise ConfigError(f"robot.home_key: expected a keyframe name or index, got {key!r}")
        if isinstance(key, int) and key < 0:
            raise ConfigError(f"robot.home_key: a keyframe index must be >= 0, got {key}")
        if not self.home_height_tolerance > 0:
            raise ConfigError(
                f"robot.home_height_tolerance: must be > 0, got {self.home_height_tolerance}"
            )


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


# ---------------------------------------------------------------- training
# Schema of `train.py` experiment files (configs/*.yaml). A size of 0 means
# "choose for the hardware found" (see `mjxbot.training.config.resolve_auto`).


@dataclasses.dataclass(frozen=True)
class PPOConfig:
    """PPO hyperparameters (Brax names where Brax has one).

    Attributes:
      num_timesteps: env steps to train for; 0 picks a budget for the hardware.
      num_envs: parallel envs over all devices and hosts; 0 picks by hardware.
      unroll_length: env steps per env per iteration (the rollout `[T, B]`).
      num_minibatches: minibatches per epoch; must divide `num_envs`.
      num_updates_per_batch: SGD epochs over each rollout.
      learning_rate: Adam step size.
      entropy_cost: weight of the entropy bonus.
      discounting: discount factor gamma.
      gae_lambda: GAE lambda.
      clipping_epsilon: PPO ratio clip.
      max_grad_norm: global gradient-norm clip; 0 disables clipping.
      reward_scaling: rewards are multiplied by this in the loss.
      normalize_observations: keep running mean/std of observations.
      normalize_advantage: standardize advantages per minibatch.
      vf_loss_coefficient: weight of the value loss.
    """

    num_timesteps: int = 0
    num_envs: int = 0
    unroll_length: int = 20
    num_minibatches: int = 4
    num_updates_per_batch: int = 4
    learning_rate: float = 3e-4
    entropy_cost: float = 1e-3
    discounting: float = 0.97
    gae_lambda: float = 0.95
    clipping_epsilon: float = 0.2
    max_grad_norm: float = 1.0
    reward_scaling: float = 1.0
    normalize_observations: bool = True
    normalize_advantage: bool = True
    vf_loss_coefficient: float = 0.5


@dataclasses.dataclass(frozen=True)
class NetworkConfig:
    """Asymmetric actor-critic: the actor reads `policy_obs_key`, the critic `value_obs_key`.

    Attributes:
      policy_hidden_layer_sizes: actor MLP widths.
      value_hidden_layer_sizes: critic MLP widths.
      activation: hidden activation.
      policy_obs_key: observation entry the actor sees (deployable sensors).
      value_obs_key: observation entry the critic sees (may be privileged).
      distribution: action distribution of the actor. `normal` learns one std
        per action, starting at `init_noise_std`, and the env clips actions to
        [-1, 1]; `tanh_normal` (Brax's default) learns a state-dependent std
        that starts near softplus(0) = 0.69 and squashes samples into (-1, 1).
      init_noise_std: initial action noise std of the `normal` distribution.
        At 0.3 the sampled actions alone (0.09 rad of joint-target noise per
        step) fell most `balance` training envs even without pushes, which
        held the success-gated curriculum near 0; 0.1 let it rise but the
        policy did worse at full push strength (docs/plant.md).
      mean_init_scale: with `normal`, the variance scale of the actor's output
        layer at init; None keeps the hidden layers' initializer.

    The defaults start the policy at the zero action (the PD hold of `home`)
    with modest exploration: measured on `balance` (32 envs, 600k steps),
    Brax's `tanh_normal` start (random offsets near +-0.7 of the action
    range) ended worse than the PD hold, this start ended better.
    """

    policy_hidden_layer_sizes: tuple[int, ...] = (128, 128, 128)
    value_hidden_layer_sizes: tuple[int, ...] = (256, 256, 256)
    activation: Literal["swish", "relu", "tanh", "elu"] = "swish"
    policy_obs_key: str = "state"
    value_obs_key: str = "privileged_state"
    distribution: Literal["normal", "tanh_normal"] = "normal"
    init_noise_std: float = 0.3
    mean_init_scale: float | None = 0.01


@dataclasses.dataclass(frozen=True)
class WandbConfig:
    """Weights & Biases tracking.

    Attributes:
      mode: `auto` goes online when an API key and the network are there and
        offline otherwise; `disabled` writes nothing. `WANDB_MODE` in the
        environment wins over `auto`.
      project: W&B project.
      entity: W&B entity (user or team); None uses the account default.
      group: run group, e.g. a sweep name.
      tags: run tags.
      name: display name; None lets W&B choose.
    """

    mode: Literal["auto", "online", "offline", "disabled"] = "auto"
    project: str = "mjxbot"
    entity: str | None = None
    group: str | None = None
    tags: tuple[str, ...] = ()
    name: str | None = None


@dataclasses.dataclass(frozen=True)
class LoggingConfig:
    """Console, file and W&B logging.

    Attributes:
      log_every: iterations between log lines (metrics.jsonl, W&B, progress).
      progress_bar: show the rich progress bar on a terminal.
      plot: write `learning_curve.png` at the end.
      wandb: W&B settings.
    """

    log_every: int = 1
    progress_bar: bool = True
    plot: bool = True
    wandb: WandbConfig = dataclasses.field(default_factory=WandbConfig)


@dataclasses.dataclass(frozen=True)
class CheckpointConfig:
    """Orbax checkpoints under `<run_dir>/checkpoints`.

    Attributes:
      enabled: write checkpoints at all.
      every_steps: env steps between checkpoints; 0 saves only at the end
        (and on SIGINT/SIGTERM).
      max_to_keep: how many of the newest checkpoints to keep.
    """

    enabled: bool = True
    every_steps: int = 0
    max_to_keep: int = 3


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """Deterministic evaluation of the policy against the PD hold (zero action).

    Attributes:
      num_envs: envs (one episode each); 0 picks by hardware.
      seed: seed of the eval episodes (initial states, disturbances); the
        policy and the PD hold see the same ones.
      at_start: also evaluate the initial policy before training.
      compare_pd_hold: evaluate the PD hold at the end and print the table.
    """

    num_envs: int = 0
    seed: int = 1234
    at_start: bool = False
    compare_pd_hold: bool = True


@dataclasses.dataclass(frozen=True)
class CurriculumConfig:
    """Success-gated disturbance levels (`mjxbot.training.curriculum`).

    Each env carries a level in `[min_level, 1]` (`info["curriculum"]`, the
    scale of push forces, torques and kicks). When one of its episodes ends by
    time-out the level rises by `up`; when it ends by a fall it drops by
    `down`. Levels settle where an env survives `down / (up + down)` of its
    episodes. Evaluation always runs at level 1. Without push or kick
    disturbances the level has no effect.

    Attributes:
      enabled: drive the levels during training (on by default; without
        pushes it changes nothing); off keeps the env's own
        `disturbances.curriculum` for the whole run.
      start: level of every env at the start of a run.
      up: rise after a survived episode.
      down: drop after a fall.
      min_level: the level never goes below this.
    """

    enabled: bool = True
    start: float = 0.2
    up: float = 0.1
    down: float = 0.3
    min_level: float = 0.0

    def __post_init__(self):
        for name in ("start", "up", "down", "min_level"):
            _check_value(f"curriculum.{name}", getattr(self, name), 0.0, 1.0)
        if self.start < self.min_level:
            raise ConfigError(f"curriculum.start={self.start} is below min_level={self.min_level}")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """One training experiment.

    Attributes:
      env_name: registered task (`mjxbot.ALL_ENVS`).
      seed: seed of everything random in training.
      env: overrides of the task's own config class (resolved from
        `env_name` when the file is loaded).
      ppo: PPO hyperparameters.
      network: network sizes and observation keys.
      logging: console, files, W&B.
      checkpoint: checkpoint cadence and retention.
      eval: final evaluation.
      curriculum: disturbance levels driven by the trainer.
    """

    env_name: str = "balance"
    seed: int = 0
    env: EnvConfig = dataclasses.field(default_factory=EnvConfig)
    ppo: PPOConfig = dataclasses.field(default_factory=PPOConfig)
    network: NetworkConfig = dataclasses.field(default_factory=NetworkConfig)
    logging: LoggingConfig = dataclasses.field(default_factory=LoggingConfig)
    checkpoint: CheckpointConfig = dataclasses.field(default_factory=CheckpointConfig)
    eval: EvalConfig = dataclasses.field(default_factory=EvalConfig)
    curriculum: CurriculumConfig = dataclasses.field(default_factory=CurriculumConfig)


# ---------------------------------------------------------------- disturbances
# One frozen dataclass per disturbance family, each with an `enabled` switch.
# Ranges are `(min, max)` of a uniform distribution. `validate()` runs on
# construction (and again from `mjxbot.config.from_dict`); names of bodies and
# geoms are checked against the model when the env is built.


def _check_range(
    where: str, value: tuple[float, float], lower: float | None = None, upper: float | None = None
) -> None:
    """Raises `ConfigError` unless `value` is `(min, max)` with `lower <= min <= max <= upper`."""
    lo, hi = value
    if lo > hi:
        raise ConfigError(f"{where}: min {lo} is greater than max {hi}")
    if lower is not None and lo < lower:
        raise ConfigError(f"{where}: min {lo} is below the allowed minimum {lower}")
    if upper is not None and hi > upper:
        raise ConfigError(f"{where}: max {hi} is above the allowed maximum {upper}")


def _check_value(where: str, value: float, lower: float, upper: float | None = None) -> None:
    if value < lower or (upper is not None and value > upper):
        bound = f"[{lower}, {upper}]" if upper is not None else f">= {lower}"
        raise ConfigError(f"{where}: {value} must be {bound}")


@dataclasses.dataclass(frozen=True)
class PushConfig:
    """External pushes: a wrench on a random body for a random duration.

    A push starts on a control-step boundary, lasts `duration` (rounded to
    physics substeps, at least one) and the next one starts `interval` later
    (rounded to control steps, at least one). Forces act at the body's centre
    of mass in the world frame. Magnitudes are multiplied by the curriculum.

    Attributes:
      enabled: switch for the family.
      bodies: names of the bodies a push may hit (drawn uniformly).
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
    bodies: tuple[str, ...] = ("torso", "chest")
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
        if not self.bodies:
            raise ConfigError("disturbances.push.bodies: give at least one body name")
        _check_range("disturbances.push.force", self.force, lower=0.0)
        _check_range("disturbances.push.torque", self.torque, lower=0.0)
        _check_value("disturbances.push.vertical_share", self.vertical_share, 0.0, 1.0)
        _check_range("disturbances.push.duration", self.duration, lower=0.0)
        _check_range("disturbances.push.interval", self.interval, lower=0.0)
        _check_value("disturbances.push.kick_probability", self.kick_probability, 0.0, 1.0)
        _check_range("disturbances.push.kick_speed", self.kick_speed, lower=0.0)


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
      floor_geom: name of the floor geom whose friction is randomized (it is
        given contact priority, so its friction alone sets floor contacts).
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
    floor_geom: str = "floor"
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
        _check_range(f"{where}.floor_friction", self.floor_friction, lower=0.0)
        for name in ("mass_scale", "damping_scale", "armature_scale", "strength_scale"):
            _check_range(f"{where}.{name}", getattr(self, name), lower=0.0)
        _check_range(f"{where}.kp_scale", self.kp_scale, lower=0.0)
        _check_range(f"{where}.kd_scale", self.kd_scale, lower=0.0)
        _check_range(f"{where}.com_offset", self.com_offset)
        _check_range(f"{where}.frictionloss", self.frictionloss, lower=0.0)
        if self.frictionloss[1] > 0 and self.frictionloss[0] <= 0:
            raise ConfigError(
                f"{where}.frictionloss: min must be > 0 when max > 0 (got {self.frictionloss}); "
                "use (0, 0) to leave joint friction alone"
            )
        _check_range(f"{where}.latency", self.latency, lower=0)
        _check_range(f"{where}.gravity_tilt", self.gravity_tilt, lower=0.0, upper=1.5)
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
            _check_value(f"{where}.{name}", getattr(self, name), 0.0)
        _check_value(f"{where}.extra_noise", self.extra_noise, 0.0)
        _check_range(f"{where}.gravity_bias", self.gravity_bias)
        _check_range(f"{where}.gyro_bias", self.gyro_bias)
        _check_value(f"{where}.drop_probability", self.drop_probability, 0.0, 1.0)
        _check_value(f"{where}.stale_probability", self.stale_probability, 0.0, 1.0)
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
        _check_range(f"{where}.position_jitter", self.position_jitter)
        _check_range(f"{where}.height_jitter", self.height_jitter)
        _check_range(f"{where}.yaw_jitter", self.yaw_jitter)
        _check_range(f"{where}.tilt_jitter", self.tilt_jitter, lower=0.0)
        _check_range(f"{where}.magnet_strength", self.magnet_strength, lower=0.0)
        _check_value(f"{where}.magnet_falloff", self.magnet_falloff, 0.0)
        for name in ("magnet_reference", "magnet_min_distance"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{where}.{name}: must be > 0, got {getattr(self, name)}")
        _check_value(f"{where}.magnet_cutoff", self.magnet_cutoff, 0.0)


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
        _check_value("disturbances.curriculum", self.curriculum, 0.0, 1.0)

    @property
    def env_active(self) -> bool:
        """True when a family that the base env applies (push, physics, sensing) is on."""
        return self.push.enabled or self.physics.enabled or self.sensing.enabled


# ---------------------------------------------------------------- whole-body QP


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
      contact_geoms: sole geoms whose lowest points are the candidate contacts.
      floor_geom: the ground geom (its friction and priority enter the cones).
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
      residual_range: posture residual (rad or m) of a `+-1` action.
      residual_joints: regex over actuator names: the joints with a posture
        residual in the action (the remaining joints track `home`).
    """

    rate: Literal["substep", "control"] = "substep"
    iterations: int = 0
    max_iter: int = 200
    eps: float = 1e-3
    contact_geoms: tuple[str, ...] = (
        "left_toe_in",
        "left_toe_out",
        "left_heel_in",
        "left_heel_out",
        "right_toe_in",
        "right_toe_out",
        "right_heel_in",
        "right_heel_out",
    )
    floor_geom: str = "floor"
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
    residual_range: float = 0.3
    residual_joints: str = "waist|hip|knee|ankle"

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        if self.rate not in ("substep", "control"):
            raise ConfigError(f"wbc.rate must be 'substep' or 'control', got {self.rate!r}")
        _check_value("wbc.iterations", self.iterations, 0)
        _check_value("wbc.max_iter", self.max_iter, 1)
        _check_value("wbc.eps", self.eps, 0.0)
        if not self.contact_geoms:
            raise ConfigError("wbc.contact_geoms: give at least one sole geom")
        for name in ("contact_height", "max_normal_force", "joint_limit_horizon"):
            _check_value(f"wbc.{name}", getattr(self, name), 0.0)
        if self.joint_limit_horizon <= 0:
            raise ConfigError("wbc.joint_limit_horizon must be > 0")
