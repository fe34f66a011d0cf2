"""Evaluating a trained policy the way the factory pilot was judged.

One module per concept:

* `rollout`: the jitted batched `Runner` (policy and zero-action rows side by
  side, from the same reset keys) and the `Batch` of actor rows.
* `metrics`: Wilson intervals, `Rate`, `CycleTimes`, `summarize` (a trace to
  a `GroupReport`), `survival`.
* `episodes`: the `Evaluator`, the one policy evaluation (one episode per env
  and actor), used by `train()` and `eval.py` alike.
* `source`, `plan`: what is evaluated (a run or an export, checked before
  loading) and where (the envs per controller, the actors, the seeds).
* `robustness`: survival against push force; `shift`: continuous operation.
* `report`: `Report`, the one `eval.json` schema and writer, and the printed tables.
* `plots`: the learning curve, robustness and cycle-time PNGs; `video`: mp4s.

Python only turns the per-step traces (`[T, B]` arrays of `done`,
`truncation`, reward and task metrics) into statistics; everything that steps
an env is jitted.
"""

from mjxbot.evaluation.episodes import Episodes, Evaluator, eval_keys, run_episodes
from mjxbot.evaluation.metrics import (
    SECONDS_PER_HOUR,
    Z95,
    CycleTimes,
    GroupReport,
    Rate,
    failed_steps,
    flat_metrics,
    per_hour,
    summarize,
    survival,
    takt_of,
    wilson_interval,
)
from mjxbot.evaluation.plan import Plan, make_plan, output_dir
from mjxbot.evaluation.plots import (
    CYCLE_TIMES,
    LEARNING_CURVE,
    ROBUSTNESS,
    eval_plots,
    plot_cycle_times,
    plot_learning_curve,
    plot_robustness,
    robust_limits,
)
from mjxbot.evaluation.report import (
    ACTOR_LABELS,
    EVAL_FILE,
    Report,
    baseline_label,
    eval_report,
    fmt,
    fmt_rate,
    group_rows,
    print_tables,
    report_tables,
    robustness_rows,
    settings_info,
    source_info,
    training_report,
    verdicts,
    write_report,
)
from mjxbot.evaluation.robustness import RobustnessCurve, Sweep, make_sweep, run_sweep
from mjxbot.evaluation.rollout import (
    MODE_POLICY,
    MODE_ZERO_ACTION,
    POLICY,
    VIDEO_KEYS,
    ActFn,
    Batch,
    Runner,
    traced_metrics,
)
from mjxbot.evaluation.shift import ShiftReport, combine_shift, run_shift
from mjxbot.evaluation.source import (
    EvalError,
    Source,
    check_policy_fits,
    check_task,
    disturbances_from,
    load_source,
    read_run_meta,
    task_config,
)
from mjxbot.evaluation.video import eval_video, render_video

__all__ = [
    "ACTOR_LABELS",
    "baseline_label",
    "CYCLE_TIMES",
    "EVAL_FILE",
    "LEARNING_CURVE",
    "MODE_POLICY",
    "MODE_ZERO_ACTION",
    "POLICY",
    "ROBUSTNESS",
    "SECONDS_PER_HOUR",
    "VIDEO_KEYS",
    "Z95",
    "ActFn",
    "Batch",
    "CycleTimes",
    "Episodes",
    "EvalError",
    "Evaluator",
    "GroupReport",
    "Plan",
    "Rate",
    "Report",
    "RobustnessCurve",
    "Runner",
    "ShiftReport",
    "Source",
    "Sweep",
    "check_policy_fits",
    "check_task",
    "combine_shift",
    "disturbances_from",
    "eval_keys",
    "eval_plots",
    "eval_report",
    "eval_video",
    "failed_steps",
    "flat_metrics",
    "fmt",
    "fmt_rate",
    "group_rows",
    "load_source",
    "make_plan",
    "make_sweep",
    "output_dir",
    "per_hour",
    "plot_cycle_times",
    "plot_learning_curve",
    "plot_robustness",
    "print_tables",
    "read_run_meta",
    "render_video",
    "report_tables",
    "robust_limits",
    "robustness_rows",
    "run_episodes",
    "run_shift",
    "run_sweep",
    "settings_info",
    "source_info",
    "summarize",
    "survival",
    "takt_of",
    "task_config",
    "training_report",
    "traced_metrics",
    "verdicts",
    "wilson_interval",
    "write_report",
]
