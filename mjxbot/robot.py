"""Loading an MJCF humanoid and resolving everything the env needs by name."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import mujoco
import numpy as np

from mjxbot.errors import ConfigError, ModelError
from mjxbot.names import lookup_id, lookup_ids, valid_names

# `RobotConfig.home_key` value that names the model's default pose instead of a keyframe.
QPOS0 = "qpos0"


@dataclasses.dataclass(frozen=True)
class RobotConfig:
    """Which MJCF humanoid to load and how its parts are named.

    Attributes:
      mjcf: path to the scene XML; relative paths are resolved against the
        packaged assets folder first, then the working directory.
      torso_body: the floating-base body (it must own the free joint).
      feet: foot body names.
      hands: hand body names.
      home_key: the nominal standing pose and PD target: a keyframe name
        (`"home"`), a keyframe index (`0`, for models whose keyframes have no
        names), or `"qpos0"` (reserved: the model's default pose, for models
        without keyframes; it wins over a keyframe named "qpos0"). A pose given
        by index or `"qpos0"` must pass the standing check of
        `mjxbot.robot.check_standing`; a named keyframe is trusted as is.
      home_height_tolerance: standing check (m): the lowest foot-geom point must
        lie within this distance of the floor (z = 0), and the torso origin at
        least this far above every foot body's origin.
      push_bodies: bodies a push may hit (drawn uniformly), when pushes are on.
      floor_geom: the ground geom: its friction is randomized by per-episode
        physics and enters the whole-body QP's friction cones.
      sole_geoms: sole spheres whose lowest points are the whole-body QP's
        candidate contacts.
      gains: regex over actuator names -> (kp, kd); the first match wins and
        every actuator must match one entry.
    """

    mjcf: str = "humanoid.xml"
    torso_body: str = "torso"
    feet: tuple[str, ...] = ("left_foot", "right_foot")
    hands: tuple[str, ...] = ("left_hand", "right_hand")
    home_key: str | int = "home"
    home_height_tolerance: float = 0.05
    push_bodies: tuple[str, ...] = ("torso", "chest")
    floor_geom: str = "floor"
    sole_geoms: tuple[str, ...] = (
        "left_toe_in",
        "left_toe_out",
        "left_heel_in",
        "left_heel_out",
        "right_toe_in",
        "right_toe_out",
        "right_heel_in",
        "right_heel_out",
    )
    gains: dict[str, tuple[float, float]] = dataclasses.field(
        default_factory=lambda: {
            "hip": (600.0, 10.0),
            "knee": (800.0, 12.0),
            "ankle": (500.0, 8.0),
            "waist": (300.0, 6.0),
            "shoulder|elbow": (60.0, 2.0),
            "finger": (200.0, 5.0),
        }
    )

    def __post_init__(self):
        if not self.push_bodies:
            raise ConfigError("robot.push_bodies: give at least one body name")
        if not self.sole_geoms:
            raise ConfigError("robot.sole_geoms: give at least one sole geom")
        key = self.home_key
        if isinstance(key, bool) or not isinstance(key, str | int):
            raise ConfigError(f"robot.home_key: expected a keyframe name or index, got {key!r}")
        if isinstance(key, int) and key < 0:
            raise ConfigError(f"robot.home_key: a keyframe index must be >= 0, got {key}")
        if not self.home_height_tolerance > 0:
            raise ConfigError(
                f"robot.home_height_tolerance: must be > 0, got {self.home_height_tolerance}"
            )


def assets_dir() -> Path:
    """The packaged assets folder (`envs/assets` in a clone, `mjxbot/envs/assets` installed)."""
    return Path(str(resources.files("mjxbot.envs") / "assets"))


def resolve_mjcf(path: str) -> Path:
    """Finds an MJCF file: as given, or relative to the packaged assets."""
    candidates = [Path(path)] if Path(path).is_absolute() else [assets_dir() / path, Path(path)]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise ModelError(f"MJCF file {path!r} not found (looked in {', '.join(map(str, candidates))})")


# A task's additions to a robot's MJCF (joints, actuators), made through `mujoco.MjSpec`.
ModelEdit = Callable[[mujoco.MjSpec], None]


def load_model(path: str, edit: ModelEdit | None = None) -> mujoco.MjModel:
    """Compiles an MJCF file, after `edit` if given (its keyframes carried over by name),
    turning MuJoCo's errors into one-line `ModelError`s."""
    file = resolve_mjcf(path)
    try:
        if edit is None:
            return mujoco.MjModel.from_xml_path(str(file))
        return _compile_edited(mujoco.MjSpec.from_file(str(file)), edit)
    except ValueError as e:
        message = " ".join(str(e).split())
        raise ModelError(f"cannot load MJCF {file}: {message}") from e


