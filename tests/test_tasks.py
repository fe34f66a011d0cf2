"""Task definitions: reward signs on hand-built states, push survival, PD hold on `balance`."""

import jax
import jax.numpy as jnp
import numpy as np
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


def _tilted(data, angle: float, drop: float):
    """The state with the torso rotated by `angle` about world x and lowered by `drop`."""
    quat = jnp.array([jnp.cos(angle / 2), jnp.sin(angle / 2), 0.0, 0.0])
    return data.replace(qpos=data.qpos.at[3:7].set(quat).at[2].add(-drop))


@pytest.mark.parametrize("name", ["balance", "reach"])
def test_reward_terms_are_finite_and_signed(name, compiled_env):
    compiled = compiled_env(name)
    task = compiled.env
    start = compiled.reset(jax.random.key(0))
    bad_start = start.replace(data=_tilted(start.data, 0.5, 0.1))
    good = compiled.step(start, jnp.zeros(task.action_size)).metrics
    bad = compiled.step(bad_start, jnp.full(task.action_size, 0.5)).metrics
    names = task.config.reward_scales
    terms = {t: (float(good[f"reward/{t}"]), float(bad[f"reward/{t}"])) for t in names}
    for term, values in terms.items():
        assert np.isfinite(values).all(), term
    penalties = {"posture", "feet_in_place", "torque", "action_rate"} & set(terms)
    for term in penalties:
        assert max(terms[term]) <= 0.0, term
    assert terms["action_rate"][1] < terms["action_rate"][0]
    assert terms["upright"][1] < terms["upright"][0] and terms["upright"][0] > 0.99
    assert terms["alive"] == (1.0, 1.0)
    if name == "balance":
        assert 0.0 <= terms["com_over_support"][1] < terms["com_over_support"][0] <= 1.0
        assert terms["height"][1] < terms["height"][0]


def test_reach_reward_grows_as_the_hand_nears_the_target(compiled_env):
    compiled = compiled_env("reach")
    task = compiled.env
    state = compiled.reset(jax.random.key(1))
    hand = state.data.xpos[task._hand_id]
    near = {**state.info, "target": hand + 0.01}
    far = {**state.info, "target": hand + 0.3}
    zero = jnp.zeros(task.action_size)
    assert task.reward_terms(state.data, zero, near)["reach"] > 0.9
    assert task.reward_terms(state.data, zero, far)["reach"] < 0.01
    _, metrics = task.advance_task(state.data, near, near)
    assert metrics["reach/success"] == 1.0


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
