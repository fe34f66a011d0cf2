#!/usr/bin/env python
"""Evaluate a trained policy (a run directory or an export) against the baselines.

    python eval.py runs/balance-20250101-120000
    python eval.py RUN --episodes 256 --disturbances on --video out.mp4
    python eval.py RUN --shift-hours 3                # continuous operation, interventions
    python eval.py RUN --controller qp --disturbances pushes.yaml --out results/

Writes `eval.json`, the plots (learning curves, robustness curve, cycle-time
histogram) and optionally an mp4 into `--out` (default `RUN/eval`), and
prints the same figures as tables. The policy and the baselines (PD hold,
QP only) run on identical seeds. See docs/eval.md for the report fields.
Errors (missing run, a policy for another robot or task, bad flags) are one
`error:` line and exit code 2.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

import tyro

EVAL_FILE = "eval.json"
LEARNING_CURVES = "learning_curves.png"
ROBUSTNESS = "robustness.png"
CYCLE_TIMES = "cycle_times.png"
CPU_EPISODES = 32
GPU_EPISODES = 1024
# The robustness sweep runs this long past the latest first push, so that
# every env is pushed at least once and the push can be judged.
ROBUSTNESS_MARGIN_S = 2.0
# Default top of the sweep: push forces up to this many times the config's range.
ROBUSTNESS_MAX_SCALE = 2.0
SHIFT_CHUNK_STEPS = 1000


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
    """comma list of baselines: pd (PD hold), qp (QP only); 'none' for none"""
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


# ------------------------------------------------------------------ loading
@dataclasses.dataclass
class Source:
    """What is evaluated: `load()` gives the policy once its metadata has been checked."""

    path: Path
    kind: str  # "run" or "export"
    load: Any  # () -> policy(obs, key) -> (action, extras); called after the checks
    meta: dict[str, Any]
    config: Any  # TrainConfig of a run, else None
    policy: Any = None


def load_source(path: Path) -> Source:
    from mjxbot.evaluation import EvalError
    from mjxbot.export import load_policy as load_export

    if not path.exists():
        raise EvalError(f"no run directory or exported policy at {path}")
    if path.is_dir() and ((path / "checkpoints").exists() or (path / "config.yaml").is_file()):
        from mjxbot.evaluation import read_run_meta
        from mjxbot.training import config as tconfig
        from mjxbot.training.policy import load_policy

        if not (path / "config.yaml").is_file():
            raise EvalError(f"{path} has checkpoints but no config.yaml: not a train.py run")
        config = tconfig.from_yaml_text((path / "config.yaml").read_text())
        meta = read_run_meta(path)
        return Source(path, "run", lambda: load_policy(path, meta["step"])[0], meta, config)
    policy, meta = load_export(path)
    return Source(path, "export", lambda: policy, meta, None)


def task_config(source: Source, task: str):
    """The env config of `task`: the run's own when it trained on it, else the task's defaults."""
    from mjxbot.config import from_dict
    from mjxbot.registry import ALL_ENVS

    if source.config is not None and source.config.env_name == task:
        return source.config.env
    cls = ALL_ENVS[task].config_class
    if isinstance(source.meta.get("env_config"), dict):
        return from_dict(cls, source.meta["env_config"], "env")
    return cls()


def disturbances_from(flag: str, current):
    from mjxbot.config import from_dict, load_yaml
    from mjxbot.evaluation import EvalError
    from mjxbot.types import DisturbanceConfig

    if flag == "on":
        return current
    if flag == "off":
        return DisturbanceConfig()
    path = Path(flag)
    if not path.is_file():
        raise EvalError(f"--disturbances: {flag} is neither on, off nor an existing YAML file")
    data = load_yaml(path) or {}
    if isinstance(data.get("env"), dict):
        data = data["env"]
    if isinstance(data.get("disturbances"), dict):
        data = data["disturbances"]
    return from_dict(DisturbanceConfig, data, "disturbances")


def check_policy_fits(source: Source, env, task: str) -> None:
    """Refuses a policy whose observation or action sizes (or robot) differ from the env's."""
    from mjxbot.evaluation import EvalError

    meta = source.meta
    robot = env.config.robot.mjcf
    controller = env.config.controller
    saved_robot = meta.get("robot")
    if isinstance(saved_robot, dict):
        saved_robot = saved_robot.get("mjcf")
    if isinstance(saved_robot, str) and Path(saved_robot).name != Path(robot).name:
        raise EvalError(
            f"policy at {source.path} is for robot {saved_robot}, task {task!r} uses {robot}"
        )
    key = (meta.get("network") or {}).get("policy_obs_key", "state")
    saved_obs = (meta.get("observation_size") or {}).get(key)
    env_obs = env.observation_size.get(key)
    saved_act = meta.get("action_size")
    if (saved_obs is not None and tuple(saved_obs) != tuple(env_obs or ())) or (
        saved_act is not None and int(saved_act) != env.action_size
    ):
        raise EvalError(
            f"policy at {source.path} takes observation {key!r} of size {tuple(saved_obs or ())} "
            f"and gives {saved_act} actions; task {task!r} on robot {robot} with controller "
            f"{controller} has {tuple(env_obs or ())} and {env.action_size}: a policy for "
            "another robot, task or controller"
        )


