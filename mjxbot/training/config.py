"""Loading `train.py` experiments: YAML files and `--set` overrides over `TrainConfig`.

The `env` section is validated against the config class of the task named by
`env_name` (e.g. `StandConfig`), so task-specific keys are accepted and typos
are rejected with the task's own list of valid keys.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml

from mjxbot.config import _deep_update, from_dict, load_yaml, parse_overrides, to_dict
from mjxbot.errors import ConfigError
from mjxbot.registry import ALL_ENVS
from mjxbot.training.schema import TrainConfig

# Hardware defaults, used where the config leaves a size at 0.
GPU_NUM_ENVS = 4096
GPU_NUM_TIMESTEPS = 100_000_000
GPU_EVAL_ENVS = 1024
CPU_NUM_ENVS = 32
# The default CPU run (balance, 32 envs) must finish within 15 minutes on a
# 2-core CPU, including two MJX compiles (training step and evaluation,
# a few minutes together) and the final evaluations: at the ~1.1-1.5k
# training steps/s measured there, 600k steps take 7-9 minutes.
CPU_NUM_TIMESTEPS = 600_000
CPU_EVAL_ENVS = 128


def build(data: dict[str, Any]) -> TrainConfig:
    """Validates plain data into a `TrainConfig` with the task's env config class."""
    data = dict(data)
    env_data = data.pop("env", None) or {}
    if not isinstance(env_data, dict):
        raise ConfigError(f"env: expected a mapping, got {env_data!r}")
    config = from_dict(TrainConfig, data)
    if config.env_name not in ALL_ENVS:
        raise ConfigError(
            f"unknown env_name {config.env_name!r}; registered envs: {', '.join(sorted(ALL_ENVS))}"
        )
    env_class = ALL_ENVS[config.env_name].config_class
    scales = env_data.get("reward_scales")
    if isinstance(scales, dict):  # one term set keeps the others, as `load_env` does
        env_data = {**env_data, "reward_scales": {**env_class().reward_scales, **scales}}
    env_config = from_dict(env_class, env_data, "env")
    return dataclasses.replace(config, env=env_config)


def load(paths: list[str | Path] = (), overrides: list[str] = (), base: dict | None = None):
    """Defaults (or `base`), then each YAML file in order, then `key=value` overrides."""
    data: dict[str, Any] = dict(base or {})
    for path in paths:
        data = _deep_update(data, load_yaml(path))
    data = _deep_update(data, parse_overrides(list(overrides)))
    return build(data)


def resolve_auto(config: TrainConfig, backend: str, device_count: int = 1) -> TrainConfig:
    """Fills sizes left at 0 for the hardware: thousands of envs on a GPU, dozens on a CPU."""
    accel = backend in ("gpu", "cuda", "rocm", "tpu")
    ppo = config.ppo
    num_envs = ppo.num_envs or (GPU_NUM_ENVS if accel else CPU_NUM_ENVS)
    if not ppo.num_envs:
        # Round up so every device gets whole minibatches.
        unit = ppo.num_minibatches * device_count
        num_envs = -(-num_envs // unit) * unit
    num_timesteps = ppo.num_timesteps or (GPU_NUM_TIMESTEPS if accel else CPU_NUM_TIMESTEPS)
    eval_envs = config.eval.num_envs or (GPU_EVAL_ENVS if accel else CPU_EVAL_ENVS)
    if num_envs % device_count:
        raise ConfigError(
            f"ppo.num_envs={num_envs} must be a multiple of the device count {device_count}"
        )
    if (num_envs // device_count) % 1 or num_envs % ppo.num_minibatches:
        raise ConfigError(
            f"ppo.num_minibatches={ppo.num_minibatches} must divide ppo.num_envs={num_envs}"
        )
    return dataclasses.replace(
        config,
        ppo=dataclasses.replace(ppo, num_envs=num_envs, num_timesteps=num_timesteps),
        eval=dataclasses.replace(config.eval, num_envs=eval_envs),
    )


def dump(config: TrainConfig) -> str:
    """The config as YAML, loadable again with `load`."""
    return yaml.safe_dump(to_dict(config), sort_keys=False)


def from_yaml_text(text: str) -> TrainConfig:
    return build(yaml.safe_load(text))