def _joint_keys(model: mujoco.MjModel) -> list[tuple[str, int | str]]:
    """Per joint, a key that survives added joints: its name, else (body name, rank in body)."""
    keys = []
    for j in range(model.njnt):
        body = model.jnt_bodyid[j]
        rank = j - int(model.body_jntadr[body])
        keys.append(
            (model.joint(j).name, "") if model.joint(j).name else (model.body(body).name, rank)
        )
    return keys


def _compile_edited(spec: mujoco.MjSpec, edit: ModelEdit) -> mujoco.MjModel:
    """`spec` after `edit`, compiled; each keyframe keeps its values for the joints and
    actuators that were there before (found by name), the added ones start at `qpos0` / 0."""
    before = spec.compile()
    for key in spec.keys:  # emptied so that the edited spec compiles, refilled below
        key.qpos, key.qvel, key.ctrl = [], [], []
    edit(spec)
    after = spec.compile()
    where = {k: j for j, k in enumerate(_joint_keys(after))}
    actuators = {after.actuator(a).name: a for a in range(after.nu)}
    for i, key in enumerate(spec.keys):
        qpos, qvel, ctrl = after.qpos0.copy(), np.zeros(after.nv), np.zeros(after.nu)
        for j, k in enumerate(_joint_keys(before)):
            n_q, n_v = _joint_width(before, j)
            a, b = int(before.jnt_qposadr[j]), int(after.jnt_qposadr[where[k]])
            qpos[b : b + n_q] = before.key_qpos[i, a : a + n_q]
            a, b = int(before.jnt_dofadr[j]), int(after.jnt_dofadr[where[k]])
            qvel[b : b + n_v] = before.key_qvel[i, a : a + n_v]
        for a in range(before.nu):
            ctrl[actuators[before.actuator(a).name]] = before.key_ctrl[i, a]
        key.qpos, key.qvel, key.ctrl = qpos, qvel, ctrl
    return spec.compile()


def _joint_width(model: mujoco.MjModel, joint: int) -> tuple[int, int]:
    """`(qpos, qvel)` sizes of a joint."""
    kind = model.jnt_type[joint]
    if kind == mujoco.mjtJoint.mjJNT_FREE:
        return 7, 6
    if kind == mujoco.mjtJoint.mjJNT_BALL:
        return 4, 3
    return 1, 1


@dataclasses.dataclass(frozen=True)
class Robot:
    """Static facts about a humanoid model, resolved once from names.

    Attributes:
      model: the compiled MuJoCo model.
      torso_id: floating-base body id.
      foot_ids: `[n_feet]` body ids.
      hand_ids: `[n_hands]` body ids.
      qpos_adr: `[nu]` qpos index of each actuated joint.
      qvel_adr: `[nu]` qvel index of each actuated joint.
      home_qpos: `[nq]` the home pose (keyframe or `qpos0`, see `RobotConfig.home_key`).
      kp: `[nu]` proportional gains.
      kd: `[nu]` derivative gains.
      torque_limit: `[nu, 2]` joint torque (or force) limits of each actuator:
        `gear * ctrlrange` intersected with `gear * forcerange` where limited.
      gear: `[nu]` each motor's gear ratio, joint torque per unit of `ctrl`.
      config: the config it was loaded from (part names: push bodies, floor, soles).
      joint_range: `[nu, 2]` range of each actuated joint.
      joint_limited: `[nu]` whether that joint has a range.
    """

    model: mujoco.MjModel
    torso_id: int
    foot_ids: np.ndarray
    hand_ids: np.ndarray
    qpos_adr: np.ndarray
    qvel_adr: np.ndarray
    home_qpos: np.ndarray
    kp: np.ndarray
    kd: np.ndarray
    torque_limit: np.ndarray
    joint_range: np.ndarray
    joint_limited: np.ndarray
    gear: np.ndarray
    config: RobotConfig

    @property
    def unit_gear(self) -> bool:
        """True when every gear is 1: `ctrl` is the joint torque itself."""
        return bool(np.all(self.gear == 1.0))

    def torque_to_ctrl(self, torque):
        """`ctrl` that makes each motor apply `torque` (`[..., nu]`, numpy or jax) to its joint.

        MuJoCo applies `gear * ctrl` through a joint transmission; with unit
        gears `torque` is returned unchanged.
        """
        return torque if self.unit_gear else torque / self.gear

    def ctrl_to_torque(self, ctrl):
        """The joint torques `[..., nu]` that `ctrl` applies: `gear * ctrl`."""
        return ctrl if self.unit_gear else ctrl * self.gear

    @property
    def nu(self) -> int:
        return self.model.nu

    @property
    def home_joint_targets(self) -> np.ndarray:
        """`[nu]` actuated-joint positions of the home pose."""
        return self.home_qpos[self.qpos_adr]


