"""One-command GPU check: env, training, evaluation, QP and video figures in one table and JSON.

    python benchmarks/gpu_check.py --out gpu_check.json       # one GPU: --budget-s, 7.5 min
    JAX_PLATFORMS=cpu python benchmarks/gpu_check.py --tiny   # tiny sizes: a few minutes

Sections of the JSON (and rows of the printed table):

* `env`: physics steps/s of `balance` with its disturbances on (pushes, per-episode
  physics with action latency, sensing noise: every family the base env applies) and of
  raw `mjx.step` on the same model, per batch (`bench_env.py`'s rollouts); `warp`: the
  same on MJX's warp impl, or why it is skipped.
* `qp`: per-QP time of `jax.vmap(mjxbot.qp.solve)` on whole-body-control QPs
  (`bench_qp.py`'s generator, n = 60, float32, default settings) per batch, and OSQP C's
  single-core time on the same problems where osqp is installed.
* `train`, `compile`: steps/s and first-iteration (compile) time of `train()`, the loop
  `train.py` runs, per env count.
* `policy`: a `balance` run at the first env count, trained until the budget's share is
  spent, then its 10 s survival and the PD hold's on the same seeds
  (`mjxbot.evaluation.Evaluator`, disturbances at full strength, Wilson 95% intervals).
* `video`: an mp4 of the trained policy beside `--out` (`mjxbot.evaluation.render_video`,
  EGL on a GPU), or why it is skipped.
* `meta`: Python, backend, devices, package versions, budget and wall time.

Sizes: `GPU_SIZES` on an accelerator; on a CPU (or with `--tiny`) `TINY_SIZES`, the
`configs/ci.yaml` overlay and XLA's optimizations off (tiny figures are no benchmark:
they show that every part runs; the compiles dominate). A part that fails records
`{"error": ...}`, the others still run, and the exit code is 1. The JSON is rewritten after
every part, so a run cut short keeps what it measured.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import json
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _setup_gl() -> tuple[str | None, str | None]:
    """`eval.py`'s GL choice; it must run before anything imports mujoco."""
    sys.path.insert(0, str(ROOT))
    try:
        import eval as eval_cli
    finally:
        sys.path.remove(str(ROOT))
    return eval_cli.setup_gl()


GL = _setup_gl()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from bench_env import CONTROL_STEPS, env_rollout, median_rate, raw_rollout  # noqa: E402
from bench_qp import make_osqp, wbc_qp  # noqa: E402
from bench_train import bench_ours, steady_sps  # noqa: E402

from mjxbot import qp  # noqa: E402
from mjxbot.errors import ConfigError  # noqa: E402
from mjxbot.evaluation import POLICY, Evaluator, render_video  # noqa: E402
from mjxbot.registry import load_env  # noqa: E402
from mjxbot.training import config as tconfig  # noqa: E402
from mjxbot.training.checkpoint import Checkpointer  # noqa: E402
from mjxbot.training.loop import TrainingInterrupted, train  # noqa: E402
from mjxbot.training.policy import deterministic_act, restore_policy_params  # noqa: E402

PD_HOLD = "pd_hold"
QP_SIZE = 60  # variables of the whole-body-control QPs (bench_qp.py's middle size)
QP_DISTINCT = 1024  # distinct problems; larger batches repeat them


@dataclasses.dataclass(frozen=True)
class Sizes:
    """What one check runs.

    Attributes:
      configs: train.py config files of every training run (repository-relative).
      env_batches: batches of the env and raw `mjx.step` rows.
      repeats: timed calls per env row (median).
      train_envs: env counts of `train()`; the first is the training run's, the others
        get a short steps/s run each.
      sps_iterations: iterations of each steps/s run.
      max_iterations: the training run stops after this many (0: when its time is up).
      eval_episodes: episodes per actor (policy and PD hold) of the evaluation.
      qp_batches: batches of the QP rows.
      osqp_problems: problems OSQP C solves one after another.
      video_envs: policy envs tiled in the video.
      video: `(frames, width, height)` of the video.
      overrides: `KEY=VALUE` overrides of every training config after the check's own
        (`--set`: e.g. another robot, as in train.py).
    """

    configs: tuple[str, ...]
    env_batches: tuple[int, ...]
    repeats: int
    train_envs: tuple[int, ...]
    sps_iterations: int
    max_iterations: int
    eval_episodes: int
    qp_batches: tuple[int, ...]
    osqp_problems: int
    video_envs: int
    video: tuple[int, int, int]
    overrides: tuple[str, ...] = ()


