"""Figures of one actor's rollout: success, survival, falls, interventions, cycle times.

Everything here is numpy over the `[T, B]` traces of `rollout.Runner` (time
first, one column per env), so it is the same code for `eval.py`'s report,
its shift mode and `train.py`'s closing evaluation.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from mjxbot.env import TaskMetrics

# Two-sided 95% normal quantile.
Z95 = 1.959963984540054
SECONDS_PER_HOUR = 3600.0


def wilson_interval(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (95% by default).

    Returns `(0, 1)` for zero trials: nothing is known.
    """
    if trials <= 0:
        return 0.0, 1.0
    p = successes / trials
    z2 = z * z
    denom = 1.0 + z2 / trials
    center = (p + z2 / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials)) / denom
    return max(0.0, center - half), min(1.0, center + half)


def per_hour(count: float, hours: float) -> float | None:
    return count / hours if hours > 0 else None


@dataclasses.dataclass
class Rate:
    """A success-type rate with its 95% Wilson interval."""

    successes: int
    trials: int
    rate: float | None
    ci95: tuple[float, float]

    @classmethod
    def of(cls, successes: int, trials: int) -> Rate:
        rate = successes / trials if trials else None
        return cls(int(successes), int(trials), rate, wilson_interval(successes, trials))

    @classmethod
    def pooled(cls, rates: list[Rate]) -> Rate:
        """The rate of all `rates`' trials together."""
        return cls.of(sum(r.successes for r in rates), sum(r.trials for r in rates))


@dataclasses.dataclass
class CycleTimes:
    """Cycle times (s) of the successful cycles, against the takt."""

    takt: float
    count: int
    mean: float | None
    median: float | None
    p95: float | None
    max: float | None
    within_takt: Rate
    values: list[float]

    @classmethod
    def of(cls, values: np.ndarray, takt: float, episodes: int) -> CycleTimes:
        """Statistics of `values` `[n]` (s); `within_takt` is over all `episodes`."""
        values = np.asarray(values, float)
        some = values.size > 0
        return cls(
            takt=float(takt),
            count=int(values.size),
            mean=float(values.mean()) if some else None,
            median=float(np.median(values)) if some else None,
            p95=float(np.percentile(values, 95)) if some else None,
            max=float(values.max()) if some else None,
            within_takt=Rate.of(int((values <= takt + 1e-9).sum()), episodes),
            values=[round(v, 4) for v in values.tolist()],
        )


@dataclasses.dataclass
class GroupReport:
    """Figures of one actor (policy or baseline) over its episodes or its shift.

    Attributes:
      episodes: episodes judged (first episode of every env; in a shift, the
        episodes completed).
      success_metric: the metric judged at episode end (`survival` when the
        task has none: an episode succeeds when it does not fail).
      success: success rate with its 95% Wilson interval.
      survival: episodes not ended by a failure, with its interval (what
        `train.py`'s closing table compares).
      side_success: per-side success rates (nut_station), else empty.
      simulated_hours: simulated time the rates are over (all envs).
      falls, falls_per_hour: falls (fall metric events, else failures).
      interventions, interventions_per_hour: episodes ended by failure
        (termination or non-finite state), i.e. those that needed a reset.
      pushes, pushes_survived: pushes applied and pushes judged survived.
      max_impulse_survived: largest push impulse (N s) survived.
      mean_return: mean return of the judged episodes.
      cycle_time: successful cycles' times (tasks with a cycle time).
      qp_latency_ms: wall ms per batched control step with the QP controller.
    """

    episodes: int
    success_metric: str
    success: Rate
    survival: Rate
    side_success: dict[str, Rate]
    simulated_hours: float
    falls: int
    falls_per_hour: float | None
    interventions: int
    interventions_per_hour: float | None
    pushes: int | None
    pushes_survived: int | None
    max_impulse_survived: float | None
    mean_return: float | None
    cycle_time: CycleTimes | None
    qp_latency_ms: float | None = None


def takt_of(env_config: Any, names: TaskMetrics) -> float | None:
    """The cycle deadline (s): the config's `takt`, else one episode for tasks with a
    cycle time, else None."""
    takt = getattr(env_config, "takt", None)
    if takt is None and names.cycle_time:
        takt = env_config.episode_length * env_config.ctrl_dt
    return takt


def failed_steps(trace: dict[str, np.ndarray]) -> np.ndarray:
    """`[T, B]` steps that ended an episode by a failure (done, not a time-out)."""
    return (trace["done"] > 0.5) & (trace["truncation"] < 0.5)


