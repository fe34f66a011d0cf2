"""Disturbances: sampler statistics, config errors, impulse, latency, one compilation, bitwise off.

Every env-level test shares ONE jitted batched `step` and ONE jitted batched
`reset` of a fully disturbed `stand` (module fixture `on`): scenarios are set
up by editing the state (per-episode physics, push schedule, curriculum, step
counter), which is exactly what makes them cheap to vary without recompiling.
"""

import dataclasses

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
import pytest
from mujoco import mjx

import mjxbot
from mjxbot import disturbances as dist
from mjxbot.config import from_dict, merge
from mjxbot.disturbances.config import (
    DisturbanceConfig,
    PartsConfig,
    PhysicsRandConfig,
    PushConfig,
    SensingConfig,
)
from mjxbot.env.config import EnvConfig
from mjxbot.envs.stand import StandConfig
from mjxbot.errors import ConfigError, ModelError
from mjxbot.robot import RobotConfig

# Statistics over N_SAMPLES draws: a uniform(a, b) has mean (a+b)/2 and std
# (b-a)/sqrt(12); sample means and stds must match within these fractions of
# the range width (about 6 standard errors of the mean at N_SAMPLES).
N_SAMPLES = 4096
MEAN_TOL = 0.03
STD_TOL = 0.03
# Frequencies of Bernoulli events (drops, stale, kicks) within this absolute tolerance.
FREQ_TOL = 0.02
# Impulse test: momentum change against F*T, relative to |F*T| plus an absolute floor.
IMPULSE_RTOL = 0.02
IMPULSE_ATOL = 0.05
# Latency test: trajectories that should coincide (same ops, other lanes) vs. ones that must not.
LATENCY_ATOL = 1e-5
LATENCY_MIN_DIFF = 1e-3

BATCH = 8
# The robot's parts a push may hit (`RobotConfig.push_bodies`).
PUSH_BODIES = ("torso", "chest", "left_hand")
EPISODE_LENGTH = 5
LONG_ROLLOUT = 40
ON = {
    "push": {
        "enabled": True,
        "force": [50.0, 150.0],
        "torque": [0.0, 5.0],
        "interval": [0.04, 0.1],
        "kick_probability": 0.5,
    },
    "physics": {"enabled": True, "frictionloss": [0.05, 0.2], "latency": [0, 3]},
    "sensing": {"enabled": True, "drop_probability": 0.1, "stale_probability": 0.1},
}


def uniform_ok(x, bounds, name):
    """Bounds, mean and spread of samples `x` of a uniform config range."""
    x = np.asarray(x, np.float64).ravel()
    lo, hi = bounds
    width = hi - lo
    assert x.min() >= lo - 1e-6 and x.max() <= hi + 1e-6, f"{name}: outside {bounds}"
    assert abs(x.mean() - 0.5 * (lo + hi)) <= MEAN_TOL * width, f"{name}: mean {x.mean()}"
    assert abs(x.std() - width / np.sqrt(12)) <= STD_TOL * width, f"{name}: std {x.std()}"


def keys(n, seed=0):
    return jax.random.split(jax.random.key(seed), n)


class Compiled:
    """The disturbed env with one jitted batched reset and step; traces are counted."""

    def __init__(self, env):
        self.env = env
        self.traces = 0

        def counted_step(state, action):
            self.traces += 1
            return jax.vmap(env.step)(state, action)

        self.step = jax.jit(counted_step)
        self.reset = jax.jit(jax.vmap(env.reset))

    def zeros(self):
        return jnp.zeros((BATCH, self.env.action_size))


@pytest.fixture(scope="module")
def on():
    config = merge(
        StandConfig(episode_length=EPISODE_LENGTH),
        {"disturbances": ON, "robot": {"push_bodies": PUSH_BODIES}},
    )
    return Compiled(mjxbot.load_env("stand", config))


def edit(state, **info):
    """`state` with `info` entries replaced; nested dicts are merged one level deep."""
    new = dict(state.info)
    for k, v in info.items():
        new[k] = {**new[k], **v} if isinstance(v, dict) else v
    return state.replace(info=new)


def no_reset(state):
    """Pushes the step counter far back so no truncation happens during a test."""
    return edit(state, steps=jnp.full_like(state.info["steps"], -10_000))


