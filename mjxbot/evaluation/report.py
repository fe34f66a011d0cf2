"""The evaluation report: `eval.json` (one schema, one writer) and the tables printed from it.

`eval.py` and `train.py` (its closing evaluation) both write a `Report` with
`write_report`; the printed tables are built from the written dict itself
(`report_tables`), so what is printed is what is stored. docs/eval.md lists
the fields.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import jax
import numpy as np
from rich import box
from rich.console import Console
from rich.table import Table

from mjxbot.env import TaskMetrics
from mjxbot.env.control import ZERO_ACTION_ACTORS
from mjxbot.evaluation.metrics import GroupReport, takt_of
from mjxbot.evaluation.plan import Plan
from mjxbot.evaluation.robustness import RobustnessCurve
from mjxbot.evaluation.rollout import POLICY
from mjxbot.evaluation.shift import ShiftReport
from mjxbot.registry import ALL_ENVS

EVAL_FILE = "eval.json"
ACTOR_LABELS = {
    "policy": "policy",
    "pd_hold": "PD hold",
    "qp_only": "QP only",
    "scripted": "scripted",
}


def baseline_label(actors: Iterable[str], controller: str) -> str:
    """The label of the zero-action actor among `actors`, else of `controller`'s hold."""
    zero = next((a for a in actors if a != POLICY), ZERO_ACTION_ACTORS[controller])
    return ACTOR_LABELS.get(zero, zero)


Rows = list[tuple[str, list[str]]]


@dataclasses.dataclass
class Report:
    """Everything written to `eval.json`.

    Attributes:
      source: what was evaluated (path, kind, task, checkpoint step).
      settings: episodes, seed, controller, disturbances, control period,
        episode length, takt, JAX backend, baselines.
      results: actor (`policy`, or a zero-action actor) -> figures over one
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


def write_report(report: Report, path: Path) -> dict[str, Any]:
    """Writes `report` to `path` (atomically: a kill leaves the old file or the new one).

    Returns:
      The written dict, what `report_tables` reads.
    """
    # Imported here: mjxbot.training imports this package (its evaluator).
    from mjxbot.training.logging import write_text_atomic

    data = report.to_dict()
    write_text_atomic(path, json.dumps(data, indent=2))
    return data


def source_info(path: Path, kind: str, task: str, step: int | None) -> dict[str, Any]:
    """The report's `source`."""
    return {"path": str(path), "kind": kind, "task": task, "checkpoint_step": step}


def settings_info(
    env_config: Any,
    names: TaskMetrics,
    episodes: int,
    seed: int,
    disturbances: str,
    baselines: list[str],
) -> dict[str, Any]:
    """The report's `settings`; `env_config` is the policy's env's."""
    return {
        "episodes": episodes,
        "seed": seed,
        "controller": env_config.controller,
        "disturbances": disturbances,
        "ctrl_dt": env_config.ctrl_dt,
        "episode_length": env_config.episode_length,
        "takt": takt_of(env_config, names),
        "jax_backend": jax.default_backend(),
        "baselines": sorted(baselines),
    }


# ------------------------------------------------------------------- tables
def fmt(x: Any, digits: int = 3) -> str:
    """The one number format of the printed tables."""
    if x is None:
        return "-"
    if isinstance(x, bool | int):
        return str(x)
    return f"{x:.{digits}f}"


def fmt_rate(rate: dict[str, Any]) -> str:
    if rate["rate"] is None:
        return "- (0 episodes)"
    lo, hi = rate["ci95"]
    return f"{fmt(rate['rate'])} [{fmt(lo)}, {fmt(hi)}] ({rate['successes']}/{rate['trials']})"


# (label, key, digits) of the rows every report has, and of those shown when the task has them.
_COUNT_ROWS = (
    ("simulated hours", "simulated_hours", 4),
    ("falls", "falls", 3),
    ("falls / sim hour", "falls_per_hour", 1),
    ("interventions", "interventions", 3),
    ("interventions / sim hour", "interventions_per_hour", 1),
)
_PUSH_ROWS = (
    ("pushes", "pushes", 3),
    ("pushes survived", "pushes_survived", 3),
    ("largest impulse survived (N s)", "max_impulse_survived", 3),
)


