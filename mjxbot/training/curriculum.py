"""Success-gated disturbance levels, advanced inside the jitted rollout.

The scheme of legged_gym's terrain curriculum applied to pushes: every env
keeps its own level (`info["curriculum"]`, which scales push forces, torques
and kicks); an episode that ends by time-out moves that env's level up, a fall
moves it down. Levels are per env and change only at episode ends, so the
whole update is three array operations in the rollout scan.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mjxbot.disturbances import set_curriculum
from mjxbot.env.state import State
from mjxbot.training.schema import CurriculumConfig


def start_levels(state: State, config: CurriculumConfig) -> State:
    """`state` (batched) with every env at `config.start` when the curriculum is on."""
    return set_curriculum(state, config.start) if config.enabled else state


def advance_levels(state: State, config: CurriculumConfig) -> State:
    """Moves each env's level after the step that produced `state` (batched, `[B]`).

    An env whose episode ended by time-out (`done` and `truncation`) gains
    `up`; one that fell (`done`, no truncation) loses `down`; the rest keep
    their level. A state without a curriculum entry is returned unchanged.
    """
    if not config.enabled or "curriculum" not in state.info:
        return state
    survived = state.done * state.info["truncation"]
    fell = state.done * (1.0 - state.info["truncation"])
    level = state.info["curriculum"] + config.up * survived - config.down * fell
    level = jnp.clip(level, config.min_level, 1.0).astype(state.info["curriculum"].dtype)
    return state.replace(info={**state.info, "curriculum": level})


def mean_level(state: State) -> jax.Array:
    """`[]` mean level over envs; 1 for an env without a curriculum entry."""
    return jnp.mean(state.info["curriculum"]) if "curriculum" in state.info else jnp.ones(())
