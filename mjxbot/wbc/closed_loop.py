"""The controller in closed loop with MuJoCo C physics (tests and benchmarks).

MuJoCo C steps one env in microseconds, so seconds of simulated time cost
seconds of wall time; the controller tick is jitted once and timed per call.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
from mujoco import mjx

from mjxbot.robot import Robot
from mjxbot.wbc.controller import WholeBodyController
from mjxbot.wbc.problem import TaskTargets, contact_forces, home_targets


@dataclasses.dataclass(frozen=True)
class TorsoPush:
    """A constant world-frame force on the torso from `start` for `duration` seconds."""

    start: float
    duration: float
    force: tuple[float, float, float]


@dataclasses.dataclass(frozen=True)
class StandingRun:
    """What one closed-loop run of QP-only standing measured.

    Attributes:
      heights: `[T]` torso height after each physics step (m).
      upright: `[]` final torso z-axis component along world z (1 = upright).
      final_speed: `[]` final max abs linear base velocity (m/s).
      feet_drift: `[]` largest horizontal travel of a foot body (m).
      feet: `[T, n_feet, 3]` foot body positions after each physics step (m).
      planned_load: `[T, n_feet]` normal force (N) each tick's QP put on each foot.
      tick_seconds: `[T]` wall time of each jitted tick (transfers included).
      iterations: `[T]` ADMM iterations of each tick.
      compiles: number of times the tick was traced.
    """

    heights: np.ndarray
    upright: float
    final_speed: float
    feet_drift: float
    feet: np.ndarray
    planned_load: np.ndarray
    tick_seconds: np.ndarray
    iterations: np.ndarray
    compiles: int


def run_standing(
    robot: Robot,
    controller: WholeBodyController,
    seconds: float,
    pushes: tuple[TorsoPush, ...] = (),
    start_noise: float = 0.0,
    seed: int = 0,
    targets_at: Callable[[float], TaskTargets] | None = None,
) -> StandingRun:
    """Runs the QP from `home` (plus uniform joint noise) under MuJoCo C.

    The float32 tick computes torques at every physics step from the current
    `qpos, qvel`, warm-started from the previous tick, toward `targets_at(t)`
    (`home_targets`, standing still, by default; targets of one shape compile once).
    """
    model = robot.model
    mx = mjx.put_model(model)
    layout = controller.layout
    home = home_targets(layout)
    template = mjx.make_data(model)
    traces = []
    foot_of_point = np.eye(len(layout.foot_ids))[layout.contact_foot]  # [nc, n_feet]

    @jax.jit
    def tick(qpos, qvel, targets, warm):
        traces.append(1)
        tau, sol = controller(mx, template.replace(qpos=qpos, qvel=qvel), targets, warm)
        return tau, controller.reset_warm(sol)

    def targets_of(t: float) -> TaskTargets:
        return home if targets_at is None else targets_at(t)

    data = mujoco.MjData(model)
    data.qpos[:] = robot.home_qpos
    rng = np.random.default_rng(seed)
    data.qpos[robot.qpos_adr] += rng.uniform(-start_noise, start_noise, robot.nu)
    mujoco.mj_forward(model, data)
    feet0 = data.xpos[robot.foot_ids, :2].copy()
    warm = controller.init_state()
    jax.block_until_ready(  # compile before timing
        tick(
            jnp.asarray(data.qpos, jnp.float32),
            jnp.asarray(data.qvel, jnp.float32),
            targets_of(0.0),
            warm,
        )
    )

    steps = round(seconds / model.opt.timestep)
    heights, ticks, iterations = np.empty(steps), np.empty(steps), np.empty(steps, np.int64)
    feet = np.empty((steps, len(layout.foot_ids), 3))
    load = np.empty((steps, len(layout.foot_ids)))
    for k in range(steps):
        t = k * model.opt.timestep
        targets = targets_of(t)
        start = time.perf_counter()
        tau, warm = tick(
            jnp.asarray(data.qpos, jnp.float32), jnp.asarray(data.qvel, jnp.float32), targets, warm
        )
        data.ctrl[:] = robot.torque_to_ctrl(np.asarray(tau))
        ticks[k] = time.perf_counter() - start
        iterations[k] = int(warm.iterations)
        load[k] = np.asarray(contact_forces(warm.x, layout))[:, 2] @ foot_of_point
        data.xfrc_applied[:] = 0.0
        for push in pushes:
            if push.start <= t < push.start + push.duration:
                data.xfrc_applied[robot.torso_id, :3] = push.force
        mujoco.mj_step(model, data)
        heights[k] = data.qpos[2]
        feet[k] = data.xpos[robot.foot_ids]
    return StandingRun(
        heights=heights,
        upright=float(data.xmat[robot.torso_id].reshape(3, 3)[2, 2]),
        final_speed=float(np.abs(data.qvel[:3]).max()),
        feet_drift=float(np.abs(data.xpos[robot.foot_ids, :2] - feet0).max()),
        feet=feet,
        planned_load=load,
        tick_seconds=ticks,
        iterations=iterations,
        compiles=len(traces),
    )