GPU_SIZES = Sizes(
    configs=("configs/balance.yaml",),
    env_batches=(1024, 8192, 32768),
    repeats=3,
    train_envs=(4096, 8192),
    sps_iterations=5,
    max_iterations=0,
    eval_episodes=1024,
    qp_batches=(1024, 4096, 16384),
    osqp_problems=64,
    video_envs=4,
    video=(150, 640, 480),
)
TINY_SIZES = Sizes(
    configs=("configs/balance.yaml", "configs/ci.yaml"),
    env_batches=(8,),
    repeats=1,
    train_envs=(8,),
    sps_iterations=2,
    max_iterations=2,
    eval_episodes=4,
    qp_batches=(4,),
    osqp_problems=4,
    video_envs=1,
    video=(10, 64, 48),
)


def train_config(sizes: Sizes, num_envs: int, num_timesteps: int, checkpoint: bool):
    """The `balance` training config at `num_envs` envs: W&B, plots and progress bar off."""
    overrides = [
        f"ppo.num_envs={num_envs}",
        f"ppo.num_timesteps={num_timesteps}",
        f"eval.num_envs={sizes.eval_episodes}",
        f"checkpoint.enabled={str(checkpoint).lower()}",
        "checkpoint.every_steps=0",
        "checkpoint.max_to_keep=1",
        "logging.log_every=1",
        "logging.progress_bar=false",
        "logging.plot=false",
        "logging.wandb.mode=disabled",
        *sizes.overrides,
    ]
    config = tconfig.load([ROOT / c for c in sizes.configs], overrides)
    return tconfig.resolve_auto(config, jax.default_backend(), jax.device_count())


# ------------------------------------------------------------------ parts


def env_rows(env, batches: tuple[int, ...], repeats: int) -> list[dict[str, float]]:
    """Physics steps/s of the env step and of raw `mjx.step` per batch."""
    rows = []
    for batch in batches:
        steps = batch * CONTROL_STEPS * env.n_substeps
        env_sps = median_rate(*env_rollout(env, batch), steps, repeats)
        raw_sps = median_rate(*raw_rollout(env, batch), steps, repeats)
        rows.append(
            {
                "batch": batch,
                "env_physics_sps": env_sps,
                "raw_physics_sps": raw_sps,
                "raw_over_env": raw_sps / env_sps,
            }
        )
    return rows


def env_part(env, sizes: Sizes) -> dict[str, Any]:
    """`env_rows` of the training env, with the disturbance families it has on."""
    families = {
        f.name: getattr(env.config.disturbances, f.name)
        for f in dataclasses.fields(env.config.disturbances)
    }
    on = [name for name, family in families.items() if getattr(family, "enabled", False)]
    return {
        "task": "balance",
        "disturbances_on": on,
        "n_substeps": env.n_substeps,
        "rows": env_rows(env, sizes.env_batches, sizes.repeats),
    }