# ------------------------------------------------------------------ config
@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"push": {"force": [200.0, 100.0]}}, "push.force: min 200.0 is greater than max 100.0"),
        ({"push": {"duration": [-0.1, 0.2]}}, "push.duration: min -0.1 is below"),
        ({"push": {"interval": [-1.0, -0.5]}}, "push.interval"),
        ({"push": {"kick_probability": 1.5}}, "push.kick_probability: 1.5 must be [0.0, 1.0]"),
        ({"push": {"vertical_share": -0.1}}, "push.vertical_share"),
        ({"physics": {"mass_scale": [1.2, 0.8]}}, "physics.mass_scale: min 1.2 is greater"),
        ({"physics": {"latency": [2, 1]}}, "physics.latency"),
        ({"physics": {"latency": [-1, 1]}}, "physics.latency"),
        ({"physics": {"frictionloss": [0.0, 0.1]}}, "frictionloss: min must be > 0"),
        ({"sensing": {"drop_probability": -0.1}}, "sensing.drop_probability"),
        ({"sensing": {"drop_probability": 0.6, "stale_probability": 0.6}}, "must be <= 1"),
        ({"parts": {"yaw_jitter": [0.3, -0.3]}}, "parts.yaw_jitter"),
        ({"parts": {"magnet_reference": 0.0}}, "parts.magnet_reference: must be > 0"),
        ({"curriculum": 2.0}, "disturbances.curriculum"),
    ],
)
def test_bad_ranges_fail_at_config_time(overrides, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        from_dict(EnvConfig, {"disturbances": overrides})


def test_direct_construction_validates():
    with pytest.raises(ConfigError, match="duration"):
        PushConfig(duration=(0.3, 0.1))
    with pytest.raises(ConfigError, match="robot.push_bodies: give at least one body name"):
        RobotConfig(push_bodies=())
    with pytest.raises(ConfigError, match="robot.sole_geoms: give at least one sole geom"):
        RobotConfig(sole_geoms=())


def test_unknown_names_fail_when_env_is_built():
    bad_body = {
        "disturbances": {"push": {"enabled": True}},
        "robot": {"push_bodies": ["torso", "tail"]},
    }
    with pytest.raises(ModelError, match="body 'tail' not in the model; its bodies are: torso"):
        mjxbot.load_env("stand", **bad_body)
    bad_geom = {"disturbances": {"physics": {"enabled": True}}, "robot": {"floor_geom": "ground"}}
    with pytest.raises(ModelError, match="geom 'ground' not in the model; its geoms are: floor"):
        mjxbot.load_env("stand", **bad_geom)


# ---------------------------------------------------------- sampler statistics
def test_push_samples_match_config():
    cfg = PushConfig(
        enabled=True, torque=(1.0, 4.0), kick_probability=0.3, duration=(0.05, 0.5), interval=(1, 4)
    )
    body_ids = jnp.array([1, 2, 5])
    sample = jax.jit(
        jax.vmap(lambda k: dist.sample_push(k, cfg, body_ids, jnp.float32(1.0), 0.004, 0.02))
    )(keys(N_SAMPLES))
    force = np.asarray(sample["wrench"][:, :3])
    uniform_ok(np.linalg.norm(force, axis=1), cfg.force, "push.force")
    uniform_ok(np.linalg.norm(sample["wrench"][:, 3:], axis=1), cfg.torque, "push.torque")
    unit_z = force[:, 2] / np.linalg.norm(force, axis=1)
    uniform_ok(unit_z, (-cfg.vertical_share, cfg.vertical_share), "push.vertical_share")
    heading = np.arctan2(force[:, 1], force[:, 0])
    uniform_ok(heading, (-np.pi, np.pi), "push heading")
    # Durations and intervals are rounded to substeps / control steps.
    # Rounded to the nearest substep / control step: bounds widen by half a step.
    duration = (cfg.duration[0] - 0.002, cfg.duration[1] + 0.002)
    uniform_ok(np.asarray(sample["substeps"]) * 0.004, duration, "push.duration")
    interval = (cfg.interval[0] - 0.01, cfg.interval[1] + 0.01)
    uniform_ok(np.asarray(sample["interval"]) * 0.02, interval, "push.interval")
    counts = np.bincount(np.asarray(sample["body"]), minlength=6)[[1, 2, 5]] / N_SAMPLES
    assert np.all(np.abs(counts - 1 / 3) < FREQ_TOL), counts
    kick = np.linalg.norm(sample["kick"], axis=1)
    assert abs((kick > 0).mean() - cfg.kick_probability) < FREQ_TOL
    uniform_ok(kick[kick > 0], cfg.kick_speed, "push.kick_speed")
    assert np.all(np.asarray(sample["kick"][:, 2]) == 0)
    # The curriculum scales the magnitudes.
    half = jax.jit(
        jax.vmap(lambda k: dist.sample_push(k, cfg, body_ids, jnp.float32(0.5), 0.004, 0.02))
    )(keys(N_SAMPLES))
    np.testing.assert_allclose(half["wrench"], 0.5 * sample["wrench"], rtol=1e-6)


def test_physics_samples_match_config(on):
    cfg = dataclasses.replace(on.env.config.disturbances.physics, gravity_tilt=(0.0, 0.2))
    spec = on.env.disturber.spec
    params = jax.jit(jax.vmap(lambda k: dist.sample_physics(k, cfg, spec)))(keys(N_SAMPLES))
    uniform_ok(params["floor_friction"], cfg.floor_friction, "floor_friction")
    uniform_ok(params["mass_scale"][:, 1:], cfg.mass_scale, "mass_scale")
    assert np.all(params["mass_scale"][:, 0] == 1) and np.all(params["com_offset"][:, 0] == 0)
    uniform_ok(params["com_offset"][:, 1:], cfg.com_offset, "com_offset")
    for name, field in [
        ("damping_scale", "damping_scale"),
        ("armature_scale", "armature_scale"),
        ("frictionloss", "frictionloss"),
        ("strength", "strength_scale"),
        ("kp_scale", "kp_scale"),
        ("kd_scale", "kd_scale"),
    ]:
        uniform_ok(params[name], getattr(cfg, field), name)
    latency = np.asarray(params["latency"])
    lo, hi = cfg.latency
    assert latency.min() == lo and latency.max() == hi
    freq = np.bincount(latency - lo) / N_SAMPLES
    assert np.all(np.abs(freq - 1 / (hi - lo + 1)) < FREQ_TOL), freq
    gravity = np.asarray(params["gravity"])
    np.testing.assert_allclose(np.linalg.norm(gravity, axis=1), 9.81, rtol=1e-5)
    uniform_ok(np.arccos(-gravity[:, 2] / 9.81), cfg.gravity_tilt, "gravity_tilt")
    # Per-env draws are independent: channels are not copies of each other.
    assert np.corrcoef(params["kp_scale"][:, 0], params["kp_scale"][:, 1])[0, 1] < 0.1


def test_neutral_ranges_are_skipped(on):
    cfg = PhysicsRandConfig(
        enabled=True,
        floor_friction=(0.0, 0.0),
        mass_scale=(1.0, 1.0),
        com_offset=(0.0, 0.0),
        damping_scale=(1.0, 1.0),
        armature_scale=(1.0, 1.0),
        strength_scale=(1.0, 1.0),
        kp_scale=(0.5, 0.7),
        kd_scale=(1.0, 1.0),
        latency=(0, 0),
        gravity_tilt=(0.0, 0.0),
    )
    params = dist.sample_physics(jax.random.key(0), cfg, on.env.disturber.spec)
    assert set(params) == {"kp_scale"}


def test_episode_model_replaces_only_sampled_leaves(on):
    env = on.env
    spec = env.disturber.spec
    params = dist.sample_physics(jax.random.key(3), env.config.disturbances.physics, spec)
    base = env.mjx_model
    model = dist.episode_model(base, params, spec)
    s = params["mass_scale"]
    np.testing.assert_allclose(model.body_mass, base.body_mass * s, rtol=1e-6)
    np.testing.assert_allclose(model.body_inertia, base.body_inertia * s[:, None], rtol=1e-6)
    # Subtree masses recomputed: the world's subtree is the whole robot.
    np.testing.assert_allclose(model.body_subtreemass[0], np.sum(model.body_mass), rtol=1e-5)
    np.testing.assert_allclose(model.body_ipos, base.body_ipos + params["com_offset"], atol=1e-7)
    np.testing.assert_allclose(model.dof_damping, base.dof_damping * params["damping_scale"])
    np.testing.assert_allclose(model.dof_armature, base.dof_armature * params["armature_scale"])
    np.testing.assert_allclose(model.dof_frictionloss[spec.joint_dofs], params["frictionloss"])
    np.testing.assert_allclose(model.opt.gravity, params["gravity"])
    assert float(model.geom_friction[spec.floor_geom, 0]) == float(params["floor_friction"])
    # The floor has contact priority, so its friction alone sets floor contacts.
    assert (
        env.mj_model.geom_priority[spec.floor_geom]
        > np.delete(env.mj_model.geom_priority, spec.floor_geom).max()
    )
    # Frictionloss rows exist for every actuated dof.
    assert np.all(env.mjx_model._impl.dof_hasfrictionloss[spec.joint_dofs])
    untouched = ["geom_solref", "actuator_ctrlrange", "body_pos", "dof_invweight0", "jnt_range"]
    for name in untouched:
        assert getattr(model, name) is getattr(base, name), name


def test_sensing_samples_match_config():
    cfg = SensingConfig(enabled=True, drop_probability=0.1, stale_probability=0.2, extra_noise=0.3)
    nu, size = 4, 3 + 3 + 3 * 4 + 2
    std = dist.noise_std(cfg, nu, size)
    expected = [cfg.gravity_noise] * 3 + [cfg.gyro_noise] * 3 + [cfg.joint_pos_noise] * nu
    expected += [cfg.joint_vel_noise] * nu + [0.0] * nu + [cfg.extra_noise] * 2
    np.testing.assert_allclose(std, expected)
    obs = jnp.arange(size, dtype=jnp.float32)
    previous = -jnp.ones(size)
    bias = jnp.zeros(6)

    def corrupt(k):
        return dist.corrupt_observation(k, obs, previous, bias, std, cfg)

    out, dropped, stale = jax.jit(jax.vmap(corrupt))(keys(N_SAMPLES))
    out, dropped, stale = map(np.asarray, (out, dropped, stale))
    assert abs(dropped.mean() - cfg.drop_probability) < FREQ_TOL
    assert abs(stale.mean() - cfg.stale_probability) < FREQ_TOL
    assert not np.any(dropped & stale)
    assert np.all(out[dropped] == 0) and np.all(out[stale] == -1)
    noise = out[~dropped & ~stale] - np.asarray(obs)
    np.testing.assert_allclose(noise.std(axis=0), std, rtol=0.06, atol=1e-7)
    # Zero mean within 6 standard errors per channel.
    np.testing.assert_array_less(np.abs(noise.mean(axis=0)), 6 * std / np.sqrt(len(noise)) + 1e-7)
    # No stale observation without a previous one, or where it is forbidden.
    _, _, never = jax.vmap(lambda k: dist.corrupt_observation(k, obs, None, bias, std, cfg))(
        keys(512)
    )
    assert not np.any(never)
    _, _, forbidden = jax.vmap(
        lambda k: dist.corrupt_observation(k, obs, previous, bias, std, cfg, False)
    )(keys(512))
    assert not np.any(forbidden)
    # Per-episode IMU bias.
    biases = np.asarray(jax.vmap(lambda k: dist.sample_sensor_bias(k, cfg))(keys(N_SAMPLES)))
    uniform_ok(biases[:, :3], cfg.gravity_bias, "gravity_bias")
    uniform_ok(biases[:, 3:], cfg.gyro_bias, "gyro_bias")


def test_part_pose_jitter_matches_config():
    cfg = PartsConfig(enabled=True, height_jitter=(0.0, 0.01), tilt_jitter=(0.0, 0.2))
    nominal = jnp.array([0.4, -0.1, 0.9])
    quat = jnp.array([1.0, 0.0, 0.0, 0.0])
    pos, q = jax.jit(jax.vmap(lambda k: dist.sample_part_pose(k, cfg, nominal, quat)))(
        keys(N_SAMPLES)
    )
    offset = np.asarray(pos - nominal)
    uniform_ok(offset[:, :2], cfg.position_jitter, "position_jitter")
    uniform_ok(offset[:, 2], cfg.height_jitter, "height_jitter")
    q = np.asarray(q)
    np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-5)
    # Tilt: angle between the part's z axis and world z; yaw: heading of its x axis.
    mats = np.stack([_quat_to_mat(x) for x in q])
    uniform_ok(np.arccos(np.clip(mats[:, 2, 2], -1, 1)), cfg.tilt_jitter, "tilt_jitter")
    cfg_flat = dataclasses.replace(cfg, tilt_jitter=(0.0, 0.0))
    _, q_flat = jax.vmap(lambda k: dist.sample_part_pose(k, cfg_flat, nominal, quat))(
        keys(N_SAMPLES)
    )
    yaw = 2 * np.arctan2(np.asarray(q_flat)[:, 3], np.asarray(q_flat)[:, 0])
    uniform_ok(yaw, cfg.yaw_jitter, "yaw_jitter")


