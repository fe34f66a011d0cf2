"""Soak test: a long CPU training run with every disturbance on.

Trains PPO on `balance` through `mjxbot.training.train` with its default
disturbances (pushes, per-episode physics with action latency, sensing
noise/dropouts; `--push-force` and `--kick-probability` make them harsher),
checkpointing every `--checkpoint-every` steps, and reports:

* guarded events: envs whose state went NaN/Inf or diverged while finite,
  reset and counted by the env's guard (`env/nonfinite_resets_total`,
  `env/diverged_resets_total`), and whether every parameter and
  optimizer-state leaf is still finite at the end;
* the largest `|reward|` of any env step that reached PPO, against the
  documented bound `env.guard.max_reward`;
* resident memory (RSS) after the first iteration (compile done) and at the
  end, with the peak in between;
* training throughput (env steps/s) over time, in `--windows` equal slices;
* the run directory's size (checkpoints are kept to `max_to_keep`).

Usage:
  JAX_PLATFORMS=cpu nice python benchmarks/soak.py [--steps 1000000] [--batch 128]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import numpy as np  # noqa: E402

from mjxbot.training import config as tconfig  # noqa: E402
from mjxbot.training.checkpoint import Checkpointer  # noqa: E402
from mjxbot.training.loop import train  # noqa: E402

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mb() -> float:
    """This process's resident set size in MiB (Linux `/proc`)."""
    resident = int(Path("/proc/self/statm").read_text().split()[1])
    return resident * PAGE / 2**20


def soak_overrides(args: argparse.Namespace) -> list[str]:
    harsher = [f"env.disturbances.push.kick_probability={args.kick_probability}"]
    if args.push_force:
        lo, hi = args.push_force
        harsher.append(f"env.disturbances.push.force=[{lo}, {hi}]")
    return [
        "env_name=balance",
        f"ppo.num_envs={args.batch}",
        f"ppo.num_timesteps={args.steps}",
        f"ppo.num_minibatches={args.minibatches}",
        "eval.num_envs=4",
        f"checkpoint.every_steps={args.checkpoint_every}",
        "checkpoint.max_to_keep=2",
        "logging.wandb.mode=disabled",
        "env.disturbances.push.enabled=true",
        "env.disturbances.physics.enabled=true",
        "env.disturbances.sensing.enabled=true",
        *harsher,
    ]


def all_finite(tree) -> bool:
    return all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(tree) if np.size(x))


def window_table(samples: list[tuple[float, int, float]], windows: int) -> list[str]:
    """Rows of mean steps/s per equal slice of the run: `samples` are (wall s, step, sps)."""
    rows = []
    chunks = np.array_split(np.arange(len(samples)), windows)
    for chunk in (c for c in chunks if len(c)):
        first, last = samples[chunk[0]], samples[chunk[-1]]
        sps = statistics.mean(samples[i][2] for i in chunk)
        rows.append(f"{first[1]:>10,} .. {last[1]:>10,}  {last[0] / 60:7.1f} min  {sps:8.0f}")
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=1_000_000)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--minibatches", type=int, default=4)
    p.add_argument("--checkpoint-every", type=int, default=100_000)
    p.add_argument(
        "--push-force", type=float, nargs=2, metavar=("LO", "HI"), help="default: the task's"
    )
    p.add_argument("--kick-probability", type=float, default=0.0)
    p.add_argument("--windows", type=int, default=10)
    p.add_argument("--run-dir", help="default: a temporary directory")
    args = p.parse_args()

    config = tconfig.load([], soak_overrides(args))
    config = tconfig.resolve_auto(config, jax.default_backend(), jax.device_count())
    run_dir = Path(args.run_dir or tempfile.mkdtemp(prefix="mjxbot-soak-"))
    checkpointer = Checkpointer(run_dir / "checkpoints", config.checkpoint.max_to_keep)

    samples: list[tuple[float, int, float]] = []
    rss: list[float] = []
    counters = {"env/nonfinite_resets_total": 0.0, "env/diverged_resets_total": 0.0}
    max_abs_reward = [0.0]
    t0 = time.perf_counter()

    def progress(step: int, metrics: dict[str, float]) -> None:
        if "time/sps" not in metrics:
            return
        samples.append((time.perf_counter() - t0, step, metrics["time/sps"]))
        rss.append(rss_mb())
        for name in counters:  # cumulative over the run already
            counters[name] = metrics.get(name, counters[name])
        max_abs_reward[0] = max(max_abs_reward[0], metrics["reward/max_abs"])
        if len(samples) % 20 == 1:
            print(
                f"{samples[-1][0] / 60:6.1f} min  step {step:>10,}  {metrics['time/sps']:6.0f}/s"
                f"  rss {rss[-1]:7.1f} MiB  guarded resets "
                f"{sum(counters.values()):.0f}  max |reward| {max_abs_reward[0]:.3f}",
                flush=True,
            )

    _, params, _ = train(config, checkpointer=checkpointer, progress_fn=progress, evaluate=False)
    step, _ = checkpointer.read_meta()
    final = checkpointer.restore(step, _state_template(config))
    checkpointer.close()
    wall = time.perf_counter() - t0
    disk = sum(f.stat().st_size for f in run_dir.rglob("*") if f.is_file())

    ppo = config.ppo
    print(
        f"\nsoak: balance, {ppo.num_envs} envs, {samples[-1][1]:,} env steps in "
        f"{wall / 60:.1f} min ({jax.devices()[0].platform}, jax {jax.__version__}); "
        f"push force {config.env.disturbances.push.force} N, kick probability "
        f"{args.kick_probability}, physics, sensing on"
    )
    print(
        f"env resets by the guard (contained): non-finite "
        f"{counters['env/nonfinite_resets_total']:.0f}, diverged while finite "
        f"{counters['env/diverged_resets_total']:.0f}"
    )
    bound = config.env.guard.max_reward
    print(
        f"largest |reward| of any env step: {max_abs_reward[0]:.4f} "
        f"(bound env.guard.max_reward = {bound}; "
        f"{'within' if max_abs_reward[0] <= bound else 'EXCEEDED'})"
    )
    print(f"params finite: {all_finite(params)}; whole train state finite: {all_finite(final)}")
    print(
        f"RSS MiB: after first iteration {rss[0]:.1f}, end {rss[-1]:.1f}, peak {max(rss):.1f} "
        f"(end - start {rss[-1] - rss[0]:+.1f})"
    )
    print(
        f"run dir {run_dir}: {disk / 2**20:.1f} MiB on disk, "
        f"checkpoints {checkpointer_steps(run_dir)}"
    )
    print(
        f"\n{'steps':>24}  {'at':>11}  {'steps/s':>8}   (first iteration, with compile, left out)"
    )
    print("\n".join(window_table(samples[1:], args.windows)))


def _state_template(config):
    """A freshly initialised train state of `config` (structure for the restore)."""
    from mjxbot.registry import load_env
    from mjxbot.training.loop import make_mesh
    from mjxbot.training.ppo import make_trainer

    env = load_env(config.env_name, config.env)
    trainer = make_trainer(env, config.ppo, config.network, mesh=make_mesh())
    return jax.jit(trainer.init)(jax.random.PRNGKey(0))


def checkpointer_steps(run_dir: Path) -> list[int]:
    return sorted(int(p.name) for p in (run_dir / "checkpoints").iterdir() if p.name.isdigit())


if __name__ == "__main__":
    main()
