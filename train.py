#!/usr/bin/env python
"""Train a PPO policy on an mjxbot task.

    python train.py                                    # balance, sized for this machine
    python train.py --config configs/reach.yaml --set ppo.num_envs=64
    python train.py --config configs/balance.yaml --config configs/ci.yaml
    python train.py --run-dir runs/x --resume          # continue an interrupted run

Config files are merged in order, then `--set key=value` overrides; unknown
keys and wrong types fail with one `error:` line (exit 2). SIGINT/SIGTERM
write a checkpoint and exit with 128 + the signal number; `--resume`
continues exactly. Multi-host: see README ("Training").
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Annotated

import tyro


@dataclasses.dataclass
class TrainArgs:
    """Train a PPO policy on an mjxbot task."""

    config: Annotated[list[str], tyro.conf.arg(metavar="FILE")] = dataclasses.field(
        default_factory=list
    )
    """YAML experiment (merged in order)"""
    set: Annotated[list[str], tyro.conf.arg(metavar="KEY=VALUE")] = dataclasses.field(
        default_factory=list
    )
    """override a config key"""
    run_dir: Annotated[str | None, tyro.conf.arg(metavar="DIR", help_behavior_hint="")] = None
    """run directory (default: runs/<env>-<time>)"""
    resume: bool = False
    """continue the run in --run-dir"""
    stop_after: Annotated[int, tyro.conf.arg(metavar="STEPS")] = 0
    """checkpoint and stop once STEPS env steps are done, as on SIGTERM (testing aid)"""
    coordinator: Annotated[
        str | None, tyro.conf.arg(metavar="HOST:PORT", help_behavior_hint="")
    ] = None
    """multi-host (jax.distributed; SLURM is detected by itself): HOST:PORT of process 0"""
    num_processes: Annotated[int | None, tyro.conf.arg(metavar="N", help_behavior_hint="")] = None
    """multi-host: number of processes"""
    process_id: Annotated[int | None, tyro.conf.arg(metavar="I", help_behavior_hint="")] = None
    """multi-host: this process's index"""


def parse_args(argv: list[str] | None) -> TrainArgs:
    from mjxbot.cli import parse_cli

    return parse_cli(TrainArgs, argv, "python train.py", __doc__.split("\n\n")[0])


def init_distributed(args: TrainArgs) -> None:
    """Joins the other processes when the flags, `JAX_COORDINATOR_ADDRESS` or SLURM ask for it."""
    import jax

    slurm = int(os.environ.get("SLURM_NTASKS", "1")) > 1
    if not (args.coordinator or os.environ.get("JAX_COORDINATOR_ADDRESS") or slurm):
        return
    # Cross-process collectives on the CPU need gloo (jax 0.9.2); GPUs use NCCL.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    kwargs = {}
    if args.coordinator:
        kwargs = dict(
            coordinator_address=args.coordinator,
            num_processes=args.num_processes,
            process_id=args.process_id,
        )
    jax.distributed.initialize(**kwargs)


class StopFlag:
    """Set by SIGINT/SIGTERM (or after `--stop-after` steps); polled between iterations."""

    def __init__(self, stop_after: int = 0):
        self.signum = 0
        self.stop_after = stop_after
        self.step = 0

    def handler(self, signum, _frame) -> None:
        self.signum = signum

    def __call__(self) -> bool:
        if self.stop_after and self.step >= self.stop_after:
            self.signum = self.signum or signal.SIGTERM
        return bool(self.signum)


def finish(config, run_dir: Path, step: int, results: dict) -> None:
    """The closing evaluation's `eval.json` (`eval.py`'s schema), learning curve and table."""
    from mjxbot import evaluation as ev
    from mjxbot.training.logging import read_metrics

    plots = {"learning_curve": None, "robustness": None, "cycle_times": None}
    if config.logging.plot:
        baseline = ev.baseline_label(results, config.env.controller)
        path = ev.plot_learning_curve(read_metrics(run_dir), run_dir / ev.LEARNING_CURVE, baseline)
        plots["learning_curve"] = str(path) if path else None
    if results:
        report = ev.training_report(config, run_dir, step, results, plots)
        ev.print_tables(ev.write_report(report, run_dir / ev.EVAL_FILE))


def run(args: TrainArgs) -> int:
    import jax

    from mjxbot.training.logging import RunLogger, write_text_atomic
    from mjxbot.training.loop import TrainingInterrupted, train
    from mjxbot.training.run_dir import RUN_INFO, open_run

    opened = open_run(args.config, args.set, args.run_dir, args.resume)
    config, run_dir, checkpointer = opened.config, opened.run_dir, opened.checkpointer
    restore, start_step = opened.restore, opened.start_step
    is_main = jax.process_index() == 0

    ppo = config.ppo
    print(
        f"training {config.env_name}: {ppo.num_envs} envs on {jax.device_count()} "
        f"{jax.default_backend()} device(s) x {jax.process_count()} process(es), "
        f"{ppo.num_timesteps:,} steps -> {run_dir}",
        file=sys.stderr,
    )
    logger = RunLogger(
        config, run_dir, ppo.num_timesteps, start_step, resume=restore, enabled=is_main
    )
    stop = StopFlag(args.stop_after)
    previous = {s: signal.signal(s, stop.handler) for s in (signal.SIGINT, signal.SIGTERM)}

    traces = [0]
    t0 = time.perf_counter()

    def write_info(status: str) -> None:
        if is_main:
            info = {
                "status": status,
                "train_step_traces": traces[0],
                "first_iteration_s": last.get("time/first_iteration_s"),
                "final_sps": last.get("time/sps"),
                "wall_time_s": time.perf_counter() - t0,
                "devices": jax.device_count(),
                "processes": jax.process_count(),
            }
            write_text_atomic(run_dir / RUN_INFO, json.dumps(info, indent=2))

    last: dict[str, float] = {}

    def progress(step: int, metrics: dict[str, float]) -> None:
        stop.step = step
        last.update(metrics)
        logger.log(step, metrics)

    evaluation: dict = {}
    try:
        _, _, metrics = train(
            config,
            checkpointer=checkpointer,
            resume=restore,
            progress_fn=progress,
            should_stop=stop,
            trace_counter=traces,
            evaluation=evaluation,
        )
    except TrainingInterrupted as e:
        logger.close()
        write_info("interrupted")
        print(
            f"stopped at step {e.step:,}; checkpoint saved. Continue with: "
            f"python train.py --run-dir {run_dir} --resume",
            file=sys.stderr,
        )
        return 128 + int(stop.signum or signal.SIGTERM)
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        if checkpointer is not None:
            checkpointer.close()

    summary = {k: v for k, v in metrics.items() if k.startswith(("eval/", "eval_pd/"))}
    logger.close(summary)
    write_info("finished")
    if is_main:
        finish(config, run_dir, stop.step, evaluation)  # stop.step: the last step logged
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Before importing mjxbot: a module that touches JAX at import time would
    # start the XLA backend, after which jax.distributed cannot join.
    init_distributed(args)
    from mjxbot.errors import run_cli

    return run_cli(run, args)


if __name__ == "__main__":
    sys.exit(main())