def _row(label: str, results: dict[str, dict[str, Any]], cell: Callable) -> tuple[str, list[str]]:
    return label, [cell(figures) for figures in results.values()]


def _rate_rows(results: dict[str, dict[str, Any]], first: dict[str, Any]) -> Rows:
    rows = [
        _row(
            f"success rate ({first['success_metric']}) [95% CI]",
            results,
            lambda r: fmt_rate(r["success"]),
        )
    ]
    if first["success_metric"] != "survival":
        rows.append(_row("survival [95% CI]", results, lambda r: fmt_rate(r["survival"])))
    for side in first["side_success"]:
        label = f"{side} success [95% CI]"
        rows.append(_row(label, results, lambda r, s=side: fmt_rate(r["side_success"][s])))
    return rows


def _cycle_rows(results: dict[str, dict[str, Any]], first: dict[str, Any]) -> Rows:
    if first["cycle_time"] is None:
        return []
    takt = first["cycle_time"]["takt"]

    def times(r: dict[str, Any]) -> str:
        return f"{fmt(r['cycle_time']['mean'])} / {fmt(r['cycle_time']['p95'])}"

    return [
        _row(f"cycle time mean / p95 (s), takt {fmt(takt, 2)}", results, times),
        _row(
            "success within takt [95% CI]",
            results,
            lambda r: fmt_rate(r["cycle_time"]["within_takt"]),
        ),
    ]


def group_rows(results: dict[str, dict[str, Any]]) -> Rows:
    """Rows `(label, [cell per actor])` of a results dict (as in `eval.json`)."""
    first = next(iter(results.values()))
    rows = [_row("episodes", results, lambda r: fmt(r["episodes"]))]
    rows += _rate_rows(results, first)
    rows += _cycle_rows(results, first)
    rows += [_row(label, results, lambda r, k=k, d=d: fmt(r[k], d)) for label, k, d in _COUNT_ROWS]
    rows += [
        _row(label, results, lambda r, k=k, d=d: fmt(r[k], d))
        for label, k, d in _PUSH_ROWS
        if first[k] is not None
    ]
    rows.append(_row("mean return", results, lambda r: fmt(r["mean_return"])))
    if any(r["qp_latency_ms"] is not None for r in results.values()):
        rows.append(_row("QP step latency (ms)", results, lambda r: fmt(r["qp_latency_ms"])))
    return rows


def robustness_rows(curve: dict[str, Any]) -> Rows:
    """Rows `(force, [survival per actor])` of a robustness dict."""
    actors = list(curve["survival"])
    return [
        (f"{fmt(force, 1)} N", [fmt(curve["survival"][a][i]) for a in actors])
        for i, force in enumerate(curve["force_n"])
    ]


def _labels(actors) -> list[str]:
    return [ACTOR_LABELS.get(a, a) for a in actors]


def report_tables(report: dict[str, Any]) -> list[tuple[str, list[str], Rows]]:
    """`(title, header, rows)` of every printed table, built from the `eval.json` dict."""
    src, settings, results = report["source"], report["settings"], report["results"]
    title = (
        f"{src['task']}: {settings['episodes']} episodes per actor, same seeds "
        f"(seed {settings['seed']}), controller {settings['controller']}, "
        f"disturbances {settings['disturbances']}"
    )
    tables = [(title, ["", *_labels(results)], group_rows(results))]
    curve = report.get("robustness")
    if curve:
        title = (
            f"robustness: survival over {fmt(curve['horizon_s'], 1)} s vs push force "
            f"({curve['episodes']} envs per point)"
        )
        header = ["mean push force", *_labels(curve["survival"])]
        tables.append((title, header, robustness_rows(curve)))
    shift = report.get("shift")
    if shift:
        title = (
            f"shift: {shift['stations']} station(s) x {fmt(shift['hours'], 3)} simulated "
            f"hours ({fmt(shift['station_hours'], 3)} station-hours)"
        )
        tables.append((title, ["", *_labels(shift["results"])], group_rows(shift["results"])))
    return tables


