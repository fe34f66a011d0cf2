"""Env core: contract, batching, physics fidelity, standing, auto-reset, errors, reward terms."""

import functools
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
import pytest
from conftest import Compiled
from mujoco import mjx

import mjxbot
from mjxbot.errors import ConfigError, ModelError

# MJX (float32) against MuJoCo C over FIDELITY_STEPS physics steps.
FIDELITY_STEPS = 25
QPOS_ATOL = 1e-4
QVEL_ATOL = 5e-3
# vmapped batch against per-env unbatched calls.
BATCH = 8
ROLLOUT_STEPS = 4
# Float32 sums reorder under vmap and contacts amplify that within a step, so
# velocities get a looser bound; mixing envs up would differ by O(0.1-1).
BATCH_ATOL = 1e-4
BATCH_QVEL_ATOL = 1e-3
# The home pose under the PD hold, zero action.
STAND_SECONDS = 2.0
MAX_HEIGHT_DROP = 0.05

ROOT = Path(__file__).resolve().parents[1]
MINI_BIPED = {
    "mjcf": str(Path(__file__).parent / "data" / "mini_biped.xml"),
    "torso_body": "pelvis",
    "feet": ["l_sole", "r_sole"],
    "hands": [],
    "gains": {"hip": [80.0, 3.0], "ankle": [40.0, 2.0]},
}


@functools.cache
def mini_reach() -> Compiled:
    """`reach` on the mini biped, its pelvis the hand (as the CLI tests' `MINI`), jitted
    once per worker."""
    robot = {**MINI_BIPED, "hands": ["pelvis"]}
    return Compiled(mjxbot.load_env("reach", robot=robot, fall_height=0.3))


def task_env(name: str, compiled_env) -> Compiled:
    """The compiled env of task `name`: the humanoid, except `reach` on the mini biped.

    `reach` adds only a target to the base that `stand` compiles on the humanoid; a humanoid
    task's reset and step cost 30-60 s of the suite to compile, the mini's reach 10-14 s.
    """
    return mini_reach() if name == "reach" else compiled_env(name)


@pytest.fixture(params=sorted(mjxbot.ALL_ENVS))
def compiled(request, compiled_env):
    return task_env(request.param, compiled_env)


# The vmapped-batch tests compile each task's batched rollout, the dearest program here, so
# they run on the two tasks whose per-env state goes beyond the shared base: `balance` (every
# disturbance family, sampled per env) and `nut_station` (parts, feeder and spline state).
# `stand` and `reach` add only a fixed pose and a target to the same base. (On the mini
# biped the batched `balance` saves nothing: its reset, step and rollout compile in about
# the time of the humanoid's rollout alone, whose step the contract test compiles anyway.)
@pytest.fixture(params=["balance", "nut_station"])
def batched(request, compiled_env):
    return compiled_env(request.param)


@pytest.fixture
def stand(compiled_env):
    return compiled_env("stand")


def _finite(tree) -> bool:
    return all(bool(jnp.isfinite(x).all()) for x in jax.tree.leaves(tree) if x.dtype.kind == "f")


def test_reset_and_step_match_declared_sizes(compiled):
    env = compiled.env
    state = compiled.reset(jax.random.key(0))
    for _ in range(3):
        state = compiled.step(state, jnp.zeros(env.action_size))
    sizes = env.observation_size
    assert set(state.obs) == set(sizes)
    for key, shape in sizes.items():
        assert state.obs[key].shape == shape, key
    assert _finite(state.obs) and _finite(state.reward) and _finite(state.metrics)


# Task reward terms, on the same compiled envs as the contract tests above (one compile
# per task and worker: pytest-xdist's loadfile keeps a file on one worker).


def _tilted(data, angle: float, drop: float):
    """The state with the torso rotated by `angle` about world x and lowered by `drop`."""
    quat = jnp.array([jnp.cos(angle / 2), jnp.sin(angle / 2), 0.0, 0.0])
    return data.replace(qpos=data.qpos.at[3:7].set(quat).at[2].add(-drop))


