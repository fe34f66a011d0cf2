"""Brax PPO training for mjxbot tasks: one compiled step, orbax checkpoints, W&B logging."""

from mjxbot.training.checkpoint import Checkpointer, CheckpointError
from mjxbot.training.loop import TrainingInterrupted, train
from mjxbot.training.policy import load_policy

__all__ = ["CheckpointError", "Checkpointer", "TrainingInterrupted", "load_policy", "train"]
