"""Task definitions: survival bookkeeping, push survival and the PD hold on `balance`.

The reward-term tests live in test_env.py, on its compiled envs.
"""

import jax
import jax.numpy as jnp
import pytest

import mjxbot
from mjxbot.disturbances import set_curriculum
from mjxbot.envs.balance import survival_update

BATCH = 8
# `balance` pushes of 400-600 N for 0.2 s; the curriculum scales them.
PUSH_FORCE = (400.0, 600.0)
SMALL_PUSH_SCALE = 0.04  # 16-24 N: the PD hold must survive
LARGE_PUSH_SCALE = 1.0  # 400-600 N: the PD hold must fall
PUSH_STEPS = 150  # 3 s: two pushes, 1-1.5 s apart


def test_survival_bookkeeping():
    book = {"pending": jnp.zeros(()), "since": jnp.int32(0), "max_survived": jnp.zeros(())}
    no, yes = jnp.bool_(False), jnp.bool_(True)
    book, survived = survival_update(book, yes, jnp.float32(12.0), no, window_steps=3)
    assert survived == 0 and book["pending"] == 12.0
    for _ in range(2):
        book, survived = survival_update(book, no, jnp.float32(0.0), no, window_steps=3)
        assert survived == 0
    book, survived = survival_update(book, no, jnp.float32(0.0), no, window_steps=3)
    assert survived == 1 and book["max_survived"] == 12.0 and book["pending"] == 0
    # A fall inside the window: not survived, the record is kept.
    book, _ = survival_update(book, yes, jnp.float32(30.0), no, window_steps=3)
    book, survived = survival_update(book, no, jnp.float32(0.0), yes, window_steps=3)
    assert survived == 0 and book["max_survived"] == 12.0 and book["pending"] == 0


@pytest.fixture(scope="module")
def pd_hold_rollout():
    task = mjxbot.load_env(
        "balance",
        disturbances={
            "push": {"force": list(PUSH_FORCE), "duration": [0.2, 0.2], "interval": [1.0, 1.5]},
            "physics": {"enabled": False},
            "sensing": {"enabled": False},
        },
    )

    @jax.jit
    def rollout(key, scale):
        state = jax.vmap(task.reset)(jax.random.split(key, BATCH))
        state = set_curriculum(state, scale)
        zero = jnp.zeros((BATCH, task.action_size))

        def body(s, _):
            s = jax.vmap(task.step)(s, zero)
            return s, s.metrics

        return jax.lax.scan(body, state, None, PUSH_STEPS)[1]

    return rollout


def test_pd_hold_survives_small_pushes(pd_hold_rollout):
    metrics = pd_hold_rollout(jax.random.key(2), SMALL_PUSH_SCALE)
    assert metrics["disturbance/pushes"][-1].sum() >= BATCH, "every env must be pushed"
    assert metrics["balance/falls"].sum() == 0
    assert metrics["balance/pushes_survived"].sum() >= BATCH


def test_pd_hold_falls_under_large_pushes(pd_hold_rollout):
    metrics = pd_hold_rollout(jax.random.key(2), LARGE_PUSH_SCALE)
    assert metrics["balance/falls"].sum() >= BATCH // 2
