"""The env state pytree that `reset` and `step` return."""

from __future__ import annotations

from typing import Any

import jax
from flax import struct
from mujoco import mjx

# Named observation arrays: `state` for the actor, `privileged_state` for the critic.
Observation = dict[str, jax.Array]


@struct.dataclass
class State:
    """The state of one env (or a batch of envs, with a leading batch axis).

    Attributes:
      data: MJX physics state.
      obs: `{"state": [obs], "privileged_state": [priv]}`; the critic may read
        the privileged entry, the actor reads only `state`.
      reward: scalar reward of the last step.
      done: 1.0 when the last step ended an episode (the env was then reset and
        `obs` is the first observation of the next episode).
      metrics: per-step scalars (reward terms, counters) for logging.
      info: bookkeeping carried across steps (rng, step count, last action,
        `truncation`, task-specific entries).
    """

    data: mjx.Data
    obs: Observation
    reward: jax.Array
    done: jax.Array
    metrics: dict[str, jax.Array] = struct.field(default_factory=dict)
    info: dict[str, Any] = struct.field(default_factory=dict)
