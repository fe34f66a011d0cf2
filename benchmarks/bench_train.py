"""Training throughput of mjxbot's PPO loop against Brax's `ppo.train` on the same env.

    JAX_PLATFORMS=cpu python benchmarks/bench_train.py --env balance --num-envs 32

Both trainers get the same task, env count, unroll length, minibatches,
epochs, networks and optimizer settings. Reported: time from the start of
training to the first finished iteration (compile included) and the steady
training steps per second (iterations after the first). Brax runs its
iterations in epochs of `--brax-epoch` iterations per device call; ours runs
one jitted call per iteration. Where Brax's `ppo.train` cannot run (brax
0.14.2 on jax >= 0.10, which removed `jax.device_put_replicated`), only
mjxbot's row is printed, with one line saying why Brax's is skipped.
"""

from __future__ import annotations

import argparse
import time

import brax
import jax
from brax.envs.base import Env as BraxEnvBase
from brax.training.agents.ppo import train as brax_ppo

from mjxbot.env.state import State
from mjxbot.registry import load_env
from mjxbot.training import config as tconfig
from mjxbot.training.loop import train
from mjxbot.training.ppo import make_networks

_BRAX_ONLY = ("episode_metrics", "episode_done", "eval_metrics")


class BraxAdapter(BraxEnvBase):
    """An mjxbot env as a batched Brax env (`wrap_env=False`: it auto-resets itself)."""

    def __init__(self, env):
        self.env = env

    def _wrap(self, s: State) -> State:
        return s.replace(info={**s.info, "episode_metrics": {}, "episode_done": s.done})

    def reset(self, rng):
        return self._wrap(jax.vmap(self.env.reset)(rng))

    def step(self, state, action):
        info = {k: v for k, v in state.info.items() if k not in _BRAX_ONLY}
        return self._wrap(jax.vmap(self.env.step)(state.replace(info=info), action))

    @property
    def observation_size(self):
        return self.env.observation_size

    @property
    def action_size(self):
        return self.env.action_size

    @property
    def backend(self):
        return "mjx"


def bench_ours(config) -> dict[str, float]:
    log: list[tuple[float, int]] = []
    t0 = time.perf_counter()
    train(
        config, progress_fn=lambda step, m: log.append((time.perf_counter(), step)), evaluate=False
    )
    return {"first_iteration_s": log[0][0] - t0, "sps": steady_sps(log)}


def steady_sps(log: list[tuple[float, int]], skip: int = 1) -> float:
    """Steps per second after the first `skip` reports (which include compiles)."""
    (t_first, s_first), (t_last, s_last) = log[skip - 1], log[-1]
    return (s_last - s_first) / (t_last - t_first)


def _intervals(log: list[tuple[float, int]]) -> str:
    """`seconds/steps` between consecutive reports, to show where compiles fall."""
    pairs = zip(log[:-1], log[1:], strict=True)
    return ", ".join(f"{t1 - t0:.0f} s/{s1 - s0:,}" for (t0, s0), (t1, s1) in pairs)


def bench_brax(config, env, epoch: int) -> dict[str, float]:
    ppo, net = config.ppo, config.network
    log: list[tuple[float, int]] = []

    def factory(observation_size, action_size, preprocess_observations_fn):
        # The same networks as train(): Brax passes its normalizer iff normalize_observations.
        del preprocess_observations_fn
        return make_networks(observation_size, action_size, net, ppo.normalize_observations)

    iterations = ppo.num_timesteps // (ppo.num_envs * ppo.unroll_length)
    t0 = time.perf_counter()
    brax_ppo.train(
        BraxAdapter(env),
        num_timesteps=ppo.num_timesteps,
        wrap_env=False,
        num_envs=ppo.num_envs,
        episode_length=env.config.episode_length,
        learning_rate=ppo.learning_rate,
        entropy_cost=ppo.entropy_cost,
        discounting=ppo.discounting,
        unroll_length=ppo.unroll_length,
        batch_size=ppo.num_envs // ppo.num_minibatches,
        num_minibatches=ppo.num_minibatches,
        num_updates_per_batch=ppo.num_updates_per_batch,
        normalize_observations=ppo.normalize_observations,
        reward_scaling=ppo.reward_scaling,
        clipping_epsilon=ppo.clipping_epsilon,
        gae_lambda=ppo.gae_lambda,
        max_grad_norm=ppo.max_grad_norm or None,
        network_factory=factory,
        seed=config.seed,
        num_evals=iterations // epoch + 1,
        run_evals=False,
        num_eval_envs=1,
        progress_fn=lambda step, m: log.append((time.perf_counter(), step)),
    )
    return {
        # Brax's second epoch compiles again (measured: 78 s vs 3-4 s; likely weak types in
        # the env state, which train() strips), so its steady rate starts after two epochs.
        "sps": steady_sps(log, skip=2),
        "first_epoch_s": log[0][0] - t0,
        "first_epoch_steps": log[0][1],
        "intervals": _intervals(log),
    }


def brax_or_skip(config, env, epoch: int) -> dict[str, float] | str:
    """`bench_brax`'s figures, or why Brax's `ppo.train` cannot run with this jax."""
    try:
        return bench_brax(config, env, epoch)
    except AttributeError as e:
        if "device_put_replicated" not in str(e):
            raise
        return (
            f"brax ppo.train skipped: brax {brax.__version__} calls jax.device_put_replicated, "
            f"which jax {jax.__version__} no longer has (fixed in Brax's repository, unreleased)"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--env", default="balance")
    p.add_argument("--num-envs", type=int, default=32)
    p.add_argument("--iterations", type=int, default=41)
    p.add_argument("--brax-epoch", type=int, default=5, help="Brax iterations per device call")
    args = p.parse_args()
    steps = args.num_envs * 20
    config = tconfig.load(
        [],
        [
            f"env_name={args.env}",
            f"ppo.num_envs={args.num_envs}",
            f"ppo.num_timesteps={steps * args.iterations}",
            "checkpoint.enabled=false",
        ],
    )
    config = tconfig.resolve_auto(config, jax.default_backend(), jax.device_count())
    env = load_env(config.env_name, config.env)
    ours = bench_ours(config)
    brax = brax_or_skip(config, env, args.brax_epoch)
    print(
        f"\n{args.env}, {args.num_envs} envs x {config.ppo.unroll_length} steps, "
        f"{jax.device_count()} {jax.default_backend()} device(s)"
    )
    print(f"{'trainer':28s}{'steps/s':>10s}{'first iteration (s)':>22s}")
    print(f"{'mjxbot train()':28s}{ours['sps']:10.0f}{ours['first_iteration_s']:22.1f}")
    if isinstance(brax, str):
        print(brax)
        return
    print(
        f"{'brax ppo.train':28s}{brax['sps']:10.0f}{brax['first_epoch_s']:22.1f}"
        f"  (first epoch: {brax['first_epoch_steps']:,} steps)"
    )
    print(f"brax epochs after the first (wall/steps): {brax['intervals']}")
    print(f"ratio mjxbot / brax steps/s: {ours['sps'] / brax['sps']:.2f}")


if __name__ == "__main__":
    main()