def _quat_to_mat(q):
    mat = np.zeros(9)
    mujoco.mju_quat2Mat(mat, np.asarray(q, np.float64))
    return mat.reshape(3, 3)


def test_magnetic_force_law():
    cfg = PartsConfig(
        enabled=True, magnet_falloff=2.0, magnet_reference=0.02, magnet_cutoff=0.1,
        magnet_min_distance=0.005,
    )  # fmt: skip
    part = jnp.zeros(3)
    steel = jnp.array([[0.04, 0.0, 0.0]])
    force = dist.magnetic_force(part, steel, jnp.float32(2.0), cfg)
    # Toward the steel, strength * (reference / r) ** falloff = 2 * (0.02 / 0.04) ** 2.
    np.testing.assert_allclose(force, [0.5, 0.0, 0.0], rtol=1e-5)
    # Falloff exponent: halving the distance multiplies the force by 2 ** falloff.
    near = dist.magnetic_force(part, steel / 2, jnp.float32(2.0), cfg)
    np.testing.assert_allclose(near[0] / force[0], 2.0**cfg.magnet_falloff, rtol=1e-5)
    # Beyond the cutoff: nothing; at contact: clamped at the min distance.
    far = dist.magnetic_force(part, jnp.array([[0.0, 0.2, 0.0]]), jnp.float32(2.0), cfg)
    np.testing.assert_array_equal(far, 0.0)
    touching = dist.magnetic_force(part, jnp.array([[0.0, 0.0, 1e-4]]), jnp.float32(2.0), cfg)
    np.testing.assert_allclose(touching, [0, 0, 2.0 * (0.02 / 0.005) ** 2], rtol=1e-5)
    # Several steel points add up; symmetric ones cancel.
    both = dist.magnetic_force(part, jnp.array([[0.04, 0, 0], [-0.04, 0, 0]]), 2.0, cfg)
    np.testing.assert_allclose(both, 0.0, atol=1e-6)
    # Differentiable and jittable, vmappable over parts.
    grad = jax.grad(lambda p: dist.magnetic_force(p, steel, 2.0, cfg)[0])(jnp.array([0.01, 0, 0]))
    assert np.all(np.isfinite(grad))
    strengths = jax.vmap(lambda k: dist.sample_magnet_strength(k, cfg))(keys(N_SAMPLES))
    uniform_ok(strengths, cfg.magnet_strength, "magnet_strength")