def survival(trace: dict[str, np.ndarray]) -> Rate:
    """Envs with no failure in the whole trace (a horizon that may span episodes)."""
    failed = failed_steps(trace).any(axis=0)
    return Rate.of(int((~failed).sum()), failed.size)


def _first_done(done: np.ndarray) -> np.ndarray:
    """`[B]` index of each column's first done step (`T` if none)."""
    return np.where(done.any(axis=0), done.argmax(axis=0), done.shape[0])


def _judged(done: np.ndarray, continuous: bool) -> tuple[np.ndarray, np.ndarray]:
    """`(window, ended)` `[T, B]`: the steps judged and the episode ends among them.

    The first episode of each env, or (`continuous`) every step of the trace.
    """
    if continuous:
        return np.ones_like(done), done
    window = np.arange(done.shape[0])[:, None] <= _first_done(done)[None, :]
    return window, done & window


def _pushes(trace: dict[str, np.ndarray], continuous: bool) -> int | None:
    """Pushes applied: the cumulative counter at the window's end, summed over envs."""
    if "disturbance/pushes" not in trace:
        return None
    counter = trace["disturbance/pushes"]
    if continuous:
        return int(counter[-1].sum())
    done = trace["done"] > 0.5
    last = np.minimum(_first_done(done), done.shape[0] - 1)
    return int(counter[last, np.arange(done.shape[1])].sum())


def _mean_return(reward: np.ndarray, window: np.ndarray, episodes: int, continuous: bool):
    if not episodes:
        return None
    total = reward * window
    return float(total.sum() / episodes) if continuous else float(total.sum(axis=0).mean())


def summarize(
    trace: dict[str, np.ndarray],
    names: TaskMetrics,
    dt: float,
    takt: float | None = None,
    continuous: bool = False,
) -> GroupReport:
    """Statistics of one actor's rollout.

    Args:
      trace: `[T, B]` arrays from `Runner.run` for this actor's rows.
      names: the task's metric roles.
      dt: control period (s).
      takt: cycle deadline (s), for cycle-time figures.
      continuous: False judges the first episode of each env (the rollout
        must be at least one episode long); True judges every episode
        completed in the window and rates over the whole window (shift mode).
    """
    window, ended = _judged(trace["done"] > 0.5, continuous)
    failed = failed_steps(trace)
    failures = failed & window
    succeeded = ended & ~failed
    episodes = int(ended.sum())
    hours = float(window.sum()) * dt / SECONDS_PER_HOUR

    def end_rate(metric: str | None) -> Rate:
        ok = succeeded if metric is None else succeeded & (trace[metric] > 0.5)
        return Rate.of(int(ok.sum()), episodes)

    interventions = int(failures.sum())
    falls = int(((trace[names.falls] > 0.5) & window).sum()) if names.falls else interventions
    cycle = None
    if names.cycle_time and takt is not None:
        ok = succeeded & (trace[names.success] > 0.5) if names.success else succeeded
        cycle = CycleTimes.of(trace[names.cycle_time][ok], takt, episodes)
    survived = names.pushes_survived
    impulse = names.max_impulse
    return GroupReport(
        episodes=episodes,
        success_metric=names.success or "survival",
        success=end_rate(names.success),
        survival=end_rate(None),
        side_success={side: end_rate(m) for side, m in names.sides.items()},
        simulated_hours=hours,
        falls=falls,
        falls_per_hour=per_hour(falls, hours),
        interventions=interventions,
        interventions_per_hour=per_hour(interventions, hours),
        pushes=_pushes(trace, continuous),
        pushes_survived=int((trace[survived] * window).sum()) if survived else None,
        max_impulse_survived=float((trace[impulse] * window).max(initial=0.0)) if impulse else None,
        mean_return=_mean_return(trace["reward"], window, episodes, continuous),
        cycle_time=cycle,
    )


def flat_metrics(report: GroupReport) -> dict[str, float]:
    """The figures `train()` logs per evaluation (`eval/<key>` in `metrics.jsonl` and W&B).

    `survived` of `episodes` is the closing table's survival; `fall_rate` the
    share of episodes ended by a failure. Undefined rates are NaN.
    """

    def number(x: float | None) -> float:
        return float("nan") if x is None else float(x)

    return {
        "episodes": float(report.episodes),
        "survived": float(report.survival.successes),
        "survival": number(report.survival.rate),
        "success": number(report.success.rate),
        "fall_rate": number(report.interventions / report.episodes if report.episodes else None),
        "return": number(report.mean_return),
    }