def warp_part(env, sizes: Sizes) -> dict[str, Any]:
    """`env_part`'s rows on MJX's warp impl at the middle batch, where warp imports."""
    try:
        warp_env = load_env("balance", dataclasses.replace(env.config, impl="warp"))
    except ConfigError as e:
        return {"skipped": str(e)}
    batch = sizes.env_batches[len(sizes.env_batches) // 2]
    return {"impl": "warp", "rows": env_rows(warp_env, (batch,), sizes.repeats)}


def qp_part(sizes: Sizes) -> dict[str, Any]:
    """Per-QP time of batched `mjxbot.qp.solve`, float32, and of OSQP C one by one."""
    settings = qp.QPSettings()
    problems = [wbc_qp(QP_SIZE, seed=s) for s in range(min(max(sizes.qp_batches), QP_DISTINCT))]
    stacked = [np.stack(a).astype(np.float32) for a in zip(*problems, strict=True)]
    solve = jax.jit(jax.vmap(lambda *a: qp.solve(*a, settings=settings)))
    rows = []
    for batch in sizes.qp_batches:
        args = [jnp.asarray(np.resize(a, (batch, *a.shape[1:]))) for a in stacked]
        solved = float(np.mean(np.asarray(solve(*args).status) == qp.SOLVED))
        per_s = median_rate(solve, args, batch, sizes.repeats)
        rows.append({"batch": batch, "us_per_qp": 1e6 / per_s, "solved": solved})
    out = {"n": QP_SIZE, "dtype": "float32", "eps": settings.eps_abs, "rows": rows}
    runs = [make_osqp(*p, settings.eps_abs) for p in problems[: sizes.osqp_problems]]
    if runs[0] is None:
        out["osqp_c"] = {"skipped": "osqp is not installed"}
        return out
    start = time.perf_counter()
    for run in runs:
        run()
    out["osqp_c"] = {"us_per_qp": (time.perf_counter() - start) / len(runs) * 1e6}
    return out


def train_part(sizes: Sizes) -> dict[str, Any]:
    """Short `train()` runs at `train_envs[1:]`: steps/s and first-iteration time."""
    rows = []
    for num_envs in sizes.train_envs[1:]:
        unroll = train_config(sizes, num_envs, 1, False).ppo.unroll_length
        steps = sizes.sps_iterations * num_envs * unroll
        rows.append(
            {"num_envs": num_envs, **bench_ours(train_config(sizes, num_envs, steps, False))}
        )
    return {"rows": rows}


def training_run(sizes: Sizes, deadline: float, run_dir: Path) -> tuple[dict[str, Any], Any]:
    """The `balance` run at `train_envs[0]` envs until `deadline` (or `max_iterations`).

    Returns:
      `(figures, (config, networks, params))`: the run's steps/s, first-iteration time,
      env steps and seconds; its config and final policy.
    """
    num_envs = sizes.train_envs[0]
    config = train_config(sizes, num_envs, 10**15, True)
    log: list[tuple[float, int]] = []
    last: dict[str, float] = {}

    def progress(step: int, metrics: dict[str, float]) -> None:
        log.append((time.perf_counter(), step))
        last.update(metrics)

    def stop() -> bool:
        done = sizes.max_iterations and len(log) >= sizes.max_iterations
        return bool(done) or time.perf_counter() >= deadline

    checkpointer = Checkpointer(run_dir / "checkpoints", 1)
    start = time.perf_counter()
    try:  # `stop` ends the run: train() checkpoints, then raises
        train(config, checkpointer=checkpointer, progress_fn=progress, should_stop=stop)
    except TrainingInterrupted:
        pass
    finally:
        checkpointer.close()
    figures = {
        "num_envs": num_envs,
        "sps": steady_sps(log),
        "first_iteration_s": last["time/first_iteration_s"],
        "env_steps": log[-1][1],
        "train_s": log[-1][0] - start,
    }
    networks, params, _ = restore_policy_params(run_dir)
    return figures, (config, networks, params)


def survival(report) -> dict[str, Any]:
    """A `GroupReport`'s survival: count, rate and Wilson 95% interval."""
    rate = report.survival
    return {
        "survived": rate.successes,
        "episodes": rate.trials,
        "rate": rate.rate,
        "ci95": list(rate.ci95),
    }


def policy_part(env, sizes: Sizes, deadline: float) -> tuple[dict[str, Any], dict]:
    """`training_run`, then its policy and the PD hold on the same seeds.

    Returns:
      `(figures, trace)`: the run's figures and both actors' survival; the poses of
      the first `video_envs` policy envs.
    """
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as run_dir:
        run, (config, networks, params) = training_run(sizes, deadline, Path(run_dir))
    act = deterministic_act(networks)
    seed = config.eval.seed
    evaluator = Evaluator(env, act, sizes.eval_episodes, seed, video_envs=sizes.video_envs)
    reports, trace = evaluator.run(params, (POLICY, PD_HOLD))
    actors = {actor: survival(report) for actor, report in reports.items()}
    return {"training": run, "seed": seed, **actors}, trace


def video_part(env, trace: dict, sizes: Sizes, path: Path) -> dict[str, Any]:
    """The trained policy's mp4 (`render_video`), or why it is skipped."""
    backend, no_gl = GL
    if backend is None:
        return {"skipped": no_gl}
    frames, width, height = sizes.video
    fps = 1.0 / env.config.ctrl_dt
    return render_video(env.mj_model, trace, path, frames, width, height, fps, backend)


def speed_tables(results: dict[str, Any]) -> None:
    """`train` and `compile` rows of every `train()` run, the training run's first."""
    runs = [results["policy"].get("training")] + results["train"].get("rows", [])
    runs = [r for r in runs if r]
    results["train"]["rows"] = runs
    results["compile"] = {
        "rows": [
            {"num_envs": r["num_envs"], "first_iteration_s": r["first_iteration_s"]} for r in runs
        ]
    }


# ------------------------------------------------------------------ the check


def versions() -> dict[str, Any]:
    """Python, the JAX backend and devices, and the versions of the packages measured."""
    found = {}
    for name in ("jax", "jaxlib", "mujoco", "mujoco-mjx", "brax", "flax", "optax"):
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    devices = [d.device_kind for d in jax.devices()]
    return {
        "python": platform.python_version(),
        "backend": jax.default_backend(),
        "devices": devices,
        **found,
    }


class Check:
    """Runs the parts in order, each guarded, and rewrites the JSON after each."""

    def __init__(self, sizes: Sizes, out: Path, budget_s: float, reserve_s: float):
        self.sizes, self.out = sizes, out
        self.start = time.perf_counter()
        self.deadline = self.start + budget_s - reserve_s
        self.results: dict[str, Any] = {"meta": {**versions(), "budget_s": budget_s}}
        self.failed = False

    def part(self, name: str, fn: Callable, *args) -> Any:
        """`fn(*args)` (None if it raised); its dict, or its tuple's first, is `name`."""
        t0 = time.perf_counter()
        print(f"[gpu_check] {name}", file=sys.stderr, flush=True)
        try:
            out = fn(*args)
        except Exception as e:  # noqa: BLE001 - one failing part must not cost the others
            traceback.print_exc()
            self.failed, out = True, None
            self.results[name] = {"error": f"{type(e).__name__}: {e}"[:1000]}
        else:
            self.results[name] = out[0] if isinstance(out, tuple) else out
        self.results[name]["wall_s"] = time.perf_counter() - t0
        self.write()
        return out

    def write(self) -> None:
        self.results["meta"]["wall_s"] = time.perf_counter() - self.start
        self.out.write_text(json.dumps(self.results, indent=2) + "\n")

    def run(self) -> None:
        sizes = self.sizes
        env = load_env("balance", train_config(sizes, sizes.train_envs[0], 1, False).env)
        self.part("env", env_part, env, sizes)
        self.part("warp", warp_part, env, sizes)
        self.part("qp", qp_part, sizes)
        self.part("train", train_part, sizes)
        policy = self.part("policy", policy_part, env, sizes, self.deadline)
        speed_tables(self.results)
        if policy is None:
            self.results["video"] = {"skipped": "no trained policy (the policy part failed)"}
        else:
            self.part("video", video_part, env, policy[1], sizes, self.out.with_suffix(".mp4"))
        self.write()


# ------------------------------------------------------------------ the table


def _rate(figures: dict[str, Any]) -> str:
    lo, hi = figures["ci95"]
    count = f"{figures['survived']}/{figures['episodes']}"
    return f"{figures['rate']:.1%} [{lo:.1%}, {hi:.1%}] ({count})"


def _env_rows(part: dict[str, Any]) -> list[tuple[str, str]]:
    rows = []
    for r in part["rows"]:
        raw = f"{r['raw_physics_sps']:,.0f} (x{r['raw_over_env']:.2f} the env's)"
        rows.append((f"env physics steps/s, batch {r['batch']:,}", f"{r['env_physics_sps']:,.0f}"))
        rows.append((f"raw mjx.step physics steps/s, batch {r['batch']:,}", raw))
    return rows


def _qp_rows(part: dict[str, Any]) -> list[tuple[str, str]]:
    rows = [
        (f"us per QP, batch {r['batch']:,}", f"{r['us_per_qp']:.2f} ({r['solved']:.0%} solved)")
        for r in part["rows"]
    ]
    osqp = part["osqp_c"]
    return [
        *rows,
        ("OSQP C us per QP, one core", osqp.get("skipped") or f"{osqp['us_per_qp']:.1f}"),
    ]


def _policy_rows(part: dict[str, Any]) -> list[tuple[str, str]]:
    run = part["training"]
    return [
        ("trained", f"{run['env_steps']:,} env steps in {run['train_s']:.0f} s"),
        ("10 s survival, policy", _rate(part[POLICY])),
        ("10 s survival, PD hold", _rate(part[PD_HOLD])),
    ]


# `(what, value)` rows of each part of the results, for the printed table.
TABLE_ROWS: dict[str, Callable[[dict[str, Any]], list[tuple[str, str]]]] = {
    "env": _env_rows,
    "warp": _env_rows,
    "qp": _qp_rows,
    "train": lambda part: [
        (f"train() env steps/s, {r['num_envs']:,} envs", f"{r['sps']:,.0f}") for r in part["rows"]
    ],
    "compile": lambda part: [
        (f"first iteration, {r['num_envs']:,} envs", f"{r['first_iteration_s']:.1f} s")
        for r in part["rows"]
    ],
    "policy": _policy_rows,
    "video": lambda part: [("mp4", f"{part['path']} ({part['frames']} frames, {part['backend']})")],
}


def part_rows(name: str, part: dict[str, Any]) -> list[tuple[str, str]]:
    """The table rows of one part, or its one error or skip line."""
    for reason in ("error", "skipped"):
        if reason in part:
            return [(reason, part[reason])]
    return TABLE_ROWS[name](part)


def print_table(results: dict[str, Any]) -> None:
    """The results as one table: part, what, value (or why the part has none)."""
    meta = results["meta"]
    print(
        f"\ngpu_check: jax {meta['jax']} on {meta['backend']} ({', '.join(meta['devices'])}), "
        f"{meta['wall_s']:.0f} s, tiny={meta['tiny']}"
    )
    for name in TABLE_ROWS:
        for what, value in part_rows(name, results.get(name, {"skipped": "not run"})):
            print(f"{name:8s} {what:48s} {value}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("gpu_check.json"))
    parser.add_argument("--tiny", action="store_true", help="tiny sizes (the default on a CPU)")
    parser.add_argument("--budget-s", type=float, default=450.0, help="seconds the check may take")
    parser.add_argument(
        "--reserve-s", type=float, default=90.0, help="of the budget, kept for eval and video"
    )
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key"
    )
    args = parser.parse_args(argv)
    tiny = args.tiny or jax.default_backend() == "cpu"
    # Tiny runs only show that every part works: XLA's optimizations off halve their compiles.
    jax.config.update("jax_disable_most_optimizations", tiny)
    sizes = dataclasses.replace(TINY_SIZES if tiny else GPU_SIZES, overrides=tuple(args.set))
    check = Check(sizes, args.out, args.budget_s, args.reserve_s)
    check.results["meta"]["tiny"] = tiny
    check.run()
    print_table(check.results)
    print(f"wrote {args.out}")
    return 1 if check.failed else 0


if __name__ == "__main__":
    sys.exit(main())
