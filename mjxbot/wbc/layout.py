"""Static facts the whole-body QP needs, resolved once from the robot and the config."""

from __future__ import annotations

import dataclasses
import re

import mujoco
import numpy as np

from mjxbot.errors import ConfigError
from mjxbot.names import lookup_id, lookup_ids
from mjxbot.robot import Robot
from mjxbot.wbc.config import WBCConfig

GRAVITY = 9.81
"""Only used to normalize forces (the dynamics use the model's gravity)."""


@dataclasses.dataclass(frozen=True)
class Layout:
    """Indices and constants of one humanoid's whole-body QP (numpy, static under jit).

    The QP's acceleration variables are the robot's own dofs (`dofs`): the
    floating base `0:6` then one per actuator. Other trees of the scene (free
    objects) are decoupled in the mass matrix and left out.

    Attributes:
      dofs: `[nr]` qvel indices of the robot dofs (6 base + nu actuated).
      nu: number of actuators (the actuated dofs are `dofs[6:]`).
      contact_geoms: `[nc]` geom ids of the sole spheres.
      contact_bodies: `[nc]` their body ids.
      contact_radius: `[nc]` their radii (the contact point is the sphere bottom).
      floor_geom: floor geom id.
      torso_id, foot_ids, hand_ids: body ids.
      qpos_adr: `[nu]` qpos index of each actuated joint.
      joint_range: `[nu, 2]` joint limits (`-inf, inf` for unlimited joints).
      torque_lo, torque_hi: `[nu]` actuator torque limits (ctrlrange).
      home_q: `[nu]` home joint positions.
      home_height: home torso height.
      foot_height: `[n_feet]` home height of the foot bodies.
      foot_home: `[n_feet, 2]` home horizontal foot positions relative to the
        torso, in its heading (yaw) frame.
      contact_foot: `[nc]` index into `foot_ids` of each contact point's foot.
      hand_home: `[n_hands, 3]` home hand positions in the torso frame.
      mass: total robot mass.
      com_offset: `[2]` home CoM minus the middle of the sole points (horizontal).
      force_scale: contact forces are QP variables in units of this (N).
      residual_idx: `[k]` actuator indices with a posture residual in the action.
    """

    dofs: np.ndarray
    nu: int
    contact_geoms: np.ndarray
    contact_bodies: np.ndarray
    contact_radius: np.ndarray
    floor_geom: int
    torso_id: int
    foot_ids: np.ndarray
    hand_ids: np.ndarray
    qpos_adr: np.ndarray
    joint_range: np.ndarray
    torque_lo: np.ndarray
    torque_hi: np.ndarray
    home_q: np.ndarray
    home_height: float
    foot_height: np.ndarray
    foot_home: np.ndarray
    contact_foot: np.ndarray
    hand_home: np.ndarray
    mass: float
    com_offset: np.ndarray
    force_scale: float
    residual_idx: np.ndarray

    @property
    def nr(self) -> int:
        """Number of robot dofs (acceleration variables)."""
        return int(self.dofs.shape[0])

    @property
    def nc(self) -> int:
        """Number of contact points."""
        return int(self.contact_geoms.shape[0])

    @property
    def n_var(self) -> int:
        """QP variables: `nr` accelerations + 3 force components per contact."""
        return self.nr + 3 * self.nc

    @property
    def n_con(self) -> int:
        """QP rows: 6 base dynamics, nu torque limits, nu joint limits, 5 per contact."""
        return 6 + 2 * self.nu + 5 * self.nc


def _foot_of(model: mujoco.MjModel, body: int, foot_ids: np.ndarray) -> int:
    """Index into `foot_ids` of the foot whose subtree holds `body`."""
    while body > 0:
        hits = np.flatnonzero(foot_ids == body)
        if hits.size:
            return int(hits[0])
        body = int(model.body_parentid[body])
    raise ConfigError("robot.sole_geoms must all belong to the subtrees of robot.feet")


