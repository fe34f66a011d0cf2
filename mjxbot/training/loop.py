"""`train()`: the Python side of a run around the one compiled training step.

Python here only dispatches `train_step`, reports metrics through
`progress_fn`, writes checkpoints and evaluates; all env and learning work is
inside the jitted step. Devices: every per-env array is sharded along the
batch axis of a mesh over all devices of all processes (`jax.devices()`), so
the same code runs on one CPU, several local devices, or many hosts joined by
`jax.distributed.initialize`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from mjxbot.config import to_dict
from mjxbot.env import HumanoidEnv
from mjxbot.evaluation.episodes import Evaluator
from mjxbot.evaluation.metrics import GroupReport, flat_metrics
from mjxbot.evaluation.rollout import POLICY
from mjxbot.registry import load_env
from mjxbot.training.checkpoint import Checkpointer, CheckpointError, check_compatible
from mjxbot.training.policy import deterministic_act
from mjxbot.training.ppo import (
    BATCH_AXIS,
    Trainer,
    make_trainer,
    policy_params,
    state_shardings,
)
from mjxbot.training.schema import TrainConfig

ProgressFn = Callable[[int, dict[str, float]], None]


class TrainingInterrupted(Exception):  # noqa: N818 - a control-flow signal, not an error
    """Raised after a checkpoint was written because `should_stop` asked to stop."""

    def __init__(self, step: int):
        super().__init__(f"stopped at step {step}")
        self.step = step


def host_copy(tree: Any) -> Any:
    """Numpy copy of a replicated (possibly multi-host) pytree."""
    return jax.tree.map(lambda x: np.asarray(x.addressable_data(0)), tree)


def tree_nbytes(tree: Any) -> int:
    """Bytes of every array leaf of `tree` (arrays or shape structs)."""
    return sum(int(np.prod(x.shape)) * np.dtype(x.dtype).itemsize for x in jax.tree.leaves(tree))


def make_mesh() -> Mesh:
    """A 1-D mesh over every device of every process, axis `batch`."""
    return Mesh(np.array(jax.devices()), (BATCH_AXIS,))


def localize_env(env: HumanoidEnv) -> HumanoidEnv:
    """Moves the env's device arrays to this process's first device.

    MJX's `put_model`/`make_data` place arrays on `jax.devices()[0]`, which
    belongs to process 0 in a multi-host run; the other processes cannot
    close over such arrays in a jitted function.
    """
    if jax.process_count() == 1:
        return env
    from mujoco import mjx

    device = jax.local_devices()[0]
    impl = env.config.impl
    for name, value in vars(env).items():
        leaves = jax.tree.leaves(value)
        if not any(isinstance(x, jax.Array) and not x.is_fully_addressable for x in leaves):
            continue
        if isinstance(value, mjx.Model):
            setattr(env, name, mjx.put_model(env.mj_model, device=device, impl=impl))
        elif isinstance(value, mjx.Data):
            setattr(env, name, mjx.make_data(env.mj_model, device=device, impl=impl))
        else:
            raise RuntimeError(
                f"env attribute {name} lives on another process's device; create it "
                "on jax.local_devices()[0]"
            )
    env.forget_traces()
    return env


def run_meta(config: TrainConfig, env: HumanoidEnv) -> dict[str, Any]:
    """What a checkpoint must match to be resumed or loaded by this setup."""
    return {
        "env_name": config.env_name,
        "observation_size": {k: list(v) for k, v in env.observation_size.items()},
        "action_size": int(env.action_size),
        "num_envs": int(config.ppo.num_envs),
        "network": to_dict(config.network),
        "normalize_observations": bool(config.ppo.normalize_observations),
    }


def closing_actors(config: TrainConfig, env: HumanoidEnv) -> tuple[str, ...]:
    """The actors of the closing evaluation: the policy, and the env's zero action (the
    PD hold, QP only, or a task's scripted controller) when `eval.compare_pd_hold`."""
    baseline = (env.zero_action_actor,) if config.eval.compare_pd_hold else ()
    return (POLICY, *baseline)


