"""Bring-your-own-robot loading: home pose by name, index or qpos0; actuator gear; refusals."""

from pathlib import Path

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
import pytest

import mjxbot
from mjxbot.env.control import pd_torque
from mjxbot.errors import ConfigError, MjxbotError, ModelError
from mjxbot.robot import RobotConfig, load_robot

DATA = Path(__file__).parent / "data"
BIPED_XML = (DATA / "mini_biped.xml").read_text()
# High gains so that the PD torques hit the actuator limits within the rollout.
BIPED = {
    "torso_body": "pelvis",
    "feet": ["l_sole", "r_sole"],
    "hands": [],
    "gains": {"hip": [400.0, 3.0], "ankle": [200.0, 2.0]},
}
GEAR = 10.0
# Geared against ungeared mini biped under the same PD law (float32 MJX).
ROLLOUT_STEPS = 10
QPOS_ATOL = 1e-4
KEYFRAMES = """  <keyframe>
    <key name="home" qpos="0 0 0.52 1 0 0 0 0 0 0 0"/>
  </keyframe>
"""
# Unnamed keyframes: #0 standing, #1 floating 0.3 m up, #2 lying on its back with the soles
# touching the floor (pelvis origin level with the feet).
UNNAMED_KEYFRAMES = """  <keyframe>
    <key qpos="0 0 0.52 1 0 0 0 0 0 0 0"/>
    <key qpos="0 0 0.82 1 0 0 0 0 0 0 0"/>
    <key qpos="0 0 0.1 0.70710678 0 0.70710678 0 0 0 0 0"/>
  </keyframe>
"""


def _variant(tmp_path: Path, name: str, *edits: tuple[str, str]) -> str:
    """A copy of the mini biped with each `(old, new)` text edit applied exactly once."""
    xml = BIPED_XML
    for old, new in edits:
        assert xml.count(old) == 1, old
        xml = xml.replace(old, new)
    path = tmp_path / f"{name}.xml"
    path.write_text(xml)
    return str(path)


def _geared(tmp_path: Path, gear: float = GEAR, *edits: tuple[str, str]) -> str:
    """Every motor geared by `gear` with its ctrlrange divided by `abs(gear)`."""
    geared = []
    for joint, limit in (("l_hip", 60), ("l_ankle", 30), ("r_hip", 60), ("r_ankle", 30)):
        scaled = f"{limit / abs(gear):g}"
        geared.append(
            (
                f'joint="{joint}" ctrlrange="-{limit} {limit}"',
                f'joint="{joint}" gear="{gear:g}" ctrlrange="-{scaled} {scaled}"',
            )
        )
    return _variant(tmp_path, "geared", *geared, *edits)


def _robot(mjcf: str, **overrides) -> RobotConfig:
    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in BIPED.items()}
    return RobotConfig(mjcf=mjcf, **{**fields, **overrides})


def _one_line_error(kind, match, **robot):
    with pytest.raises(kind, match=match) as error:
        mjxbot.load_env("stand", robot={**BIPED, **robot})
    assert "\n" not in str(error.value)
    return str(error.value)


# ------------------------------------------------------------------ gear


def test_shipped_humanoid_is_ungeared_and_unchanged():
    robot = load_robot(RobotConfig())
    assert robot.unit_gear
    np.testing.assert_array_equal(robot.torque_limit, robot.model.actuator_ctrlrange)
    torque = np.arange(robot.nu, dtype=np.float32)
    assert robot.torque_to_ctrl(torque) is torque


@pytest.mark.parametrize("gear", [GEAR, -GEAR])
def test_torque_limits_and_ctrl_match_what_mujoco_applies(tmp_path, gear):
    """`torque_limit` is what MuJoCo C applies at saturation, `torque_to_ctrl` what it applies."""
    # One motor also force-limited inside its ctrlrange: forcerange bounds the actuator
    # force (in ctrl units for a motor), so the joint gets gear * forcerange.
    forcelimited = (
        'name="l_ankle" joint="l_ankle"',
        'name="l_ankle" joint="l_ankle" forcelimited="true" forcerange="-1 2"',
    )
    mjcf = _geared(tmp_path, gear, forcelimited)
    robot = load_robot(_robot(mjcf))
    np.testing.assert_allclose(robot.gear, gear)
    expected = np.array([[-60, 60], [-10, 20], [-60, 60], [-30, 30]], float)
    if gear < 0:
        expected = np.sort(-expected, axis=1)
    np.testing.assert_allclose(robot.torque_limit, expected)
    model, data = robot.model, mujoco.MjData(robot.model)
    data.qpos[:] = robot.home_qpos
    for ctrl, column in ((-1e3, 0 if gear > 0 else 1), (1e3, 1 if gear > 0 else 0)):
        data.ctrl[:] = ctrl
        mujoco.mj_forward(model, data)
        np.testing.assert_allclose(
            data.qfrc_actuator[robot.qvel_adr], robot.torque_limit[:, column], rtol=1e-12
        )
    torque = np.array([17.0, -0.5, -42.0, 3.0])
    data.ctrl[:] = robot.torque_to_ctrl(torque)
    mujoco.mj_forward(model, data)
    np.testing.assert_allclose(data.qfrc_actuator[robot.qvel_adr], torque, rtol=1e-12)


