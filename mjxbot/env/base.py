"""The humanoid env: task hooks composed with the disturbance, controller and episode stages.

An env is a pair of pure functions, `reset(rng) -> State` and
`step(state, action) -> State`, safe to `jit` and `vmap`. Tasks subclass
`HumanoidEnv` and override only the hooks listed on it. Nothing here jits:
the caller chooses.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
from mujoco import mjx

from mjxbot.disturbances import Disturber
from mjxbot.env import episode
from mjxbot.env.config import EnvConfig
from mjxbot.env.control import (
    ZERO_ACTION_ACTORS,
    Controller,
    PDController,
    QPController,
    control_period,
)
from mjxbot.env.metrics import TaskMetrics
from mjxbot.env.state import Observation, State
from mjxbot.errors import ConfigError, ModelError
from mjxbot.robot import ModelEdit, Robot, load_robot
from mjxbot.wbc import WholeBodyController


def torso_rotation(robot: Robot, data: mjx.Data) -> jax.Array:
    """`[3, 3]` world-from-torso rotation."""
    return data.xmat[robot.torso_id]


def gravity_in_torso(robot: Robot, data: mjx.Data) -> jax.Array:
    """`[3]` unit gravity direction in the torso frame; `[0, 0, -1]` when upright."""
    return torso_rotation(robot, data).T @ jnp.array([0.0, 0.0, -1.0])


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

    One control step runs these stages in order:

    0. the task's `compose_action` (the policy's action, or a residual on the
       task's reference controller);
    1. disturbances before the physics (`Disturber.plan_step`): the episode's
       randomized model and drive scales, action latency, push schedule, kicks;
    2. the task's `before_physics` (mocap bodies, welds, forces on parts);
    3. the controller (`mjxbot.env.control`): PD toward joint targets, or the
       whole-body QP, through one substep loop of `mjx.step`s;
    4. the task's `advance_task`, `reward_terms` and `terminated`;
    5. the episode stage (`mjxbot.env.episode`): divergence guard, truncation,
       auto-reset into a fresh episode, counters;
    6. disturbances after the auto-reset (`Disturber.finish_step`): curriculum
       carry, sensor noise, disturbance counters.

    Task hooks, the whole contract between a task and the base:
    `model_edit`, `sample_task`, `place_scene`, `observe`, `action_scale`, `compose_action`,
    `before_physics`, `advance_task`, `reward_terms`, `terminated`, and the class attributes
    `config_class` and `task_metrics`. The shared features `fallen`,
    `proprioception` and `privileged` are there to call from them.
    """

    config_class: ClassVar[type[EnvConfig]] = EnvConfig
    task_metrics: ClassVar[TaskMetrics] = TaskMetrics()

    def __init__(self, config: EnvConfig | None = None):
        config = config if config is not None else self.config_class()
        self.config = config
        self.n_substeps = config.n_substeps
        self.robot = load_robot(config.robot, self.model_edit())
        self.mj_model = self.robot.model
        self.mj_model.opt.timestep = config.sim_dt
        if config.solver_iterations:
            self.mj_model.opt.iterations = config.solver_iterations
        if config.ls_iterations:
            self.mj_model.opt.ls_iterations = config.ls_iterations
        # Before put_model: the disturber checks names and may edit the MuJoCo model.
        self.disturber = Disturber(config.disturbances, self.robot, self.n_substeps, config.ctrl_dt)
        self.reward_term_names = default_reward_terms(self.config_class)
        unknown = sorted(set(config.reward_scales) - set(self.reward_term_names))
        if unknown:
            raise ConfigError(
                f"unknown reward term {unknown[0]!r}; terms of {type(self).__name__}: "
                f"{', '.join(self.reward_term_names)}"
            )
        self.mjx_model = self._put_model(self.mj_model, config.impl)
        self._data_template = mjx.make_data(self.mj_model, impl=config.impl)
        self.wbc = (
            WholeBodyController(self.robot, config.wbc) if config.controller == "qp" else None
        )
        self.controller = self._make_controller()

    @staticmethod
    def _put_model(mj_model: mujoco.MjModel, impl: str) -> mjx.Model:
        try:
            return mjx.put_model(mj_model, impl=impl)
        except NotImplementedError as e:  # a RuntimeError: caught first
            raise ModelError(f"the model uses a feature MJX ({impl}) does not support: {e}") from e
        except (ImportError, RuntimeError) as e:
            raise ConfigError(f"MJX impl {impl!r} is not available here: {e}") from e

    def _make_controller(self) -> Controller:
        if self.wbc is None:
            return PDController(self.robot, np.broadcast_to(self.action_scale(), (self.robot.nu,)))
        return QPController(self.wbc, per_substep=self.config.wbc.rate == "substep")

    # ----------------------------------------------------------------- sizes
    @property
    def dt(self) -> float:
        """Control period in seconds."""
        return self.config.ctrl_dt

    @property
    def action_size(self) -> int:
        return self.robot.nu

    @functools.cached_property
    def abstract_state(self) -> State:
        """`reset`'s state as shapes and dtypes (`jax.eval_shape`): traced once per env, as
        the trainer and evaluator ask for it several times and an MJX trace takes seconds."""
        return jax.eval_shape(self.reset, jax.random.PRNGKey(0))  # the trainer's key type

    @property
    def observation_size(self) -> dict[str, tuple[int, ...]]:
        """Shapes of each observation entry, e.g. `{"state": (75,), ...}`."""
        return {k: v.shape for k, v in self.abstract_state.obs.items()}

    # ------------------------------------------------------------ task hooks
    def sample_task(self, rng: jax.Array) -> dict[str, jax.Array]:
        """Task entries of `info` sampled at every episode start (targets, part poses)."""
        del rng
        return {}

    def place_scene(self, data: mjx.Data, info: dict[str, Any]) -> mjx.Data:
        """The task's scene at an episode start, from `sample_task`'s entries of `info`.

        Called after the robot's `qpos`/`qvel` are set and before the episode's one
        kinematics pass: a task sets the positions of its bodies (free-joint `qpos`,
        `mocap_pos`/`mocap_quat`) only. The default changes nothing.
        """
        del info
        return data

    def observe(self, data: mjx.Data, info: dict[str, Any]) -> Observation:
        """Actor and critic observations; tasks append their own entries."""
        state = self.proprioception(data, info)
        return {"state": state, "privileged_state": jnp.concatenate([state, self.privileged(data)])}

    def action_scale(self) -> np.ndarray | float:
        """Radians of joint target per unit action: a scalar or `[nu]` (PD controller)."""
        return self.config.action_scale

    def model_edit(self) -> ModelEdit | None:
        """What the task adds to the robot's MJCF before it compiles (`mjxbot.robot.load_model`),
        e.g. joints and actuators only this task needs; None keeps the MJCF as it is.
        Called in `__init__` with `self.config` set."""
        return None

    @property
    def zero_action_actor(self) -> str:
        """Evaluations' name for the zero action on this env: the controller's hold
        (`pd_hold`, `qp_only`), or a task's reference controller (see `compose_action`)."""
        return ZERO_ACTION_ACTORS[self.config.controller]

    def compose_action(self, state: State, action: jax.Array) -> jax.Array:
        """`[nu]` the action the env applies for the policy's `action` in `state`.

        The policy's action itself here; a task with a reference controller adds
        the policy's action to the reference's (residual policies).
        """
        del state
        return action

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

    def reward_terms(
        self, data: mjx.Data, action: jax.Array, info: dict[str, Any]
    ) -> dict[str, jax.Array]:
        """Unscaled reward terms, one scalar each, keyed by the task's `reward_scales` terms.

        Shared terms come from `mjxbot.rewards`; `step` rejects a dict whose keys
        differ from the keys of the config class's default `reward_scales`.
        """
        raise NotImplementedError

    def terminated(self, data: mjx.Data, info: dict[str, Any]) -> jax.Array:
        """True when the episode fails; by default when the robot has fallen."""
        del info
        return self.fallen(data)

    # ------------------------------------------------------ shared features
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
        robot = self.robot
        _, angular = torso_velocity(robot, data)
        return jnp.concatenate(
            [
                gravity_in_torso(robot, data),
                angular,
                data.qpos[robot.qpos_adr] - robot.home_joint_targets,
                0.1 * data.qvel[robot.qvel_adr],
                info["last_action"],
            ]
        )

    def privileged(self, data: mjx.Data) -> jax.Array:
        """Simulator-only state for the critic: torso height and linear velocity, `[4]`."""
        linear, _ = torso_velocity(self.robot, data)
        return jnp.concatenate([data.qpos[2:3], linear])

    # ------------------------------------------------------- episode starts
    def initial_state(self, rng: jax.Array) -> tuple[jax.Array, jax.Array]:
        """`(qpos [nq], qvel [nv])`: the home pose with uniform joint position and velocity
        noise."""
        key_qpos, key_qvel = jax.random.split(rng)
        cfg, robot = self.config, self.robot
        noise_q = jax.random.uniform(
            key_qpos, (robot.nu,), minval=-cfg.init_qpos_noise, maxval=cfg.init_qpos_noise
        )
        noise_v = jax.random.uniform(
            key_qvel, (robot.nu,), minval=-cfg.init_qvel_noise, maxval=cfg.init_qvel_noise
        )
        qpos = jnp.asarray(robot.home_qpos).at[robot.qpos_adr].add(noise_q)
        qvel = jnp.zeros(self.mj_model.nv).at[robot.qvel_adr].set(noise_v)
        return qpos, qvel

    def initial_data(self, rng: jax.Array) -> mjx.Data:
        """`initial_state`'s data, kinematics done."""
        qpos, qvel = self.initial_state(rng)
        return mjx.kinematics(self.mjx_model, self._data_template.replace(qpos=qpos, qvel=qvel))

    def fresh_episode(
        self, rng: jax.Array, carry: tuple[mjx.Data, jax.Array] | None = None
    ) -> tuple[mjx.Data, Observation, dict[str, Any]]:
        """A new episode's `(data, obs, info)`; with `carry = (data, keep)` the robot
        starts from the state of `data` (free base and actuated joints) where `keep` is
        true (continuous operation), else from a sampled one. The task places its scene
        either way."""
        return self._traced["fresh_episode"](rng, carry)

    def _fresh_episode(
        self, rng: jax.Array, carry: tuple[mjx.Data, jax.Array] | None
    ) -> tuple[mjx.Data, Observation, dict[str, Any]]:
        key_data, key_task, key_next = jax.random.split(rng, 3)
        qpos, qvel = self.initial_state(key_data)
        if carry is not None:
            # Chosen before the kinematics, so that one kinematics pass serves both cases
            # (an MJX kinematics pass is a sizeable part of a step's trace and compile).
            previous, keep = carry
            qpos_idx = np.r_[0:7, self.robot.qpos_adr]
            qvel_idx = np.r_[0:6, self.robot.qvel_adr]
            qpos = jnp.where(keep, qpos.at[qpos_idx].set(previous.qpos[qpos_idx]), qpos)
            qvel = jnp.where(keep, qvel.at[qvel_idx].set(previous.qvel[qvel_idx]), qvel)
        info = {
            "rng": key_next,
            "steps": jnp.zeros((), jnp.int32),
            "last_action": jnp.zeros(self.robot.nu),
            "truncation": jnp.zeros(()),
            "controller": self.controller.init_state(),
            **self.sample_task(key_task),
            **self.disturber.reset_info(rng),
        }
        data = self.place_scene(self._data_template.replace(qpos=qpos, qvel=qvel), info)
        data = mjx.kinematics(self.mjx_model, data)
        return data, self.observe(data, info), info

    def _zero_metrics(self) -> dict[str, jax.Array]:
        metrics = {f"reward/{name}": jnp.zeros(()) for name in self.reward_term_names}
        metrics["nonfinite_resets"] = jnp.zeros(())
        metrics["diverged_resets"] = jnp.zeros(())
        metrics.update({name: jnp.zeros(()) for name in self.task_metrics.names})
        return {**metrics, **self.disturber.zero_metrics()}

    # ------------------------------------------------------------ public API
    def reset(self, rng: jax.Array) -> State:
        """Starts an episode. `rng` is a single key; vmap for a batch."""
        return self._traced["reset"](rng)

    def step(self, state: State, action: jax.Array) -> State:
        """Advances one control step through the stages in the class docstring.

        Args:
          state: the current state (unbatched; vmap for a batch).
          action: `[action_size]` in `[-1, 1]`.

        Returns:
          The next state. When `done` is 1, `obs`, `data` and `info` already
          belong to the next episode, while `reward`, `done`, `metrics` and
          `info["truncation"]` describe the transition that ended the last one.
        """
        return self._traced["step"](state, action)

    @functools.cached_property
    def _traced(self) -> dict[str, Any]:
        """`reset`, `step` and `fresh_episode` as nested `jit`s of this env.

        A nested `jit` is traced once per argument types and the jaxpr is cached, so every
        program built on this env (the training step, the evaluator's reset and rollout,
        `abstract_state`) reuses one trace of each, and `reset` and `step` share their
        episode start: an MJX trace takes seconds. XLA inlines nested calls when the
        caller compiles, so the compiled programs are unchanged. The cache is keyed by
        these partials: `forget_traces` drops them when the env's arrays are replaced.
        """
        return {
            "reset": jax.jit(functools.partial(HumanoidEnv._reset, self)),
            "step": jax.jit(functools.partial(HumanoidEnv._step, self)),
            "fresh_episode": jax.jit(functools.partial(HumanoidEnv._fresh_episode, self)),
        }

    def forget_traces(self) -> None:
        """Drops the cached traces (call after replacing the env's model or data arrays)."""
        self.__dict__.pop("_traced", None)

    def _reset(self, rng: jax.Array) -> State:
        data, obs, info = self.fresh_episode(rng)
        obs = self.disturber.observe_reset(rng, obs, info)
        zero = jnp.zeros(())
        return State(data, obs, zero, zero, self._zero_metrics(), info)

    def _step(self, state: State, action: jax.Array) -> State:
        info = state.info
        key_reset, key_next = jax.random.split(info["rng"])
        action = self.compose_action(state, action)
        plan = self.disturber.plan_step(self.mjx_model, state.data, action, info)
        data = self.before_physics(plan.data, plan.action, info)
        data, controller_state = control_period(
            self.robot,
            self.controller,
            plan.model,
            data,
            self.controller.command(plan.action),
            info["controller"],
            self.n_substeps,
            plan.drive,
            plan.push,
        )
        planned = {**info, **plan.info, "controller": controller_state}
        task_info, task_metrics = self.advance_task(data, info, planned)
        info_now = {**planned, **task_info}
        terms = self.reward_terms(data, action, info_now)
        reward = self.weighted_reward(terms)
        # Nothing from broken physics reaches the learner.
        health = episode.check_health(self.robot, data, reward, self.config.guard)
        reward = jnp.where(health.broken, 0.0, reward)
        steps = info["steps"] + 1
        end = episode.ending(
            self.terminated(data, info_now), health, steps, self.config.episode_length
        )

        next_info = {**info_now, "rng": key_next, "steps": steps, "last_action": action}
        continued = (data, self.observe(data, next_info), next_info)
        # Continuous operation: a time-out keeps the robot where it is; a failure restarts it.
        carry = (data, end.truncated) if self.config.continuous else None
        restarted = self.fresh_episode(key_reset, carry)
        data, obs, next_info = episode.tree_where(end.done, restarted, continued)
        next_info["truncation"] = end.truncated.astype(jnp.float32)

        metrics = episode.step_metrics(state.metrics, terms, task_metrics, health)
        obs, next_info, metrics = self.disturber.finish_step(
            state, obs, next_info, end.done, plan, metrics
        )
        return State(data, obs, reward, end.done.astype(jnp.float32), metrics, next_info)
