"""Disturbances sampled inside the jitted `reset`/`step`: pushes, per-episode physics, sensing.

Small pure functions do the sampling (`sample_push`, `sample_physics`,
`sample_sensor_bias`, `sample_part_pose`) and the applying (`episode_model`,
`push_xfrc`, `delay_action`, `corrupt_observation`, `magnetic_force`).
`Disturber` binds them to one env: it resolves names against the model once,
and `HumanoidEnv` calls it at a few hook points (`reset_info`, `plan_step`,
`finish_step`, `observe_reset`). Families that are switched off are skipped
with static Python branches, so they add no operation to the traced step: with
every family off the env is the undisturbed env, bit for bit.

Per-episode physics parameters live in `info["physics"]` (a small pytree). The
step builds its model with `mjx.Model.tree_replace` from those leaves, so under
`vmap` only those leaves are batched and nothing is recompiled per episode.
Parameters that MuJoCo derives from the model in `mj_setConst`
(`body_invweight0`, `dof_invweight0`, used only to regularize constraints)
keep their nominal values, as in MuJoCo C when a model field is edited
without calling `mj_setConst`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
from mujoco import mjx

from mjxbot.names import lookup_id, lookup_ids
from mjxbot.types import (
    DisturbanceConfig,
    PartsConfig,
    PhysicsRandConfig,
    PushConfig,
    SensingConfig,
    State,
)

# Tag folded into an env's key to derive the disturbance stream. Folding in
# (instead of widening the env's own split) leaves the undisturbed streams, and
# so the initial states, unchanged when a family is switched on.
_KEY_TAG = 0xD157

# Counter names in `State.metrics`; all are cumulative per env.
METRIC_NAMES = (
    "disturbance/pushes",
    "disturbance/kicks",
    "disturbance/physics_samples",
    "disturbance/obs_dropped",
    "disturbance/obs_stale",
    "disturbance/events",
)


def uniform(key: jax.Array, bounds: tuple[float, float], shape: tuple[int, ...] = ()) -> jax.Array:
    """Uniform samples in `[min, max)` of a config range; `shape` as given."""
    return jax.random.uniform(key, shape, minval=bounds[0], maxval=bounds[1])


def _is(bounds: tuple[float, float], neutral: float) -> bool:
    """True when a config range is the neutral constant (the parameter is left alone)."""
    return bounds[0] == neutral and bounds[1] == neutral


def random_direction(key: jax.Array, vertical_share: float) -> jax.Array:
    """`[3]` unit vector: uniform heading, vertical component uniform in `±vertical_share`."""
    key_heading, key_vertical = jax.random.split(key)
    heading = jax.random.uniform(key_heading, (), maxval=2 * jnp.pi)
    z = jax.random.uniform(key_vertical, (), minval=-vertical_share, maxval=vertical_share)
    horizontal = jnp.sqrt(1.0 - z * z)
    return jnp.stack([horizontal * jnp.cos(heading), horizontal * jnp.sin(heading), z])


def unit_sphere(key: jax.Array) -> jax.Array:
    """`[3]` unit vector uniform on the sphere."""
    return random_direction(key, 1.0)


# ------------------------------------------------------------------ pushes
def sample_push(
    key: jax.Array,
    cfg: PushConfig,
    body_ids: jax.Array,
    scale: jax.Array,
    sim_dt: float,
    ctrl_dt: float,
) -> dict[str, jax.Array]:
    """Draws one push (used when a push starts).

    Args:
      key: PRNG key.
      cfg: the push family config.
      body_ids: `[n]` candidate body ids.
      scale: scalar curriculum scale multiplying force, torque and kick.
      sim_dt: physics timestep; durations are rounded to it.
      ctrl_dt: control period; intervals are rounded to it.

    Returns:
      `body` int32 scalar, `wrench` `[6]` (world-frame force then torque),
      `substeps` int32 scalar (>= 1), `interval` int32 control steps (>= 1),
      `kick` `[3]` world-frame base-velocity change (zero unless kicked),
      `impulse` the push force's impulse magnitude (N s).
    """
    (
        key_body,
        key_force,
        key_direction,
        key_torque,
        key_torque_axis,
        key_duration,
        key_interval,
        key_kicked,
        key_kick_direction,
        key_kick_speed,
    ) = jax.random.split(key, 10)
    body = jax.random.choice(key_body, body_ids)  # uniform over cfg.bodies
    # cfg.force along a direction with cfg.vertical_share
    force = uniform(key_force, cfg.force) * random_direction(key_direction, cfg.vertical_share)
    torque = uniform(key_torque, cfg.torque) * unit_sphere(key_torque_axis)  # cfg.torque
    duration = uniform(key_duration, cfg.duration)  # cfg.duration
    interval = uniform(key_interval, cfg.interval)  # cfg.interval
    kicked = jax.random.bernoulli(key_kicked, cfg.kick_probability)  # cfg.kick_probability
    kick_direction = random_direction(key_kick_direction, 0.0)
    kick_speed = uniform(key_kick_speed, cfg.kick_speed)  # cfg.kick_speed
    substeps = jnp.maximum(jnp.round(duration / sim_dt), 1).astype(jnp.int32)
    return {
        "body": body.astype(jnp.int32),
        "wrench": scale * jnp.concatenate([force, torque]),
        "substeps": substeps,
        "impulse": scale * jnp.linalg.norm(force) * substeps * sim_dt,
        "interval": jnp.maximum(jnp.round(interval / ctrl_dt), 1).astype(jnp.int32),
        "kick": jnp.where(kicked, scale * kick_speed, 0.0) * kick_direction,
    }


def initial_push_schedule(key: jax.Array, cfg: PushConfig, ctrl_dt: float) -> dict[str, jax.Array]:
    """The push schedule of a fresh episode: no push yet, the first after one interval.

    Returns:
      `countdown` int32 control steps until the next push starts, `remaining`
      int32 substeps left of the current push, `body` int32, `wrench` `[6]`,
      `impulse` (N s) of the latest push.
    """
    interval = uniform(key, cfg.interval)  # cfg.interval
    return {
        "countdown": jnp.maximum(jnp.round(interval / ctrl_dt), 1).astype(jnp.int32),
        "remaining": jnp.zeros((), jnp.int32),
        "body": jnp.zeros((), jnp.int32),
        "wrench": jnp.zeros(6),
        "impulse": jnp.zeros(()),
    }


def advance_push(
    schedule: dict[str, jax.Array], sample: dict[str, jax.Array], n_substeps: int
) -> tuple[dict[str, jax.Array], dict[str, jax.Array], jax.Array]:
    """Starts a push when due and plans this control step's substeps.

    Args:
      schedule: the schedule from `initial_push_schedule` or the last step.
      sample: a fresh `sample_push` draw, used only if a push starts now.
      n_substeps: physics substeps per control step.

    Returns:
      `(schedule after this step, active push, started)`: the active push has
      `body`, `wrench` `[6]` and `substeps` (how many of this step's substeps
      it acts on); `started` is a bool scalar.
    """
    started = schedule["countdown"] <= 0
    body = jnp.where(started, sample["body"], schedule["body"])
    wrench = jnp.where(started, sample["wrench"], schedule["wrench"])
    remaining = jnp.where(started, sample["substeps"], schedule["remaining"])
    countdown = jnp.where(started, sample["interval"], schedule["countdown"]) - 1
    active = {"body": body, "wrench": wrench, "substeps": jnp.minimum(remaining, n_substeps)}
    after = {
        "countdown": countdown,
        "remaining": jnp.maximum(remaining - n_substeps, 0),
        "body": body,
        "wrench": wrench,
        "impulse": jnp.where(started, sample["impulse"], schedule["impulse"]),
    }
    return after, active, started


def push_xfrc(nbody: int, push: dict[str, jax.Array], substep: jax.Array) -> jax.Array:
    """`[nbody, 6]` `xfrc_applied` at substep `substep` of a control step (zero when idle)."""
    on = substep < push["substeps"]
    return jnp.zeros((nbody, 6)).at[push["body"]].set(jnp.where(on, push["wrench"], 0.0))


# ------------------------------------------------------- per-episode physics
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


def physics_spec(mj_model: mujoco.MjModel, cfg: PhysicsRandConfig, joint_dofs) -> PhysicsSpec:
    """Resolves `cfg.floor_geom` and the body tree of `mj_model`."""
    # Looked up only when its friction is sampled: another robot's scene may name its floor
    # otherwise, and loads as long as floor friction is off.
    floor = -1
    if cfg.enabled and not _is(cfg.floor_friction, 0.0):
        geom, what = mujoco.mjtObj.mjOBJ_GEOM, "disturbances.physics.floor_geom"
        floor = lookup_id(mj_model, geom, cfg.floor_geom, what)
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
    if not _is(cfg.floor_friction, 0.0):
        mj_model.geom_priority[spec.floor_geom] = mj_model.geom_priority.max() + 1
    if not _is(cfg.frictionloss, 0.0):
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
    if not _is(cfg.floor_friction, 0.0):
        params["floor_friction"] = uniform(key_friction, cfg.floor_friction)  # cfg.floor_friction
    if not _is(cfg.mass_scale, 1.0):
        scale = uniform(key_mass, cfg.mass_scale, (spec.nbody,))  # cfg.mass_scale
        params["mass_scale"] = scale.at[0].set(1.0)
    if not _is(cfg.com_offset, 0.0):
        offset = uniform(key_com, cfg.com_offset, (spec.nbody, 3))  # cfg.com_offset
        params["com_offset"] = offset.at[0].set(0.0)
    if not _is(cfg.damping_scale, 1.0):
        params["damping_scale"] = uniform(key_damping, cfg.damping_scale, (spec.nv,))
    if not _is(cfg.armature_scale, 1.0):
        params["armature_scale"] = uniform(key_armature, cfg.armature_scale, (spec.nv,))
    if not _is(cfg.frictionloss, 0.0):
        params["frictionloss"] = uniform(key_frictionloss, cfg.frictionloss, (spec.nu,))
    if not _is(cfg.strength_scale, 1.0):
        params["strength"] = uniform(key_strength, cfg.strength_scale, (spec.nu,))
    if not _is(cfg.kp_scale, 1.0):
        params["kp_scale"] = uniform(key_kp, cfg.kp_scale, (spec.nu,))  # cfg.kp_scale
    if not _is(cfg.kd_scale, 1.0):
        params["kd_scale"] = uniform(key_kd, cfg.kd_scale, (spec.nu,))  # cfg.kd_scale
    if cfg.latency[1] > 0:
        # cfg.latency: integers uniform over [min, max], both included
        params["latency"] = jax.random.randint(
            key_latency, (), cfg.latency[0], cfg.latency[1] + 1, jnp.int32
        )
    if not _is(cfg.gravity_tilt, 0.0):
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


# ---------------------------------------------------------------- sensing
def sample_sensor_bias(key: jax.Array, cfg: SensingConfig) -> jax.Array:
    """`[6]` per-episode IMU bias: gravity-direction channels, then gyro channels."""
    key_gravity, key_gyro = jax.random.split(key)
    return jnp.concatenate(
        [
            uniform(key_gravity, cfg.gravity_bias, (3,)),  # cfg.gravity_bias
            uniform(key_gyro, cfg.gyro_bias, (3,)),  # cfg.gyro_bias
        ]
    )


def noise_std(cfg: SensingConfig, nu: int, size: int) -> np.ndarray:
    """`[size]` per-channel noise std over the `proprioception` layout, then task channels."""
    std = np.concatenate(
        [
            np.full(3, cfg.gravity_noise),
            np.full(3, cfg.gyro_noise),
            np.full(nu, cfg.joint_pos_noise),
            np.full(nu, cfg.joint_vel_noise),
            np.zeros(nu),  # the last action is known exactly
        ]
    )
    return np.concatenate([std, np.full(size - std.size, cfg.extra_noise)])[:size]


def corrupt_observation(
    key: jax.Array,
    obs: jax.Array,
    previous: jax.Array | None,
    bias: jax.Array,
    std: np.ndarray,
    cfg: SensingConfig,
    can_stale: jax.Array | bool = True,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Adds bias and noise, then maybe drops the observation or repeats the last one.

    Args:
      key: PRNG key.
      obs: `[obs]` clean actor observation.
      previous: `[obs]` the observation delivered last step, or None when
        there is none (first step of an episode): then nothing is stale.
      bias: `[6]` from `sample_sensor_bias`, added to the first 6 channels.
      std: `[obs]` per-channel noise std from `noise_std`.
      cfg: the sensing family config.
      can_stale: bool scalar; False forbids repeating `previous` (e.g. right
        after an auto-reset).

    Returns:
      `(observation [obs], dropped, stale)`, the last two bool scalars.
    """
    key_noise, key_event = jax.random.split(key)
    noisy = obs.at[:6].add(bias) + std * jax.random.normal(key_noise, obs.shape)  # cfg.*_noise
    u = jax.random.uniform(key_event)
    dropped = u < cfg.drop_probability  # cfg.drop_probability
    if previous is None:
        stale = jnp.zeros((), bool)
    else:
        # cfg.stale_probability, exclusive with a drop
        stale = (u >= cfg.drop_probability) & (u < cfg.drop_probability + cfg.stale_probability)
        stale = stale & can_stale
        noisy = jnp.where(stale, previous, noisy)
    return jnp.where(dropped, 0.0, noisy), dropped, stale


