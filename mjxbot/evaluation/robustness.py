"""Survival against push force: every actor on the same envs and the same pushes.

Each point scales the config's push force range by a curriculum scale
(`set_curriculum`), so the pushes of all points share times, bodies,
directions and durations and differ only in magnitude. Every point is one
rollout of the same batch shape, so the sweep compiles once per env.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import numpy as np

from mjxbot.disturbances.config import PushConfig
from mjxbot.errors import MjxbotError
from mjxbot.evaluation.episodes import Evaluator
from mjxbot.evaluation.metrics import Rate, survival
from mjxbot.evaluation.plan import Plan
from mjxbot.evaluation.rollout import Batch, Runner
from mjxbot.registry import load_env

# The sweep runs this long past the latest first push, so that every env is
# pushed at least once and the push can be judged.
MARGIN_S = 2.0
# Default top of the sweep: push forces up to this many times the config's range.
MAX_SCALE = 2.0


@dataclasses.dataclass
class RobustnessCurve:
    """Survival against push force.

    Attributes:
      force_n: mean push force (N) of each point.
      force_range_n: `(min, max)` push force (N) of each point.
      scale: the curriculum scale of each point.
      duration_s: `(min, max)` push duration (s).
      horizon_s: seconds each env runs; survival = no failure in that time.
      episodes: envs per point and actor.
      survival: actor -> survival rate per point.
      survival_ci95: actor -> 95% Wilson interval per point.
      pushes: actor -> pushes applied per point.
    """

    force_n: list[float]
    force_range_n: list[tuple[float, float]]
    scale: list[float]
    duration_s: tuple[float, float]
    horizon_s: float
    episodes: int
    survival: dict[str, list[float]]
    survival_ci95: dict[str, list[tuple[float, float]]]
    pushes: dict[str, list[int]]


@dataclasses.dataclass(frozen=True)
class Sweep:
    """The points of a sweep: `push` scaled by each of `scales`, judged over `horizon_s`."""

    push: PushConfig
    scales: np.ndarray
    horizon_s: float


def make_sweep(push: PushConfig, points: int, push_max: float, seconds: float) -> Sweep:
    """`points` scales from 0 to `push_max` N (default `MAX_SCALE` times the config's
    largest force); a config without pushes sweeps the default `PushConfig`'s."""
    push = push if push.enabled else PushConfig(enabled=True)
    top = push_max / push.force[1] if push_max else MAX_SCALE
    horizon = seconds or push.interval[1] + MARGIN_S
    return Sweep(push, np.linspace(0.0, top, points), horizon)


def _sweep_runner(plan: Plan, ctrl: str, evaluator: Evaluator, sweep: Sweep, log) -> Runner:
    """The evaluator's runner when its episodes already push for the whole horizon, else a
    runner on an env with the sweep's pushes and episodes lengthened to the horizon."""
    cfg = plan.envs[ctrl].config
    if plan.base.disturbances.push.enabled and cfg.episode_length * cfg.ctrl_dt >= (
        sweep.horizon_s - 1e-9
    ):
        return evaluator.runner  # no new compile
    steps = max(round(sweep.horizon_s / cfg.ctrl_dt), 1)
    cfg = dataclasses.replace(
        cfg, disturbances=dataclasses.replace(cfg.disturbances, push=sweep.push)
    )
    try:
        env = load_env(plan.task, dataclasses.replace(cfg, episode_length=steps + 1))
    except MjxbotError:  # tasks with a fixed episode (a takt) keep theirs
        env = load_env(plan.task, cfg)
    group = plan.groups()[ctrl]
    log(
        f"[eval] robustness: {'/'.join(group)} on the {ctrl} env with pushes, "
        f"{plan.episodes} envs x {steps} steps per point (compiling...)"
    )
    return Runner(env, plan.act_for(group), steps)


def _sweep_group(plan: Plan, runner: Runner, batch: Batch, keys: jax.Array, scales: np.ndarray):
    """actor -> `[(survival, pushes)]` per scale, all points from the same keys."""
    points: dict[str, list[tuple[Rate, int]]] = {a: [] for a in batch.actors}
    for s in scales:
        trace, _ = runner.run(plan.params, batch.keys(keys), batch.mode, np.full(batch.size, s))
        for actor, part in batch.split(trace).items():
            points[actor].append((survival(part), int(part["disturbance/pushes"][-1].sum())))
    return points


def run_sweep(
    plan: Plan,
    evaluators: dict[str, Evaluator],
    sweep: Sweep,
    log: Callable[[str], None] = print,
) -> RobustnessCurve:
    """Every actor of `plan` at every point of `sweep`, from the evaluators' reset keys."""
    points: dict[str, list[tuple[Rate, int]]] = {}
    horizons = []
    for ctrl, group in plan.groups().items():
        runner = _sweep_runner(plan, ctrl, evaluators[ctrl], sweep, log)
        horizons.append(runner.length * plan.envs[ctrl].config.ctrl_dt)
        keys = evaluators[ctrl].keys
        points.update(_sweep_group(plan, runner, Batch(group, plan.episodes), keys, sweep.scales))
    f0, f1 = sweep.push.force
    return RobustnessCurve(
        force_n=[float(s * (f0 + f1) / 2) for s in sweep.scales],
        force_range_n=[(float(s * f0), float(s * f1)) for s in sweep.scales],
        scale=[float(s) for s in sweep.scales],
        duration_s=tuple(sweep.push.duration),
        horizon_s=min(horizons),
        episodes=plan.episodes,
        survival={a: [rate.rate for rate, _ in points[a]] for a in plan.actors},
        survival_ci95={a: [rate.ci95 for rate, _ in points[a]] for a in plan.actors},
        pushes={a: [n for _, n in points[a]] for a in plan.actors},
    )
