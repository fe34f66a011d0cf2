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
      home_key: keyframe used as the nominal standing pose and PD target.
      gains: regex over actuator names -> (kp, kd); the first match wins and
        every actuator must match one entry.
    """

    mjcf: str = "humanoid.xml"
    torso_body: str = "torso"
    feet: tuple[str, ...] = ("left_foot", "right_foot")
    hands: tuple[str, ...] = ("left_hand", "right_hand")
    home_key: str = "home"
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


@dataclasses.dataclass(frozen=True)
class EnvConfig:
    """Settings shared by every humanoid task.

    Attributes:
      robot: the robot model and its names.
      impl: MJX implementation, `jax` everywhere or `warp` where installed.
      ctrl_dt: control period in seconds (one `step` call).
      sim_dt: physics timestep; `ctrl_dt` must be a multiple of it.
      episode_length: control steps before an episode is truncated.
      action_scale: joint-target offset (rad or m) for an action of 1.
      init_qpos_noise: half-width of the uniform noise added to `home` joints.
      init_qvel_noise: half-width of the uniform initial joint-velocity noise.
      fall_height: torso height (m) below which the robot has fallen.
      fall_tilt: torso tilt from vertical (rad) beyond which it has fallen.
      reward_scales: reward term name -> weight; unknown terms are rejected.
    """

    robot: RobotConfig = dataclasses.field(default_factory=RobotConfig)
    impl: Literal["jax", "warp"] = "jax"
    ctrl_dt: float = 0.02
    sim_dt: float = 0.004
    episode_length: int = 500
    action_scale: float = 0.3
    init_qpos_noise: float = 0.02
    init_qvel_noise: float = 0.05
    fall_height: float = 0.55
    fall_tilt: float = 0.8
    reward_scales: dict[str, float] = dataclasses.field(default_factory=dict)


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
      init_noise_std: initial action noise std (before tanh).
    """

    policy_hidden_layer_sizes: tuple[int, ...] = (128, 128, 128)
    value_hidden_layer_sizes: tuple[int, ...] = (256, 256, 256)
    activation: Literal["swish", "relu", "tanh", "elu"] = "swish"
    policy_obs_key: str = "state"
    value_obs_key: str = "privileged_state"
    init_noise_std: float = 1.0


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
    """

    env_name: str = "balance"
    seed: int = 0
    env: EnvConfig = dataclasses.field(default_factory=EnvConfig)
    ppo: PPOConfig = dataclasses.field(default_factory=PPOConfig)
    network: NetworkConfig = dataclasses.field(default_factory=NetworkConfig)
    logging: LoggingConfig = dataclasses.field(default_factory=LoggingConfig)
    checkpoint: CheckpointConfig = dataclasses.field(default_factory=CheckpointConfig)
    eval: EvalConfig = dataclasses.field(default_factory=EvalConfig)