def test_delay_action_ring_buffer():
    k = 3
    buffer = jnp.zeros((k + 1, 2))
    applied = {lat: [] for lat in range(k + 1)}
    buffers = {lat: buffer for lat in range(k + 1)}
    for t in range(8):
        action = jnp.array([t + 1.0, -(t + 1.0)])
        for lat in range(k + 1):
            buffers[lat], a = dist.delay_action(buffers[lat], action, jnp.int32(lat))
            applied[lat].append(float(a[0]))
    for lat in range(k + 1):
        assert applied[lat] == [0.0] * lat + [t + 1.0 for t in range(8 - lat)], lat


# ---------------------------------------------------------------- env level
def test_reset_samples_per_env_and_is_deterministic(on):
    ks = keys(BATCH)
    a, b = on.reset(ks), on.reset(ks)
    for x, y in zip(jax.tree.leaves(a.info), jax.tree.leaves(b.info), strict=True):
        if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        np.testing.assert_array_equal(x, y)
    # Envs differ from each other ...
    assert np.unique(np.asarray(a.info["physics"]["kp_scale"][:, 0])).size == BATCH
    # ... and env 0 does not depend on the other envs' keys.
    other = on.reset(ks.at[1:].set(keys(BATCH - 1, seed=9)))
    # Every sampled leaf, the integer latency included (7 envs drawing one of 4 latencies all
    # alike under other keys would be a 4**-7 coincidence, and these keys are fixed).
    physics, changed = a.info["physics"], other.info["physics"]
    assert set(physics) == set(changed) and "latency" in physics, sorted(physics)
    assert any(jnp.issubdtype(x.dtype, jnp.integer) for x in physics.values())
    for name, x in physics.items():
        y = changed[name]
        np.testing.assert_array_equal(x[0], y[0], err_msg=name)
        assert not np.array_equal(x[1:], y[1:]), f"{name}: envs 1.. ignored their new keys"
    cfg = on.env.config.disturbances.physics
    assert np.all(np.asarray(a.info["physics"]["mass_scale"]) >= cfg.mass_scale[0])
    # Sensing: the actor's observation is corrupted, the critic's is clean.
    clean = a.obs["privileged_state"][:, : a.obs["state"].shape[1]]
    assert not np.allclose(a.obs["state"], clean)
    assert np.all(np.asarray(a.metrics["disturbance/events"]) == 0)


