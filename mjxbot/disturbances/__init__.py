"""Disturbances sampled inside the jitted `reset`/`step`: pushes, per-episode physics, sensing.

Small pure functions do the sampling (`sample_push`, `sample_physics`,
`sample_sensor_bias`, `sample_part_pose`) and the applying (`episode_model`,
`push_xfrc`, `delay_action`, `corrupt_observation`, `magnetic_force`).
`Disturber` binds them to one env: it resolves names against the model once,
and `HumanoidEnv` calls it at a few hook points (`reset_info`, `plan_step`,
`finish_step`, `observe_reset`). Families that are switched off are skipped
with static Python branches, so they add no operation to the traced step: with
every family off the env is the undisturbed env, bit for bit.

Per-episode physics parameters live in `info["physics"]` (a small pytree). The
step builds its model with `mjx.Model.tree_replace` from those leaves, so under
`vmap` only those leaves are batched and nothing is recompiled per episode.
Parameters that MuJoCo derives from the model in `mj_setConst`
(`body_invweight0`, `dof_invweight0`, used only to regularize constraints)
keep their nominal values, as in MuJoCo C when a model field is edited
without calling `mj_setConst`.

One module per family (`push`, `physics`, `sensing`, `parts`), their settings
(`config`) and the binding to an env (`disturber`).
"""

from mjxbot.disturbances.config import (
    DisturbanceConfig,
    PartsConfig,
    PhysicsRandConfig,
    PushConfig,
    SensingConfig,
)
from mjxbot.disturbances.disturber import METRIC_NAMES, Disturber, StepPlan, set_curriculum
from mjxbot.disturbances.parts import (
    axis_angle_quat,
    magnetic_force,
    quat_mul,
    sample_magnet_strength,
    sample_part_pose,
)
from mjxbot.disturbances.physics import (
    PhysicsSpec,
    delay_action,
    drive_scales,
    episode_model,
    physics_spec,
    prepare_model,
    sample_physics,
)
from mjxbot.disturbances.push import advance_push, initial_push_schedule, push_xfrc, sample_push
from mjxbot.disturbances.sampling import is_neutral, random_direction, uniform, unit_sphere
from mjxbot.disturbances.sensing import corrupt_observation, noise_std, sample_sensor_bias

__all__ = [
    "DisturbanceConfig",
    "Disturber",
    "METRIC_NAMES",
    "PartsConfig",
    "PhysicsRandConfig",
    "PhysicsSpec",
    "PushConfig",
    "SensingConfig",
    "StepPlan",
    "advance_push",
    "axis_angle_quat",
    "corrupt_observation",
    "delay_action",
    "drive_scales",
    "episode_model",
    "initial_push_schedule",
    "is_neutral",
    "magnetic_force",
    "noise_std",
    "physics_spec",
    "prepare_model",
    "push_xfrc",
    "quat_mul",
    "random_direction",
    "sample_magnet_strength",
    "sample_part_pose",
    "sample_physics",
    "sample_push",
    "sample_sensor_bias",
    "set_curriculum",
    "uniform",
    "unit_sphere",
]
