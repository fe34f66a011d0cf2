"""`Disturber`: the disturbance families bound to one env, called at its hook points."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import mujoco
from mujoco import mjx

from mjxbot.disturbances.config import (
    DisturbanceConfig,
)
from mjxbot.disturbances.physics import (
    delay_action,
    drive_scales,
    episode_model,
    physics_spec,
    prepare_model,
    sample_physics,
)
from mjxbot.disturbances.push import advance_push, initial_push_schedule, sample_push
from mjxbot.disturbances.sensing import corrupt_observation, noise_std, sample_sensor_bias
from mjxbot.env.state import State
from mjxbot.names import lookup_ids
from mjxbot.robot import Robot

# Tag folded into an env's key to derive the disturbance stream. Folding in
# (instead of widening the env's own split) leaves the undisturbed streams, and
# so the initial states, unchanged when a family is switched on.
_KEY_TAG = 0xD157

# Counter names in `State.metrics`; all are cumulative per env.
METRIC_NAMES = (
    "disturbance/pushes",
    "disturbance/kicks",
    "disturbance/physics_samples",
    "disturbance/obs_dropped",
    "disturbance/obs_stale",
    "disturbance/events",
)


def set_curriculum(state: State, value: float | jax.Array) -> State:
    """Returns `state` (batched or not) with every env's curriculum scale set to `value`.

    Call it between jitted steps (or inside the training loop); the value must
    be in `[0, 1]`. A state without disturbances is returned unchanged.
    """
    if "curriculum" not in state.info:
        return state
    current = state.info["curriculum"]
    info = {**state.info, "curriculum": jnp.full_like(current, value)}
    return state.replace(info=info)


# ------------------------------------------------------- binding to an env
@dataclasses.dataclass(frozen=True)
class StepPlan:
    """What `Disturber.plan_step` decided before the physics of one control step.

    Attributes:
      model: the episode's model (per-episode physics applied).
      data: the physics state after any kick.
      action: `[nu]` the action to apply (delayed by the latency).
      drive: controller scales (`mjxbot.env.control.control_period`), or None.
      push: the active push for `push_xfrc`, or None.
      info: updated `info` entries (push schedule, action buffer).
      counts: int32 scalars of events sampled this step.
    """

    model: mjx.Model
    data: mjx.Data
    action: jax.Array
    drive: dict[str, jax.Array] | None
    push: dict[str, jax.Array] | None
    info: dict[str, Any]
    counts: dict[str, jax.Array]


class Disturber:
    """The disturbance families of one env, bound to its model.

    Build it before `mjx.put_model`: it checks body and geom names (raising
    `ModelError`) and may edit the MuJoCo model (see `prepare_model`).
    """

    def __init__(
        self,
        config: DisturbanceConfig,
        robot: Robot,
        n_substeps: int,
        ctrl_dt: float,
    ):
        mj_model = robot.model
        self.config = config
        self.active = config.env_active
        self.n_substeps = n_substeps
        self.ctrl_dt = ctrl_dt
        self.sim_dt = float(mj_model.opt.timestep)
        self.nbody = mj_model.nbody
        self.nu = mj_model.nu
        # Names are checked only for an enabled family, so another robot loads with it off.
        bodies = robot.config.push_bodies if config.push.enabled else ()
        body, what = mujoco.mjtObj.mjOBJ_BODY, "robot.push_bodies"
        body_ids = lookup_ids(mj_model, body, bodies, what)
        self.push_bodies = jnp.asarray(body_ids, dtype=jnp.int32)
        self.spec = physics_spec(mj_model, config.physics, robot.qvel_adr, robot.config.floor_geom)
        prepare_model(mj_model, config.physics, self.spec)

    # ------------------------------------------------------------- episode
    def reset_info(self, rng: jax.Array) -> dict[str, Any]:
        """Disturbance entries of a fresh episode's `info` (empty when all off)."""
        if not self.active:
            return {}
        cfg = self.config
        key_push, key_physics, key_sensing = jax.random.split(jax.random.fold_in(rng, _KEY_TAG), 3)
        info: dict[str, Any] = {"curriculum": jnp.asarray(cfg.curriculum, jnp.float32)}
        if cfg.push.enabled:
            info["push"] = initial_push_schedule(key_push, cfg.push, self.ctrl_dt)
        if cfg.physics.enabled:
            info["physics"] = sample_physics(key_physics, cfg.physics, self.spec)
            if "latency" in info["physics"]:
                info["action_buffer"] = jnp.zeros((self.spec.max_latency + 1, self.nu))
        if cfg.sensing.enabled:
            info["sensor_bias"] = sample_sensor_bias(key_sensing, cfg.sensing)
        return info

    def zero_metrics(self) -> dict[str, jax.Array]:
        """The counters, all zero (empty when all off)."""
        return {name: jnp.zeros(()) for name in METRIC_NAMES} if self.active else {}

    def observe_reset(self, rng: jax.Array, obs: dict[str, jax.Array], info: dict[str, Any]):
        """Corrupts the first observation of an episode (noise, bias, drop; never stale)."""
        if not self.config.sensing.enabled:
            return obs
        key = jax.random.fold_in(jax.random.fold_in(rng, _KEY_TAG), 1)
        state_obs, _, _ = self._corrupt(key, obs["state"], None, info["sensor_bias"])
        return {**obs, "state": state_obs}

    def _corrupt(self, key, obs, previous, bias, can_stale=True):
        std = noise_std(self.config.sensing, self.nu, obs.shape[-1])
        return corrupt_observation(key, obs, previous, bias, std, self.config.sensing, can_stale)

    # ---------------------------------------------------------------- step
    def plan_step(
        self, model: mjx.Model, data: mjx.Data, action: jax.Array, info: dict[str, Any]
    ) -> StepPlan:
        """Everything applied before the physics of a control step.

        Args:
          model: the env's nominal model.
          data: the physics state at the start of the step.
          action: `[nu]` the policy's action.
          info: the state's `info`.
        """
        cfg = self.config
        key_push = jax.random.fold_in(jax.random.fold_in(info["rng"], _KEY_TAG), 2)
        new_info: dict[str, Any] = {}
        zero = jnp.zeros((), jnp.int32)
        counts = {"pushes": zero, "kicks": zero}
        drive, push = None, None
        if cfg.physics.enabled:
            params = info["physics"]
            model = episode_model(model, params, self.spec)
            drive = drive_scales(params)
            if "latency" in params:
                buffer, action = delay_action(info["action_buffer"], action, params["latency"])
                new_info["action_buffer"] = buffer
        if cfg.push.enabled:
            sample = sample_push(
                key_push, cfg.push, self.push_bodies, info["curriculum"], self.sim_dt, self.ctrl_dt
            )
            schedule, push, started = advance_push(info["push"], sample, self.n_substeps)
            new_info["push"] = schedule
            if cfg.push.kick_probability > 0:
                kick = jnp.where(started, sample["kick"], 0.0)
                data = data.replace(qvel=data.qvel.at[0:3].add(kick))
                counts["kicks"] = (started & jnp.any(kick != 0)).astype(jnp.int32)
            counts["pushes"] = started.astype(jnp.int32)
        return StepPlan(model, data, action, drive, push, new_info, counts)

    def finish_step(
        self,
        state: State,
        obs: dict[str, jax.Array],
        info: dict[str, Any],
        done: jax.Array,
        plan: StepPlan,
        metrics: dict[str, jax.Array],
    ) -> tuple[dict[str, jax.Array], dict[str, Any], dict[str, jax.Array]]:
        """Everything after the auto-reset of a control step.

        Carries the curriculum (and, with `per_episode=False`, the physics)
        across episode boundaries, corrupts the actor observation and updates
        the cumulative counters.

        Args:
          state: the state the step started from.
          obs: observation after the auto-reset selection.
          info: `info` after the auto-reset selection.
          done: bool scalar, the step ended an episode.
          plan: this step's `plan_step` result.
          metrics: this step's metrics; counters are added to them.

        Returns:
          `(obs, info, metrics)`.
        """
        if not self.active:
            return obs, info, metrics
        cfg = self.config
        info = {**info, "curriculum": state.info["curriculum"]}
        resampled = jnp.zeros(())
        if cfg.physics.enabled:
            if cfg.physics.per_episode:
                resampled = done.astype(jnp.float32)
            else:
                info["physics"] = state.info["physics"]
        dropped = stale = jnp.zeros((), bool)
        if cfg.sensing.enabled:
            key = jax.random.fold_in(jax.random.fold_in(state.info["rng"], _KEY_TAG), 3)
            state_obs, dropped, stale = self._corrupt(
                key, obs["state"], state.obs["state"], info["sensor_bias"], ~done
            )
            obs = {**obs, "state": state_obs}
        counts = {
            "disturbance/pushes": plan.counts["pushes"],
            "disturbance/kicks": plan.counts["kicks"],
            "disturbance/physics_samples": resampled,
            "disturbance/obs_dropped": dropped,
            "disturbance/obs_stale": stale,
        }
        total = sum(v.astype(jnp.float32) for v in counts.values())
        counts["disturbance/events"] = total
        metrics = {**metrics}
        for name, value in counts.items():
            metrics[name] = state.metrics[name] + value.astype(jnp.float32)
        return obs, info, metrics