def _rollout(env, actions):
    def run(actions):
        state = env.reset(jax.random.key(3))

        def body(s, action):
            s = env.step(s, action)
            return s, s.data.qpos

        return jax.lax.scan(body, state, actions)[1]

    return np.asarray(jax.jit(run)(actions))


def test_geared_biped_moves_like_the_ungeared_one(tmp_path):
    plain = mjxbot.load_env("stand", robot={**BIPED, "mjcf": str(DATA / "mini_biped.xml")})
    geared = mjxbot.load_env("stand", robot={**BIPED, "mjcf": _geared(tmp_path)})
    assert geared.robot.model.actuator_gear[0, 0] == GEAR
    np.testing.assert_allclose(geared.robot.torque_limit, plain.robot.torque_limit)
    # The PD law computes the same joint torques (saturated here) and writes them / gear.
    data = plain.initial_data(jax.random.key(0))
    targets = plain.controller.command(jnp.array([1.0, -1.0, -1.0, 1.0]))
    torque = pd_torque(plain.robot, data, targets)
    np.testing.assert_array_equal(torque, pd_torque(geared.robot, data, targets))
    assert np.any(np.abs(torque) == plain.robot.torque_limit[:, 1]), "the limits are not exercised"
    np.testing.assert_allclose(geared.robot.torque_to_ctrl(torque) * GEAR, torque, rtol=1e-6)
    actions = jax.random.uniform(jax.random.key(4), (ROLLOUT_STEPS, 4), minval=-1, maxval=1)
    qpos_plain, qpos_geared = _rollout(plain, actions), _rollout(geared, actions)
    assert np.abs(qpos_plain[-1] - qpos_plain[0]).max() > 0.01  # it moved
    np.testing.assert_allclose(qpos_geared, qpos_plain, atol=QPOS_ATOL)


# ------------------------------------------------------- unsupported actuators

L_HIP = '<motor name="l_hip" joint="l_hip" ctrlrange="-60 60"/>'


@pytest.mark.parametrize(
    ("actuator", "extra", "message"),
    [
        (
            '<position name="l_hip" joint="l_hip" kp="100" ctrlrange="-1 1"/>',
            "",
            "actuator 'l_hip' is not a motor .*position/velocity servos",
        ),
        (
            '<velocity name="l_hip" joint="l_hip" kv="10" ctrlrange="-1 1"/>',
            "",
            "actuator 'l_hip' is not a motor",
        ),
        (
            '<general name="l_hip" joint="l_hip" gainprm="50" ctrlrange="-1 1"/>',
            "",
            "actuator 'l_hip' is not a motor",
        ),
        (
            '<motor name="l_hip" tendon="t" ctrlrange="-60 60"/>',
            '<tendon><fixed name="t"><joint joint="l_hip" coef="1"/></fixed></tendon>',
            "actuator 'l_hip' must drive one hinge or slide joint .*tendon, site",
        ),
        (
            '<motor name="l_hip" site="s" gear="0 0 0 0 1 0" ctrlrange="-60 60"/>',
            "",
            "actuator 'l_hip' must drive one hinge or slide joint",
        ),
        (
            '<motor name="l_hip" joint="l_hip" gear="10 0 0 0 1 0" ctrlrange="-6 6"/>',
            "",
            "actuator 'l_hip' has gear 10 0 0 0 1 0: mjxbot needs one nonzero gear ratio",
        ),
        (
            '<motor name="l_hip" joint="l_hip" gear="0" ctrlrange="-6 6"/>',
            "",
            "actuator 'l_hip' has gear 0 0 0 0 0 0",
        ),
        (
            '<motor name="l_hip" joint="l_hip"/>',
            "",
            "actuator 'l_hip' has neither a ctrlrange nor a forcerange",
        ),
    ],
)
def test_unsupported_actuators_are_refused(tmp_path, actuator, extra, message):
    edits = [(L_HIP, actuator)]
    if "site=" in actuator:
        edits.append(
            (
                '<body name="l_leg" pos="0 0.06 -0.05">',
                '<body name="l_leg" pos="0 0.06 -0.05"><site name="s"/>',
            )
        )
    if extra:
        edits.append(("  <actuator>", f"  {extra}\n  <actuator>"))
    mjcf = _variant(tmp_path, "bad", *edits)
    _one_line_error(ModelError, message, mjcf=mjcf)