def verdicts(results: dict[str, dict[str, Any]]) -> list[str]:
    """One line per baseline: does the policy succeed (the task's success metric, survival
    where that is the task's measure) more often, by the 95% intervals?"""
    if POLICY not in results:
        return []
    policy = results[POLICY]
    measure = policy.get("success_metric") or "survival"
    key = "survival" if measure == "survival" else "success"
    verbs = ("survives", "survival") if key == "survival" else ("succeeds", measure)
    lines = []
    for actor, baseline in results.items():
        if actor == POLICY:
            continue
        (p_lo, p_hi), (b_lo, b_hi) = policy[key]["ci95"], baseline[key]["ci95"]
        if p_lo > b_hi:
            word = f"{verbs[0]} more often than"
        elif p_hi < b_lo:
            word = f"{verbs[0]} LESS often than"
        else:
            word = "is not distinguishable from"
        label = ACTOR_LABELS.get(actor, actor)
        returns = (policy["mean_return"], baseline["mean_return"])
        diff = "-" if None in returns else f"{returns[0] - returns[1]:+.2f}"
        lines.append(
            f"policy vs {label}: the policy {word} the {label} ({verbs[1]}, 95% intervals); "
            f"return {diff}"
        )
    return lines


def print_tables(report: dict[str, Any], console: Console | None = None) -> None:
    """Prints every table of the report, then the verdicts, from the `eval.json` dict."""
    console = console or Console(width=200, soft_wrap=False)
    for title, header, rows in report_tables(report):
        console.print()
        console.print(title, markup=False, highlight=False)
        table = Table(box=box.SIMPLE)
        for i, name in enumerate(header):
            table.add_column(name, justify="left" if i == 0 else "right", no_wrap=True)
        for label, cells in rows:
            table.add_row(label, *cells)
        console.print(table)
    for line in verdicts(report["results"]):
        console.print(line, markup=False, highlight=False)


def training_report(
    config: Any,
    run_dir: Path,
    step: int,
    results: dict[str, GroupReport],
    plots: dict[str, str | None],
) -> Report:
    """`train.py`'s `eval.json`: the closing evaluation of run `config` (a `TrainConfig`).

    The same schema as `eval.py`'s, with what the closing evaluation runs: the
    policy and the zero action of its own controller, `eval.num_envs` episodes
    on `eval.seed`, the task's own disturbances at full strength.
    """
    env = config.env
    names = ALL_ENVS[config.env_name].task_metrics
    baselines = [env.controller] if len(results) > 1 else []
    return Report(
        source=source_info(run_dir, "run", config.env_name, step),
        settings=settings_info(env, names, config.eval.num_envs, config.eval.seed, "on", baselines),
        results=results,
        unavailable={},
        robustness=None,
        shift=None,
        plots=plots,
        video={"skipped": "train.py renders no video (eval.py --video does)", "backend": None},
        notes=["closing evaluation of train.py: robustness, shift and video come from eval.py"],
    )


def eval_report(
    plan: Plan,
    disturbances: str,
    baselines: list[str],
    results: dict[str, GroupReport],
    curve: RobustnessCurve | None,
    shift: ShiftReport | None,
    plots: dict[str, str | None],
    video: dict[str, Any],
) -> Report:
    """`eval.py`'s report of `plan` (its notes included); `disturbances` and `baselines`
    are the flags (`on|off|FILE`, and `pd` / `qp`)."""
    source, env = plan.source, plan.main_env
    return Report(
        source=source_info(source.path, source.kind, plan.task, source.meta.get("step")),
        settings=settings_info(
            env.config, env.task_metrics, plan.episodes, plan.seed, disturbances, baselines
        ),
        results=results,
        unavailable=plan.unavailable,
        robustness=curve,
        shift=shift,
        plots=plots,
        video=video,
        notes=plan.notes,
    )
