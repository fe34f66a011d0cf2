"""The vectorizable humanoid env core: PD control, substeps, auto-reset, divergence guard.

An env is a pair of pure functions, `reset(rng) -> State` and
`step(state, action) -> State`, safe to `jit` and `vmap`. Tasks subclass
`HumanoidEnv` and override the hooks `sample_task`, `observe`,
`reward_terms` and `terminated`. Nothing here jits: the caller chooses.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
from mujoco import mjx

from mjxbot.disturbances import Disturber, push_xfrc
from mjxbot.env.metrics import TaskMetrics
from mjxbot.errors import ConfigError, ModelError
from mjxbot.robot import Robot, load_robot
from mjxbot.types import EnvConfig, GuardConfig, Observation, State
from mjxbot.wbc import WholeBodyController

# Relative tolerance for ctrl_dt being an integer multiple of sim_dt.
_DT_RATIO_TOL = 1e-6


def tree_where(cond: jax.Array, on_true: Any, on_false: Any) -> Any:
    """Selects between two pytrees of equal structure with a scalar condition."""
    return jax.tree.map(lambda a, b: jnp.where(cond, a, b), on_true, on_false)


def torso_rotation(robot: Robot, data: mjx.Data) -> jax.Array:
    """`[3, 3]` world-from-torso rotation."""
    return data.xmat[robot.torso_id]


def gravity_in_torso(robot: Robot, data: mjx.Data) -> jax.Array:
    """`[3]` unit gravity direction in the torso frame; `[0, 0, -1]` when upright."""
    return torso_rotation(robot, data).T @ jnp.array([0.0, 0.0, -1.0])


def diverged(robot: Robot, data: mjx.Data, guard: GuardConfig) -> jax.Array:
    """True when finite physics has left every plausible state (`GuardConfig` bounds).

    Checks actuated-joint speeds and positions (against the model's ranges
    widened by `joint_range_margin`), base linear and angular speed, and the
    base's horizontal distance from the origin.
    """
    joint_speed = jnp.abs(data.qvel[robot.qvel_adr]).max()
    qpos = data.qpos[robot.qpos_adr]
    lo, hi = robot.joint_range[:, 0], robot.joint_range[:, 1]
    limited = robot.joint_limited
    margin = guard.joint_range_margin
    out_of_range = limited & ((qpos < lo - margin) | (qpos > hi + margin))
    return (
        (joint_speed > guard.max_joint_speed)
        | out_of_range.any()
        | (jnp.linalg.norm(data.qvel[0:3]) > guard.max_base_speed)
        | (jnp.linalg.norm(data.qvel[3:6]) > guard.max_base_angular_speed)
        | (jnp.linalg.norm(data.qpos[0:2]) > guard.max_base_distance)
    )


def default_reward_terms(config_class: type[EnvConfig]) -> tuple[str, ...]:
    """A task's reward terms: the keys of its config class's default `reward_scales`.

    The default dict is the one list of a task's terms (Playground's
    convention): metrics keys, the check on `reward_terms` and the rejection of
    unknown scales all read it.
    """
    field = next(f for f in dataclasses.fields(config_class) if f.name == "reward_scales")
    return tuple(field.default_factory())


def torso_velocity(robot: Robot, data: mjx.Data) -> tuple[jax.Array, jax.Array]:
    """Torso linear and angular velocity in the torso frame, each `[3]`.

    The free joint stores linear velocity in the world frame and angular
    velocity in the body frame.
    """
    linear = torso_rotation(robot, data).T @ data.qvel[0:3]
    return linear, data.qvel[3:6]


class HumanoidEnv:
    """Base class of every mjxbot task.

    Subclasses set `config_class` and override the task hooks. The base
    implements the control loop: actions in `[-1, 1]` become joint targets
    around `home`, a PD law at every physics substep turns them into torques
    clipped to the actuator limits, and finished or non-finite envs are reset
    inside `step` to a freshly sampled initial state.

    Disturbances (`config.disturbances`) are delegated to a `Disturber`
    (`mjxbot.disturbances`) at four hook points: `_fresh_episode` (per-episode
    samples into `info`), `reset` (first observation), and before and after
    the physics in `step`. With every family off these hooks add nothing.
    """

    config_class: ClassVar[type[EnvConfig]] = EnvConfig

    def __init__(self, config: EnvConfig | None = None):
        config = config if config is not None else self.config_class()
        self.config = config
        ratio = config.ctrl_dt / config.sim_dt if config.sim_dt > 0 else 0.0
        if ratio < 1 or abs(ratio - round(ratio)) > _DT_RATIO_TOL * ratio:
            raise ConfigError(
                f"ctrl_dt={config.ctrl_dt} must be a positive multiple of sim_dt={config.sim_dt}"
            )
        if config.episode_length < 1:
            raise ConfigError(f"episode_length must be >= 1, got {config.episode_length}")
        self.n_substeps = round(ratio)
        self.robot = load_robot(config.robot)
        self.mj_model = self.robot.model
        self.mj_model.opt.timestep = config.sim_dt
        if config.solver_iterations < 0 or config.ls_iterations < 0:
            raise ConfigError(
                "solver_iterations and ls_iterations must be >= 0 (0 keeps the MJCF's)"
            )
        if config.solver_iterations:
            self.mj_model.opt.iterations = config.solver_iterations
        if config.ls_iterations:
            self.mj_model.opt.ls_iterations = config.ls_iterations
        # Before put_model: the disturber checks names and may edit the MuJoCo model.
        self.disturber = Disturber(
            config.disturbances, self.mj_model, self.robot.qvel_adr, self.n_substeps, config.ctrl_dt
        )
        self.reward_term_names = default_reward_terms(self.config_class)
        unknown = sorted(set(config.reward_scales) - set(self.reward_term_names))
        if unknown:
            raise ConfigError(
                f"unknown reward term {unknown[0]!r}; terms of {type(self).__name__}: "
                f"{', '.join(self.reward_term_names)}"
            )
        self.mjx_model = self._put_model(self.mj_model, config.impl)
        self._data_template = mjx.make_data(self.mj_model, impl=config.impl)
        self._home_qpos = jnp.asarray(self.robot.home_qpos)
        self._home_targets = jnp.asarray(self.robot.home_joint_targets)
        self._qpos_adr = jnp.asarray(self.robot.qpos_adr)
        self._qvel_adr = jnp.asarray(self.robot.qvel_adr)
        self._kp = jnp.asarray(self.robot.kp)
        self._kd = jnp.asarray(self.robot.kd)
        # Joint-torque limits (gear included); `torque_to_ctrl` divides by the gear.
        self._torque_lo = jnp.asarray(self.robot.torque_limit[:, 0])
        self._torque_hi = jnp.asarray(self.robot.torque_limit[:, 1])
        # Whole-body QP (controller "qp"); None keeps the PD path untouched.
        self.wbc = (
            WholeBodyController(self.robot, config.wbc) if config.controller == "qp" else None
        )

    @staticmethod
    def _put_model(mj_model: mujoco.MjModel, impl: str) -> mjx.Model:
        try:
            return mjx.put_model(mj_model, impl=impl)
        except NotImplementedError as e:  # a RuntimeError: caught first
            raise ModelError(f"the model uses a feature MJX ({impl}) does not support: {e}") from e
        except (ImportError, RuntimeError) as e:
            raise ConfigError(f"MJX impl {impl!r} is not available here: {e}") from e

    # ----------------------------------------------------------------- sizes
    @property
    def dt(self) -> float:
        """Control period in seconds."""
        return self.config.ctrl_dt

    @property
    def action_size(self) -> int:
        return self.robot.nu

    @property
    def observation_size(self) -> dict[str, tuple[int, ...]]:
        """Shapes of each observation entry, e.g. `{"state": (75,), ...}`."""
        obs = jax.eval_shape(self.reset, jax.random.key(0)).obs
        return {k: v.shape for k, v in obs.items()}

    # ------------------------------------------------------------ task hooks
    def sample_task(self, rng: jax.Array) -> dict[str, jax.Array]:
        """Task entries of `info` sampled at every reset (targets, part poses)."""
        del rng
        return {}

    def observe(self, data: mjx.Data, info: dict[str, Any]) -> Observation:
        """Actor and critic observations; tasks append their own entries."""
        state = self.proprioception(data, info)
        return {"state": state, "privileged_state": jnp.concatenate([state, self.privileged(data)])}

    def reward_terms(
        self, data: mjx.Data, action: jax.Array, info: dict[str, Any]
    ) -> dict[str, jax.Array]:
        """Unscaled reward terms, one scalar each, keyed by the task's `reward_scales` terms.

        Shared terms come from `mjxbot.rewards`; `step` rejects a dict whose keys
        differ from the keys of the config class's default `reward_scales`.
        """
        raise NotImplementedError

    task_metrics: ClassVar[TaskMetrics] = TaskMetrics()

    def advance_task(
        self, data: mjx.Data, prev_info: dict[str, Any], info: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, jax.Array]]:
        """Task bookkeeping after the physics of a step (phases, timers, success).

        Args:
          data: the physics state after this step.
          prev_info: `info` before this step.
          info: `info` with this step's disturbance updates (push schedule).

        Returns:
          `(info updates, metrics keyed by task_metrics.names)`; the updated info
          is what `reward_terms` and `terminated` see.
        """
        del data, prev_info, info
        return {}, {}

    def before_physics(self, data: mjx.Data, action: jax.Array, info: dict[str, Any]) -> mjx.Data:
        """Task-side edits of the physics state before a control step's substeps.

        For scene elements the task drives (mocap bodies, `eq_active`, applied
        forces on objects). The default changes nothing.

        Args:
          data: the physics state at the start of the step.
          action: `[nu]` the action applied this step (after any latency).
          info: `info` at the start of the step.
        """
        del action, info
        return data

    def weighted_reward(self, terms: dict[str, jax.Array]) -> jax.Array:
        """`ctrl_dt * sum(scale * term)`: a step's reward, so a return is in weighted seconds.

        A term missing from `config.reward_scales` weighs 0.

        Raises:
          ValueError: when `terms` are not exactly the task's reward terms.
        """
        if set(terms) != set(self.reward_term_names):
            missing = sorted(set(self.reward_term_names) - set(terms))
            extra = sorted(set(terms) - set(self.reward_term_names))
            raise ValueError(
                f"{type(self).__name__}.reward_terms must return exactly the terms of "
                f"{self.config_class.__name__}.reward_scales "
                f"({', '.join(self.reward_term_names)}); "
                f"missing: {missing}, not configured: {extra}"
            )
        scales = self.config.reward_scales
        return self.config.ctrl_dt * sum(scales.get(k, 0.0) * v for k, v in terms.items())

    def terminated(self, data: mjx.Data, info: dict[str, Any]) -> jax.Array:
        """True when the episode fails; by default when the robot has fallen."""
        del info
        return self.fallen(data)

    # ------------------------------------------------------ shared features
    def fallen(self, data: mjx.Data) -> jax.Array:
        """True when the torso is below `fall_height` or tilted past `fall_tilt`."""
        upright = -gravity_in_torso(self.robot, data)[2]
        too_low = data.qpos[2] < self.config.fall_height
        return too_low | (upright < jnp.cos(self.config.fall_tilt))

    def proprioception(self, data: mjx.Data, info: dict[str, Any]) -> jax.Array:
        """What a real robot senses: `[3 + 3 + 3 * nu]`.

        Gravity direction and angular rate in the torso (IMU) frame, joint
        positions relative to home, scaled joint velocities and the last action.
        """
        _, angular = torso_velocity(self.robot, data)
        return jnp.concatenate(
            [
                gravity_in_torso(self.robot, data),
                angular,
                data.qpos[self._qpos_adr] - self._home_targets,
                0.1 * data.qvel[self._qvel_adr],
                info["last_action"],
            ]
        )

    def privileged(self, data: mjx.Data) -> jax.Array:
        """Simulator-only state for the critic: torso height and linear velocity, `[4]`."""
        linear, _ = torso_velocity(self.robot, data)
        return jnp.concatenate([data.qpos[2:3], linear])

    # ------------------------------------------------------------- mechanics
    def joint_targets(self, action: jax.Array) -> jax.Array:
        """`[nu]` joint position targets for an action in `[-1, 1]^nu`."""
        return self._home_targets + self.config.action_scale * jnp.clip(action, -1.0, 1.0)

    def pd_torque(
        self, data: mjx.Data, targets: jax.Array, drive: dict[str, jax.Array] | None = None
    ) -> jax.Array:
        """`[nu]` PD joint torques toward `targets`, clipped to the actuator limits.

        These are torques at the joints (`Robot.torque_limit`, gear included);
        `torque_to_ctrl` turns them into `data.ctrl`. `drive` optionally holds
        per-episode `[nu]` scales: `kp_scale` and `kd_scale` on the gains,
        `strength` on the torque and its limits.
        """
        if drive is None:
            error = targets - data.qpos[self._qpos_adr]
            torque = self._kp * error - self._kd * data.qvel[self._qvel_adr]
            return jnp.clip(torque, self._torque_lo, self._torque_hi)
        kp = self._kp * drive["kp_scale"] if "kp_scale" in drive else self._kp
        kd = self._kd * drive["kd_scale"] if "kd_scale" in drive else self._kd
        error = targets - data.qpos[self._qpos_adr]
        torque = jnp.clip(
            kp * error - kd * data.qvel[self._qvel_adr], self._torque_lo, self._torque_hi
        )
        return torque * drive["strength"] if "strength" in drive else torque

    def torque_to_ctrl(self, torque: jax.Array) -> jax.Array:
        """`[nu]` `data.ctrl` that applies the joint `torque`: `torque / gear` (`Robot.gear`)."""
        return self.robot.torque_to_ctrl(torque)

    def physics(
        self,
        model: mjx.Model,
        data: mjx.Data,
        targets: jax.Array,
        drive: dict[str, jax.Array] | None = None,
        push: dict[str, jax.Array] | None = None,
    ) -> mjx.Data:
        """Advances one control period: `n_substeps` PD-controlled `mjx.step`s.

        Args:
          model: the (per-episode) model.
          data: the physics state.
          targets: `[nu]` joint targets.
          drive: optional PD-law scales, see `pd_torque`.
          push: optional active push (`mjxbot.disturbances.advance_push`): its
            wrench is written to `xfrc_applied` for its first substeps and
            `xfrc_applied` is zero again when this returns.
        """
        if push is None:

            def substep(d: mjx.Data, _: None) -> tuple[mjx.Data, None]:
                ctrl = self.torque_to_ctrl(self.pd_torque(d, targets, drive))
                return mjx.step(model, d.replace(ctrl=ctrl)), None

            data, _ = jax.lax.scan(substep, data, None, length=self.n_substeps)
            return data

        def pushed_substep(d: mjx.Data, i: jax.Array) -> tuple[mjx.Data, None]:
            xfrc = push_xfrc(self.mj_model.nbody, push, i)
            ctrl = self.torque_to_ctrl(self.pd_torque(d, targets, drive))
            d = d.replace(ctrl=ctrl, xfrc_applied=xfrc)
            return mjx.step(model, d), None

        data, _ = jax.lax.scan(pushed_substep, data, jnp.arange(self.n_substeps))
        return data.replace(xfrc_applied=jnp.zeros_like(data.xfrc_applied))

    def controlled_physics(
        self,
        model: mjx.Model,
        data: mjx.Data,
        action: jax.Array,
        info: dict[str, Any],
        drive: dict[str, jax.Array] | None = None,
        push: dict[str, jax.Array] | None = None,
    ) -> tuple[mjx.Data, dict[str, Any]]:
        """One control period under the configured controller: `(data, info updates)`.

        `pd`: `physics` toward `joint_targets(action)`, no info updates. `qp`: the
        action is mapped to task targets (`WholeBodyController.targets`) and the
        whole-body QP gives the torques at every substep or once per control step
        (`wbc.rate`), warm-started from `info["wbc"]`; `drive["strength"]` scales
        its torques (PD gain scales do not apply).
        """
        if self.wbc is None:
            return self.physics(model, data, self.joint_targets(action), drive, push), {}
        wbc = self.wbc
        targets = wbc.targets(action)
        strength = drive.get("strength") if drive is not None else None

        def control(d: mjx.Data, warm: Any) -> tuple[jax.Array, Any]:
            tau, sol = wbc(model, d, targets, warm)
            return (tau if strength is None else tau * strength), wbc.reset_warm(sol)

        per_substep = self.config.wbc.rate == "substep"
        warm = info["wbc"]
        tau = jnp.zeros(self.robot.nu, data.qvel.dtype)
        if not per_substep:
            tau, warm = control(data, warm)

        def substep(carry: tuple, i: jax.Array) -> tuple[tuple, None]:
            d, tau, warm = carry
            if per_substep:
                tau, warm = control(d, warm)
            d = d.replace(ctrl=self.torque_to_ctrl(tau))
            if push is not None:
                d = d.replace(xfrc_applied=push_xfrc(self.mj_model.nbody, push, i))
            return (mjx.step(model, d), tau, warm), None

        (data, _, warm), _ = jax.lax.scan(substep, (data, tau, warm), jnp.arange(self.n_substeps))
        if push is not None:
            data = data.replace(xfrc_applied=jnp.zeros_like(data.xfrc_applied))
        return data, {"wbc": warm}

    def initial_data(self, rng: jax.Array) -> mjx.Data:
        """Home pose with uniform joint position and velocity noise, kinematics done."""
        key_qpos, key_qvel = jax.random.split(rng)
        cfg = self.config
        noise_q = jax.random.uniform(
            key_qpos, (self.robot.nu,), minval=-cfg.init_qpos_noise, maxval=cfg.init_qpos_noise
        )
        noise_v = jax.random.uniform(
            key_qvel, (self.robot.nu,), minval=-cfg.init_qvel_noise, maxval=cfg.init_qvel_noise
        )
        qpos = self._home_qpos.at[self._qpos_adr].add(noise_q)
        qvel = jnp.zeros(self.mj_model.nv).at[self._qvel_adr].set(noise_v)
        data = self._data_template.replace(qpos=qpos, qvel=qvel)
        return mjx.kinematics(self.mjx_model, data)

    def _fresh_episode(
        self, rng: jax.Array, carry: tuple[mjx.Data, jax.Array] | None = None
    ) -> tuple[mjx.Data, Observation, dict[str, Any]]:
        """A new episode; with `carry = (data, keep)` it starts from the robot state of
        `data` where `keep` is true (continuous operation), else from a sampled one."""
        key_data, key_task, key_next = jax.random.split(rng, 3)
        data = self.initial_data(key_data)
        if carry is not None:
            previous, keep = carry
            data = tree_where(keep, self._with_robot_state(data, previous), data)
        info = {
            "rng": key_next,
            "steps": jnp.zeros((), jnp.int32),
            "last_action": jnp.zeros(self.robot.nu),
            "truncation": jnp.zeros(()),
            **self.sample_task(key_task),
            **self.disturber.reset_info(rng),
            **({"wbc": self.wbc.init_state()} if self.wbc is not None else {}),
        }
        return data, self.observe(data, info), info

    def _with_robot_state(self, data: mjx.Data, source: mjx.Data) -> mjx.Data:
        """`data` with the free base and actuated joints of `source`, kinematics redone."""
        qpos_idx = np.r_[0:7, self.robot.qpos_adr]
        qvel_idx = np.r_[0:6, self.robot.qvel_adr]
        data = data.replace(
            qpos=data.qpos.at[qpos_idx].set(source.qpos[qpos_idx]),
            qvel=data.qvel.at[qvel_idx].set(source.qvel[qvel_idx]),
        )
        return mjx.kinematics(self.mjx_model, data)

    def _zero_metrics(self) -> dict[str, jax.Array]:
        metrics = {f"reward/{name}": jnp.zeros(()) for name in self.reward_term_names}
        metrics["nonfinite_resets"] = jnp.zeros(())
        metrics["diverged_resets"] = jnp.zeros(())
        metrics.update({name: jnp.zeros(()) for name in self.task_metrics.names})
        return {**metrics, **self.disturber.zero_metrics()}

    # ------------------------------------------------------------ public API
    def reset(self, rng: jax.Array) -> State:
        """Starts an episode. `rng` is a single key; vmap for a batch."""
        data, obs, info = self._fresh_episode(rng)
        obs = self.disturber.observe_reset(rng, obs, info)
        zero = jnp.zeros(())
        return State(data, obs, zero, zero, self._zero_metrics(), info)

    def step(self, state: State, action: jax.Array) -> State:
        """Advances one control step; finished envs are reset in place.

        Args:
          state: the current state (unbatched; vmap for a batch).
          action: `[action_size]` in `[-1, 1]`.

        Returns:
          The next state. When `done` is 1, `obs`, `data` and `info` already
          belong to the next episode, while `reward`, `done`, `metrics` and
          `info["truncation"]` describe the transition that ended the last one.
        """
        info = state.info
        key_reset, key_next = jax.random.split(info["rng"])
        if self.disturber.active:
            plan = self.disturber.plan_step(self.mjx_model, state.data, action, info)
            data = self.before_physics(plan.data, plan.action, info)
            data, ctrl_info = self.controlled_physics(
                plan.model, data, plan.action, info, plan.drive, plan.push
            )
        else:
            data = self.before_physics(state.data, action, info)
            data, ctrl_info = self.controlled_physics(self.mjx_model, data, action, info)
        nonfinite = ~(jnp.isfinite(data.qpos).all() & jnp.isfinite(data.qvel).all())
        planned = {**info, **plan.info} if self.disturber.active else info
        planned = {**planned, **ctrl_info}
        task_info, task_metrics = self.advance_task(data, info, planned)
        info_now = {**planned, **task_info}
        terms = self.reward_terms(data, action, info_now)
        reward = self.weighted_reward(terms)
        # Finite but absurd physics (or a reward past the bound) is reset like a NaN:
        # nothing from it reaches the learner.
        guard = self.config.guard
        blown = diverged(self.robot, data, guard) | ~(jnp.abs(reward) <= guard.max_reward)
        blown = blown & ~nonfinite
        broken = nonfinite | blown
        reward = jnp.where(broken, 0.0, reward)
        steps = info["steps"] + 1
        terminated = self.terminated(data, info_now) | broken
        truncated = (steps >= self.config.episode_length) & ~terminated
        done = terminated | truncated

        next_info = {**info_now, "rng": key_next, "steps": steps, "last_action": action}
        continued = (data, self.observe(data, next_info), next_info)
        # Continuous operation: a time-out keeps the robot where it is; a failure restarts it.
        carry = (data, truncated) if self.config.continuous else None
        restarted = self._fresh_episode(key_reset, carry)
        data, obs, next_info = tree_where(done, restarted, continued)
        next_info["truncation"] = truncated.astype(jnp.float32)

        metrics = {f"reward/{k}": jnp.where(broken, 0.0, v) for k, v in terms.items()}
        metrics["nonfinite_resets"] = state.metrics["nonfinite_resets"] + nonfinite
        metrics["diverged_resets"] = state.metrics["diverged_resets"] + blown
        metrics.update({k: jnp.where(broken, 0.0, v) for k, v in task_metrics.items()})
        if self.disturber.active:
            obs, next_info, metrics = self.disturber.finish_step(
                state, obs, next_info, done, plan, metrics
            )
        return State(data, obs, reward, done.astype(jnp.float32), metrics, next_info)
