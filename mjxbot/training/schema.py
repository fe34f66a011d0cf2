"""The schema of `train.py` experiment files: `TrainConfig` and its sections."""

from __future__ import annotations

import dataclasses
from typing import Literal

from mjxbot.config import check_value
from mjxbot.env.config import EnvConfig
from mjxbot.errors import ConfigError

# ---------------------------------------------------------------- training
# Schema of `train.py` experiment files (configs/*.yaml). A size of 0 means
# "choose for the hardware found" (see `mjxbot.training.config.resolve_auto`).


# (field, min, max) of PPO's float settings.
PPO_FLOAT_RANGES = (
    ("learning_rate", 0.0, 1.0),
    ("entropy_cost", 0.0, 1.0),
    ("discounting", 0.0, 1.0),
    ("gae_lambda", 0.0, 1.0),
    ("clipping_epsilon", 0.0, 1.0),
    ("max_grad_norm", 0.0, float("inf")),
    ("reward_scaling", 0.0, float("inf")),
    ("vf_loss_coefficient", 0.0, float("inf")),
)


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

    def __post_init__(self):
        for name in ("num_timesteps", "num_envs"):
            if getattr(self, name) < 0:
                raise ConfigError(f"ppo.{name} must be >= 0 (0 = pick for the hardware)")
        for name in ("unroll_length", "num_minibatches", "num_updates_per_batch"):
            if getattr(self, name) < 1:
                raise ConfigError(f"ppo.{name} must be >= 1, got {getattr(self, name)}")
        if self.num_envs and self.num_envs % self.num_minibatches:
            raise ConfigError(
                f"ppo.num_minibatches={self.num_minibatches} must divide "
                f"ppo.num_envs={self.num_envs}"
            )
        for name, lo, hi in PPO_FLOAT_RANGES:
            value = getattr(self, name)
            if not lo <= value <= hi:
                raise ConfigError(f"ppo.{name}={value} must be in [{lo}, {hi}]")
        if self.learning_rate <= 0:
            raise ConfigError(f"ppo.learning_rate must be > 0, got {self.learning_rate}")


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

    def __post_init__(self):
        for name in ("policy_hidden_layer_sizes", "value_hidden_layer_sizes"):
            if any(size < 1 for size in getattr(self, name)):
                raise ConfigError(
                    f"network.{name}: every layer needs >= 1 unit, got {getattr(self, name)}"
                )
        if self.init_noise_std <= 0:
            raise ConfigError(f"network.init_noise_std must be > 0, got {self.init_noise_std}")
        if self.mean_init_scale is not None and self.mean_init_scale <= 0:
            raise ConfigError(f"network.mean_init_scale must be > 0, got {self.mean_init_scale}")


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

    def __post_init__(self):
        if self.log_every < 1:
            raise ConfigError("logging.log_every must be >= 1")


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

    def __post_init__(self):
        if self.max_to_keep < 1:
            raise ConfigError("checkpoint.max_to_keep must be >= 1")
        if self.every_steps < 0:
            raise ConfigError("checkpoint.every_steps must be >= 0")


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

    def __post_init__(self):
        if self.num_envs < 0:
            raise ConfigError("eval.num_envs must be >= 0")


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
            check_value(f"curriculum.{name}", getattr(self, name), 0.0, 1.0)
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
