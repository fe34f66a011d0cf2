"""Evaluating a trained policy the way the factory pilot was judged.

Rollouts are pure and jitted: `lax.scan` over time, `vmap` over envs. The
policy and the baselines run side by side in one batch from the same reset
keys, so they meet the same initial states and (disturbances being derived
from the env keys) the same pushes. A batch row's `mode` chooses its actor:
the policy, or zero action (the PD hold, or the QP-only baseline on an env
built with `controller="qp"`).

Python only turns the per-step traces (`[T, B]` arrays of `done`,
`truncation`, reward and task metrics) into statistics (`summarize`,
`summarize_survival`) and a report (`Report`), which `eval.py` writes as
`eval.json` and prints as a table built from the same dict (`report_tables`).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from mjxbot.disturbances import set_curriculum
from mjxbot.env import HumanoidEnv, TaskMetrics
from mjxbot.errors import MjxbotError

# Two-sided 95% normal quantile.
Z95 = 1.959963984540054
MODE_ZERO_ACTION = 0  # PD hold (zero action), or QP only on a `controller="qp"` env
MODE_POLICY = 1
SECONDS_PER_HOUR = 3600.0
# Height (m) the video camera looks at: mid-body, so head and soles both show.
VIDEO_LOOKAT_HEIGHT = 0.7

PolicyFn = Callable[[dict[str, jax.Array], jax.Array], Any]


class EvalError(MjxbotError):
    """A run, policy, task or flag that evaluation cannot use (reported as one line)."""


# ------------------------------------------------------------------ statistics
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


# ---------------------------------------------------------------- rollouts
class Runner:
    """Jitted batched rollouts of one env with a per-row actor.

    `init(keys, scale)` resets `[B]` envs (curriculum scale `[B]`, ignored
    without disturbances); `advance(state, mode, key)` runs `length` steps
    and returns `(state, trace)`, `trace` a dict of `[length, B]` arrays
    (`done`, `truncation`, `reward`, the task metrics, the cumulative
    counters `disturbance/pushes`, `nonfinite_resets` and `diverged_resets`, any
    `qp/*` metric) plus `qpos` / `mocap_pos` `[length, V, ...]` of the first
    `video_envs` rows. One compile per (env, length, batch size).
    """

    def __init__(
        self,
        env: HumanoidEnv,
        policy: PolicyFn | None,
        length: int,
        video_envs: int = 0,
    ):
        self.env = env
        self.length = length
        self.names = env.task_metrics
        self.video_envs = video_envs
        traced = set(self.names.judged)
        zero_metrics = jax.eval_shape(env.reset, jax.random.key(0)).metrics
        counters = ("disturbance/pushes", "nonfinite_resets", "diverged_resets")
        traced |= {n for n in zero_metrics if n in counters}
        traced |= {n for n in zero_metrics if n.startswith("qp/")}
        self.traced = tuple(sorted(traced))
        nmocap = env.mj_model.nmocap

        def act(obs, key):
            if policy is None:
                return None
            out = policy(obs, key)
            return out[0] if isinstance(out, tuple) else out

        def init(keys: jax.Array, scale: jax.Array):
            state = jax.vmap(env.reset)(keys)
            if "curriculum" in state.info:  # per-row scale: set_curriculum, one value per env
                state = set_curriculum(state, 0.0)
                state = state.replace(info={**state.info, "curriculum": scale.astype(jnp.float32)})
            return state

        def advance(state, mode: jax.Array, key: jax.Array):
            def body(carry, _):
                s, k = carry
                k, k_act = jax.random.split(k)
                zero = jnp.zeros((mode.shape[0], env.action_size))
                action = act(s.obs, k_act)
                if action is None:
                    action = zero
                else:
                    use = (mode == MODE_POLICY)[:, None]
                    action = jnp.where(use, action, zero)
                ns = jax.vmap(env.step)(s, action)
                out = {
                    "done": ns.done,
                    "truncation": ns.info["truncation"],
                    "reward": ns.reward,
                    **{n: ns.metrics[n] for n in self.traced},
                }
                if video_envs:
                    # The physics of the transition (before any auto-reset would
                    # look like a jump; the reset pose is shown on the next frame).
                    out["qpos"] = ns.data.qpos[:video_envs]
                    if nmocap:
                        out["mocap_pos"] = ns.data.mocap_pos[:video_envs]
                        out["mocap_quat"] = ns.data.mocap_quat[:video_envs]
                return (ns, k), out

            (state, _), trace = jax.lax.scan(body, (state, key), None, length=length)
            return state, trace

        self.init = jax.jit(init)
        self.advance = jax.jit(advance)
        self._compiled: dict[tuple[int, ...], Any] = {}

    def start(self, keys: jax.Array, scale: np.ndarray):
        """`[B]` fresh envs from `keys` with curriculum scales `scale` `[B]`."""
        return self.init(keys, jnp.asarray(scale, jnp.float32))

    def continue_(self, state, mode: np.ndarray, key: jax.Array):
        """`(state, numpy trace, wall seconds per control step)`; compiling is not timed."""
        mode = jnp.asarray(mode, jnp.int32)
        compiled = self._compiled.get(mode.shape)
        if compiled is None:
            compiled = self.advance.lower(state, mode, key).compile()
            self._compiled[mode.shape] = compiled
        t0 = time.perf_counter()
        state, trace = compiled(state, mode, key)
        trace = jax.device_get(trace)
        seconds = (time.perf_counter() - t0) / self.length
        return state, {k: np.asarray(v) for k, v in trace.items()}, seconds

    def run(self, keys: jax.Array, mode: np.ndarray, scale: np.ndarray, key: jax.Array):
        """One `length`-step rollout from fresh resets: `(numpy trace, s per step)`."""
        _, trace, seconds = self.continue_(self.start(keys, scale), mode, key)
        return trace, seconds


# ------------------------------------------------------------ summaries
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


@dataclasses.dataclass
class GroupReport:
    """Figures of one actor (policy or baseline) over its episodes or its shift.

    Attributes:
      episodes: episodes judged (first episode of every env; in a shift, the
        episodes completed).
      success_metric: the metric judged at episode end (`survival` when the
        task has none: an episode succeeds when it does not fail).
      success: success rate with its 95% Wilson interval.
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