# ------------------------------------------------------------------ running
def run(args: EvalArgs) -> int:
    backend_gl, no_gl = setup_gl()
    import jax
    import numpy as np
    from rich.console import Console

    from mjxbot import evaluation as ev
    from mjxbot.errors import MjxbotError
    from mjxbot.evaluation import EvalError
    from mjxbot.registry import ALL_ENVS, load_env
    from mjxbot.types import PushConfig

    err = Console(stderr=True)
    notes: list[str] = []

    def log(message: str) -> None:
        err.print(message, markup=False, highlight=False)

    source = load_source(Path(args.source))
    trained_task = source.meta.get("env_name")
    task = args.task or trained_task
    if task is None:
        raise EvalError(f"policy at {source.path} does not name its task; pass --task")
    if task not in ALL_ENVS:
        raise EvalError(f"unknown task {task!r}; registered tasks: {', '.join(sorted(ALL_ENVS))}")
    if trained_task is not None and task != trained_task:
        raise EvalError(
            f"policy at {source.path} was trained for task {trained_task!r}, not {task!r}"
        )
    base = task_config(source, task)
    base = dataclasses.replace(
        base, disturbances=disturbances_from(args.disturbances, base.disturbances)
    )
    controller = args.controller or base.controller

    def with_controller(cfg, name: str):
        return dataclasses.replace(cfg, controller=name)

    main_env = load_env(task, with_controller(base, controller))
    check_policy_fits(source, main_env, task)
    source.policy = source.load()
    trained = source.config.env.controller if source.config else source.meta["controller"]
    if trained != controller:
        notes.append(f"policy: trained with controller {trained}, evaluated with {controller}")
    names = main_env.task_metrics
    dt = main_env.config.ctrl_dt
    takt = getattr(main_env.config, "takt", None)
    if names.cycle_time and takt is None:
        takt = main_env.config.episode_length * dt

    # actor -> controller of the env it runs on; the policy first (its rows feed the video).
    actors: dict[str, str] = {"policy": controller}
    unavailable: dict[str, str] = {}
    if "pd" in args.baseline_set:
        actors["pd_hold"] = "pd"
    if "qp" in args.baseline_set:
        actors["qp_only"] = "qp"
    env_cfgs = {controller: main_env.config}

    envs = {controller: main_env}
    for actor, ctrl in list(actors.items()):
        if ctrl in envs:
            continue
        try:
            envs[ctrl] = load_env(task, with_controller(base, ctrl))
            env_cfgs[ctrl] = envs[ctrl].config
        except Exception as e:  # noqa: BLE001 - a baseline that cannot be built is reported
            first = (str(e).strip().splitlines() or [""])[0][:200]
            unavailable[actor] = f"cannot build the {ctrl} env: {type(e).__name__}: {first}"
            del actors[actor]
    for actor, why in unavailable.items():
        notes.append(f"{actor}: not evaluated ({why})")

    accel = jax.default_backend() in ("gpu", "cuda", "rocm", "tpu")
    run_eval_envs = source.config.eval.num_envs if source.config is not None else 0
    n = args.episodes or run_eval_envs or (GPU_EPISODES if accel else CPU_EPISODES)
    seed = (
        args.seed
        if args.seed is not None
        else (source.config.eval.seed if source.config is not None else 1234)
    )
    keys = jax.random.split(jax.random.PRNGKey(seed), n)
    act_key = jax.random.PRNGKey(seed + 1)
    out = (
        Path(args.out)
        if args.out
        else (source.path / "eval" if source.kind == "run" else Path(f"eval-{source.path.stem}"))
    )
    out.mkdir(parents=True, exist_ok=True)

    def groups(actor_ctrl: dict[str, str]) -> dict[str, list[str]]:
        by: dict[str, list[str]] = {}
        for actor, ctrl in actor_ctrl.items():
            by.setdefault(ctrl, []).append(actor)
        return by

    # ---------------------------------------------------------- episodes
    episode_length = main_env.config.episode_length
    # Without a GL library the video is skipped: its envs are not even traced.
    render = bool(args.video) and backend_gl is not None
    video_frames = args.video_frames or episode_length if render else 0
    video_envs = min(args.video_envs, n) if render else 0
    results: dict[str, ev.GroupReport] = {}
    runners: dict[str, ev.Runner] = {}
    video_trace = None
    for ctrl, group in groups(actors).items():
        env = envs[ctrl]
        vids = video_envs if "policy" in group else 0
        length = max(env.config.episode_length, video_frames if vids else 0)
        log(
            f"[eval] {task}: {'/'.join(group)} on the {ctrl} env, {n} episodes "
            f"x {length} steps (compiling...)"
        )
        runner = ev.Runner(env, source.policy if "policy" in group else None, length, vids)
        runners[ctrl] = runner
        mode = np.concatenate([np.full(n, _mode(a), np.int32) for a in group])
        batch_keys = jax.numpy.concatenate([keys] * len(group))
        trace, seconds = runner.run(batch_keys, mode, np.ones(len(mode)), act_key)
        if vids:
            video_trace = {
                k: v for k, v in trace.items() if k in ("qpos", "mocap_pos", "mocap_quat")
            }
        for i, actor in enumerate(group):
            rows = np.arange(i * n, (i + 1) * n)
            report = ev.summarize(ev.select(trace, rows), names, dt, takt)
            if ctrl == "qp":
                report.qp_latency_ms = seconds * 1e3
            results[actor] = report
    results = {a: results[a] for a in actors}

    # -------------------------------------------------------- robustness
    robustness = None
    if args.robustness_points:
        push = base.disturbances.push
        push_base = push if push.enabled else PushConfig(enabled=True)
        f0, f1 = push_base.force
        top = args.push_max / f1 if args.push_max else ROBUSTNESS_MAX_SCALE
        scales = np.linspace(0.0, top, args.robustness_points)
        horizon = args.robustness_seconds or push_base.interval[1] + ROBUSTNESS_MARGIN_S
        survival: dict[str, list] = {a: [] for a in actors}
        ci: dict[str, list] = {a: [] for a in actors}
        pushes: dict[str, list] = {a: [] for a in actors}
        horizons = []
        for ctrl, group in groups(actors).items():
            env = envs[ctrl]
            if push.enabled and env.config.episode_length * dt >= horizon - 1e-9:
                runner = runners[ctrl]  # the episodes are long enough: no new compile
                steps = runner.length
            else:
                steps = max(round(horizon / dt), 1)
                cfg = env_cfgs[ctrl]
                cfg = dataclasses.replace(
                    cfg, disturbances=dataclasses.replace(cfg.disturbances, push=push_base)
                )
                try:
                    env = load_env(task, dataclasses.replace(cfg, episode_length=steps + 1))
                except MjxbotError:  # tasks with a fixed episode (a takt) keep theirs
                    env = load_env(task, cfg)
                log(
                    f"[eval] robustness: {'/'.join(group)} on the {ctrl} env with pushes, "
                    f"{n} envs x {steps} steps per point (compiling...)"
                )
                runner = ev.Runner(env, source.policy if "policy" in group else None, steps)
            horizons.append(steps * dt)
            mode = np.concatenate([np.full(n, _mode(a), np.int32) for a in group])
            batch_keys = jax.numpy.concatenate([keys] * len(group))
            for s in scales:  # one batch shape for every point: one compile
                trace, _ = runner.run(batch_keys, mode, np.full(len(mode), s), act_key)
                for i, actor in enumerate(group):
                    part = ev.select(trace, np.arange(i * n, (i + 1) * n))
                    rate = ev.survival(part)
                    survival[actor].append(rate.rate)
                    ci[actor].append(rate.ci95)
                    pushes[actor].append(int(part["disturbance/pushes"][-1].sum()))
        robustness = ev.RobustnessCurve(
            force_n=[float(s * (f0 + f1) / 2) for s in scales],
            force_range_n=[(float(s * f0), float(s * f1)) for s in scales],
            scale=[float(s) for s in scales],
            duration_s=tuple(push_base.duration),
            horizon_s=min(horizons),
            episodes=n,
            survival=survival,
            survival_ci95=ci,
            pushes=pushes,
        )
    else:
        notes.append("robustness: skipped (--robustness-points 0)")

    # ------------------------------------------------------------- shift
    shift = None
    if args.shift_hours:
        shift = run_shift(
            args,
            source.policy,
            err,
            task,
            env_cfgs,
            actors,
            names,
            dt,
            takt,
            n,
            seed,
            notes,
        )

    # ------------------------------------------------------------- plots
    plots: dict[str, str | None] = {}
    if source.kind == "run":
        from mjxbot.training.logging import read_metrics

        path = ev.plot_learning_curves(read_metrics(source.path), out / LEARNING_CURVES)
        plots["learning_curves"] = str(path) if path else None
        if path is None:
            notes.append("learning curves: metrics.jsonl has nothing to plot")
    else:
        plots["learning_curves"] = None
        notes.append("learning curves: an export carries no metrics.jsonl")
    plots["robustness"] = (
        str(ev.plot_robustness(robustness, out / ROBUSTNESS)) if robustness else None
    )
    cycle_source = shift.results if shift and names.cycle_time else results
    path = ev.plot_cycle_times(cycle_source, out / CYCLE_TIMES)
    plots["cycle_times"] = str(path) if path else None
    if path is None:
        notes.append(f"cycle-time histogram: task {task!r} reports no cycle time")

    # ------------------------------------------------------------- video
    if args.video and backend_gl is None:
        video = {"skipped": no_gl, "backend": None}
        notes.append(f"video: skipped: {no_gl}")
    elif args.video:
        w, h = args.video_wh
        log(
            f"[eval] rendering {video_frames} frames of {video_envs} env(s) at {w}x{h} "
            f"with MUJOCO_GL={backend_gl}"
        )
        video = ev.render_video(
            main_env.mj_model,
            video_trace,
            Path(args.video),
            video_frames,
            w,
            h,
            1.0 / dt,
            backend_gl,
        )
        if "skipped" in video:
            notes.append(f"video: skipped: {video['skipped']}")
    else:
        video = {"skipped": "no --video given", "backend": backend_gl}

    report = ev.Report(
        source={
            "path": str(source.path),
            "kind": source.kind,
            "task": task,
            "checkpoint_step": source.meta.get("step"),
        },
        settings={
            "episodes": n,
            "seed": seed,
            "controller": controller,
            "disturbances": args.disturbances,
            "ctrl_dt": dt,
            "episode_length": episode_length,
            "takt": takt,
            "jax_backend": jax.default_backend(),
            "baselines": sorted(args.baseline_set),
        },
        results=results,
        unavailable=unavailable,
        robustness=robustness,
        shift=shift,
        plots=plots,
        video=video,
        notes=notes,
    )
    data = report.to_dict()
    (out / EVAL_FILE).write_text(json.dumps(data, indent=2))
    print_tables(data)
    for note in notes:
        print(f"note: {note}")
    print(f"wrote {out / EVAL_FILE}")
    return 0