def _gains(model: mujoco.MjModel, table: dict[str, tuple[float, float]]) -> np.ndarray:
    """Per-actuator `(kp, kd)` from the first matching regex in `table`. Returns `[nu, 2]`."""
    gains = []
    for i in range(model.nu):
        name = model.actuator(i).name
        match = next((g for pattern, g in table.items() if re.search(pattern, name)), None)
        if match is None:
            raise ModelError(
                f"actuator {name!r} matches no entry of robot.gains ({', '.join(table)})"
            )
        gains.append(match)
    return np.asarray(gains, dtype=np.float64).reshape(model.nu, 2)


def _home_qpos(model: mujoco.MjModel, home_key: str | int) -> np.ndarray:
    """`[nq]` the pose `home_key` names (see `RobotConfig.home_key`)."""
    hint = f'; or set robot.home_key to a keyframe index or "{QPOS0}" (the default pose)'
    if home_key == QPOS0:
        return model.qpos0.copy()
    if isinstance(home_key, int):
        if home_key >= model.nkey:
            raise ModelError(
                f"keyframe index {home_key} not in the model; its keyframes are: "
                f"{valid_names(model, mujoco.mjtObj.mjOBJ_KEY)}{hint}"
            )
        return model.key_qpos[home_key].copy()
    key = lookup_id(model, mujoco.mjtObj.mjOBJ_KEY, home_key, "robot.home_key", hint)
    return model.key_qpos[key].copy()


def _subtree(model: mujoco.MjModel, roots: np.ndarray) -> np.ndarray:
    """`[nbody]` whether each body is one of `roots` or a descendant of one."""
    inside = np.zeros(model.nbody, bool)
    inside[roots] = True
    for body in range(1, model.nbody):  # parents come before their children
        inside[body] |= inside[model.body_parentid[body]]
    return inside


def check_standing(
    model: mujoco.MjModel,
    qpos: np.ndarray,
    torso_id: int,
    foot_ids: np.ndarray,
    tolerance: float,
    what: str,
) -> None:
    """Checks that `qpos` stands the robot on the floor (z = 0).

    The lowest point of the feet's geoms (their bounding boxes, collision geoms
    where the feet have any, including geoms of bodies below the feet) must
    lie within `tolerance` of the floor, and the torso origin at least
    `tolerance` above every foot body's origin.

    Raises:
      ConfigError: one line naming `what` (the pose) and the failed condition.
    """
    if len(foot_ids) == 0:
        raise ConfigError(f"{what}: the standing check needs robot.feet, and none are named")
    data = mujoco.MjData(model)
    data.qpos[:] = qpos
    mujoco.mj_kinematics(model, data)
    geoms = np.flatnonzero(_subtree(model, foot_ids)[model.geom_bodyid])
    colliding = geoms[(model.geom_contype[geoms] | model.geom_conaffinity[geoms]) != 0]
    geoms = colliding if len(colliding) else geoms
    if len(geoms) == 0:
        raise ConfigError(f"{what}: the feet have no geoms for the standing check")
    up = data.geom_xmat[geoms].reshape(-1, 3, 3)[:, 2, :]  # world z row of each geom frame
    center, half = model.geom_aabb[geoms, :3], model.geom_aabb[geoms, 3:]
    bottom = data.geom_xpos[geoms, 2] + (up * center).sum(1) - (np.abs(up) * half).sum(1)
    lowest = float(bottom.min())
    if abs(lowest) > tolerance:
        raise ConfigError(
            f"{what} does not stand on the floor: the lowest foot point is at z = {lowest:.3f} m, "
            f"beyond robot.home_height_tolerance = {tolerance} m of z = 0"
        )
    torso_z, feet_z = float(data.xpos[torso_id, 2]), float(data.xpos[foot_ids, 2].max())
    if torso_z < feet_z + tolerance:
        raise ConfigError(
            f"{what} is not upright: the torso origin (z = {torso_z:.3f} m) is not "
            f"robot.home_height_tolerance = {tolerance} m above the feet (z = {feet_z:.3f} m)"
        )


