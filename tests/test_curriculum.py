"""The trainer's success-gated disturbance levels (`mjxbot.training.curriculum`)."""

import jax.numpy as jnp
import numpy as np
import pytest
from conftest import MINI_CONFIGS, MINI_SETS, ROOT

from mjxbot.env.state import State
from mjxbot.errors import ConfigError
from mjxbot.training import config as tconfig
from mjxbot.training.curriculum import advance_levels, start_levels
from mjxbot.training.schema import CurriculumConfig

CURRICULUM = CurriculumConfig(enabled=True, start=0.5, up=0.1, down=0.3, min_level=0.2)


def _state(level, done, truncation) -> State:
    zeros = jnp.zeros(len(level))
    info = {
        "curriculum": jnp.asarray(level, jnp.float32),
        "truncation": jnp.asarray(truncation, jnp.float32),
    }
    return State(None, {}, zeros, jnp.asarray(done, jnp.float32), {}, info)


def test_levels_rise_after_time_outs_and_drop_after_falls():
    # envs: running, timed out, fell, timed out at the top, fell at the bottom
    state = _state([0.5, 0.5, 0.5, 0.95, 0.3], [0, 1, 1, 1, 1], [0, 1, 0, 1, 0])
    level = np.asarray(advance_levels(state, CURRICULUM).info["curriculum"])
    np.testing.assert_allclose(level, [0.5, 0.6, 0.2, 1.0, 0.2], atol=1e-6)


def test_disabled_curriculum_and_undisturbed_envs_are_left_alone():
    state = _state([0.5], [1], [1])
    off = CurriculumConfig(enabled=False)
    assert advance_levels(state, off) is state and start_levels(state, off) is state
    bare = State(None, {}, jnp.zeros(1), jnp.ones(1), {}, {"truncation": jnp.ones(1)})
    assert advance_levels(bare, CURRICULUM) is bare
    np.testing.assert_allclose(start_levels(state, CURRICULUM).info["curriculum"], [0.5])


@pytest.mark.parametrize(
    "field, value", [("start", 1.5), ("up", -0.1), ("down", 2.0), ("min_level", -1.0)]
)
def test_curriculum_settings_are_validated(field, value):
    with pytest.raises(ConfigError, match=f"curriculum.{field}"):
        CurriculumConfig(**{field: value})


def test_trainer_raises_the_level_of_a_run_that_rarely_falls():
    """On conftest's mini biped: the levels are the trainer's, whatever the robot."""
    from mjxbot.training.loop import train

    # Pushes from level 0 with short episodes: many time-outs, few falls, so
    # the levels must climb during these 4 iterations.
    overrides = [
        "env.disturbances.push.enabled=true",
        "env.robot.push_bodies=[pelvis]",
        "env.episode_length=5",
        "curriculum.enabled=true",
        "curriculum.start=0.0",
        "curriculum.up=0.2",
    ]
    config = tconfig.load([ROOT / path for path in MINI_CONFIGS], [*MINI_SETS, *overrides])
    config = tconfig.resolve_auto(config, "cpu")
    records = []
    train(config, progress_fn=lambda _, m: records.append(m), evaluate=False)
    levels = [r["curriculum/level"] for r in records]
    falls = [r["episode/fall_rate"] for r in records if np.isfinite(r["episode/fall_rate"])]
    assert max(falls) < 0.5, falls
    assert levels[0] > 0.0 and levels[-1] > levels[0] and levels[-1] <= 1.0, levels
