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