# ---------------------------------------------------------------- home pose


def test_keyframe_less_model_loads_with_qpos0(tmp_path):
    mjcf = _variant(tmp_path, "nokey", (KEYFRAMES, ""))
    env = mjxbot.load_env("stand", robot={**BIPED, "mjcf": mjcf, "home_key": "qpos0"})
    np.testing.assert_array_equal(env.robot.home_qpos, env.robot.model.qpos0)
    # Without keyframes the default name fails, and the error says what to use instead.
    message = _one_line_error(ModelError, "keyframe 'home' not in the model", mjcf=mjcf)
    assert "its keyframes are: (none)" in message and '"qpos0"' in message
    _one_line_error(ModelError, "keyframe index 0 not in the model", mjcf=mjcf, home_key=0)


def test_unnamed_keyframes_load_by_index_and_are_listed_by_number(tmp_path):
    mjcf = _variant(tmp_path, "unnamed", (KEYFRAMES, UNNAMED_KEYFRAMES))
    env = mjxbot.load_env("stand", robot={**BIPED, "mjcf": mjcf, "home_key": 0})
    np.testing.assert_array_equal(env.robot.home_qpos, env.robot.model.key_qpos[0])
    message = _one_line_error(ModelError, "its keyframes are: #0, #1, #2;", mjcf=mjcf)
    assert "keyframe 'home' not in the model" in message
    _one_line_error(ModelError, "keyframe index 3 not in the model", mjcf=mjcf, home_key=3)


def test_named_keyframes_are_listed_with_their_numbers(tmp_path):
    mjcf = _variant(
        tmp_path,
        "named",
        (KEYFRAMES, UNNAMED_KEYFRAMES.replace("<key qpos", '<key name="a" qpos', 1)),
    )
    _one_line_error(
        ModelError, r"keyframe 'stand' not .*: a \(#0\), #1, #2;", mjcf=mjcf, home_key="stand"
    )


def test_home_pose_that_does_not_stand_is_refused(tmp_path):
    mjcf = _variant(tmp_path, "unnamed", (KEYFRAMES, UNNAMED_KEYFRAMES))
    _one_line_error(
        ConfigError,
        r"robot.home_key 1 does not stand on the floor: the lowest foot point is at z = 0.300 m",
        mjcf=mjcf,
        home_key=1,
    )
    _one_line_error(
        ConfigError,
        r"robot.home_key 2 is not upright: the torso origin \(z = 0.100 m\)",
        mjcf=mjcf,
        home_key=2,
    )
    # A looser tolerance accepts the floating pose; a named keyframe is not checked.
    mjxbot.load_env(
        "stand", robot={**BIPED, "mjcf": mjcf, "home_key": 1, "home_height_tolerance": 0.31}
    )
    floating = _variant(tmp_path, "floating", ('qpos="0 0 0.52', 'qpos="0 0 0.82'))
    mjxbot.load_env("stand", robot={**BIPED, "mjcf": floating})
    # qpos0 is checked like an index.
    high = _variant(
        tmp_path,
        "high",
        (KEYFRAMES, ""),
        ('<body name="pelvis" pos="0 0 0.52">', '<body name="pelvis" pos="0 0 0.9">'),
    )
    _one_line_error(
        ConfigError, "robot.home_key 'qpos0' does not stand", mjcf=high, home_key="qpos0"
    )


@pytest.mark.parametrize(
    ("robot", "message"),
    [
        ({"home_key": -1}, "robot.home_key: a keyframe index must be >= 0, got -1"),
        ({"home_key": 1.5}, "robot.home_key"),
        ({"home_height_tolerance": 0.0}, "robot.home_height_tolerance: must be > 0"),
    ],
)
def test_bad_home_settings_are_config_errors(robot, message):
    with pytest.raises(ConfigError, match=message) as error:
        mjxbot.load_env("stand", robot={**BIPED, "mjcf": str(DATA / "mini_biped.xml"), **robot})
    assert "\n" not in str(error.value)
    with pytest.raises(MjxbotError):
        RobotConfig(**{k: v for k, v in robot.items()})