def eval_metrics(actor: str, report: GroupReport) -> dict[str, float]:
    """`report` as logged: `eval/...` for the policy, `eval_pd/...` for the zero action."""
    prefix = "eval" if actor == POLICY else "eval_pd"
    return {f"{prefix}/{k}": v for k, v in flat_metrics(report).items()}


def initial_state(
    trainer: Trainer,
    mesh: Mesh,
    config: TrainConfig,
    checkpointer: Checkpointer | None,
    resume: bool,
    meta: dict[str, Any],
) -> tuple[Any, Any]:
    """The sharded train state to start from, and its shardings.

    Fresh from `config.seed`, or, with `resume`, the checkpointer's latest
    checkpoint once its `meta` matches this run's. The free space a checkpoint
    needs is checked first, so a full disk fails before any training.
    """
    abstract = jax.eval_shape(trainer.init, jax.random.PRNGKey(0))
    if checkpointer is not None and config.checkpoint.enabled:
        checkpointer.require_space(tree_nbytes(abstract))
    shardings = state_shardings(mesh, abstract)
    if resume:
        if checkpointer is None:
            raise CheckpointError("resume needs a checkpoint directory")
        step, saved_meta = checkpointer.read_meta()
        check_compatible(saved_meta, meta, str(checkpointer.directory / str(step)))
    ts = jax.jit(trainer.init, out_shardings=shardings)(jax.random.PRNGKey(config.seed))
    if resume:
        ts = checkpointer.restore(step, ts)
    return ts, shardings


class IterationClock:
    """Wall-clock figures of the loop: steps/s between logs, walltime, first-iteration time."""

    def __init__(self, iteration: int, steps_per_iteration: int):
        self.steps_per_iteration = steps_per_iteration
        self.start = self.last = time.perf_counter()
        self.last_iteration = iteration
        self.first_iteration_s: float | None = None

    def first_iteration_done(self, step_metrics: Any) -> None:
        """Records the first iteration's time, compile included (one sync, once per run)."""
        if self.first_iteration_s is None:
            jax.block_until_ready(step_metrics)
            self.first_iteration_s = time.perf_counter() - self.start

    def lap(self, iteration: int) -> dict[str, float]:
        """`time/...` metrics since the previous lap, which ends here."""
        now = time.perf_counter()
        steps = (iteration - self.last_iteration) * self.steps_per_iteration
        lap = {
            "time/sps": steps / max(now - self.last, 1e-9),
            "time/walltime": now - self.start,
            "time/iteration": float(iteration),
            "time/first_iteration_s": self.first_iteration_s,
        }
        self.last, self.last_iteration = now, iteration
        return lap


