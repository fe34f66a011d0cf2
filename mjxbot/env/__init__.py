"""The humanoid env: task hooks (`base`), controllers (`control`), the episode stage
(`episode`) and metric roles (`metrics`)."""

from mjxbot.env.base import (
    HumanoidEnv,
    default_reward_terms,
    gravity_in_torso,
    torso_rotation,
    torso_velocity,
)
from mjxbot.env.episode import diverged, tree_where
from mjxbot.env.metrics import TaskMetrics

__all__ = [
    "HumanoidEnv",
    "TaskMetrics",
    "default_reward_terms",
    "diverged",
    "gravity_in_torso",
    "torso_rotation",
    "torso_velocity",
    "tree_where",
]
