#!/usr/bin/env python
"""Evaluate a trained policy (a run directory or an export) against the baselines.

    python eval.py runs/balance-20250101-120000
    python eval.py RUN --episodes 256 --disturbances on --video out.mp4
    python eval.py RUN --shift-hours 3                # continuous operation, interventions
    python eval.py RUN --controller qp --disturbances pushes.yaml --out results/

Writes `eval.json`, the plots (learning curve, robustness curve, cycle-time
histogram) and optionally an mp4 into `--out` (default `RUN/eval`), and
prints the same figures as tables. The policy and the baselines (PD hold,
QP only) run on identical seeds. See docs/eval.md for the report fields.
Errors (missing run, a policy for another robot or task, bad flags) are one
`error:` line and exit code 2.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
from pathlib import Path
from typing import Annotated, Literal

import tyro


def _arg(metavar: str | None = None, hint: bool = True):
    return tyro.conf.arg(metavar=metavar, help_behavior_hint=None if hint else "")


@dataclasses.dataclass
class EvalArgs:
    """Evaluate a trained policy (a run directory or an export) against the baselines."""

    source: Annotated[str, tyro.conf.Positional, _arg("SOURCE")]
    """run directory (train.py --run-dir) or exported policy"""
    task: Annotated[str | None, _arg("TASK", hint=False)] = None
    """task to evaluate on (default: the policy's own)"""
    episodes: Annotated[int, _arg("N", hint=False)] = 0
    """episodes per actor (default: by hardware)"""
    seed: Annotated[int | None, _arg("SEED", hint=False)] = None
    """seed of the eval episodes (default: the run's eval.seed)"""
    controller: Annotated[Literal["pd", "qp"] | None, _arg("{pd,qp}", hint=False)] = None
    """controller of the policy's env (default: the policy's own)"""
    disturbances: Annotated[str, _arg("on|off|FILE")] = "on"
    """on: the task's own; off: none; FILE: a YAML disturbances mapping"""
    baselines: Annotated[str, _arg("LIST")] = "pd,qp"
    """comma list of baselines, the zero action of an env: pd (PD hold, or a task's scripted
    controller in residual mode), qp (QP only); 'none' for none"""
    shift_hours: Annotated[float, _arg("H")] = 0.0
    """simulate H hours of continuous operation per station"""
    stations: Annotated[int, _arg("N", hint=False)] = 0
    """parallel stations in shift mode (default: --episodes)"""
    robustness_points: Annotated[int, _arg("N")] = 6
    """push magnitudes of the robustness curve (0 skips it)"""
    push_max: Annotated[float, _arg("N", hint=False)] = 0.0
    """largest push force of the curve (default: 2x the config's max force)"""
    robustness_seconds: Annotated[float, _arg("S", hint=False)] = 0.0
    """time each env runs per point (default: push interval max + 2 s)"""
    video: Annotated[str | None, _arg("FILE.mp4", hint=False)] = None
    """render a few policy envs to this mp4 (needs OpenGL: EGL or OSMesa)"""
    video_envs: Annotated[int, _arg("N")] = 4
    """envs tiled in the video"""
    video_size: Annotated[str, _arg("WxH")] = "640x480"
    """video size in pixels (even)"""
    video_frames: Annotated[int, _arg("N", hint=False)] = 0
    """frames, one per control step (default: one episode)"""
    out: Annotated[str | None, _arg("DIR", hint=False)] = None
    """output directory (default: RUN/eval)"""
    # Derived by parse_args from the flags above.
    video_wh: tuple[int, int] = dataclasses.field(default=(0, 0), init=False)
    baseline_set: set[str] = dataclasses.field(default_factory=set, init=False)


def parse_args(argv: list[str] | None) -> EvalArgs:
    from mjxbot.cli import cli_error as error
    from mjxbot.cli import parse_cli

    args = parse_cli(EvalArgs, argv, "python eval.py", __doc__.split("\n\n")[0])
    if args.episodes < 0:
        error(f"--episodes must be >= 1, got {args.episodes}")
    if args.shift_hours < 0 or not math.isfinite(args.shift_hours):
        error(f"--shift-hours must be >= 0, got {args.shift_hours}")
    if args.robustness_points < 0 or args.robustness_points == 1:
        error("--robustness-points must be 0 (skip) or >= 2")
    if args.video:
        if not args.video.endswith(".mp4"):
            error(f"--video must name an .mp4 file, got {args.video}")
        try:
            w, h = (int(v) for v in args.video_size.lower().split("x"))
        except ValueError:
            error(f"--video-size must be WxH, e.g. 640x480; got {args.video_size!r}")
        if w < 2 or h < 2 or w % 2 or h % 2:
            error(f"--video-size needs even sizes >= 2 (H.264), got {args.video_size}")
        args.video_wh = (w, h)
        if args.video_envs < 1 or args.video_frames < 0:
            error("--video-envs must be >= 1 and --video-frames >= 0")
    baselines = {b.strip() for b in args.baselines.split(",") if b.strip()} - {"none"}
    if baselines - {"pd", "qp"}:
        error(f"--baselines: unknown {sorted(baselines - {'pd', 'qp'})}; use pd, qp or none")
    args.baseline_set = baselines
    return args


# -------------------------------------------------------------------- GL
# The library each headless MuJoCo GL backend loads (PyOpenGL finds it by this name).
GL_LIBRARIES = {"egl": "EGL", "osmesa": "OSMesa"}
GL_HINT = (
    "install Debian's libosmesa6 (apt-get install libosmesa6) and set MUJOCO_GL=osmesa, "
    "or render on a GPU node with EGL (MUJOCO_GL=egl)"
)
# MJXBOT_GL=none: behave as if no GL library were installed (no video; tests use it).
GL_OFF_VALUES = ("none", "off", "0", "false")
_gl: tuple[str | None, str | None] | None = None


def find_gl_library(backend: str) -> str | None:
    """The shared library `backend` needs, if the dynamic loader can find it."""
    import ctypes.util

    if os.environ.get("MJXBOT_GL", "").strip().lower() in GL_OFF_VALUES:
        return None
    return ctypes.util.find_library(GL_LIBRARIES[backend])


def setup_gl() -> tuple[str | None, str | None]:
    """Chooses the MuJoCo GL backend before mujoco is imported: `(backend, None)`, or
    `(None, why)` when no headless backend's library is there (then no video, all else runs).

    A backend is only put into `MUJOCO_GL` when its library is found: `import mujoco` with
    `MUJOCO_GL=osmesa` and no libOSMesa fails outright. A user's `MUJOCO_GL=egl|osmesa`
    whose library is missing is dropped for the same reason.
    """
    global _gl
    if _gl is not None:
        return _gl
    hidden = os.environ.get("MJXBOT_GL", "").strip().lower() in GL_OFF_VALUES
    note = " (hidden by MJXBOT_GL=none)" if hidden else ""
    asked = os.environ.get("MUJOCO_GL", "").strip().lower()
    if asked and asked not in GL_LIBRARIES:
        _gl = (asked, None)  # glfw, glx, ...: MuJoCo's own business
        return _gl
    gpu = Path("/dev/nvidia0").exists() or Path("/proc/driver/nvidia").exists()
    candidates = [asked] if asked else (["egl", "osmesa"] if gpu else ["osmesa"])
    for backend in candidates:
        if find_gl_library(backend):
            os.environ["MUJOCO_GL"] = backend
            os.environ.setdefault("PYOPENGL_PLATFORM", backend)
            _gl = (backend, None)
            return _gl
    if asked:
        os.environ.pop("MUJOCO_GL")
        if os.environ.get("PYOPENGL_PLATFORM", "").lower() == asked:
            os.environ.pop("PYOPENGL_PLATFORM")
    missing = " or ".join(f"MUJOCO_GL={b} needs lib{GL_LIBRARIES[b]}" for b in candidates)
    _gl = (None, f"no OpenGL library: {missing}, not found{note}; {GL_HINT}")
    return _gl


# ------------------------------------------------------------------ running
def run(args: EvalArgs) -> int:
    """Every part of the evaluation, in order; each is a call into `mjxbot.evaluation`."""
    gl = setup_gl()
    from rich.console import Console

    from mjxbot import evaluation as ev

    console = Console(stderr=True)

    def log(message: str) -> None:
        console.print(message, markup=False, highlight=False)

    plan = ev.make_plan(
        Path(args.source),
        args.task,
        args.controller,
        args.disturbances,
        args.baseline_set,
        args.episodes,
        args.seed,
    )
    out = ev.output_dir(plan.source, args.out)
    # Without a GL library the video is skipped: its envs are not even traced.
    render = bool(args.video) and gl[0] is not None
    frames = (args.video_frames or plan.main_env.config.episode_length) if render else 0
    video_envs = min(args.video_envs, plan.episodes) if render else 0
    episodes = ev.run_episodes(plan, video_envs, frames, log)
    curve = None
    if args.robustness_points:
        sweep = ev.make_sweep(
            plan.base.disturbances.push,
            args.robustness_points,
            args.push_max,
            args.robustness_seconds,
        )
        curve = ev.run_sweep(plan, episodes.evaluators, sweep, log)
    else:
        plan.notes.append("robustness: skipped (--robustness-points 0)")
    shift = (
        ev.run_shift(plan, args.shift_hours, args.stations, console) if args.shift_hours else None
    )
    plots = ev.eval_plots(plan, episodes.results, curve, shift, out)
    video = ev.eval_video(plan, episodes.video, args.video, frames, args.video_wh, gl, log)
    flags = (args.disturbances, sorted(args.baseline_set))
    report = ev.eval_report(plan, *flags, episodes.results, curve, shift, plots, video)
    ev.print_tables(ev.write_report(report, out / ev.EVAL_FILE))
    for note in plan.notes:
        print(f"note: {note}")
    print(f"wrote {out / ev.EVAL_FILE}")
    return 0


def main(argv: list[str] | None = None) -> int:
    setup_gl()  # before anything imports mujoco (parse_args imports mjxbot)
    args = parse_args(argv)
    from mjxbot.errors import run_cli

    return run_cli(run, args)


if __name__ == "__main__":
    sys.exit(main())