@pytest.fixture(scope="module")
def long_rollout(on):
    """`LONG_ROLLOUT` steps from reset with small random actions: `(states, actions)`."""
    state = on.reset(keys(BATCH, seed=1))
    actions = 0.2 * jax.random.uniform(
        jax.random.key(2), (LONG_ROLLOUT, BATCH, on.env.action_size), minval=-1, maxval=1
    )
    states = [state]
    for t in range(LONG_ROLLOUT):
        states.append(on.step(states[-1], actions[t]))
    return states, actions


def test_one_compilation_across_many_episodes(on, long_rollout):
    states, _ = long_rollout
    dones = np.stack([np.asarray(s.done) for s in states[1:]])
    assert dones.sum(axis=0).min() >= LONG_ROLLOUT // EPISODE_LENGTH - 1, dones.sum(axis=0)
    assert on.traces == 1
    assert on.step._cache_size() == 1


def test_episodes_get_new_parameters(long_rollout):
    states, _ = long_rollout
    changed = 0
    for before, after in zip(states[:-1], states[1:], strict=True):
        done = np.asarray(after.done) > 0
        same = before.info["physics"]
        new = after.info["physics"]
        for name in ("kp_scale", "mass_scale", "floor_friction", "gravity", "frictionloss"):
            x, y = np.asarray(same[name]), np.asarray(new[name])
            if name == "mass_scale":  # the world body keeps scale 1
                x, y = x[:, 1:], y[:, 1:]
            continuing = x[~done] == y[~done]
            assert np.all(continuing), f"{name} changed within an episode"
            if done.any():
                assert np.all(x[done] != y[done]), f"{name} kept across an episode boundary"
        changed += done.sum()
    assert changed > 0


