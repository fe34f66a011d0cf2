"""The plant under the PD hold: converged contacts across the randomization range.

The full table (128 envs per case, every range end, old vs new solver
settings, throughput) is `benchmarks/bench_plant.py`; these are its
small-batch checks. A PD hold that cannot stand measures the contact solver,
not a controller, so every baseline and policy figure rests on these.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mjxbot
from mjxbot.disturbances.config import DisturbanceConfig, SensingConfig

pytestmark = pytest.mark.optimized  # long PD-hold rollouts (conftest)

FRICTIONS = (0.3, 0.4, 0.8, 1.2)
# Default physics and sensing ranges, no pushes: the PD hold must not fall by itself.
RANDOMIZED_ENVS = 32
MIN_RANDOMIZED_SURVIVAL = 0.95
ENVS_PER_FRICTION = RANDOMIZED_ENVS // len(FRICTIONS)  # one batch shape: one compile
# A calm stand: joint speeds stay far below what chattering contacts produce
# (150-490 rad/s at the unconverged `iterations="2"`).
MAX_JOINT_SPEED = 10.0


class PDHold:
    """`balance` with its default physics and sensing ranges, no pushes, and the PD hold's
    rollout jitted once: both tests run this one program (a batch of `RANDOMIZED_ENVS`)."""

    def __init__(self):
        config = mjxbot.ALL_ENVS["balance"].config_class()
        disturbances = DisturbanceConfig(
            physics=config.disturbances.physics, sensing=SensingConfig(enabled=True)
        )
        config = dataclasses.replace(config, disturbances=disturbances)
        self.env = mjxbot.load_env("balance", config)
        self.reset = jax.jit(jax.vmap(self.env.reset))
        self.run = jax.jit(self._run)

    def _run(self, state):
        env = self.env
        joints = jnp.asarray(env.robot.qvel_adr)
        zero = jnp.zeros((state.done.shape[0], env.action_size))

        def body(carry, _):
            s, up, speed = carry
            s = jax.vmap(env.step)(s, zero)
            speed = jnp.maximum(speed, jnp.abs(s.data.qvel[:, joints]).max(axis=1))
            return (s, up * (1.0 - s.done * (1.0 - s.info["truncation"])), speed), None

        init = (state, jnp.ones_like(state.done), jnp.zeros_like(state.done))
        (_, up, speed), _ = jax.lax.scan(body, init, None, length=env.config.episode_length)
        return up, speed

    def __call__(self, state):
        """Zero action for one episode: `(stood [B], max joint speed [B])`."""
        up, speed = self.run(state)
        return np.asarray(up) > 0, np.asarray(speed)


@pytest.fixture(scope="module")
def pd_hold() -> PDHold:
    return PDHold()


def nominal_physics(params: dict, gravity: jax.Array, floor_friction: jax.Array) -> dict:
    """Every sampled physics parameter at its nominal value, but the floor friction."""
    ones = {"mass_scale", "damping_scale", "armature_scale", "strength", "kp_scale", "kd_scale"}
    zeros = {"com_offset", "latency"}
    unknown = set(params) - ones - zeros - {"gravity", "floor_friction"}
    assert not unknown, f"no nominal value for {sorted(unknown)}"
    nominal = {k: jnp.ones_like(v) if k in ones else jnp.zeros_like(v) for k, v in params.items()}
    if "gravity" in params:  # sampled only when the tilt range is not neutral
        # From host memory: the model's own array is committed to a device, and a committed
        # argument would compile the rollout a second time (argument shardings are keys).
        nominal["gravity"] = jnp.broadcast_to(np.asarray(gravity), params["gravity"].shape)
    nominal["floor_friction"] = floor_friction
    return nominal


def test_pd_hold_stands_calmly_at_every_floor_friction(pd_hold):
    # Floor friction alone departs from nominal; each env gets one of FRICTIONS.
    state = pd_hold.reset(jax.random.split(jax.random.key(0), RANDOMIZED_ENVS))
    mu = jnp.repeat(jnp.asarray(FRICTIONS, jnp.float32), ENVS_PER_FRICTION)
    physics = nominal_physics(state.info["physics"], pd_hold.env.mjx_model.opt.gravity, mu)
    stood, speed = pd_hold(state.replace(info={**state.info, "physics": physics}))
    for i, friction in enumerate(FRICTIONS):
        rows = slice(i * ENVS_PER_FRICTION, (i + 1) * ENVS_PER_FRICTION)
        assert stood[rows].all(), f"fell at floor friction {friction}: {stood[rows]}"
        assert speed[rows].max() < MAX_JOINT_SPEED, (
            f"joint speed {speed[rows].max():.1f} rad/s at floor friction {friction}"
        )


def test_pd_hold_survives_default_physics_and_sensing_without_pushes(pd_hold):
    stood, _ = pd_hold(pd_hold.reset(jax.random.split(jax.random.key(1), RANDOMIZED_ENVS)))
    assert stood.mean() >= MIN_RANDOMIZED_SURVIVAL, f"{stood.sum()}/{RANDOMIZED_ENVS} stood"
