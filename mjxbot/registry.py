"""Env registry: `load_env(name, **overrides)` over `ALL_ENVS`."""

from __future__ import annotations

from typing import Any

from mjxbot.config import merge
from mjxbot.env import HumanoidEnv
from mjxbot.env.config import EnvConfig
from mjxbot.envs import BUILTIN
from mjxbot.errors import ConfigError

ALL_ENVS: dict[str, type[HumanoidEnv]] = dict(BUILTIN)


def register(name: str):
    """Class decorator adding a task to `ALL_ENVS` under `name`."""

    def add(cls: type[HumanoidEnv]) -> type[HumanoidEnv]:
        ALL_ENVS[name] = cls
        return cls

    return add


def load_env(name: str, config: EnvConfig | None = None, **overrides: Any) -> HumanoidEnv:
    """Builds a registered env.

    Args:
      name: a key of `ALL_ENVS`.
      config: a full config of the task's `config_class`; defaults if None.
      **overrides: nested overrides, e.g. `episode_length=100` or
        `robot={"mjcf": "/path/robot.xml", "torso_body": "pelvis"}`.

    Raises:
      ConfigError: unknown name (the message lists the registered envs) or
        invalid overrides.
    """
    if name not in ALL_ENVS:
        raise ConfigError(f"unknown env {name!r}; registered envs: {', '.join(sorted(ALL_ENVS))}")
    cls = ALL_ENVS[name]
    config = config if config is not None else cls.config_class()
    if not isinstance(config, cls.config_class):
        raise ConfigError(f"env {name!r} needs a {cls.config_class.__name__}")
    return cls(merge(config, overrides) if overrides else config)