def _first_done(done: np.ndarray) -> np.ndarray:
    """`[B]` index of each column's first done step (`T` if none)."""
    any_done = done.any(axis=0)
    return np.where(any_done, done.argmax(axis=0), done.shape[0])


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
      names: the task's metric names.
      dt: control period (s).
      takt: cycle deadline (s), for cycle-time figures.
      continuous: False judges the first episode of each env (the rollout
        must be at least one episode long); True judges every episode
        completed in the window and rates over the whole window (shift mode).
    """
    done = trace["done"] > 0.5
    failed_step = done & (trace["truncation"] < 0.5)
    steps, batch = done.shape
    if continuous:
        window = np.ones_like(done)
        ended = done
    else:
        first = _first_done(done)
        t = np.arange(steps)[:, None]
        window = t <= first[None, :]
        ended = done & window
    failures = failed_step & window
    succeeded_end = ended & ~failed_step
    n_episodes = int(ended.sum())
    hours = float(window.sum()) * dt / SECONDS_PER_HOUR

    def end_rate(metric: str | None) -> Rate:
        if metric is None:
            return Rate.of(int(succeeded_end.sum()), n_episodes)
        return Rate.of(int(((trace[metric] > 0.5) & succeeded_end).sum()), n_episodes)

    falls = int(((trace[names.falls] > 0.5) & window).sum()) if names.falls else int(failures.sum())
    interventions = int(failures.sum())
    pushes = survived = impulse = None
    if "disturbance/pushes" in trace:
        counter = trace["disturbance/pushes"]
        if continuous:
            pushes = int(counter[-1].sum())
        else:
            idx = np.minimum(_first_done(done), steps - 1)
            pushes = int(counter[idx, np.arange(batch)].sum())
    if names.pushes_survived:
        survived = int((trace[names.pushes_survived] * window).sum())
    if names.max_impulse:
        impulse = float((trace[names.max_impulse] * window).max()) if batch else 0.0
    returns = None
    if n_episodes:
        if continuous:
            returns = float((trace["reward"] * window).sum() / max(n_episodes, 1))
        else:
            returns = float((trace["reward"] * window).sum(axis=0).mean())
    cycle = None
    if names.cycle_time and takt is not None:
        ok = ended & ~failed_step
        if names.success:
            ok = ok & (trace[names.success] > 0.5)
        values = trace[names.cycle_time][ok].astype(float)
        within = int((values <= takt + 1e-9).sum())
        cycle = CycleTimes(
            takt=float(takt),
            count=int(values.size),
            mean=float(values.mean()) if values.size else None,
            median=float(np.median(values)) if values.size else None,
            p95=float(np.percentile(values, 95)) if values.size else None,
            max=float(values.max()) if values.size else None,
            within_takt=Rate.of(within, n_episodes),
            values=[round(v, 4) for v in values.tolist()],
        )
    return GroupReport(
        episodes=n_episodes,
        success_metric=names.success or "survival",
        success=end_rate(names.success),
        side_success={side: end_rate(m) for side, m in names.sides.items()},
        simulated_hours=hours,
        falls=falls,
        falls_per_hour=per_hour(falls, hours),
        interventions=interventions,
        interventions_per_hour=per_hour(interventions, hours),
        pushes=pushes,
        pushes_survived=survived,
        max_impulse_survived=impulse,
        mean_return=returns,
        cycle_time=cycle,
    )


def merge_traces(traces: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Concatenates chunk traces along time (cumulative counters stay cumulative)."""
    return {k: np.concatenate([t[k] for t in traces], axis=0) for k in traces[0]}