def test_counters_count_disturbances(on, long_rollout):
    states, _ = long_rollout
    final = states[-1].metrics
    starts = sum((np.asarray(s.info["push"]["countdown"]) <= 0).astype(int) for s in states[:-1])
    np.testing.assert_array_equal(final["disturbance/pushes"], starts)
    assert starts.sum() > BATCH  # many pushes with the short configured interval
    dones = sum(np.asarray(s.done) for s in states[1:])
    np.testing.assert_array_equal(final["disturbance/physics_samples"], dones)
    parts = ["pushes", "kicks", "physics_samples", "obs_dropped", "obs_stale"]
    total = sum(np.asarray(final[f"disturbance/{p}"]) for p in parts)
    np.testing.assert_array_equal(final["disturbance/events"], total)
    for p in ("kicks", "obs_dropped", "obs_stale"):
        assert final[f"disturbance/{p}"].sum() > 0, p
    # Summing over envs gives the run's totals; curriculum survives auto-resets.
    assert float(final["disturbance/events"].sum()) > 0
    np.testing.assert_array_equal(states[-1].info["curriculum"], 1.0)


def test_same_key_same_disturbances(on, long_rollout):
    states, actions = long_rollout
    again = on.step(states[10], actions[10])
    for x, y in zip(jax.tree.leaves(again), jax.tree.leaves(states[11]), strict=True):
        if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        np.testing.assert_array_equal(x, y)


def _momentum(env, data, i, mass_scale=1.0):
    """Total linear momentum of env `i` from MuJoCo C (float64), masses scaled uniformly."""
    model = env.mj_model
    saved = model.body_mass.copy(), model.body_inertia.copy(), model.body_subtreemass.copy()
    model.body_mass[:] *= mass_scale
    model.body_inertia[:] *= mass_scale
    model.body_subtreemass[:] *= mass_scale
    try:
        d = mujoco.MjData(model)
        d.qpos[:] = np.asarray(data.qpos[i], np.float64)
        d.qvel[:] = np.asarray(data.qvel[i], np.float64)
        mujoco.mj_forward(model, d)
        mujoco.mj_subtreeVel(model, d)
        return d.subtree_linvel[0] * model.body_subtreemass[0]
    finally:
        model.body_mass[:], model.body_inertia[:], model.body_subtreemass[:] = saved


