"""Shared reward terms (`mjxbot.rewards`) on tiny hand-built states; each task's term list."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mjxbot
from mjxbot import rewards
from mjxbot.env import default_reward_terms
from mjxbot.envs.balance import BalanceConfig
from mjxbot.envs.stand import Stand
from mjxbot.registry import ALL_ENVS
from mjxbot.training import config as tconfig

TASKS = ["stand", "balance", "reach", "nut_station"]


def _rot_x(angle: float) -> jax.Array:
    c, s = math.cos(angle), math.sin(angle)
    return jnp.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def test_upright():
    assert rewards.upright(jnp.eye(3)) == 1.0
    np.testing.assert_allclose(rewards.upright(_rot_x(math.pi / 2)), 0.0, atol=1e-7)
    np.testing.assert_allclose(rewards.upright(_rot_x(math.pi)), -1.0, atol=1e-7)
    np.testing.assert_allclose(rewards.upright(_rot_x(0.3)), math.cos(0.3), rtol=1e-6)


def test_height():
    assert rewards.height(jnp.float32(0.8), jnp.float32(0.8), 0.05) == 1.0
    np.testing.assert_allclose(rewards.height(jnp.float32(0.85), 0.8, 0.05), math.exp(-1), 1e-5)
    np.testing.assert_allclose(rewards.height(jnp.float32(0.7), 0.8, 0.05), math.exp(-4), 1e-5)


def test_posture():
    home = jnp.array([0.1, -0.2, 0.3])
    assert rewards.posture(home, home) == 0.0
    assert rewards.posture(home + jnp.array([0.5, 0.0, -1.0]), home) == pytest.approx(-1.25)


def test_action_rate():
    a = jnp.array([0.5, -0.5, 1.0])
    assert rewards.action_rate(a, a) == 0.0
    assert rewards.action_rate(a, jnp.zeros(3)) == pytest.approx(-1.5)


def test_alive_and_fell():
    assert rewards.alive() == 1.0 and rewards.alive().shape == ()
    assert rewards.fell(jnp.bool_(True)) == 1.0 and rewards.fell(jnp.bool_(False)) == 0.0
    assert rewards.fell(jnp.bool_(True)).dtype == jnp.float32


def test_torque():
    limit = jnp.array([10.0, -20.0, 0.0])  # a sign is ignored, a zero limit counts as 1e-6
    assert rewards.torque(jnp.zeros(3), limit) == 0.0
    assert rewards.torque(jnp.array([5.0, 20.0, 0.0]), limit) == pytest.approx(-(0.25 + 1.0) / 3)
    assert rewards.torque(jnp.array([0.0, 0.0, 1e-6]), limit) == pytest.approx(-1 / 3)


def test_energy():
    torque, qvel = jnp.array([2.0, -3.0, 4.0]), jnp.array([1.0, 2.0, 0.0])
    assert rewards.energy(torque, qvel) == pytest.approx(-8.0)  # |2| + |-6| + 0
    assert rewards.energy(torque, jnp.zeros(3)) == 0.0


def test_terms_are_jit_and_vmap_safe():
    batch = jnp.stack([jnp.eye(3), _rot_x(math.pi)])
    np.testing.assert_allclose(jax.jit(jax.vmap(rewards.upright))(batch), [1.0, -1.0], atol=1e-7)


@pytest.mark.parametrize("name", TASKS)
def test_reward_terms_are_the_configured_terms(name):
    """`reward_terms`, `reward/*` metrics and the default `reward_scales` name the same terms."""
    env = mjxbot.load_env(name)
    configured = set(env.config.reward_scales)
    assert configured == set(default_reward_terms(ALL_ENVS[name].config_class))
    state = jax.eval_shape(env.reset, jax.random.key(0))
    terms = jax.eval_shape(env.reward_terms, state.data, jnp.zeros(env.action_size), state.info)
    assert set(terms) == configured
    assert all(t.shape == () for t in terms.values())
    assert {k.removeprefix("reward/") for k in state.metrics if k.startswith("reward/")} == (
        configured
    )


def test_unknown_scale_is_rejected():
    with pytest.raises(mjxbot.ConfigError, match="unknown reward term 'speed'.*posture"):
        mjxbot.load_env("stand", reward_scales={"speed": 1.0})


def test_terms_other_than_the_configured_ones_are_an_error():
    class Extra(Stand):
        def reward_terms(self, data, action, info):
            terms = dict(super().reward_terms(data, action, info))
            del terms["alive"]
            return {**terms, "speed": jnp.zeros(())}

    env = Extra()
    state = jax.eval_shape(env.reset, jax.random.key(0))
    with pytest.raises(ValueError, match=r"missing: \['alive'\], not configured: \['speed'\]"):
        jax.eval_shape(env.step, state, jnp.zeros(env.action_size))


def test_one_scale_from_the_command_line_keeps_the_other_terms():
    config = tconfig.load([], ["env_name=balance", "env.reward_scales.posture=0"])
    defaults = BalanceConfig().reward_scales
    assert config.env.reward_scales == {**defaults, "posture": 0.0}