def select(trace: dict[str, np.ndarray], rows: np.ndarray) -> dict[str, np.ndarray]:
    """The `[T, B]` entries of `trace` for batch rows `rows` (video entries dropped)."""
    return {k: v[:, rows] for k, v in trace.items() if k not in ("qpos", "mocap_pos", "mocap_quat")}


def survival(trace: dict[str, np.ndarray]) -> Rate:
    """Envs with no failure in the whole window."""
    failed = ((trace["done"] > 0.5) & (trace["truncation"] < 0.5)).any(axis=0)
    return Rate.of(int((~failed).sum()), failed.size)


# -------------------------------------------------------------- the report
@dataclasses.dataclass
class RobustnessCurve:
    """Survival against push force: every actor on the same envs and pushes.

    Each point scales the config's push force range by a curriculum scale
    (`set_curriculum`), so the pushes of all points share times, bodies,
    directions and durations and differ only in magnitude.

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


@dataclasses.dataclass
class ShiftReport:
    """Continuous operation: `stations` envs each run `hours` of simulated time.

    No reset happens unless the robot fails (each failure is an
    intervention); on tasks with a success metric the task's own cycles
    (episodes) follow each other and success is counted per cycle.
    """

    hours: float
    stations: int
    station_hours: float
    cycle_s: float | None
    results: dict[str, GroupReport]


@dataclasses.dataclass
class Report:
    """Everything `eval.py` writes to `eval.json`.

    Attributes:
      source: what was evaluated (path, kind, task, checkpoint step).
      settings: episodes, seed, controller, disturbances, control period,
        episode length, JAX backend.
      results: actor (`policy`, `pd_hold`, `qp_only`) -> figures over one
        episode per env, all actors on the same seeds.
      unavailable: actor -> why it was not evaluated.
      robustness: survival against push magnitude (None when skipped).
      shift: shift-mode figures (None without `--shift-hours`).
      plots: name -> PNG path (None with the reason in `notes`).
      video: path, frames, size, envs and GL backend, or `skipped` and why.
      notes: what was skipped and why.
    """

    source: dict[str, Any]
    settings: dict[str, Any]
    results: dict[str, GroupReport]
    unavailable: dict[str, str]
    robustness: RobustnessCurve | None
    shift: ShiftReport | None
    plots: dict[str, str | None]
    video: dict[str, Any]
    notes: list[str]

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(dataclasses.asdict(self))


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, Path):
        return str(x)
    return x


# ------------------------------------------------------------------- tables
ACTOR_LABELS = {"policy": "policy", "pd_hold": "PD hold", "qp_only": "QP only"}


def fmt(x: Any, digits: int = 3) -> str:
    """The one number format of the printed tables."""
    if x is None:
        return "-"
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, int):
        return str(x)
    return f"{x:.{digits}f}"


def fmt_rate(rate: dict[str, Any]) -> str:
    if rate["rate"] is None:
        return "- (0 episodes)"
    lo, hi = rate["ci95"]
    return f"{fmt(rate['rate'])} [{fmt(lo)}, {fmt(hi)}] ({rate['successes']}/{rate['trials']})"


def group_rows(results: dict[str, dict[str, Any]]) -> list[tuple[str, list[str]]]:
    """Rows `(label, [cell per actor])` of a results dict (as in `eval.json`)."""
    actors = list(results)
    first = results[actors[0]]
    rows: list[tuple[str, list[str]]] = [
        ("episodes", [fmt(results[a]["episodes"]) for a in actors]),
        (
            f"success rate ({first['success_metric']}) [95% CI]",
            [fmt_rate(results[a]["success"]) for a in actors],
        ),
    ]
    for side in first["side_success"]:
        rows.append(
            (
                f"{side} success [95% CI]",
                [fmt_rate(results[a]["side_success"][side]) for a in actors],
            )
        )
    if first["cycle_time"] is not None:
        takt = first["cycle_time"]["takt"]
        rows.append(
            (
                f"cycle time mean / p95 (s), takt {fmt(takt, 2)}",
                [
                    f"{fmt(results[a]['cycle_time']['mean'])} / "
                    f"{fmt(results[a]['cycle_time']['p95'])}"
                    for a in actors
                ],
            )
        )
        rows.append(
            (
                "success within takt [95% CI]",
                [fmt_rate(results[a]["cycle_time"]["within_takt"]) for a in actors],
            )
        )
    rows += [
        ("simulated hours", [fmt(results[a]["simulated_hours"], 4) for a in actors]),
        ("falls", [fmt(results[a]["falls"]) for a in actors]),
        ("falls / sim hour", [fmt(results[a]["falls_per_hour"], 1) for a in actors]),
        ("interventions", [fmt(results[a]["interventions"]) for a in actors]),
        (
            "interventions / sim hour",
            [fmt(results[a]["interventions_per_hour"], 1) for a in actors],
        ),
    ]
    if first["pushes"] is not None:
        rows.append(("pushes", [fmt(results[a]["pushes"]) for a in actors]))
    if first["pushes_survived"] is not None:
        rows.append(("pushes survived", [fmt(results[a]["pushes_survived"]) for a in actors]))
    if first["max_impulse_survived"] is not None:
        rows.append(
            (
                "largest impulse survived (N s)",
                [fmt(results[a]["max_impulse_survived"]) for a in actors],
            )
        )
    rows.append(("mean return", [fmt(results[a]["mean_return"]) for a in actors]))
    if any(results[a]["qp_latency_ms"] is not None for a in actors):
        rows.append(("QP step latency (ms)", [fmt(results[a]["qp_latency_ms"]) for a in actors]))
    return rows


def robustness_rows(curve: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """Rows `(force, [survival per actor])` of a robustness dict."""
    actors = list(curve["survival"])
    return [
        (f"{fmt(force, 1)} N", [fmt(curve["survival"][a][i]) for a in actors])
        for i, force in enumerate(curve["force_n"])
    ]


def report_tables(
    report: dict[str, Any],
) -> list[tuple[str, list[str], list[tuple[str, list[str]]]]]:
    """`(title, header, rows)` of every printed table, built from the `eval.json` dict."""
    src, settings = report["source"], report["settings"]
    tables = []
    results = report["results"]
    title = (
        f"{src['task']}: {settings['episodes']} episodes per actor, same seeds "
        f"(seed {settings['seed']}), controller {settings['controller']}, "
        f"disturbances {settings['disturbances']}"
    )
    tables.append((title, ["", *[ACTOR_LABELS.get(a, a) for a in results]], group_rows(results)))
    curve = report.get("robustness")
    if curve:
        tables.append(
            (
                f"robustness: survival over {fmt(curve['horizon_s'], 1)} s vs push force "
                f"({curve['episodes']} envs per point)",
                ["mean push force", *[ACTOR_LABELS.get(a, a) for a in curve["survival"]]],
                robustness_rows(curve),
            )
        )
    shift = report.get("shift")
    if shift:
        tables.append(
            (
                f"shift: {shift['stations']} station(s) x {fmt(shift['hours'], 3)} simulated "
                f"hours ({fmt(shift['station_hours'], 3)} station-hours)",
                ["", *[ACTOR_LABELS.get(a, a) for a in shift["results"]]],
                group_rows(shift["results"]),
            )
        )
    return tables


def combine_shift(chunks: list[GroupReport]) -> GroupReport:
    """One actor's shift figures from the `summarize(continuous=True)` of its chunks.

    Counts add up, rates are recomputed, pushes come from the last chunk (the
    counter is cumulative), returns are left out (episodes span chunks).
    """

    def rate(rates: list[Rate]) -> Rate:
        return Rate.of(sum(r.successes for r in rates), sum(r.trials for r in rates))

    first, last = chunks[0], chunks[-1]
    hours = sum(c.simulated_hours for c in chunks)
    falls = sum(c.falls for c in chunks)
    interventions = sum(c.interventions for c in chunks)
    cycle = None
    if first.cycle_time is not None:
        values = np.asarray([v for c in chunks for v in c.cycle_time.values], float)
        cycle = CycleTimes(
            takt=first.cycle_time.takt,
            count=int(values.size),
            mean=float(values.mean()) if values.size else None,
            median=float(np.median(values)) if values.size else None,
            p95=float(np.percentile(values, 95)) if values.size else None,
            max=float(values.max()) if values.size else None,
            within_takt=rate([c.cycle_time.within_takt for c in chunks]),
            values=values.round(4).tolist(),
        )
    impulses = [c.max_impulse_survived for c in chunks if c.max_impulse_survived is not None]
    survived = [c.pushes_survived for c in chunks if c.pushes_survived is not None]
    return GroupReport(
        episodes=sum(c.episodes for c in chunks),
        success_metric=first.success_metric,
        success=rate([c.success for c in chunks]),
        side_success={s: rate([c.side_success[s] for c in chunks]) for s in first.side_success},
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


# -------------------------------------------------------------------- plots
def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# Panels of the learning-curve figure: (title, metrics.jsonl keys tried in order).
CURVE_PANELS = (
    ("episode return", ("episode/return", "eval/return")),
    ("reward per step", ("reward/total",)),
    ("fall rate", ("episode/fall_rate", "eval/fall_rate")),
)


def plot_learning_curves(records: list[dict[str, Any]], path: Path) -> Path | None:
    """Learning curves from a run's `metrics.jsonl` records; None when there is nothing to plot.

    Panels: episode return (training, and the evaluations as markers), reward
    per step, fall rate, and every `env/<task>/...success` metric.
    """
    success_keys = sorted(
        {k for r in records for k in r if k.startswith("env/") and k.endswith("success")}
    )
    panels = [*CURVE_PANELS, *((k.removeprefix("env/"), (k,)) for k in success_keys)]

    def series(key: str) -> list[tuple[float, float]]:
        return [
            (r["step"], r[key])
            for r in records
            if isinstance(r.get(key), int | float) and math.isfinite(r[key])
        ]

    drawn = [(title, [(k, series(k)) for k in keys]) for title, keys in panels]
    drawn = [(t, [(k, s) for k, s in lines if s]) for t, lines in drawn]
    drawn = [(t, lines) for t, lines in drawn if lines]
    if not drawn:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(drawn), figsize=(4.2 * len(drawn), 3.4), squeeze=False)
    for ax, (title, lines) in zip(axes[0], drawn, strict=True):
        for key, points in lines:
            style = "o--" if key.startswith("eval") else "-"
            ax.plot(*zip(*points, strict=True), style, label=key, markersize=4)
        ax.set_title(title)
        ax.set_xlabel("env steps")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_robustness(curve: RobustnessCurve, path: Path) -> Path:
    """Survival (with 95% intervals) against push force, every actor on the same axes."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for actor, values in curve.survival.items():
        lo = [c[0] for c in curve.survival_ci95[actor]]
        hi = [c[1] for c in curve.survival_ci95[actor]]
        ax.plot(curve.force_n, values, "o-", label=ACTOR_LABELS.get(actor, actor))
        ax.fill_between(curve.force_n, lo, hi, alpha=0.15)
    d0, d1 = curve.duration_s
    ax.set_xlabel(f"mean push force (N), {d0:g}-{d1:g} s pushes")
    ax.set_ylabel(f"survival over {curve.horizon_s:g} s")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(f"robustness ({curve.episodes} envs per point, same pushes)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_cycle_times(results: dict[str, GroupReport], path: Path) -> Path | None:
    """Histogram of successful cycle times per actor, with the takt; None without cycles."""
    groups = {a: r.cycle_time for a, r in results.items() if r.cycle_time is not None}
    if not groups:
        return None
    takt = next(iter(groups.values())).takt
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    bins = np.linspace(0.0, takt, 21)
    for actor, cycle in groups.items():
        if cycle.values:
            ax.hist(cycle.values, bins=bins, alpha=0.5, label=ACTOR_LABELS.get(actor, actor))
    ax.axvline(takt, color="k", linestyle="--", label=f"takt {takt:g} s")
    ax.set_xlabel("cycle time (s) of successful cycles")
    ax.set_ylabel("cycles")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# -------------------------------------------------------------------- video
def _grid(n: int) -> tuple[int, int]:
    cols = math.ceil(math.sqrt(n))
    return math.ceil(n / cols), cols


def render_video(
    mj_model,
    trace: dict[str, np.ndarray],
    path: Path,
    frames: int,
    width: int,
    height: int,
    fps: float,
    backend: str,
) -> dict[str, Any]:
    """Renders the first `frames` steps of the traced envs, tiled, into an mp4.

    Args:
      mj_model: the MuJoCo C model of the env (copied, not modified).
      trace: `qpos` `[T, V, nq]` (and `mocap_pos`/`mocap_quat`) from a `Runner`.
      path: the `.mp4` to write.
      frames, width, height: the video's frame count and size (even sizes).
      fps: frames per second (one frame per control step: `1 / ctrl_dt`).
      backend: the `MUJOCO_GL` in use, reported in the result.

    Returns:
      `{"path", "frames", "width", "height", "envs", "backend"}`, or
      `{"skipped": reason, "backend"}` when no GL context or encoder is there.
    """
    import mujoco

    try:
        import imageio.v2 as imageio
    except ImportError:
        return {
            "skipped": "imageio is not installed (pip install imageio imageio-ffmpeg)",
            "backend": backend,
        }
    qpos = trace["qpos"][:frames]
    envs = qpos.shape[1]
    rows, cols = _grid(envs)
    tile_w, tile_h = width // cols, height // rows
    model = copy.copy(mj_model)
    model.vis.global_.offwidth = max(model.vis.global_.offwidth, tile_w)
    model.vis.global_.offheight = max(model.vis.global_.offheight, tile_h)
    # A brighter headlight than the MJCF's: the scene's one overhead light leaves
    # the robot's sides dark at this camera angle.
    model.vis.headlight.ambient[:] = 0.45
    model.vis.headlight.diffuse[:] = 0.55
    try:
        renderer = mujoco.Renderer(model, tile_h, tile_w)
    except Exception as e:  # noqa: BLE001 - GL backends fail with many types
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        hint = (
            "install Debian's libosmesa6 and set MUJOCO_GL=osmesa PYOPENGL_PLATFORM=osmesa"
            if backend == "osmesa"
            else "use a GPU node with EGL (MUJOCO_GL=egl), or OSMesa on a CPU machine"
        )
        return {
            "skipped": f"no OpenGL context with MUJOCO_GL={backend} "
            f"({type(e).__name__}: {first}); {hint}",
            "backend": backend,
        }
    data = mujoco.MjData(model)
    camera = mujoco.MjvCamera()
    camera.type = mujoco.mjtCamera.mjCAMERA_FREE
    # Close enough to see the feet step: the whole 1.5 m robot, soles included,
    # fills the tile's height (MuJoCo's 45 degree vertical field of view).
    camera.distance, camera.azimuth, camera.elevation = 2.3, 135.0, -10.0
    writer = imageio.get_writer(
        str(path),
        fps=fps,
        codec="libx264",
        macro_block_size=1,
        quality=7,
        ffmpeg_log_level="error",
    )
    with warnings.catch_warnings():
        # imageio-ffmpeg starts ffmpeg with a fork that execs at once (no JAX state touched).
        warnings.filterwarnings("ignore", message=r"os\.fork\(\)", category=RuntimeWarning)
        try:
            for t in range(qpos.shape[0]):
                frame = np.zeros((height, width, 3), np.uint8)
                for e in range(envs):
                    data.qpos[:] = qpos[t, e]
                    if "mocap_pos" in trace:
                        data.mocap_pos[:] = trace["mocap_pos"][t, e]
                        data.mocap_quat[:] = trace["mocap_quat"][t, e]
                    mujoco.mj_kinematics(model, data)
                    camera.lookat[:] = [qpos[t, e, 0], qpos[t, e, 1], VIDEO_LOOKAT_HEIGHT]
                    renderer.update_scene(data, camera=camera)
                    r, c = divmod(e, cols)
                    frame[r * tile_h : (r + 1) * tile_h, c * tile_w : (c + 1) * tile_w] = (
                        renderer.render()
                    )
                writer.append_data(frame)
        finally:
            writer.close()
            renderer.close()
    return {
        "path": str(path),
        "frames": int(qpos.shape[0]),
        "width": width,
        "height": height,
        "envs": envs,
        "backend": backend,
    }


# ------------------------------------------------------------------ loading
def read_run_meta(run_dir: str | Path) -> dict[str, Any]:
    """The latest checkpoint's metadata (task, sizes, network), without restoring params."""
    from mjxbot.training.checkpoint import Checkpointer

    ckpt = Checkpointer(Path(run_dir) / "checkpoints", create=False)
    _, meta = ckpt.read_meta()
    return meta