def _lifted(on, seed):
    """Envs in the air (no contacts), nominal masses and CoM, no sensing effect on physics."""
    state = no_reset(on.reset(keys(BATCH, seed=seed)))
    qpos = state.data.qpos.at[:, 2].add(3.0)
    state = state.replace(data=state.data.replace(qpos=qpos))
    physics = state.info["physics"]
    return edit(
        state,
        physics={
            "mass_scale": jnp.ones_like(physics["mass_scale"]),
            "com_offset": jnp.zeros_like(physics["com_offset"]),
        },
        push={"countdown": jnp.full((BATCH,), 10_000, jnp.int32)},
    )


def test_push_impulse_changes_momentum(on):
    """Envs 0-3: a known world-frame push on the torso in zero gravity changes the
    momentum by F*T. Envs 4-7: no push, tilted gravity and scaled masses give M*g*T."""
    env = on.env
    sim_dt, n_sub = env.config.sim_dt, env.n_substeps
    state = _lifted(on, seed=4)
    wrench = (
        jnp.array([[40.0, -25.0, 15.0, 0.0, 0.0, 3.0]] * BATCH)
        * jnp.arange(1, BATCH + 1)[:, None]
        / 4
    )
    substeps = jnp.array([7, 3, 10, 1, 0, 0, 0, 0], jnp.int32)  # spans 2, 1, 2, 1 control steps
    gravity = jnp.zeros((BATCH, 3)).at[4:].set(jnp.array([[1.0, -0.5, -9.7]] * 4))
    mass_scale = jnp.ones_like(state.info["physics"]["mass_scale"]).at[4:, 1:].set(1.25)
    state = edit(
        state,
        push={
            "remaining": substeps,
            "wrench": wrench,
            "body": jnp.full((BATCH,), env.robot.torso_id, jnp.int32),
        },
        physics={"gravity": gravity, "mass_scale": mass_scale},
    )
    scales = [1.0] * 4 + [1.25] * 4
    before = [_momentum(env, state.data, i, scales[i]) for i in range(BATCH)]
    after = state
    for _ in range(3):
        after = on.step(after, on.zeros())
    assert not np.any(np.asarray(after.done))
    np.testing.assert_array_equal(after.data.xfrc_applied, 0.0)  # zeroed after the push
    total_mass = float(env.mj_model.body_subtreemass[0])
    duration = 3 * n_sub * sim_dt
    for i in range(BATCH):
        delta = _momentum(env, after.data, i, scales[i]) - before[i]
        if i < 4:
            expected = np.asarray(wrench[i, :3]) * int(substeps[i]) * sim_dt
        else:
            expected = scales[i] * total_mass * np.asarray(gravity[i]) * duration
        np.testing.assert_allclose(
            delta, expected, rtol=IMPULSE_RTOL, atol=IMPULSE_ATOL, err_msg=f"env {i}"
        )


