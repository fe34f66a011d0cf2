"""Shift mode: stations run hours of continuous operation, in chunks of one compiled scan.

No reset happens unless the robot fails (each failure is an intervention).
Tasks with a success metric run their cycles (episodes) back to back, a fresh
scene each cycle with the robot carrying on (`continuous`); the others run
one episode lengthened past the shift. Each chunk is summarized on its own
(`summarize(continuous=True)`) and the chunks are pooled (`combine_shift`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import jax
import numpy as np
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from mjxbot.evaluation.metrics import (
    SECONDS_PER_HOUR,
    CycleTimes,
    GroupReport,
    Rate,
    per_hour,
    summarize,
    takt_of,
)
from mjxbot.evaluation.plan import Plan
from mjxbot.evaluation.rollout import Batch, Runner
from mjxbot.registry import load_env

CHUNK_STEPS = 1000  # steps per compiled scan of a task without cycles


@dataclasses.dataclass
class ShiftReport:
    """Continuous operation: `stations` envs each run `hours` of simulated time.

    On tasks with a success metric the task's own cycles (episodes) follow
    each other and success is counted per cycle (`cycle_s` each).
    """

    hours: float
    stations: int
    station_hours: float
    cycle_s: float | None
    results: dict[str, GroupReport]


def combine_shift(chunks: list[GroupReport]) -> GroupReport:
    """One actor's shift figures from the `summarize(continuous=True)` of its chunks.

    Counts add up, rates are recomputed over the pooled trials, pushes come
    from the last chunk (the counter is cumulative), returns are left out
    (episodes span chunks).
    """
    first, last = chunks[0], chunks[-1]
    hours = sum(c.simulated_hours for c in chunks)
    falls = sum(c.falls for c in chunks)
    interventions = sum(c.interventions for c in chunks)
    episodes = sum(c.episodes for c in chunks)
    cycle = None
    if first.cycle_time is not None:
        values = [v for c in chunks for v in c.cycle_time.values]
        cycle = CycleTimes.of(np.asarray(values), first.cycle_time.takt, episodes)
    impulses = [c.max_impulse_survived for c in chunks if c.max_impulse_survived is not None]
    survived = [c.pushes_survived for c in chunks if c.pushes_survived is not None]
    return GroupReport(
        episodes=episodes,
        success_metric=first.success_metric,
        success=Rate.pooled([c.success for c in chunks]),
        survival=Rate.pooled([c.survival for c in chunks]),
        side_success={
            side: Rate.pooled([c.side_success[side] for c in chunks]) for side in first.side_success
        },
        simulated_hours=hours,
        falls=falls,
        falls_per_hour=per_hour(falls, hours),
        interventions=interventions,
        interventions_per_hour=per_hour(interventions, hours),
        pushes=last.pushes,
        pushes_survived=sum(survived) if survived else None,
        max_impulse_survived=max(impulses) if impulses else None,
        mean_return=None,
        cycle_time=cycle,
    )


def _shift_runner(plan: Plan, ctrl: str, total: int, cyclic: bool) -> Runner:
    """A runner whose `length` is one chunk: a cycle of a cyclic task, else `CHUNK_STEPS`."""
    cfg = plan.envs[ctrl].config
    if cyclic:
        # The task's episodes are its cycles: each brings a fresh scene, the robot
        # carries on from the last one; only a failure resets it.
        env = load_env(plan.task, dataclasses.replace(cfg, continuous=True))
        length = env.config.episode_length
    else:
        length = min(total, CHUNK_STEPS)
        episode = math.ceil(total / length) * length + 1  # no time-out during the shift
        env = load_env(plan.task, dataclasses.replace(cfg, episode_length=episode))
    return Runner(env, plan.act_for(plan.groups()[ctrl]), length)


def _run_stations(
    plan: Plan, runner: Runner, batch: Batch, keys: jax.Array, chunks: int, tick: Callable
):
    """actor -> the `summarize(continuous=True)` of each of `chunks` chunks."""
    names = plan.main_env.task_metrics
    takt = takt_of(plan.main_env.config, names)
    reports: dict[str, list[GroupReport]] = {a: [] for a in batch.actors}
    state = runner.start(batch.keys(keys), np.ones(batch.size))
    for _ in range(chunks):
        state, trace, _ = runner.continue_(plan.params, state, batch.mode)
        for actor, part in batch.split(trace).items():
            reports[actor].append(summarize(part, names, plan.dt, takt, continuous=True))
        tick()
    return reports


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("[eval] shift"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} chunks"),
        TimeRemainingColumn(),
        console=console,
    )


def run_shift(plan: Plan, hours: float, stations: int, console: Console) -> ShiftReport:
    """`hours` of operation per station on `stations` envs per actor (0: `plan.episodes`)."""
    stations = stations or plan.episodes
    total = max(round(hours * SECONDS_PER_HOUR / plan.dt), 1)
    cyclic = plan.main_env.task_metrics.success is not None
    runners = {c: _shift_runner(plan, c, total, cyclic) for c in plan.groups()}
    length = next(iter(runners.values())).length
    chunks = math.ceil(total / length)
    if cyclic:
        plan.notes.append(
            f"shift: {plan.task} runs cycle after cycle ({length} steps each): a fresh scene "
            "each cycle, the robot carries on; a failure resets it and counts as an intervention"
        )
    keys = jax.random.split(jax.random.PRNGKey(plan.seed + 2), stations)
    chunk_reports: dict[str, list[GroupReport]] = {}
    with _progress(console) as progress:
        bar = progress.add_task("shift", total=chunks * len(runners))

        def tick() -> None:
            progress.advance(bar)

        for ctrl, group in plan.groups().items():
            batch = Batch(group, stations)
            chunk_reports |= _run_stations(plan, runners[ctrl], batch, keys, chunks, tick)
    done_hours = chunks * length * plan.dt / SECONDS_PER_HOUR
    return ShiftReport(
        hours=done_hours,
        stations=stations,
        station_hours=done_hours * stations,
        cycle_s=length * plan.dt if cyclic else None,
        results={actor: combine_shift(chunk_reports[actor]) for actor in plan.actors},
    )
