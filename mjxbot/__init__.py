"""mjxbot: massively parallel MJX humanoid training with in-jit disturbances."""

from mjxbot import envs as _tasks  # noqa: E402,F401  (registers the tasks)
from mjxbot.env import HumanoidEnv
from mjxbot.errors import ConfigError, MjxbotError, ModelError
from mjxbot.registry import ALL_ENVS, load_env, register
from mjxbot.types import EnvConfig, RobotConfig, State

__all__ = [
    "ALL_ENVS",
    "ConfigError",
    "EnvConfig",
    "HumanoidEnv",
    "MjxbotError",
    "ModelError",
    "RobotConfig",
    "State",
    "load_env",
    "register",
]
__version__ = "0.1.0"