@pytest.mark.parametrize("name", ["balance", "reach"])
def test_reward_terms_are_finite_and_signed(name, compiled_env):
    compiled = task_env(name, compiled_env)
    task = compiled.env
    start = compiled.reset(jax.random.key(0))
    bad_start = start.replace(data=_tilted(start.data, 0.5, 0.1))
    good = compiled.step(start, jnp.zeros(task.action_size)).metrics
    # float32, not weakly typed: the step compiled for the zero action is reused.
    bad = compiled.step(bad_start, jnp.full(task.action_size, 0.5, jnp.float32)).metrics
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


def test_reach_reward_grows_as_the_hand_nears_the_target():
    compiled = mini_reach()
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


def _random_actions(env, key, steps):
    return jax.random.uniform(key, (steps, BATCH, env.action_size), minval=-1, maxval=1)


def test_vmapped_batch_equals_unbatched(batched):
    compiled, env = batched, batched.env
    keys = jax.random.split(jax.random.key(1), BATCH)
    actions = _random_actions(env, jax.random.key(2), ROLLOUT_STEPS)
    batch = jax.tree.map(lambda x: x[0], compiled.rollout(keys, actions))
    for i in range(BATCH):
        single = compiled.step(compiled.reset(keys[i]), actions[0, i])
        for name in ("qpos", "qvel"):
            np.testing.assert_allclose(
                getattr(batch.data, name)[i],
                getattr(single.data, name),
                atol=BATCH_QVEL_ATOL if name == "qvel" else BATCH_ATOL,
                err_msg=f"env {i} data.{name}",
            )
        for key in single.obs:
            np.testing.assert_allclose(batch.obs[key][i], single.obs[key], atol=BATCH_ATOL)
        np.testing.assert_allclose(batch.reward[i], single.reward, atol=BATCH_ATOL)


def test_mjx_matches_mujoco_c_from_perturbed_state(stand):
    model = stand.env.mj_model
    data = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, data, model.key("home").id)
    rng = np.random.default_rng(0)
    data.qpos[7:] += rng.uniform(-0.05, 0.05, model.nq - 7)
    data.qvel[:] = rng.uniform(-0.2, 0.2, model.nv)
    data.ctrl[:] = rng.uniform(-5, 5, model.nu)
    mjx_data = mjx.put_data(model, data)
    step = jax.jit(mjx.step)
    contacts = 0
    for t in range(FIDELITY_STEPS):
        mujoco.mj_step(model, data)
        mjx_data = step(stand.env.mjx_model, mjx_data)
        contacts = max(contacts, data.ncon)
        np.testing.assert_allclose(mjx_data.qpos, data.qpos, atol=QPOS_ATOL, err_msg=f"qpos {t}")
        np.testing.assert_allclose(mjx_data.qvel, data.qvel, atol=QVEL_ATOL, err_msg=f"qvel {t}")
    assert contacts > 0, "the comparison must include foot contacts"


def test_home_stands_under_pd_hold(stand):
    env = stand.env
    state = stand.reset(jax.random.key(3))
    start = float(state.data.qpos[2])
    lowest = start
    for _ in range(round(STAND_SECONDS / env.dt)):
        state = stand.step(state, jnp.zeros(env.action_size))
        assert not bool(state.done), "fell or reset while holding home"
        lowest = min(lowest, float(state.data.qpos[2]))
    assert start - lowest < MAX_HEIGHT_DROP


def test_auto_reset_draws_a_new_initial_state(stand):
    env = stand.env
    first = stand.reset(jax.random.key(4))
    state = stand.step(first, jnp.zeros(env.action_size))
    # Force truncation on the next step.
    state = state.replace(info={**state.info, "steps": jnp.int32(env.config.episode_length - 1)})
    restarted = stand.step(state, jnp.zeros(env.action_size))
    assert bool(restarted.done) and bool(restarted.info["truncation"])
    assert int(restarted.info["steps"]) == 0
    assert not np.allclose(restarted.data.qpos, first.data.qpos), "reused the first state"
    home = env.robot.home_qpos
    noise = env.config.init_qpos_noise
    assert np.abs(np.asarray(restarted.data.qpos)[7:] - home[7:]).max() <= noise + 1e-6


