"""Building the whole-body QP from an MJX state (pure functions, jit/vmap safe).

Variables `x = [qacc (nr), f / force_scale (3 nc)]`: robot-dof accelerations and
world-frame contact forces at the sole points, normalized by `Layout.force_scale`
(the weight per contact point) so both blocks are O(1). Torques are not
variables: they follow from the actuated rows of the dynamics,
`tau = M_a qacc + c_a - J_a' f` (see `torques`).

Rows of `l <= A x <= u`:

* `0:6` floating-base dynamics `M_b qacc + c_b = J_b' f` (equalities).
* `6:6+nu` torque limits `lo - c_a <= M_a qacc - J_a' f <= hi - c_a`.
* next `nu`: joint-limit acceleration bounds on the actuated dofs.
* then per contact: `0 <= f_z <= active * max_normal_force` and the 4 facets
  `|f_x| <= mu' f_z`, `|f_y| <= mu' f_z` of a pyramid inscribed in the friction
  cone (`mu' = mu / sqrt(2)`, `mu` from the model's floor and sole friction).

Here `c = qfrc_bias - qfrc_passive` (Coriolis, gravity, joint damping), `M` the
dense joint-space inertia (with armature) and `J` the stacked translational
Jacobians of the contact points.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import struct
from mujoco import mjx

from mjxbot.wbc.config import WBCConfig
from mjxbot.wbc.layout import Layout

# Inner-pyramid factor: a 4-facet pyramid |fx|, |fy| <= mu' fz lies inside the cone
# for mu' = mu / sqrt(2).
_PYRAMID = math.sqrt(0.5)


@struct.dataclass
class TaskTargets:
    """What the tasks track (one env; batch with vmap).

    Attributes:
      height: `[]` torso height offset (m) from home.
      orientation: `[3]` torso roll, pitch, yaw offsets (rad) from upright,
        heading of the feet.
      com: `[2]` horizontal CoM offset (m) from its home place over the soles.
      hands: `[n_hands, 3]` hand offsets (m) from home in the torso frame.
      swing: `[n_feet]` 1.0 for a foot that steps (its contacts released, lifted
        and sent to `feet`), 0.0 for a stance foot.
      feet: `[n_feet, 2]` step targets: horizontal offsets (m) of each foot from
        its home place relative to the torso, in the torso's heading frame (read
        for swinging feet only).
      posture: `[nu]` joint position targets.
    """

    height: jax.Array
    orientation: jax.Array
    com: jax.Array
    hands: jax.Array
    swing: jax.Array
    feet: jax.Array
    posture: jax.Array


def home_targets(layout: Layout) -> TaskTargets:
    """Targets of standing still at `home`."""
    return TaskTargets(
        height=jnp.zeros(()),
        orientation=jnp.zeros(3),
        com=jnp.zeros(2),
        hands=jnp.zeros((len(layout.hand_ids), 3)),
        swing=jnp.zeros(len(layout.foot_ids)),
        feet=jnp.zeros((len(layout.foot_ids), 2)),
        posture=jnp.asarray(layout.home_q, jnp.float32),
    )


class QPData(NamedTuple):
    """One whole-body QP and what is needed to recover torques from its solution.

    Attributes:
      P: `[n, n]`, q: `[n]`, A: `[m, n]`, l, u: `[m]` (see the module doc).
      M_act: `[nu, nr]` actuated rows of the mass matrix.
      c_act: `[nu]` actuated entries of `c`.
      Jt_act: `[nu, 3 nc]` actuated rows of `J'` times `force_scale`.
      active: `[nc]` contact activity (1.0 / 0.0).
    """

    P: jax.Array
    q: jax.Array
    A: jax.Array
    l: jax.Array
    u: jax.Array
    M_act: jax.Array
    c_act: jax.Array
    Jt_act: jax.Array
    active: jax.Array


def dynamics_terms(model: mjx.Model, data: mjx.Data) -> mjx.Data:
    """Position and velocity stages MuJoCo runs before its constraint solver.

    Kinematics, CoM, composite inertia (`qM`), CoM velocities, passive forces and
    bias forces of the state in `data` (no collision, no constraint solve). After
    `mjx.step` the stored `qM`/`qfrc_bias` belong to the previous state, so the
    controller calls this first.
    """
    data = mjx.kinematics(model, data)
    data = mjx.com_pos(model, data)
    data = mjx.crb(model, data)
    data = mjx.com_vel(model, data)
    data = mjx.passive(model, data)
    return mjx.rne(model, data)


def _rot_error(current: jax.Array, target: jax.Array) -> jax.Array:
    """`[3]` world-frame rotation vector (small-angle) taking `current` to `target`."""
    return 0.5 * jnp.sum(jnp.cross(current.T, target.T), axis=0)


def _rpy(roll: jax.Array, pitch: jax.Array, yaw: jax.Array) -> jax.Array:
    cr, sr, cp, sp, cy, sy = (
        jnp.cos(roll),
        jnp.sin(roll),
        jnp.cos(pitch),
        jnp.sin(pitch),
        jnp.cos(yaw),
        jnp.sin(yaw),
    )
    rz = jnp.array([[cy, -sy, 0.0], [sy, cy, 0.0], [0.0, 0.0, 1.0]])
    ry = jnp.array([[cp, 0.0, sp], [0.0, 1.0, 0.0], [-sp, 0.0, cp]])
    rx = jnp.array([[1.0, 0.0, 0.0], [0.0, cr, -sr], [0.0, sr, cr]])
    return rz @ ry @ rx


def contact_points(layout: Layout, data: mjx.Data) -> tuple[jax.Array, jax.Array]:
    """`[nc, 3]` lowest points of the sole spheres and `[nc]` their heights."""
    centers = data.geom_xpos[layout.contact_geoms]
    points = centers - jnp.asarray(layout.contact_radius)[:, None] * jnp.array([0.0, 0.0, 1.0])
    return points, points[:, 2]


def friction(model: mjx.Model, layout: Layout) -> jax.Array:
    """`[nc]` sliding friction of each sole-floor pair, mixed as MuJoCo does (priority, max)."""
    floor_mu = model.geom_friction[layout.floor_geom, 0]
    sole_mu = model.geom_friction[layout.contact_geoms, 0]
    floor_p = model.geom_priority[layout.floor_geom]
    sole_p = model.geom_priority[layout.contact_geoms]
    mixed = jnp.maximum(floor_mu, sole_mu)
    return jnp.where(floor_p > sole_p, floor_mu, jnp.where(sole_p > floor_p, sole_mu, mixed))


def _jacobians(model, data, points, bodies):
    """Stacked `[k, 3, nv]` translational and rotational Jacobians of points on bodies."""
    jacp, jacr = jax.vmap(lambda p, b: mjx.jac(model, data, p, b))(points, bodies)
    return jnp.swapaxes(jacp, 1, 2), jnp.swapaxes(jacr, 1, 2)


def build_qp(
    model: mjx.Model,
    data: mjx.Data,
    layout: Layout,
    config: WBCConfig,
    targets: TaskTargets,
) -> QPData:
    """Builds the whole-body QP of one env.

    Args:
      model: the (per-episode) MJX model.
      data: a state after `dynamics_terms` (or `mjx.forward`).
      layout: static indices (`make_layout`).
      config: weights, gains and limits.
      targets: task targets.

    Returns:
      The QP (`n = nr + 3 nc`, `m = 6 + 2 nu + 5 nc`) and torque-recovery terms.
    """
    dofs = jnp.asarray(layout.dofs)
    nr, nu, nc = layout.nr, layout.nu, layout.nc
    fs = layout.force_scale
    dtype = data.qvel.dtype
    qvel = data.qvel[dofs]

    M = mjx.full_m(model, data)[dofs][:, dofs]
    c = (data.qfrc_bias - data.qfrc_passive)[dofs]

    # Contacts: fixed candidate points, activity from their height above the floor.
    points, heights = contact_points(layout, data)
    jc, _ = _jacobians(model, data, points, jnp.asarray(layout.contact_bodies))
    Jc = jc[:, :, dofs].reshape(3 * nc, nr)  # [3 nc, nr]
    # A swinging foot's points are released whatever their height.
    stance = 1.0 - targets.swing.astype(dtype)[jnp.asarray(layout.contact_foot)]  # [nc]
    active = (heights <= config.contact_height).astype(dtype) * stance
    Jt = fs * Jc.T  # [nr, 3 nc]: generalized force of the normalized contact forces

    # ---- constraints
    zeros_f = jnp.zeros((nu, 3 * nc), dtype)
    base = jnp.concatenate([M[:6], -Jt[:6]], axis=1)
    torque = jnp.concatenate([M[6:], -Jt[6:]], axis=1)
    joint = jnp.concatenate([jnp.zeros((nu, 6), dtype), jnp.eye(nu, dtype=dtype), zeros_f], axis=1)

    mu = friction(model, layout) * _PYRAMID
    e = jnp.eye(3, dtype=dtype)
    facets = jax.vmap(
        lambda m_: jnp.stack(
            [e[2], e[0] - m_ * e[2], e[0] + m_ * e[2], e[1] - m_ * e[2], e[1] + m_ * e[2]]
        )
    )(mu)  # [nc, 5, 3]
    cone = jax.scipy.linalg.block_diag(*facets)  # [5 nc, 3 nc]
    cone = jnp.concatenate([jnp.zeros((5 * nc, nr), dtype), cone], axis=1)
    A = jnp.concatenate([base, torque, joint, cone], axis=0)

    lo, hi = jnp.asarray(layout.torque_lo, dtype), jnp.asarray(layout.torque_hi, dtype)
    q_act = data.qpos[jnp.asarray(layout.qpos_adr)]
    qd_act = qvel[6:]
    h = config.joint_limit_horizon
    rng = jnp.asarray(layout.joint_range, dtype)
    a_lo = 2.0 * (rng[:, 0] - q_act - qd_act * h) / h**2
    a_hi = 2.0 * (rng[:, 1] - q_act - qd_act * h) / h**2
    a_max = config.max_joint_acc
    a_lo, a_hi = jnp.clip(a_lo, -a_max, a_max), jnp.clip(a_hi, -a_max, a_max)
    a_lo = jnp.minimum(a_lo, a_hi)
    inf = jnp.full((nc,), jnp.inf, dtype)
    zero = jnp.zeros((nc,), dtype)
    fz_max = active * config.max_normal_force / fs
    cone_l = jnp.stack([zero, -inf, zero, -inf, zero], axis=1).reshape(-1)
    cone_u = jnp.stack([fz_max, zero, inf, zero, inf], axis=1).reshape(-1)
    l = jnp.concatenate([-c[:6], lo - c[6:], a_lo, cone_l])
    u = jnp.concatenate([-c[:6], hi - c[6:], a_hi, cone_u])

    # ---- tasks: rows (Jt, b, w) of w * ||J qacc - b||^2
    rows: list[tuple[jax.Array, jax.Array, float]] = []
    torso = layout.torso_id
    feet = jnp.asarray(layout.foot_ids)
    foot_pos = data.xpos[feet]
    # CoM: the base-translation rows of M are the total linear momentum map.
    J_com = M[0:2] / layout.mass
    com = data.subtree_com[torso, :2]
    # Over the stance feet's points: both feet when standing, the stance foot in a step.
    support = (stance @ points[:, :2]) / jnp.maximum(stance.sum(), 1.0)
    com_ref = support + jnp.asarray(layout.com_offset, dtype) + targets.com
    a_com = config.kp_com * (com_ref - com) - config.kd_com * (J_com @ qvel)
    rows.append((J_com, a_com, config.w_com))
    # Base height (torso origin, world z).
    e_z = jnp.zeros((1, nr), dtype).at[0, 2].set(1.0)
    height_ref = layout.home_height + targets.height
    a_z = config.kp_height * (height_ref - data.qpos[2]) - config.kd_height * qvel[2]
    rows.append((e_z, a_z[None], config.w_height))
    # Torso orientation; the free joint's angular dofs are in the torso frame.
    R = data.xmat[torso]
    feet_x = data.xmat[feet][:, :, 0].sum(axis=0)
    yaw = jnp.arctan2(feet_x[1], feet_x[0])
    R_ref = _rpy(targets.orientation[0], targets.orientation[1], yaw + targets.orientation[2])
    err = R.T @ _rot_error(R, R_ref)
    a_rot = config.kp_orientation * err - config.kd_orientation * qvel[3:6]
    e_rot = jnp.zeros((3, nr), dtype).at[:, 3:6].set(jnp.eye(3, dtype=dtype))
    rows.append((e_rot, a_rot, config.w_orientation))
    # Feet: flat (roll, pitch -> 0, own yaw kept). A stance foot is held at home height
    # and damped horizontally; a swinging one is lifted by `swing_height` and sent to
    # its step target, relative to the torso in its heading frame, with stiffer gains.
    jp, jr = _jacobians(model, data, foot_pos, feet)
    J_feet = jnp.concatenate([jp, jr], axis=1)[:, :, dofs]  # [n_feet, 6, nr]
    foot_R = data.xmat[feet]
    foot_yaw = jnp.arctan2(foot_R[:, 1, 0], foot_R[:, 0, 0])
    flat = jax.vmap(lambda y: _rpy(0.0, 0.0, y))(foot_yaw)
    rot_err = jax.vmap(_rot_error)(foot_R, flat)  # [n_feet, 3] world frame
    swing = targets.swing.astype(dtype)[:, None]  # [n_feet, 1]
    # A stance foot with no point in contact is landing: pressed below its home height.
    touching = jax.ops.segment_max(
        (heights <= config.contact_height).astype(dtype),
        jnp.asarray(layout.contact_foot),
        num_segments=len(layout.foot_ids),
    )
    landing = (1.0 - swing[:, 0]) * (1.0 - touching)
    torso_yaw = jnp.arctan2(R[1, 0], R[0, 0])
    heading = _rpy(0.0, 0.0, torso_yaw)[:2, :2]
    step_offset = jnp.asarray(layout.foot_home, dtype) + targets.feet  # [n_feet, 2]
    step_xy = data.xpos[torso, :2] + step_offset @ heading.T
    z_ref = (
        jnp.asarray(layout.foot_height, dtype)
        + config.swing_height * swing[:, 0]
        - config.landing_depth * landing
    )
    xy_err = swing * (step_xy - foot_pos[:, :2])
    pos_err = jnp.concatenate([xy_err, (z_ref - foot_pos[:, 2])[:, None]], axis=1)
    moving = jnp.maximum(swing, landing[:, None])
    kp = config.kp_feet + (config.kp_swing - config.kp_feet) * moving
    kd = config.kd_feet + (config.kd_swing - config.kd_feet) * moving
    err = jnp.concatenate([pos_err, rot_err], axis=1)  # [n_feet, 6]
    a_feet = kp * err - kd * jnp.einsum("fkn,n->fk", J_feet, qvel)
    rows.append((J_feet.reshape(-1, nr), a_feet.reshape(-1), config.w_feet))
    # Hands: positions in the torso frame.
    hands = jnp.asarray(layout.hand_ids)
    hand_pos = data.xpos[hands]
    hand_ref = data.xpos[torso] + (jnp.asarray(layout.hand_home, dtype) + targets.hands) @ R.T
    jh, _ = _jacobians(model, data, hand_pos, hands)
    J_hands = jh[:, :, dofs].reshape(-1, nr)
    a_hands = config.kp_hands * (hand_ref - hand_pos).reshape(-1) - config.kd_hands * (
        J_hands @ qvel
    )
    rows.append((J_hands, a_hands, config.w_hands))
    # Posture.
    e_post = jnp.zeros((nu, nr), dtype).at[:, 6:].set(jnp.eye(nu, dtype=dtype))
    a_post = config.kp_posture * (targets.posture - q_act) - config.kd_posture * qd_act
    rows.append((e_post, a_post, config.w_posture))

    P_acc = config.w_qacc * jnp.eye(nr, dtype=dtype)
    q_acc = jnp.zeros(nr, dtype)
    for J, b, w in rows:
        P_acc = P_acc + w * J.T @ J
        q_acc = q_acc - w * J.T @ b
    P = jax.scipy.linalg.block_diag(P_acc, config.w_force * jnp.eye(3 * nc, dtype=dtype))
    q = jnp.concatenate([q_acc, jnp.zeros(3 * nc, dtype)])
    return QPData(P, q, A, l, u, M[6:], c[6:], Jt[6:], active)


def torques(qp: QPData, x: jax.Array, layout: Layout) -> jax.Array:
    """`[nu]` torques from a QP solution via the actuated dynamics rows, clipped to limits."""
    nr = layout.nr
    tau = qp.M_act @ x[:nr] + qp.c_act - qp.Jt_act @ x[nr:]
    return jnp.clip(tau, layout.torque_lo, layout.torque_hi)


def contact_forces(x: jax.Array, layout: Layout) -> jax.Array:
    """`[nc, 3]` world-frame contact forces (N) of a QP solution."""
    return layout.force_scale * x[layout.nr :].reshape(layout.nc, 3)
