"""Loading an MJCF humanoid and resolving everything the env needs by name."""

from __future__ import annotations

import dataclasses
import re
from importlib import resources
from pathlib import Path

import mujoco
import numpy as np

from mjxbot.errors import ModelError
from mjxbot.types import RobotConfig


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


def load_model(path: str) -> mujoco.MjModel:
    """Compiles an MJCF file, turning MuJoCo's errors into one-line `ModelError`s."""
    file = resolve_mjcf(path)
    try:
        return mujoco.MjModel.from_xml_path(str(file))
    except ValueError as e:
        message = " ".join(str(e).split())
        raise ModelError(f"cannot load MJCF {file}: {message}") from e


def _ids(model: mujoco.MjModel, kind: mujoco.mjtObj, names: tuple[str, ...], label: str) -> list:
    ids = [mujoco.mj_name2id(model, kind, name) for name in names]
    missing = [name for name, i in zip(names, ids, strict=True) if i < 0]
    if missing:
        count, plural = {"body": (model.nbody, "bodies"), "site": (model.nsite, "sites")}[label]
        valid = [
            mujoco.mj_id2name(model, kind, i) for i in range(1 if label == "body" else 0, count)
        ]
        raise ModelError(
            f"{label} {missing[0]!r} not in the model; its {plural} are: "
            f"{', '.join(n for n in valid if n)}"
        )
    return ids


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
      home_qpos: `[nq]` the home keyframe.
      kp: `[nu]` proportional gains.
      kd: `[nu]` derivative gains.
      torque_limit: `[nu, 2]` actuator control range (torque limits).
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


def load_robot(config: RobotConfig) -> Robot:
    """Loads the MJCF named by `config` and resolves its bodies, joints and gains.

    Raises:
      ModelError: missing file, MJCF errors, unknown names, no floating base,
        actuators that do not drive a single hinge or slide joint.
    """
    model = load_model(config.mjcf)
    (torso_id,) = _ids(model, mujoco.mjtObj.mjOBJ_BODY, (config.torso_body,), "body")
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
    joint_types = (int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_SLIDE))
    for i in range(model.nu):
        joint = model.actuator_trnid[i, 0]
        if model.actuator_trntype[i] != mujoco.mjtTrn.mjTRN_JOINT or (
            model.jnt_type[joint] not in joint_types
        ):
            raise ModelError(
                f"actuator {model.actuator(i).name!r} must drive one hinge or slide joint"
            )
    key = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_KEY, config.home_key)
    if key < 0:
        keys = [model.key(k).name for k in range(model.nkey)]
        raise ModelError(
            f"keyframe {config.home_key!r} not in the model; its keyframes are: "
            f"{', '.join(keys) or '(none)'}"
        )
    joints = model.actuator_trnid[:, 0]
    gains = _gains(model, config.gains)
    return Robot(
        model=model,
        torso_id=torso_id,
        foot_ids=np.asarray(_ids(model, mujoco.mjtObj.mjOBJ_BODY, config.feet, "body")),
        hand_ids=np.asarray(_ids(model, mujoco.mjtObj.mjOBJ_BODY, config.hands, "body")),
        qpos_adr=model.jnt_qposadr[joints].copy(),
        qvel_adr=model.jnt_dofadr[joints].copy(),
        home_qpos=model.key_qpos[key].copy(),
        kp=gains[:, 0],
        kd=gains[:, 1],
        torque_limit=model.actuator_ctrlrange.copy(),
        joint_range=model.jnt_range[joints].copy(),
        joint_limited=model.jnt_limited[joints].astype(bool),
    )
