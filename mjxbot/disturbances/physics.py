"""Per-episode physics: friction, masses, damping, strength, gains, latency, slope."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
from mujoco import mjx

from mjxbot.disturbances.config import (
    PhysicsRandConfig,
)
from mjxbot.disturbances.sampling import is_neutral, uniform
from mjxbot.names import lookup_id


@dataclasses.dataclass(frozen=True)
class PhysicsSpec:
    """Static facts the physics sampler needs, resolved from the model once.

    Attributes:
      nbody: number of bodies (world included).
      nv: number of dofs.
      nu: number of actuators.
      floor_geom: floor geom id (-1 when floor friction is not sampled).
      joint_dofs: `[nu]` dof index of each actuated joint.
      subtree: `[nbody, nbody]` 0/1 matrix, `subtree[i, j] = 1` when body j is
        in the subtree of body i (for `body_subtreemass`).
      gravity: nominal gravity magnitude (m/s^2).
      max_latency: largest action latency (control steps).
    """

    nbody: int
    nv: int
    nu: int
    floor_geom: int
    joint_dofs: np.ndarray
    subtree: np.ndarray
    gravity: float
    max_latency: int


def physics_spec(
    mj_model: mujoco.MjModel, cfg: PhysicsRandConfig, joint_dofs: np.ndarray, floor_geom: str
) -> PhysicsSpec:
    """Resolves the floor geom (`RobotConfig.floor_geom`) and the body tree of `mj_model`."""
    # Looked up only when its friction is sampled: another robot's scene may name its floor
    # otherwise, and loads as long as floor friction is off.
    floor = -1
    if cfg.enabled and not is_neutral(cfg.floor_friction, 0.0):
        floor = lookup_id(mj_model, mujoco.mjtObj.mjOBJ_GEOM, floor_geom, "robot.floor_geom")
    subtree = np.zeros((mj_model.nbody, mj_model.nbody))
    for j in range(mj_model.nbody):
        i = j
        while True:
            subtree[i, j] = 1.0
            if i == 0:
                break
            i = mj_model.body_parentid[i]
    return PhysicsSpec(
        nbody=mj_model.nbody,
        nv=mj_model.nv,
        nu=mj_model.nu,
        floor_geom=floor,
        joint_dofs=np.asarray(joint_dofs),
        subtree=subtree,
        gravity=float(np.linalg.norm(mj_model.opt.gravity)),
        max_latency=cfg.latency[1],
    )


def prepare_model(mj_model: mujoco.MjModel, cfg: PhysicsRandConfig, spec: PhysicsSpec) -> None:
    """Edits `mj_model` in place so MJX builds what randomization needs (before `put_model`).

    Floor friction: the floor gets the highest geom priority, so its friction
    alone sets the floor contacts (MJX otherwise takes the max over the pair).
    Frictionloss: MJX decides at `put_model` which dofs get frictionloss
    constraint rows, so actuated dofs get a positive nominal value.
    """
    if not cfg.enabled:
        return
    if not is_neutral(cfg.floor_friction, 0.0):
        mj_model.geom_priority[spec.floor_geom] = mj_model.geom_priority.max() + 1
    if not is_neutral(cfg.frictionloss, 0.0):
        mid = 0.5 * (cfg.frictionloss[0] + cfg.frictionloss[1])
        current = mj_model.dof_frictionloss[spec.joint_dofs]
        mj_model.dof_frictionloss[spec.joint_dofs] = np.where(current > 0, current, mid)


def sample_physics(
    key: jax.Array, cfg: PhysicsRandConfig, spec: PhysicsSpec
) -> dict[str, jax.Array]:
    """Draws one episode's physics parameters; neutral ranges are left out.

    Returns:
      A dict with any of: `floor_friction` scalar, `mass_scale` `[nbody]`,
      `com_offset` `[nbody, 3]`, `damping_scale` `[nv]`, `armature_scale`
      `[nv]`, `frictionloss` `[nu]`, `strength` `[nu]`, `kp_scale` `[nu]`,
      `kd_scale` `[nu]`, `latency` int32 scalar, `gravity` `[3]`. The world
      body (index 0) keeps mass scale 1 and no offset.
    """
    (
        key_friction,
        key_mass,
        key_com,
        key_damping,
        key_armature,
        key_frictionloss,
        key_strength,
        key_kp,
        key_kd,
        key_latency,
        key_tilt,
    ) = jax.random.split(key, 11)
    params = {}
    if not is_neutral(cfg.floor_friction, 0.0):
        params["floor_friction"] = uniform(key_friction, cfg.floor_friction)  # cfg.floor_friction
    if not is_neutral(cfg.mass_scale, 1.0):
        scale = uniform(key_mass, cfg.mass_scale, (spec.nbody,))  # cfg.mass_scale
        params["mass_scale"] = scale.at[0].set(1.0)
    if not is_neutral(cfg.com_offset, 0.0):
        offset = uniform(key_com, cfg.com_offset, (spec.nbody, 3))  # cfg.com_offset
        params["com_offset"] = offset.at[0].set(0.0)
    if not is_neutral(cfg.damping_scale, 1.0):
        params["damping_scale"] = uniform(key_damping, cfg.damping_scale, (spec.nv,))
    if not is_neutral(cfg.armature_scale, 1.0):
        params["armature_scale"] = uniform(key_armature, cfg.armature_scale, (spec.nv,))
    if not is_neutral(cfg.frictionloss, 0.0):
        params["frictionloss"] = uniform(key_frictionloss, cfg.frictionloss, (spec.nu,))
    if not is_neutral(cfg.strength_scale, 1.0):
        params["strength"] = uniform(key_strength, cfg.strength_scale, (spec.nu,))
    if not is_neutral(cfg.kp_scale, 1.0):
        params["kp_scale"] = uniform(key_kp, cfg.kp_scale, (spec.nu,))  # cfg.kp_scale
    if not is_neutral(cfg.kd_scale, 1.0):
        params["kd_scale"] = uniform(key_kd, cfg.kd_scale, (spec.nu,))  # cfg.kd_scale
    if cfg.latency[1] > 0:
        # cfg.latency: integers uniform over [min, max], both included
        params["latency"] = jax.random.randint(
            key_latency, (), cfg.latency[0], cfg.latency[1] + 1, jnp.int32
        )
    if not is_neutral(cfg.gravity_tilt, 0.0):
        key_angle, key_heading = jax.random.split(key_tilt)
        tilt = uniform(key_angle, cfg.gravity_tilt)  # cfg.gravity_tilt
        heading = jax.random.uniform(key_heading, (), maxval=2 * jnp.pi)
        direction = jnp.stack(
            [jnp.sin(tilt) * jnp.cos(heading), jnp.sin(tilt) * jnp.sin(heading), -jnp.cos(tilt)]
        )
        params["gravity"] = spec.gravity * direction
    return params


def episode_model(model: mjx.Model, params: dict[str, jax.Array], spec: PhysicsSpec) -> mjx.Model:
    """`model` with one episode's physics parameters applied to its leaves.

    Only the leaves named in `params` are replaced (so under `vmap` only they
    are batched). Masses scale `body_mass`, `body_inertia` and the derived
    `body_subtreemass` together.
    """
    updates = {}
    if "floor_friction" in params:
        updates["geom_friction"] = model.geom_friction.at[spec.floor_geom, 0].set(
            params["floor_friction"]
        )
    if "mass_scale" in params:
        mass = model.body_mass * params["mass_scale"]
        updates["body_mass"] = mass
        updates["body_inertia"] = model.body_inertia * params["mass_scale"][:, None]
        updates["body_subtreemass"] = jnp.asarray(spec.subtree, mass.dtype) @ mass
    if "com_offset" in params:
        updates["body_ipos"] = model.body_ipos + params["com_offset"]
    if "damping_scale" in params:
        updates["dof_damping"] = model.dof_damping * params["damping_scale"]
    if "armature_scale" in params:
        updates["dof_armature"] = model.dof_armature * params["armature_scale"]
    if "frictionloss" in params:
        updates["dof_frictionloss"] = model.dof_frictionloss.at[spec.joint_dofs].set(
            params["frictionloss"]
        )
    if "gravity" in params:
        updates["opt.gravity"] = params["gravity"]
    return model.tree_replace(updates) if updates else model


def drive_scales(params: dict[str, jax.Array]) -> dict[str, jax.Array] | None:
    """The PD-law entries of `params` (`kp_scale`, `kd_scale`, `strength`), or None."""
    drive = {k: params[k] for k in ("kp_scale", "kd_scale", "strength") if k in params}
    return drive or None


def delay_action(
    buffer: jax.Array, action: jax.Array, latency: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Pushes `action` into a ring of recent actions and reads the delayed one.

    Args:
      buffer: `[k + 1, nu]` most recent actions, newest first.
      action: `[nu]` the policy's action this step.
      latency: int scalar in `[0, k]`.

    Returns:
      `(new buffer [k + 1, nu], applied action [nu])`; the applied action is
      the one given `latency` steps ago (zeros before the episode's first).
    """
    buffer = jnp.concatenate([action[None], buffer[:-1]], axis=0)
    return buffer, buffer[latency]