def test_continuous_episode_starts_from_the_carried_robot_state(stand):
    """What `continuous=True` does at a time-out: the robot state carries over, kept or not."""
    env = stand.env
    fresh = jax.jit(env.fresh_episode)
    previous = stand.reset(jax.random.key(6)).data
    previous = previous.replace(
        qpos=previous.qpos.at[0].add(0.3), qvel=previous.qvel.at[env.robot.qvel_adr].set(0.5)
    )
    kept, obs, _ = fresh(jax.random.key(7), (previous, jnp.bool_(True)))
    restarted, _, _ = fresh(jax.random.key(7), (previous, jnp.bool_(False)))
    np.testing.assert_array_equal(kept.qpos, previous.qpos)
    np.testing.assert_array_equal(kept.qvel, previous.qvel)
    # Kinematics follow the carried state: the torso origin is the free joint's position.
    torso = np.asarray(kept.xpos[env.robot.torso_id])
    np.testing.assert_allclose(torso, np.asarray(previous.qpos[:3]), atol=1e-6)
    assert abs(float(restarted.qpos[0]) - env.robot.home_qpos[0]) < 1e-6
    assert (
        np.abs(np.asarray(restarted.qvel[env.robot.qvel_adr])).max() <= env.config.init_qvel_noise
    )
    assert _finite(obs)


def test_nonfinite_state_is_reset_and_counted(stand):
    env = stand.env
    state = stand.reset(jax.random.key(5))
    poisoned = state.replace(data=state.data.replace(qvel=state.data.qvel.at[10].set(jnp.nan)))
    after = stand.step(poisoned, jnp.zeros(env.action_size))
    assert bool(after.done) and not bool(after.info["truncation"])
    assert float(after.metrics["nonfinite_resets"]) == 1.0
    assert _finite(after.obs) and _finite(after.reward) and _finite(after.data.qpos)
    again = stand.step(after, jnp.zeros(env.action_size))
    assert not bool(again.done) and float(again.metrics["nonfinite_resets"]) == 1.0


def _knee(env) -> int:
    knee = next(i for i in range(env.robot.nu) if "knee" in env.mj_model.actuator(i).name)
    return int(env.robot.qpos_adr[knee])


@pytest.mark.parametrize(
    "plant",
    [
        ("base speed", lambda d, env: d.replace(qvel=d.qvel.at[0:3].set(300.0))),
        ("base far away", lambda d, env: d.replace(qpos=d.qpos.at[0].set(1e6))),
        ("joint past its range", lambda d, env: d.replace(qpos=d.qpos.at[_knee(env)].add(5.0))),
    ],
    ids=lambda p: p[0],
)
def test_finite_divergence_is_reset_and_counted(stand, plant):
    # Finite but absurd: the guard must catch it like a NaN, not let it into the learner.
    env = stand.env
    state = stand.reset(jax.random.key(5))
    poisoned = state.replace(data=plant[1](state.data, env))
    after = stand.step(poisoned, jnp.zeros(env.action_size))
    assert bool(after.done) and not bool(after.info["truncation"])
    assert float(after.metrics["diverged_resets"]) == 1.0
    assert float(after.metrics["nonfinite_resets"]) == 0.0
    assert float(after.reward) == 0.0
    assert all(float(v) == 0.0 for k, v in after.metrics.items() if k.startswith("reward/"))
    # The next episode starts fresh at home and is not counted again.
    np.testing.assert_allclose(after.data.qpos[:2], env.robot.home_qpos[:2], atol=1e-6)
    again = stand.step(after, jnp.zeros(env.action_size))
    assert not bool(again.done) and float(again.metrics["diverged_resets"]) == 1.0