# ------------------------------------------------------------------ parts
def quat_mul(a: jax.Array, b: jax.Array) -> jax.Array:
    """Hamilton product of `[4]` quaternions `(w, x, y, z)`."""
    w1, x1, y1, z1 = a
    w2, x2, y2, z2 = b
    return jnp.stack(
        [
            w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
            w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
            w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
            w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
        ]
    )


def axis_angle_quat(axis: jax.Array, angle: jax.Array) -> jax.Array:
    """`[4]` quaternion of a rotation by `angle` about unit `axis` `[3]`."""
    return jnp.concatenate([jnp.cos(angle / 2)[None], jnp.sin(angle / 2) * axis])


def sample_part_pose(
    key: jax.Array, cfg: PartsConfig, position: jax.Array, quat: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Jitters a part's spawn pose.

    Args:
      key: PRNG key.
      cfg: the parts family config.
      position: `[3]` nominal world position.
      quat: `[4]` nominal world orientation `(w, x, y, z)`.

    Returns:
      `(position [3], quat [4])`: the position offset by `position_jitter` in
      x and y and `height_jitter` in z; the orientation turned by `yaw_jitter`
      about world z and `tilt_jitter` about a random horizontal axis.
    """
    key_xy, key_z, key_yaw, key_tilt, key_axis = jax.random.split(key, 5)
    offset = jnp.concatenate(
        [
            uniform(key_xy, cfg.position_jitter, (2,)),  # cfg.position_jitter
            uniform(key_z, cfg.height_jitter, (1,)),  # cfg.height_jitter
        ]
    )
    yaw = axis_angle_quat(jnp.array([0.0, 0.0, 1.0]), uniform(key_yaw, cfg.yaw_jitter))
    tilt_axis = random_direction(key_axis, 0.0)
    tilt = axis_angle_quat(tilt_axis, uniform(key_tilt, cfg.tilt_jitter))  # cfg.tilt_jitter
    return position + offset, quat_mul(tilt, quat_mul(yaw, quat))


def sample_magnet_strength(key: jax.Array, cfg: PartsConfig) -> jax.Array:
    """Scalar per-episode magnet strength (N)."""
    return uniform(key, cfg.magnet_strength)  # cfg.magnet_strength


def magnetic_force(
    part: jax.Array, steel: jax.Array, strength: jax.Array, cfg: PartsConfig
) -> jax.Array:
    """`[3]` attraction of a steel part toward nearby steel points.

    Each steel point within `cfg.magnet_cutoff` pulls the part toward it with
    `strength * (magnet_reference / r) ** magnet_falloff`, where the distance
    `r` is clamped below at `magnet_min_distance`; the pulls add up.

    Args:
      part: `[3]` part position (its centre of mass).
      steel: `[n, 3]` positions of steel points.
      strength: scalar strength (N at `magnet_reference`).
      cfg: the parts family config (force law).
    """
    delta = steel - part
    distance = jnp.linalg.norm(delta, axis=-1)
    direction = delta / jnp.maximum(distance, 1e-9)[:, None]
    r = jnp.maximum(distance, cfg.magnet_min_distance)
    magnitude = strength * (cfg.magnet_reference / r) ** cfg.magnet_falloff
    magnitude = jnp.where(distance <= cfg.magnet_cutoff, magnitude, 0.0)
    return jnp.sum(magnitude[:, None] * direction, axis=0)


# ------------------------------------------------------------- curriculum
def set_curriculum(state: State, value: float | jax.Array) -> State:
    """Returns `state` (batched or not) with every env's curriculum scale set to `value`.

    Call it between jitted steps (or inside the training loop); the value must
    be in `[0, 1]`. A state without disturbances is returned unchanged.
    """
    if "curriculum" not in state.info:
        return state
    current = state.info["curriculum"]
    info = {**state.info, "curriculum": jnp.full_like(current, value)}
    return state.replace(info=info)


# ------------------------------------------------------- binding to an env
@dataclasses.dataclass(frozen=True)
class StepPlan:
    """What `Disturber.plan_step` decided before the physics of one control step.

    Attributes:
      model: the episode's model (per-episode physics applied).
      data: the physics state after any kick.
      action: `[nu]` the action to apply (delayed by the latency).
      drive: controller scales (`mjxbot.env.control.control_period`), or None.
      push: the active push for `push_xfrc`, or None.
      info: updated `info` entries (push schedule, action buffer).
      counts: int32 scalars of events sampled this step.
    """

    model: mjx.Model
    data: mjx.Data
    action: jax.Array
    drive: dict[str, jax.Array] | None
    push: dict[str, jax.Array] | None
    info: dict[str, Any]
    counts: dict[str, jax.Array]


class Disturber:
    """The disturbance families of one env, bound to its model.

    Build it before `mjx.put_model`: it checks body and geom names (raising
    `ModelError`) and may edit the MuJoCo model (see `prepare_model`).
    """

    def __init__(
        self,
        config: DisturbanceConfig,
        mj_model: mujoco.MjModel,
        joint_dofs: np.ndarray,
        n_substeps: int,
        ctrl_dt: float,
    ):
        self.config = config
        self.active = config.env_active
        self.n_substeps = n_substeps
        self.ctrl_dt = ctrl_dt
        self.sim_dt = float(mj_model.opt.timestep)
        self.nbody = mj_model.nbody
        self.nu = mj_model.nu
        # Names are checked only for an enabled family, so another robot loads with it off.
        bodies = config.push.bodies if config.push.enabled else ()
        body, what = mujoco.mjtObj.mjOBJ_BODY, "disturbances.push.bodies"
        body_ids = lookup_ids(mj_model, body, bodies, what)
        self.push_bodies = jnp.asarray(body_ids, dtype=jnp.int32)
        self.spec = physics_spec(mj_model, config.physics, joint_dofs)
        prepare_model(mj_model, config.physics, self.spec)

    # ------------------------------------------------------------- episode
    def reset_info(self, rng: jax.Array) -> dict[str, Any]:
        """Disturbance entries of a fresh episode's `info` (empty when all off)."""
        if not self.active:
            return {}
        cfg = self.config
        key_push, key_physics, key_sensing = jax.random.split(jax.random.fold_in(rng, _KEY_TAG), 3)
        info: dict[str, Any] = {"curriculum": jnp.asarray(cfg.curriculum, jnp.float32)}
        if cfg.push.enabled:
            info["push"] = initial_push_schedule(key_push, cfg.push, self.ctrl_dt)
        if cfg.physics.enabled:
            info["physics"] = sample_physics(key_physics, cfg.physics, self.spec)
            if "latency" in info["physics"]:
                info["action_buffer"] = jnp.zeros((self.spec.max_latency + 1, self.nu))
        if cfg.sensing.enabled:
            info["sensor_bias"] = sample_sensor_bias(key_sensing, cfg.sensing)
        return info

    def zero_metrics(self) -> dict[str, jax.Array]:
        """The counters, all zero (empty when all off)."""
        return {name: jnp.zeros(()) for name in METRIC_NAMES} if self.active else {}

    def observe_reset(self, rng: jax.Array, obs: dict[str, jax.Array], info: dict[str, Any]):
        """Corrupts the first observation of an episode (noise, bias, drop; never stale)."""
        if not self.config.sensing.enabled:
            return obs
        key = jax.random.fold_in(jax.random.fold_in(rng, _KEY_TAG), 1)
        state_obs, _, _ = self._corrupt(key, obs["state"], None, info["sensor_bias"])
        return {**obs, "state": state_obs}

    def _corrupt(self, key, obs, previous, bias, can_stale=True):
        std = noise_std(self.config.sensing, self.nu, obs.shape[-1])
        return corrupt_observation(key, obs, previous, bias, std, self.config.sensing, can_stale)

    # ---------------------------------------------------------------- step
    def plan_step(
        self, model: mjx.Model, data: mjx.Data, action: jax.Array, info: dict[str, Any]
    ) -> StepPlan:
        """Everything applied before the physics of a control step.

        Args:
          model: the env's nominal model.
          data: the physics state at the start of the step.
          action: `[nu]` the policy's action.
          info: the state's `info`.
        """
        cfg = self.config
        key_push = jax.random.fold_in(jax.random.fold_in(info["rng"], _KEY_TAG), 2)
        new_info: dict[str, Any] = {}
        zero = jnp.zeros((), jnp.int32)
        counts = {"pushes": zero, "kicks": zero}
        drive, push = None, None
        if cfg.physics.enabled:
            params = info["physics"]
            model = episode_model(model, params, self.spec)
            drive = drive_scales(params)
            if "latency" in params:
                buffer, action = delay_action(info["action_buffer"], action, params["latency"])
                new_info["action_buffer"] = buffer
        if cfg.push.enabled:
            sample = sample_push(
                key_push, cfg.push, self.push_bodies, info["curriculum"], self.sim_dt, self.ctrl_dt
            )
            schedule, push, started = advance_push(info["push"], sample, self.n_substeps)
            new_info["push"] = schedule
            if cfg.push.kick_probability > 0:
                kick = jnp.where(started, sample["kick"], 0.0)
                data = data.replace(qvel=data.qvel.at[0:3].add(kick))
                counts["kicks"] = (started & jnp.any(kick != 0)).astype(jnp.int32)
            counts["pushes"] = started.astype(jnp.int32)
        return StepPlan(model, data, action, drive, push, new_info, counts)

    def finish_step(
        self,
        state: State,
        obs: dict[str, jax.Array],
        info: dict[str, Any],
        done: jax.Array,
        plan: StepPlan,
        metrics: dict[str, jax.Array],
    ) -> tuple[dict[str, jax.Array], dict[str, Any], dict[str, jax.Array]]:
        """Everything after the auto-reset of a control step.

        Carries the curriculum (and, with `per_episode=False`, the physics)
        across episode boundaries, corrupts the actor observation and updates
        the cumulative counters.

        Args:
          state: the state the step started from.
          obs: observation after the auto-reset selection.
          info: `info` after the auto-reset selection.
          done: bool scalar, the step ended an episode.
          plan: this step's `plan_step` result.
          metrics: this step's metrics; counters are added to them.

        Returns:
          `(obs, info, metrics)`.
        """
        if not self.active:
            return obs, info, metrics
        cfg = self.config
        info = {**info, "curriculum": state.info["curriculum"]}
        resampled = jnp.zeros(())
        if cfg.physics.enabled:
            if cfg.physics.per_episode:
                resampled = done.astype(jnp.float32)
            else:
                info["physics"] = state.info["physics"]
        dropped = stale = jnp.zeros((), bool)
        if cfg.sensing.enabled:
            key = jax.random.fold_in(jax.random.fold_in(state.info["rng"], _KEY_TAG), 3)
            state_obs, dropped, stale = self._corrupt(
                key, obs["state"], state.obs["state"], info["sensor_bias"], ~done
            )
            obs = {**obs, "state": state_obs}
        counts = {
            "disturbance/pushes": plan.counts["pushes"],
            "disturbance/kicks": plan.counts["kicks"],
            "disturbance/physics_samples": resampled,
            "disturbance/obs_dropped": dropped,
            "disturbance/obs_stale": stale,
        }
        total = sum(v.astype(jnp.float32) for v in counts.values())
        counts["disturbance/events"] = total
        metrics = {**metrics}
        for name, value in counts.items():
            metrics[name] = state.metrics[name] + value.astype(jnp.float32)
        return obs, info, metrics