def make_layout(robot: Robot, config: WBCConfig) -> Layout:
    """Resolves the contact geoms, joint ranges and home quantities of `robot`."""
    model = robot.model
    geom = mujoco.mjtObj.mjOBJ_GEOM
    geoms = np.asarray(lookup_ids(model, geom, robot.config.sole_geoms, "robot.sole_geoms"))
    if np.any(model.geom_type[geoms] != mujoco.mjtGeom.mjGEOM_SPHERE):
        raise ConfigError("robot.sole_geoms must all be spheres")
    floor = lookup_id(model, geom, robot.config.floor_geom, "robot.floor_geom")
    nu = robot.nu
    joints = model.actuator_trnid[:, 0]
    limited = model.jnt_limited[joints].astype(bool)
    joint_range = np.where(limited[:, None], model.jnt_range[joints], [-np.inf, np.inf])

    data = mujoco.MjData(model)
    data.qpos[:] = robot.home_qpos
    mujoco.mj_forward(model, data)
    torso_pos, torso_mat = data.xpos[robot.torso_id], data.xmat[robot.torso_id].reshape(3, 3)
    hand_home = (data.xpos[robot.hand_ids] - torso_pos) @ torso_mat
    tree = model.body_rootid == model.body_rootid[robot.torso_id]
    mass = float(model.body_mass[tree].sum())
    soles = data.geom_xpos[geoms, :2].mean(axis=0)
    com_offset = data.subtree_com[robot.torso_id, :2] - soles

    contact_bodies = model.geom_bodyid[geoms]
    contact_foot = np.asarray([_foot_of(model, b, robot.foot_ids) for b in contact_bodies])
    yaw = np.arctan2(torso_mat[1, 0], torso_mat[0, 0])
    heading = np.array([[np.cos(yaw), -np.sin(yaw)], [np.sin(yaw), np.cos(yaw)]])
    foot_home = (data.xpos[robot.foot_ids, :2] - torso_pos[:2]) @ heading

    pattern = re.compile(config.residual_joints)
    residual = [i for i in range(nu) if pattern.search(model.actuator(i).name)]
    n_hands, n_feet = len(robot.hand_ids), len(robot.foot_ids)
    task_entries = 6 + 3 * n_hands + 3 * n_feet
    if task_entries + len(residual) > nu:
        # The task-space part alone may not fit: then no residual setting helps.
        hint = (
            "match fewer joints with wbc.residual_joints"
            if task_entries <= nu
            else "the robot has too few actuators for the whole-body controller's action"
        )
        raise ConfigError(
            f"wbc action layout needs {task_entries + len(residual)} entries (height 1, "
            f"orientation 3, CoM 2, hands {3 * n_hands}, feet {3 * n_feet}, residual "
            f"{len(residual)}) but the action has {nu}; {hint}"
        )
    return Layout(
        dofs=np.concatenate([np.arange(6), robot.qvel_adr]).astype(np.int32),
        nu=nu,
        contact_geoms=geoms,
        contact_bodies=contact_bodies.copy(),
        contact_radius=model.geom_size[geoms, 0].copy(),
        floor_geom=floor,
        torso_id=robot.torso_id,
        foot_ids=np.asarray(robot.foot_ids),
        hand_ids=np.asarray(robot.hand_ids),
        qpos_adr=np.asarray(robot.qpos_adr),
        joint_range=joint_range,
        torque_lo=robot.torque_limit[:, 0].copy(),
        torque_hi=robot.torque_limit[:, 1].copy(),
        home_q=robot.home_joint_targets.copy(),
        home_height=float(robot.home_qpos[2]),
        foot_height=data.xpos[robot.foot_ids, 2].copy(),
        foot_home=foot_home,
        contact_foot=contact_foot.astype(np.int32),
        hand_home=hand_home,
        mass=mass,
        com_offset=com_offset,
        force_scale=mass * GRAVITY / len(geoms),
        residual_idx=np.asarray(residual, dtype=np.int32),
    )