def test_latency_delays_action_by_k_steps(on):
    """Envs 0-3 run latency k = 0..3 on actions a_t; envs 4-7 are copies with latency 0
    fed the actions shifted by k. Physics must coincide, and not for a shift of k+1."""
    k_max = on.env.config.disturbances.physics.latency[1]
    half = keys(BATCH // 2, seed=5)
    base = no_reset(on.reset(jnp.concatenate([half, half])))
    base = dist.set_curriculum(base, 0.0)  # pushes and kicks off for this test
    latency = jnp.array(list(range(k_max + 1)) + [0] * (k_max + 1), jnp.int32)
    state = edit(base, physics={"latency": latency})
    steps = 6
    policy = 0.3 * jax.random.uniform(jax.random.key(7), (steps, BATCH // 2, on.env.action_size))
    shifted = np.zeros((steps, BATCH // 2, on.env.action_size), np.float32)
    for j in range(BATCH // 2):
        shifted[j:, j] = policy[: steps - j, j]
    actions = jnp.concatenate([policy, jnp.asarray(shifted)], axis=1)
    qpos = []
    for t in range(steps):
        state = on.step(state, actions[t])
        qpos.append(np.asarray(state.data.qpos))
    qpos = np.stack(qpos)
    for j in range(BATCH // 2):
        np.testing.assert_allclose(
            qpos[:, j], qpos[:, j + BATCH // 2], atol=LATENCY_ATOL, err_msg=f"latency {j}"
        )
    # A wrong delay is detected: latency 2 vs. the latency-1 lane shifted by 1 differ.
    assert np.abs(qpos[:, 2] - qpos[:, 1 + BATCH // 2]).max() > LATENCY_MIN_DIFF


def test_curriculum_scales_pushes(on):
    state = _lifted(on, seed=6)
    state = edit(state, push={"countdown": jnp.zeros((BATCH,), jnp.int32)})
    full = on.step(state, on.zeros())
    half = on.step(dist.set_curriculum(state, 0.5), on.zeros())
    np.testing.assert_allclose(half.info["push"]["wrench"], 0.5 * full.info["push"]["wrench"])
    np.testing.assert_array_equal(half.info["curriculum"], 0.5)
    assert np.all(np.asarray(full.metrics["disturbance/pushes"]) == 1)


# --------------------------------------------------------------- all off
def test_all_families_off_is_the_undisturbed_env():
    """The traced reset and step (and their constants) of a config with every family
    switched off, but non-default ranges, equal those of the default undisturbed env:
    the same program on the same inputs gives bitwise identical results."""
    overrides = {k: {**v, "enabled": False} for k, v in ON.items()}
    overrides["parts"] = {"yaw_jitter": [-1.0, 1.0]}
    overrides["curriculum"] = 0.3
    envs = [
        mjxbot.load_env("stand", episode_length=EPISODE_LENGTH),
        mjxbot.load_env("stand", episode_length=EPISODE_LENGTH, disturbances=overrides),
    ]
    assert envs[1].config.disturbances != DisturbanceConfig()
    ks = keys(2)
    programs = []
    for env in envs:
        reset, state = jax.make_jaxpr(jax.vmap(env.reset), return_shape=True)(ks)
        step = jax.make_jaxpr(jax.vmap(env.step))(state, jnp.zeros((2, env.action_size)))
        programs.append((reset, step, state))
    (reset_a, step_a, state_a), (reset_b, step_b, state_b) = programs
    assert "disturbance/events" not in state_a.metrics and "curriculum" not in state_a.info
    assert jax.tree.structure(state_a) == jax.tree.structure(state_b)
    for a, b in ((reset_a, reset_b), (step_a, step_b)):
        assert str(a.jaxpr) == str(b.jaxpr)
        assert len(a.consts) == len(b.consts)
        for x, y in zip(a.consts, b.consts, strict=True):
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    np.testing.assert_array_equal(envs[0].mj_model.geom_priority, envs[1].mj_model.geom_priority)
    # The device models the programs run on: same structure, bitwise identical leaves.
    models = [env.mjx_model for env in envs]
    assert all(isinstance(m, mjx.Model) for m in models)
    assert jax.tree.structure(models[0]) == jax.tree.structure(models[1])
    for x, y in zip(*map(jax.tree.leaves, models), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_no_retrace_after_all_scenarios(on, long_rollout):
    """Every kind of state edit the scenarios above make (step counter, lifted base,
    push schedule and wrench, per-episode physics, latency, curriculum), and auto-resets
    across episodes (`long_rollout`), reuse the one compiled step, in any test order."""
    lifted = _lifted(on, seed=4)
    scenarios = [
        no_reset(on.reset(keys(BATCH, seed=5))),
        lifted,
        edit(lifted, push={"countdown": jnp.zeros((BATCH,), jnp.int32)}),
        edit(
            lifted,
            push={
                "remaining": jnp.arange(BATCH, dtype=jnp.int32),
                "wrench": jnp.ones((BATCH, 6)),
                "body": jnp.full((BATCH,), on.env.robot.torso_id, jnp.int32),
            },
            physics={
                "gravity": jnp.zeros((BATCH, 3)),
                "mass_scale": jnp.ones_like(lifted.info["physics"]["mass_scale"]),
                "latency": jnp.arange(BATCH, dtype=jnp.int32) % 4,
            },
        ),
        dist.set_curriculum(lifted, 0.0),
        dist.set_curriculum(lifted, 0.5),
    ]
    for state in scenarios:
        jax.block_until_ready(on.step(state, on.zeros()))
    assert on.traces == 1 and on.step._cache_size() == 1
