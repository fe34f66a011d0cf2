"""The one policy evaluation: one episode per env for each actor, on the same seeds.

`train()` runs it for the `eval/...` metrics and `train.py`'s closing table
and `eval.json`, `eval.py` for its `results`: survival and success are
computed by the same rollout and the same `summarize`, so the two agree on
the same checkpoint, seeds and episode count.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from mjxbot.env import HumanoidEnv
from mjxbot.evaluation.metrics import GroupReport, summarize, takt_of
from mjxbot.evaluation.plan import Plan
from mjxbot.evaluation.rollout import POLICY, VIDEO_KEYS, ActFn, Batch, Runner


def eval_keys(seed: int, episodes: int) -> jax.Array:
    """`[episodes]` reset keys of an evaluation: every actor and sweep point reuses them."""
    return jax.random.split(jax.random.PRNGKey(seed), episodes)


class Evaluator:
    """One deterministic episode per env for each actor, disturbances at full strength.

    Compiled once per batch size: calls with new params (the start and the
    end of training, each checkpoint) and for other actors of the same count
    reuse the program.

    Args:
      env: the env the actors run on.
      act: the policy (`rollout.ActFn`), or None when only zero-action actors run.
      episodes: envs per actor.
      seed: seed of the reset keys (`eval_keys`).
      length: steps per env (default: one episode).
      video_envs: policy rows whose poses `run` returns for a video.
    """

    def __init__(
        self,
        env: HumanoidEnv,
        act: ActFn | None,
        episodes: int,
        seed: int,
        length: int | None = None,
        video_envs: int = 0,
    ):
        self.env = env
        self.names = env.task_metrics
        self.takt = takt_of(env.config, self.names)
        self.keys = eval_keys(seed, episodes)
        self.runner = Runner(env, act, length or env.config.episode_length, video_envs)

    def run(
        self, params: Any, actors: Sequence[str]
    ) -> tuple[dict[str, GroupReport], dict[str, np.ndarray]]:
        """`(actor -> figures, video trace)`: `qpos` etc. `[T, V, ...]` of the first rows."""
        batch = Batch(tuple(actors), self.keys.shape[0])
        trace, seconds = self.runner.run(
            params, batch.keys(self.keys), batch.mode, np.ones(batch.size)
        )
        cfg = self.env.config
        reports = {
            actor: summarize(part, self.names, cfg.ctrl_dt, self.takt)
            for actor, part in batch.split(trace).items()
        }
        if cfg.controller == "qp":  # the QP solve is what the step time is about
            for report in reports.values():
                report.qp_latency_ms = seconds * 1e3
        return reports, {k: v for k, v in trace.items() if k in VIDEO_KEYS}

    def __call__(self, params: Any, actor: str = POLICY) -> GroupReport:
        """The figures of one actor (`policy`, or a zero-action baseline)."""
        return self.run(params, (actor,))[0][actor]


@dataclasses.dataclass
class Episodes:
    """`eval.py`'s episode figures.

    Attributes:
      results: actor -> figures over the first episode of every env.
      evaluators: controller -> the evaluator of its env (the sweep reuses its program).
      video: the policy's traced poses (`VIDEO_KEYS`, `[T, V, ...]`); empty without video.
    """

    results: dict[str, GroupReport]
    evaluators: dict[str, Evaluator]
    video: dict[str, np.ndarray]


def run_episodes(
    plan: Plan, video_envs: int = 0, video_frames: int = 0, log: Callable[[str], None] = print
) -> Episodes:
    """Every actor of `plan` on its env's `Evaluator`, one batch per env.

    Args:
      plan: the evaluation's setup.
      video_envs: policy envs whose poses are traced (0: no video).
      video_frames: steps to trace for the video (the rollout is lengthened to them).
      log: progress messages.
    """
    results: dict[str, GroupReport] = {}
    evaluators: dict[str, Evaluator] = {}
    video: dict[str, np.ndarray] = {}
    for ctrl, group in plan.groups().items():
        env = plan.envs[ctrl]
        vids = video_envs if POLICY in group else 0
        length = max(env.config.episode_length, video_frames if vids else 0)
        log(
            f"[eval] {plan.task}: {'/'.join(group)} on the {ctrl} env, {plan.episodes} "
            f"episodes x {length} steps (compiling...)"
        )
        evaluators[ctrl] = Evaluator(
            env, plan.act_for(group), plan.episodes, plan.seed, length, vids
        )
        reports, frames = evaluators[ctrl].run(plan.params, group)
        results.update(reports)
        video = frames if vids else video
    return Episodes({a: results[a] for a in plan.actors}, evaluators, video)
