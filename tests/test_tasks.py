"""Task definitions: survival bookkeeping, and the PD hold and QP only on `balance`'s pushes.

One program per controller: `balance` with its default pushes alone (per-episode physics
and sensing off) over 10 s, the push force scaled by the curriculum (0 is no push), so the
PD-hold push tests, QP-only standing from the env's default reset noise and QP only
against the PD hold on the same seeds share two compiles. The reward-term tests live in
test_env.py, on its compiled envs.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mjxbot
from mjxbot import qp as qpsolver
from mjxbot.disturbances import set_curriculum
from mjxbot.envs.balance import survival_update

pytestmark = pytest.mark.optimized  # 10 s rollouts, the QP every substep (conftest)

ENVS = 32  # QP only from the env's reset noise: every one of them must stand
SECONDS = 10.0
PUSHES_ONLY = {"physics": {"enabled": False}, "sensing": {"enabled": False}}
# `balance`'s default pushes are 40-120 N for 0.05-0.2 s every 2-4 s; the curriculum scales them.
SMALL_PUSH_SCALE = 0.2  # 8-24 N: the PD hold must survive
HEIGHT_DROP_TOL = 0.03  # m: torso height below home while QP only stands


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


class BalanceRollout:
    """`balance` with `controller`, pushes only, zero actions for `SECONDS`, jitted once.

    `run(seed, scale)` returns the first state, the last state and, per step, the metrics,
    the torso height, `done` and the QP status (zeros under PD); each run is made once.
    """

    def __init__(self, controller: str):
        self.env = mjxbot.load_env(
            "balance",
            controller=controller,
            episode_length=1000,  # 20 s: no truncation inside the run
            disturbances=PUSHES_ONLY,
        )
        self.traces = 0
        self._runs = {}
        self._rollout = jax.jit(functools.partial(self._trace, controller))

    def _trace(self, controller, keys, scale):
        self.traces += 1
        env = self.env
        first = set_curriculum(jax.vmap(env.reset)(keys), scale)

        def body(s, _):
            s = jax.vmap(env.step)(s, jnp.zeros((ENVS, env.action_size)))
            status = s.info["controller"].status if controller == "qp" else jnp.zeros(ENVS)
            return s, (s.metrics, s.data.qpos[:, 2], s.done, status)

        last, trace = jax.lax.scan(body, first, None, length=round(SECONDS / env.dt))
        return first, last, trace

    def run(self, seed: int, scale: float):
        if (seed, scale) not in self._runs:
            keys = jax.random.split(jax.random.key(seed), ENVS)
            self._runs[seed, scale] = self._rollout(keys, scale)
        return self._runs[seed, scale]


@pytest.fixture(scope="module")
def pd_hold():
    return BalanceRollout("pd")


@pytest.fixture(scope="module")
def qp_only():
    return BalanceRollout("qp")


def survivors(done) -> int:
    """Envs that never ended within the run."""
    return int((~np.asarray(done).any(axis=0)).sum())


def test_pd_hold_survives_small_pushes(pd_hold):
    metrics = pd_hold.run(2, SMALL_PUSH_SCALE)[2][0]
    assert metrics["disturbance/pushes"][-1].sum() >= ENVS, "every env must be pushed"
    assert metrics["balance/falls"].sum() == 0
    assert metrics["balance/pushes_survived"].sum() >= ENVS


def test_pd_hold_falls_under_default_pushes(pd_hold):
    metrics = pd_hold.run(1, 1.0)[2][0]
    assert metrics["balance/falls"].sum() >= ENVS // 2


def test_qp_only_stands_from_the_reset_noise(qp_only):
    """No push (scale 0): QP only stands 10 s in every env, finite, the QP solves."""
    _, last, (_, height, done, status) = qp_only.run(0, 0.0)
    fell = np.asarray(done).any(axis=0)
    assert not fell.any(), f"{fell.sum()}/{ENVS} fell under QP only"
    assert np.isfinite(np.asarray(last.data.qpos)).all()
    drop = qp_only.env.robot.home_qpos[2] - np.asarray(height)
    assert drop.max() < HEIGHT_DROP_TOL, f"torso dropped {drop.max():.3f} m"
    assert (np.asarray(status) == qpsolver.SOLVED).mean() > 0.9
    assert last.info["controller"].x.shape == (ENVS, qp_only.env.wbc.layout.n_var)


def test_qp_only_survives_default_pushes_more_often_than_the_pd_hold(pd_hold, qp_only):
    """The same seeds (the same initial states, push schedules and step keys): QP only
    survives 10 s in more envs than the PD hold."""
    qp_first, _, (_, _, qp_done, _) = qp_only.run(1, 1.0)
    pd_first, _, (_, _, pd_done, _) = pd_hold.run(1, 1.0)
    same = (qp_first.data.qpos, qp_first.info["push"], jax.random.key_data(qp_first.info["rng"]))
    other = (pd_first.data.qpos, pd_first.info["push"], jax.random.key_data(pd_first.info["rng"]))
    jax.tree.map(np.testing.assert_array_equal, same, other)
    assert survivors(qp_done) > survivors(pd_done), (survivors(qp_done), survivors(pd_done))


def test_each_controller_compiles_once(pd_hold, qp_only):
    for rollout in (pd_hold, qp_only):
        rollout.run(0, 0.0)
        rollout.run(1, 1.0)
        assert rollout.traces == 1
