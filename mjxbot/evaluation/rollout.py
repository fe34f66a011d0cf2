"""Jitted batched rollouts for evaluation: `lax.scan` over time, `vmap` over envs.

The policy and the baselines run side by side in one batch from the same
reset keys, so they meet the same initial states and (disturbances being
derived from the env keys) the same pushes. A batch row's `mode` chooses its
actor: the policy, or zero action (the PD hold, or the QP-only baseline on an
env built with `controller="qp"`). The policy is deterministic and its params
are an argument of the compiled program, so new params (a later checkpoint,
the end of training) reuse the compile.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from mjxbot.disturbances import set_curriculum
from mjxbot.env import HumanoidEnv

MODE_ZERO_ACTION = 0  # the env's `zero_action_actor`: PD hold, QP only, or a scripted one
MODE_POLICY = 1
POLICY = "policy"
VIDEO_KEYS = ("qpos", "mocap_pos", "mocap_quat")
# Cumulative counters traced next to the task's metrics.
COUNTERS = ("disturbance/pushes", "nonfinite_resets", "diverged_resets")

# `act(params, obs) -> action`: a deterministic policy on a batch of observation dicts.
ActFn = Callable[[Any, dict[str, jax.Array]], jax.Array]


def traced_metrics(env: HumanoidEnv) -> tuple[str, ...]:
    """The env metrics a trace keeps: the task's judged ones, the counters, any `qp/*`."""
    zero_metrics = env.abstract_state.metrics
    traced = set(env.task_metrics.judged)
    traced |= {n for n in zero_metrics if n in COUNTERS or n.startswith("qp/")}
    return tuple(sorted(traced))


class Runner:
    """Jitted batched rollouts of one env with a per-row actor.

    `start(keys, scale)` resets `[B]` envs (curriculum scale `[B]`, ignored
    without disturbances); `advance(params, state, mode)` runs `length` steps
    and returns `(state, trace)`, `trace` a dict of `[length, B]` arrays
    (`done`, `truncation`, `reward`, the `traced_metrics`) plus `qpos` /
    `mocap_pos` / `mocap_quat` `[length, V, ...]` of the first `video_envs`
    rows. One compile per batch size.

    Args:
      env: the env (one; vmapped here).
      act: the policy, or None when every row takes zero action.
      length: steps per `advance`.
      video_envs: rows whose poses are traced for a video.
    """

    def __init__(self, env: HumanoidEnv, act: ActFn | None, length: int, video_envs: int = 0):
        self.env = env
        self.length = length
        self.traced = traced_metrics(env)
        self.advance = jax.jit(self._advance_fn(act, video_envs))
        self._init = jax.jit(self._start)
        self._compiled: dict[tuple[int, ...], Any] = {}

    def _start(self, keys: jax.Array, scale: jax.Array):
        return set_curriculum(jax.vmap(self.env.reset)(keys), scale)

    def _advance_fn(self, act: ActFn | None, video_envs: int) -> Callable:
        env, traced, nmocap = self.env, self.traced, self.env.mj_model.nmocap

        def step(params, s, mode):
            action = jnp.zeros((mode.shape[0], env.action_size))
            if act is not None:
                action = jnp.where((mode == MODE_POLICY)[:, None], act(params, s.obs), action)
            ns = jax.vmap(env.step)(s, action)
            out = {"done": ns.done, "truncation": ns.info["truncation"], "reward": ns.reward}
            out.update({n: ns.metrics[n] for n in traced})
            if video_envs:
                # The physics of the transition (before any auto-reset would look
                # like a jump; the reset pose is shown on the next frame).
                out["qpos"] = ns.data.qpos[:video_envs]
                if nmocap:
                    out["mocap_pos"] = ns.data.mocap_pos[:video_envs]
                    out["mocap_quat"] = ns.data.mocap_quat[:video_envs]
            return ns, out

        def advance(params, state, mode: jax.Array):
            def body(s, _):
                return step(params, s, mode)

            return jax.lax.scan(body, state, None, length=self.length)

        return advance

    def start(self, keys: jax.Array, scale: np.ndarray):
        """`[B]` fresh envs from `keys` with curriculum scales `scale` `[B]`."""
        return self._init(keys, jnp.asarray(scale, jnp.float32))

    def continue_(self, params: Any, state, mode: np.ndarray):
        """`(state, numpy trace, wall seconds per control step)`; compiling is not timed."""
        mode = jnp.asarray(mode, jnp.int32)
        compiled = self._compiled.get(mode.shape)
        if compiled is None:
            compiled = self.advance.lower(params, state, mode).compile()
            self._compiled[mode.shape] = compiled
        t0 = time.perf_counter()
        state, trace = compiled(params, state, mode)
        trace = jax.device_get(trace)
        seconds = (time.perf_counter() - t0) / self.length
        return state, {k: np.asarray(v) for k, v in trace.items()}, seconds

    def run(self, params: Any, keys: jax.Array, mode: np.ndarray, scale: np.ndarray):
        """One `length`-step rollout from fresh resets: `(numpy trace, s per step)`."""
        _, trace, seconds = self.continue_(params, self.start(keys, scale), mode)
        return trace, seconds


@dataclasses.dataclass(frozen=True)
class Batch:
    """`len(actors)` blocks of `n` rows, block `i` for actor `i`, each from the same keys.

    The policy's block comes first when it is there, so a `Runner`'s
    `video_envs` rows are policy rows.
    """

    actors: tuple[str, ...]
    n: int

    @property
    def size(self) -> int:
        return len(self.actors) * self.n

    @property
    def mode(self) -> np.ndarray:
        """`[size]` int32 actor mode of each row."""
        modes = [MODE_POLICY if a == POLICY else MODE_ZERO_ACTION for a in self.actors]
        return np.repeat(np.asarray(modes, np.int32), self.n)

    def keys(self, keys: jax.Array) -> jax.Array:
        """`[size]` reset keys: `keys` `[n]` once per actor."""
        return jnp.concatenate([keys] * len(self.actors))

    def split(self, trace: dict[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
        """actor -> the `[T, n]` entries of its rows (video entries dropped)."""
        rows = {a: slice(i * self.n, (i + 1) * self.n) for i, a in enumerate(self.actors)}
        return {
            actor: {k: v[:, r] for k, v in trace.items() if k not in VIDEO_KEYS}
            for actor, r in rows.items()
        }