def _check_motor(model: mujoco.MjModel, i: int) -> None:
    """Refuses actuators the PD law cannot drive: only gear-scaled motors on one joint."""
    name = model.actuator(i).name or f"#{i}"
    joint_types = (int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_SLIDE))
    joint = model.actuator_trnid[i, 0]
    if model.actuator_trntype[i] != mujoco.mjtTrn.mjTRN_JOINT or (
        model.jnt_type[joint] not in joint_types
    ):
        raise ModelError(
            f"actuator {name!r} must drive one hinge or slide joint (a joint transmission; "
            "tendon, site, slider-crank and body transmissions are not supported)"
        )
    motor = (
        model.actuator_dyntype[i] == mujoco.mjtDyn.mjDYN_NONE
        and model.actuator_gaintype[i] == mujoco.mjtGain.mjGAIN_FIXED
        and model.actuator_gainprm[i, 0] == 1.0
        and not model.actuator_gainprm[i, 1:].any()
        and (
            model.actuator_biastype[i] == mujoco.mjtBias.mjBIAS_NONE
            or not model.actuator_biasprm[i].any()
        )
    )
    if not motor:
        raise ModelError(
            f"actuator {name!r} is not a motor (gain 1, no bias, no activation dynamics): "
            "position/velocity servos and general actuators with their own gains are not "
            "supported, mjxbot's PD law drives torque motors"
        )
    gear = model.actuator_gear[i]
    if gear[0] == 0.0 or gear[1:].any():
        raise ModelError(
            f"actuator {name!r} has gear {' '.join(f'{g:g}' for g in gear)}: "
            "mjxbot needs one nonzero gear ratio (gear[0]) and the other five 0"
        )
    if not (model.actuator_ctrllimited[i] or model.actuator_forcelimited[i]):
        raise ModelError(
            f"actuator {name!r} has neither a ctrlrange nor a forcerange: "
            "mjxbot needs each motor's torque limits"
        )


def _torque_limits(model: mujoco.MjModel) -> np.ndarray:
    """`[nu, 2]` joint torque limits of gain-1 motors: `gear` times ctrlrange ∩ forcerange.

    A motor's actuator force is its (clamped) `ctrl`, clamped to `forcerange`
    where `forcelimited`; the joint receives `gear` times that force.
    """
    limits = np.empty((model.nu, 2))
    for i in range(model.nu):
        lo, hi = -np.inf, np.inf
        if model.actuator_ctrllimited[i]:
            lo, hi = model.actuator_ctrlrange[i]
        if model.actuator_forcelimited[i]:
            lo = max(lo, model.actuator_forcerange[i, 0])
            hi = min(hi, model.actuator_forcerange[i, 1])
        limits[i] = np.sort(model.actuator_gear[i, 0] * np.array([lo, hi]))
    return limits


def load_robot(config: RobotConfig, edit: ModelEdit | None = None) -> Robot:
    """Loads the MJCF named by `config` (after a task's `edit`, see `load_model`) and
    resolves its bodies, joints, gains and home pose.

    Raises:
      ModelError: missing file, MJCF errors, unknown names or keyframes, no
        floating base, actuators other than gear-scaled torque motors on a
        single hinge or slide joint (`_check_motor`).
      ConfigError: a home pose given by index or `"qpos0"` that fails
        `check_standing`.
    """
    model = load_model(config.mjcf, edit)
    body = mujoco.mjtObj.mjOBJ_BODY
    torso_id = lookup_id(model, body, config.torso_body, "robot.torso_body")
    free = [
        j
        for j in range(model.njnt)
        if model.jnt_type[j] == mujoco.mjtJoint.mjJNT_FREE and model.jnt_bodyid[j] == torso_id
    ]
    if not free or model.jnt_qposadr[free[0]] != 0:
        raise ModelError(
            f"body {config.torso_body!r} has no free joint at qpos[0:7]: "
            "mjxbot needs a floating-base humanoid"
        )
    if model.nu == 0:
        raise ModelError("the model has no actuators")
    for i in range(model.nu):
        _check_motor(model, i)
    home_qpos = _home_qpos(model, config.home_key)
    foot_ids = np.asarray(lookup_ids(model, body, config.feet, "robot.feet"), dtype=int)
    if config.home_key == QPOS0 or isinstance(config.home_key, int):
        what = f"robot.home_key {config.home_key!r}"
        check_standing(model, home_qpos, torso_id, foot_ids, config.home_height_tolerance, what)
    joints = model.actuator_trnid[:, 0]
    gains = _gains(model, config.gains)
    return Robot(
        model=model,
        torso_id=torso_id,
        foot_ids=foot_ids,
        hand_ids=np.asarray(lookup_ids(model, body, config.hands, "robot.hands"), dtype=int),
        qpos_adr=model.jnt_qposadr[joints].copy(),
        qvel_adr=model.jnt_dofadr[joints].copy(),
        home_qpos=home_qpos,
        kp=gains[:, 0],
        kd=gains[:, 1],
        torque_limit=_torque_limits(model),
        joint_range=model.jnt_range[joints].copy(),
        joint_limited=model.jnt_limited[joints].astype(bool),
        gear=model.actuator_gear[:, 0].copy(),
        config=config,
    )