def _mode(actor: str) -> int:
    from mjxbot.evaluation import MODE_POLICY, MODE_ZERO_ACTION

    return MODE_POLICY if actor == "policy" else MODE_ZERO_ACTION


def run_shift(args, policy, err, task, env_cfgs, actors, names, dt, takt, n, seed, notes):
    """Continuous operation for `--shift-hours` per station, in chunks of one compiled scan."""
    import jax
    import numpy as np
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from mjxbot import evaluation as ev
    from mjxbot.registry import load_env

    stations = args.stations or n
    total = max(round(args.shift_hours * ev.SECONDS_PER_HOUR / dt), 1)
    cyclic = names.success is not None
    chunk_reports: dict[str, list] = {a: [] for a in actors}
    plans = []
    by: dict[str, list[str]] = {}
    for actor, ctrl in actors.items():
        by.setdefault(ctrl, []).append(actor)
    for ctrl, group in by.items():
        if cyclic:
            # The task's episodes are its cycles: each brings a fresh scene, the robot carries
            # on from the last one (`continuous`); only a failure resets it.
            env = load_env(task, dataclasses.replace(env_cfgs[ctrl], continuous=True))
            chunk = env.config.episode_length
            runner = None
        else:
            chunk = min(total, SHIFT_CHUNK_STEPS)
            num = math.ceil(total / chunk)
            env = load_env(
                task, dataclasses.replace(env_cfgs[ctrl], episode_length=num * chunk + 1)
            )
            runner = None
        if runner is None:
            runner = ev.Runner(env, policy if "policy" in group else None, chunk)
        plans.append((ctrl, group, runner))
    chunks = math.ceil(total / plans[0][2].length)
    steps_done = chunks * plans[0][2].length
    if cyclic:
        notes.append(
            f"shift: {task} runs cycle after cycle ({plans[0][2].length} steps each): a fresh "
            "scene each cycle, the robot carries on; a failure resets it and counts as an "
            "intervention"
        )
    station_keys = jax.random.split(jax.random.PRNGKey(seed + 2), stations)
    with Progress(
        TextColumn("[eval] shift"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} chunks"),
        TimeRemainingColumn(),
        console=err,
        transient=False,
    ) as progress:
        bar = progress.add_task("shift", total=chunks * len(plans))
        for _ctrl, group, runner in plans:
            mode = np.concatenate([np.full(stations, _mode(a), np.int32) for a in group])
            state = runner.start(
                jax.numpy.concatenate([station_keys] * len(group)), np.ones(len(mode))
            )
            key = jax.random.PRNGKey(seed + 3)
            for _ in range(chunks):
                key, k = jax.random.split(key)
                state, trace, seconds = runner.continue_(state, mode, k)
                for i, actor in enumerate(group):
                    rows = np.arange(i * stations, (i + 1) * stations)
                    rep = ev.summarize(ev.select(trace, rows), names, dt, takt, continuous=True)
                    chunk_reports[actor].append(rep)
                progress.advance(bar)
    results = {actor: ev.combine_shift(chunk_reports[actor]) for actor in actors}
    hours = steps_done * dt / ev.SECONDS_PER_HOUR
    return ev.ShiftReport(
        hours=hours,
        stations=stations,
        station_hours=hours * stations,
        cycle_s=plans[0][2].length * dt if cyclic else None,
        results=results,
    )


def print_tables(data: dict[str, Any]) -> None:
    """Prints every table of the report from the `eval.json` dict itself."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    from mjxbot.evaluation import report_tables

    console = Console(width=200, soft_wrap=False)
    for title, header, rows in report_tables(data):
        console.print()
        console.print(title, markup=False, highlight=False)
        table = Table(box=box.SIMPLE)
        for i, name in enumerate(header):
            table.add_column(name, justify="left" if i == 0 else "right", no_wrap=True)
        for label, cells in rows:
            table.add_row(label, *cells)
        console.print(table)


def main(argv: list[str] | None = None) -> int:
    setup_gl()  # before anything imports mujoco (parse_args imports mjxbot)
    args = parse_args(argv)
    from mjxbot.errors import run_cli

    return run_cli(run, args)


if __name__ == "__main__":
    sys.exit(main())
