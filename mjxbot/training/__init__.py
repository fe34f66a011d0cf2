"""Brax PPO training for mjxbot tasks: one compiled step, orbax checkpoints, W&B logging."""

from mjxbot.training.checkpoint import Checkpointer, CheckpointError
from mjxbot.training.loop import TrainingInterrupted, train
from mjxbot.training.policy import deterministic_act, restore_policy_params

__all__ = [
    "CheckpointError",
    "Checkpointer",
    "TrainingInterrupted",
    "deterministic_act",
    "restore_policy_params",
    "train",
]