def test_guard_bounds_are_validated():
    with pytest.raises(ConfigError, match="guard.max_joint_speed"):
        mjxbot.load_env("stand", guard={"max_joint_speed": 0.0})


def test_multistep_rollout_compiles_once(batched):
    for seed in (6, 7):
        keys = jax.random.split(jax.random.key(seed), BATCH)
        actions = _random_actions(batched.env, keys[0], ROLLOUT_STEPS)
        assert batched.rollout(keys, actions).reward.shape == (ROLLOUT_STEPS, BATCH)
    assert batched.rollout_traces == 1 and batched.rollout._cache_size() == 1


def test_bring_your_own_robot_loads_and_steps():
    env = mjxbot.load_env("stand", robot=MINI_BIPED, reward_scales={"posture": 0.0})
    assert env.action_size == 4
    state = jax.jit(env.reset)(jax.random.key(8))
    state = jax.jit(env.step)(state, jnp.zeros(4))
    assert _finite(state.obs) and state.obs["state"].shape == env.observation_size["state"]


def test_unknown_env_name_lists_registered_envs():
    with pytest.raises(ConfigError, match="unknown env 'walk'; registered envs: .*stand"):
        mjxbot.load_env("walk")


def test_missing_mjcf_is_a_model_error():
    with pytest.raises(ModelError, match="MJCF file 'nope.xml' not found"):
        mjxbot.load_env("stand", robot={"mjcf": "nope.xml"})


def test_unknown_body_lists_the_model_bodies():
    with pytest.raises(
        ModelError, match="body 'pelvis' not in the model; its bodies are: torso, chest"
    ):
        mjxbot.load_env("stand", robot={"torso_body": "pelvis"})


def test_malformed_mjcf_is_one_line(tmp_path):
    bad = tmp_path / "bad.xml"
    bad.write_text("<mujoco><worldbody><body></mujoco>")
    with pytest.raises(ModelError) as error:
        mjxbot.load_env("stand", robot={"mjcf": str(bad)})
    assert "\n" not in str(error.value)


def test_robot_without_floating_base_is_rejected(tmp_path):
    fixed = tmp_path / "fixed.xml"
    fixed.write_text(
        "<mujoco><worldbody><body name='torso'><joint name='j' axis='0 1 0'/>"
        "<geom size='0.1'/></body></worldbody>"
        "<actuator><motor joint='j'/></actuator><keyframe><key name='home'/></keyframe></mujoco>"
    )
    with pytest.raises(ModelError, match="no free joint"):
        mjxbot.load_env("stand", robot={"mjcf": str(fixed), "feet": [], "hands": []})


def test_config_errors_name_the_field():
    with pytest.raises(
        ConfigError, match="unknown key robot.torso; valid keys of robot: .*torso_body"
    ):
        mjxbot.load_env("stand", robot={"torso": "x"})
    with pytest.raises(ConfigError, match="ctrl_dt: expected a number"):
        mjxbot.load_env("stand", ctrl_dt="fast")
    with pytest.raises(ConfigError, match="multiple of sim_dt"):
        mjxbot.load_env("stand", ctrl_dt=0.021)
    with pytest.raises(ConfigError, match="unknown reward term 'speed'"):
        mjxbot.load_env("stand", reward_scales={"speed": 1.0})


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("env_name=walk", "unknown env_name 'walk'; registered envs: balance"),
        ("env.robot.mjcf=nope.xml", "MJCF file 'nope.xml' not found"),
        ("env.robot.torso_body=pelvis", "body 'pelvis' not in the model; its bodies are: torso"),
    ],
)
def test_cli_reports_bad_env_input_in_one_line(override, message, tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "train.py"),
            "--set",
            override,
            "--run-dir",
            str(tmp_path / "r"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0] and "Traceback" not in result.stderr
