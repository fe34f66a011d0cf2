"""Every evaluation and training plot (matplotlib, Agg backend, PNG files).

`plot_learning_curve` is the one learning-curve figure: `train.py` writes it
into the run directory at the end of a run and `eval.py` into its output
directory, both as `learning_curve.png`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from mjxbot.evaluation.metrics import GroupReport
from mjxbot.evaluation.plan import Plan
from mjxbot.evaluation.report import ACTOR_LABELS, baseline_label
from mjxbot.evaluation.robustness import RobustnessCurve
from mjxbot.evaluation.shift import ShiftReport

LEARNING_CURVE = "learning_curve.png"
ROBUSTNESS = "robustness.png"
CYCLE_TIMES = "cycle_times.png"
DPI = 100

Points = list[tuple[float, float]]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    _pyplot().close(fig)
    return path


def robust_limits(values: list[float], pad: float = 0.1) -> tuple[float, float]:
    """Axis limits spanning the 2nd-98th percentile of `values`, padded by `pad`.

    One diverged episode (a return of -1e16 once reached the log) must not
    flatten every other point into a line at the edge of the plot.
    """
    lo, hi = np.percentile(np.asarray(values, np.float64), [2.0, 98.0])
    span = max(hi - lo, 1e-6 * max(abs(lo), abs(hi), 1.0))
    return float(lo - pad * span), float(hi + pad * span)


def _series(records: list[dict[str, Any]], key: str) -> Points:
    """`(step, value)` of every record with a finite `key`."""
    return [
        (r["step"], r[key])
        for r in records
        if isinstance(r.get(key), int | float) and math.isfinite(r[key])
    ]


def _plot(ax, points: Points, style: str, label: str) -> None:
    ax.plot(*zip(*points, strict=True), style, label=label, markersize=4)


def _return_panel(ax, records: list[dict[str, Any]], baseline: str) -> None:
    """Training and eval return on limits that ignore outliers (their count is the title)."""
    train, evals = _series(records, "episode/return"), _series(records, "eval/return")
    zero = _series(records, "eval_pd/return")
    if train:
        _plot(ax, train, "-", "training episode return")
    if evals:
        _plot(ax, evals, "o--", "eval return (policy)")
    if zero:
        ax.axhline(zero[-1][1], color="gray", linestyle="--", label=f"eval return ({baseline})")
    values = [v for _, v in train + evals + zero]
    lo, hi = robust_limits(values)
    outside = sum(not lo <= v <= hi for v in values)
    ax.set_ylim(lo, hi)
    if outside:
        ax.set_title(f"{outside} point(s) outside the axis (2nd-98th percentile shown)")
    ax.set_ylabel("return")


def _lines_panel(ax, records: list[dict[str, Any]], lines: tuple[tuple[str, str], ...]) -> None:
    for key, label in lines:
        points = _series(records, key)
        if points:
            _plot(ax, points, "o--" if key.startswith("eval") else "-", label)


# Panels after the return's: (y label, y limits or None, ((metrics.jsonl key, label), ...)).
_PANELS = (
    ("reward per step", None, (("reward/total", "training reward per step"),)),
    (
        "fall rate, level",
        (-0.05, 1.05),
        (
            ("episode/fall_rate", "training fall rate"),
            ("eval/fall_rate", "eval fall rate (policy)"),
            ("curriculum/level", "curriculum level"),
        ),
    ),
)


def _panels(records: list[dict[str, Any]]) -> list[tuple[str, Any, tuple]]:
    """The panels with data; each task's `env/...success` metric in a last panel."""
    keys = sorted({k for r in records for k in r if k.startswith("env/") and k.endswith("success")})
    success = ("task success", (-0.05, 1.05), tuple((k, k.removeprefix("env/")) for k in keys))
    panels = [*_PANELS, success]
    return [p for p in panels if any(_series(records, key) for key, _ in p[2])]


def plot_learning_curve(
    records: list[dict[str, Any]], path: Path, baseline: str = "PD hold"
) -> Path | None:
    """Writes the learning curve of a run's `metrics.jsonl` records to `path`.

    Panels: training and eval return (robust limits, `baseline` names the
    zero-action actor of the `eval_pd/...` metrics), reward per step, the
    training and eval fall rate with the curriculum level, and every task
    success metric. Returns None (nothing written) when no panel has data.
    """
    has_return = any(_series(records, k) for k in ("episode/return", "eval/return"))
    panels = _panels(records)
    if not (has_return or panels):
        return None
    plt = _pyplot()
    rows = int(has_return) + len(panels)
    fig, axes = plt.subplots(rows, 1, figsize=(7, 0.4 + 2.6 * rows), sharex=True, squeeze=False)
    axes = list(axes[:, 0])
    if has_return:
        _return_panel(axes[0], records, baseline)
    for ax, (ylabel, ylim, lines) in zip(axes[int(has_return) :], panels, strict=True):
        _lines_panel(ax, records, lines)
        ax.set_ylabel(ylabel)
        if ylim:
            ax.set_ylim(*ylim)
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[-1].set_xlabel("env steps")
    return _save(fig, path)


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
    return _save(fig, path)


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
    return _save(fig, path)


def eval_plots(
    plan: Plan,
    results: dict[str, GroupReport],
    curve: RobustnessCurve | None,
    shift: ShiftReport | None,
    out: Path,
) -> dict[str, str | None]:
    """`eval.py`'s plots in `out`: name -> path, or None (the reason in `plan.notes`)."""
    # Imported here: mjxbot.training imports this package (its evaluator).
    from mjxbot.training.logging import read_metrics

    plots: dict[str, str | None] = {"learning_curve": None}
    if plan.source.kind == "run":
        trained = plan.source.controller  # the learning curve's baseline ran on that env
        on_trained = [actor for actor, ctrl in plan.actors.items() if ctrl == trained]
        baseline = baseline_label(on_trained, trained)
        path = plot_learning_curve(read_metrics(plan.source.path), out / LEARNING_CURVE, baseline)
        plots["learning_curve"] = str(path) if path else None
        if path is None:
            plan.notes.append("learning curve: metrics.jsonl has nothing to plot")
    else:
        plan.notes.append("learning curve: an export carries no metrics.jsonl")
    plots["robustness"] = str(plot_robustness(curve, out / ROBUSTNESS)) if curve else None
    cycles = shift.results if shift and plan.main_env.task_metrics.cycle_time else results
    path = plot_cycle_times(cycles, out / CYCLE_TIMES)
    plots["cycle_times"] = str(path) if path else None
    if path is None:
        plan.notes.append(f"cycle-time histogram: task {plan.task!r} reports no cycle time")
    return plots