def train(
    config: TrainConfig,
    *,
    checkpointer: Checkpointer | None = None,
    resume: bool = False,
    progress_fn: ProgressFn | None = None,
    should_stop: Callable[[], bool] | None = None,
    env: HumanoidEnv | None = None,
    trace_counter: list[int] | None = None,
    evaluate: bool = True,
    evaluation: dict[str, GroupReport] | None = None,
) -> tuple[Callable, tuple, dict[str, float]]:
    """Trains PPO on `config.env_name`.

    Args:
      config: a resolved config (no size left at 0).
      checkpointer: where to save (every `checkpoint.every_steps`, at the end,
        and when stopped) and, with `resume`, restore from.
      resume: continue from the checkpointer's latest checkpoint.
      progress_fn: called as `progress_fn(env_steps, metrics)` every
        `logging.log_every` iterations and for evaluations (keys `eval/...`).
      should_stop: polled after each iteration; when it returns True a
        checkpoint is written and `TrainingInterrupted` raised.
      env: the env to use instead of building `config.env_name`.
      trace_counter: one-element list counting traces of the train step.
      evaluate: run the final evaluation (and the PD-hold comparison), with
        `mjxbot.evaluation.Evaluator` on `eval.num_envs` envs from `eval.seed`.
      evaluation: filled with the final evaluation's figures per actor
        (`policy`, and the env's `zero_action_actor`), what `train.py` writes as `eval.json`.

    Returns:
      `(make_policy, params, metrics)`: Brax's `make_policy(params,
      deterministic)`, host copies of `(normalizer, policy, value)` params and
      the final metrics (last training metrics, `eval/...` of the policy and
      `eval_pd/...` of the zero action, `evaluation.flat_metrics`).

    Raises:
      CheckpointError: resuming from a missing, unreadable or foreign checkpoint.
    """
    ppo_cfg = config.ppo
    if not ppo_cfg.num_envs or not ppo_cfg.num_timesteps or not config.eval.num_envs:
        raise ValueError("train() needs a resolved config (see training.config.resolve_auto)")
    progress_fn = progress_fn or (lambda *_: None)
    should_stop = should_stop or (lambda: False)
    env = localize_env(env if env is not None else load_env(config.env_name, config.env))
    mesh = make_mesh()
    trainer = make_trainer(
        env,
        ppo_cfg,
        config.network,
        mesh=mesh,
        trace_counter=trace_counter,
        curriculum=config.curriculum,
    )
    meta = run_meta(config, env)
    ts, shardings = initial_state(trainer, mesh, config, checkpointer, resume, meta)
    train_step = jax.jit(
        trainer.train_step,
        in_shardings=(shardings,),
        out_shardings=(shardings, NamedSharding(mesh, P())),
        donate_argnums=0,
    )
    steps_per_it = trainer.steps_per_iteration
    num_iterations = math.ceil(ppo_cfg.num_timesteps / steps_per_it)
    iteration = int(host_copy(ts.iteration))
    is_main = jax.process_index() == 0
    evaluator = None
    if evaluate and is_main:  # one compile, reused at the start and the end
        act = deterministic_act(trainer.networks)
        evaluator = Evaluator(env, act, config.eval.num_envs, config.eval.seed)

    def save(ts) -> None:
        if checkpointer is not None and config.checkpoint.enabled:
            step = int(host_copy(ts.iteration)) * steps_per_it
            checkpointer.save(step, ts, policy_params(ts), meta)

    if evaluator is not None and config.eval.at_start and iteration == 0:
        progress_fn(0, eval_metrics(POLICY, evaluator(host_copy(policy_params(ts)))))

    metrics: dict[str, float] = {}
    every = config.checkpoint.every_steps
    clock = IterationClock(iteration, steps_per_it)
    while iteration < num_iterations:
        ts, step_metrics = train_step(ts)
        clock.first_iteration_done(step_metrics)
        iteration += 1
        step = iteration * steps_per_it
        last = iteration == num_iterations
        if iteration % config.logging.log_every == 0 or last:
            metrics = {k: float(v) for k, v in host_copy(step_metrics).items()}
            metrics.update(clock.lap(iteration))
            progress_fn(step, metrics)
        if every and not last and step // every > (step - steps_per_it) // every:
            save(ts)
        if not last and _agreed(should_stop()):
            save(ts)
            raise TrainingInterrupted(step)
    save(ts)

    params = host_copy(policy_params(ts))
    if evaluator is not None:
        reports = {actor: evaluator(params, actor) for actor in closing_actors(config, env)}
        final = {k: v for actor, r in reports.items() for k, v in eval_metrics(actor, r).items()}
        progress_fn(iteration * steps_per_it, final)
        metrics = {**metrics, **final}
        if evaluation is not None:
            evaluation.update(reports)
    return trainer.make_policy, params, metrics


def _agreed(flag: bool) -> bool:
    """True on every process when any process wants to stop (one tiny collective)."""
    if jax.process_count() == 1:
        return bool(flag)
    from jax.experimental import multihost_utils

    flags = multihost_utils.process_allgather(np.asarray([flag], np.int32))
    return bool(np.asarray(flags).any())
