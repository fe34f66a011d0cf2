"""`nut_station`: pick a nut with each hand from a feeder and seat both on a conveyor part.

The factory pilot behind mjxbot: a humanoid takes self-tapping nuts from a
feeder and seats them on both sides of a die-cast part that a conveyor brings,
judged by dual-side success within the cycle (takt) time. One episode is one
cycle: the part slides in along the conveyor, the robot has until the deadline
(`takt`), then the auto-reset is the next cycle (fresh part, fresh nuts).

What is physical and what is modelled (details in `docs/nut_station.md`):
nuts are free bodies (5 g) resting on pads through three contact spheres; the
part is a mocap body moved kinematically by the conveyor; the internal-spline
gripper is a weld from the nut to a mocap proxy at the grip site, switched on
in `data.eq_active` when the fingers are closed with the grip point inside the
nut's bore and the spline yaw aligned, and off when the fingers open.

`reference_action` is the scripted pick-and-place (differential IK on MJX
Jacobians with a stateless phase machine), jittable and vmappable.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
from mujoco import mjx

from mjxbot import rewards
from mjxbot.disturbances import magnetic_force, sample_magnet_strength, sample_part_pose
from mjxbot.env import HumanoidEnv, TaskMetrics, torso_rotation
from mjxbot.errors import ConfigError
from mjxbot.names import lookup_id
from mjxbot.registry import register
from mjxbot.types import (
    DisturbanceConfig,
    EnvConfig,
    Observation,
    PartsConfig,
    PushConfig,
    RobotConfig,
    State,
)

SIDES = ("left", "right")
ARM_JOINTS = ("shoulder_pitch", "shoulder_roll", "shoulder_yaw", "elbow")


def _nut_station_disturbances() -> DisturbanceConfig:
    # Nut pose in the feeder, part jitter and magnetism (parts), mild pushes.
    return DisturbanceConfig(
        push=PushConfig(enabled=True, force=(10.0, 40.0), interval=(1.5, 3.0)),
        parts=PartsConfig(enabled=True),
    )


def _nut_station_robot() -> RobotConfig:
    # Stiffer arm PD than the default (60, 2): position-controlled arms at the station
    # (the default lets the 0.3 kg m^2 arm move only a few percent of a target step per
    # control step).
    gains = {**RobotConfig().gains, "shoulder|elbow": (300.0, 10.0)}
    return RobotConfig(mjcf="nut_station.xml", gains=gains)


@dataclasses.dataclass(frozen=True)
class NutStationConfig(EnvConfig):
    """`nut_station` settings. Lengths in m, angles in rad, times in s.

    Cycle:
      takt: cycle time; the episode is one cycle, so `episode_length` must be
        `takt / ctrl_dt` control steps. (The pilot's takt is 76 s; simulation
        uses a short one.)
      arrival_time: time the conveyor takes to bring the part to the station.
      conveyor_travel: distance the part travels (along +y) to the station.

    Success (per side, see `seat_success`):
      position_tolerance: nut centre to seat point distance.
      yaw_tolerance: spline yaw error modulo the spline symmetry.
      tilt_tolerance: angle between nut axis and seat normal.
      max_nut_speed: linear speed below which the nut is at rest.
      max_nut_spin: angular speed below which the nut is at rest.
      spline_teeth: rotational symmetry order of the spline (6: hex).

    Gripper model:
      capture_radius: grip point to nut centre distance at which closing the
        fingers engages the spline (the grip point is inside the bore).
      capture_yaw: spline yaw error (modulo the symmetry) allowed to engage.
      finger_closed: finger joint position (of 0.04) above which a finger
        counts as closed; both fingers of a hand must be closed to hold.

    Layout, jitter and magnetism:
      part_position_jitter: part x/y offset at the station when
        `disturbances.parts` is on (nuts use `disturbances.parts` itself).
      part_yaw_jitter: part yaw at the station when `disturbances.parts` is on.
      steel_depth: depth of each seat's steel point below the seat; the part's
        magnetism (`disturbances.parts.magnet_*`) pulls nuts toward these.
      drop_height: a nut whose centre is below this height has been dropped.

    Actions:
      arm_action_scale: target offset (rad) of arm joints for an action of 1
        (legs and waist use `action_scale`).
      finger_action_scale: finger target (m) for an action of 1; the fingers
        open at -1 and close at +1.

    Rewards:
      reach_sigma, carry_sigma, align_sigma: length scales of the phase terms.
      lift_height: lift above the feeder that earns the full lift term.
    """

    robot: RobotConfig = dataclasses.field(default_factory=_nut_station_robot)
    episode_length: int = 200
    takt: float = 4.0
    arrival_time: float = 0.6
    conveyor_travel: float = 0.5
    position_tolerance: float = 0.002
    yaw_tolerance: float = math.radians(5.0)
    tilt_tolerance: float = math.radians(5.0)
    max_nut_speed: float = 0.01
    max_nut_spin: float = 0.5
    spline_teeth: int = 6
    capture_radius: float = 0.005
    capture_yaw: float = math.radians(7.0)
    finger_closed: float = 0.03
    part_position_jitter: tuple[float, float] = (-0.01, 0.01)
    part_yaw_jitter: tuple[float, float] = (-0.05, 0.05)
    steel_depth: float = 0.01
    drop_height: float = 0.7
    arm_action_scale: float = 1.5
    finger_action_scale: float = 0.04
    reach_sigma: float = 0.05
    carry_sigma: float = 0.05
    align_sigma: float = 0.01
    lift_height: float = 0.03
    disturbances: DisturbanceConfig = dataclasses.field(default_factory=_nut_station_disturbances)
    reward_scales: dict[str, float] = dataclasses.field(
        default_factory=lambda: {
            "reach": 0.5,
            "grasp": 1.0,
            "lift": 1.0,
            "carry": 1.0,
            "align": 1.0,
            "seat": 5.0,
            "drop": 2.0,
            "fall": 10.0,
            "energy": 1e-3,
            "action_rate": 0.01,
        }
    )


# ----------------------------------------------------------------- geometry
def heading(rot: jax.Array) -> jax.Array:
    """Yaw (rad) of a frame's x axis projected on the horizontal plane; `rot` is `[3, 3]`."""
    return jnp.arctan2(rot[1, 0], rot[0, 0])


def symmetric_angle(angle: jax.Array, teeth: int) -> jax.Array:
    """`angle` wrapped to `[-pi/teeth, pi/teeth)`: the error of a `teeth`-fold symmetric spline."""
    period = 2 * jnp.pi / teeth
    return jnp.mod(angle + period / 2, period) - period / 2


def yaw_quat(yaw: jax.Array) -> jax.Array:
    """`[4]` quaternion of a rotation by `yaw` about world z."""
    return jnp.stack([jnp.cos(yaw / 2), 0.0 * yaw, 0.0 * yaw, jnp.sin(yaw / 2)])


def seat_success(
    nut_pos: jax.Array,
    nut_rot: jax.Array,
    nut_linvel: jax.Array,
    nut_angvel: jax.Array,
    seat_pos: jax.Array,
    seat_rot: jax.Array,
    cfg: NutStationConfig,
) -> jax.Array:
    """The per-side success predicate: the nut is seated. Pure; vmappable.

    Args:
      nut_pos: `[3]` nut centre.
      nut_rot: `[3, 3]` nut orientation (its z axis is the bore axis).
      nut_linvel: `[3]` nut linear velocity.
      nut_angvel: `[3]` nut angular velocity.
      seat_pos: `[3]` where a seated nut's centre is.
      seat_rot: `[3, 3]` seat orientation (z: seat normal, x: spline reference).
      cfg: tolerances `position_tolerance`, `yaw_tolerance`, `tilt_tolerance`,
        `max_nut_speed`, `max_nut_spin` and the symmetry `spline_teeth`.

    Returns:
      Bool scalar: within position, yaw (modulo the spline symmetry) and tilt
      tolerance, and at rest.
    """
    position_ok = jnp.linalg.norm(nut_pos - seat_pos) <= cfg.position_tolerance
    yaw_error = symmetric_angle(heading(nut_rot) - heading(seat_rot), cfg.spline_teeth)
    yaw_ok = jnp.abs(yaw_error) <= cfg.yaw_tolerance
    tilt_ok = jnp.dot(nut_rot[:, 2], seat_rot[:, 2]) >= jnp.cos(cfg.tilt_tolerance)
    at_rest = (jnp.linalg.norm(nut_linvel) <= cfg.max_nut_speed) & (
        jnp.linalg.norm(nut_angvel) <= cfg.max_nut_spin
    )
    return position_ok & yaw_ok & tilt_ok & at_rest


def dual_seat_success(
    nut_pos: jax.Array,
    nut_rot: jax.Array,
    nut_linvel: jax.Array,
    nut_angvel: jax.Array,
    seat_pos: jax.Array,
    seat_rot: jax.Array,
    cfg: NutStationConfig,
) -> tuple[jax.Array, jax.Array]:
    """`seat_success` for both sides (arguments with a leading `[2]` axis, left then right).

    Returns:
      `(dual, per_side)`: bool scalar, both sides seated; bool `[2]`.
    """
    per_side = jax.vmap(lambda *a: seat_success(*a, cfg))(
        nut_pos, nut_rot, nut_linvel, nut_angvel, seat_pos, seat_rot
    )
    return jnp.all(per_side), per_side


def _smoothstep(x: jax.Array) -> jax.Array:
    x = jnp.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


# ---------------------------------------------------------------------- env
@register("nut_station")
class NutStation(HumanoidEnv):
    """Dual-hand nut seating at a station, one takt cycle per episode."""

    config_class = NutStationConfig
    task_metrics = TaskMetrics(
        success="success/dual",
        sides={side: f"success/{side}" for side in SIDES},
        falls="falls",
        cycle_time="cycle_time",
        other=("drops",),
    )

    def __init__(self, config: NutStationConfig | None = None):
        super().__init__(config)
        cfg = self.config
        steps = cfg.takt / cfg.ctrl_dt
        if abs(steps - round(steps)) > 1e-6 or round(steps) != cfg.episode_length:
            raise ConfigError(
                f"nut_station runs one cycle per episode: episode_length must be "
                f"takt / ctrl_dt = {steps:g}, got {cfg.episode_length}"
            )
        if cfg.spline_teeth < 1:
            raise ConfigError(f"spline_teeth must be >= 1, got {cfg.spline_teeth}")
        m = self.mj_model

        def ident(kind: mujoco.mjtObj, name: str) -> int:
            return lookup_id(m, kind, name, f"nut_station ({cfg.robot.mjcf})")

        body, site, joint, eq = (
            mujoco.mjtObj.mjOBJ_BODY,
            mujoco.mjtObj.mjOBJ_SITE,
            mujoco.mjtObj.mjOBJ_JOINT,
            mujoco.mjtObj.mjOBJ_EQUALITY,
        )
        self._nut = np.array([ident(body, f"nut_{s}") for s in SIDES])
        nut_joints = [ident(joint, f"nut_{s}") for s in SIDES]
        self._nut_qpos = np.array([m.jnt_qposadr[j] for j in nut_joints])
        self._nut_qvel = np.array([m.jnt_dofadr[j] for j in nut_joints])
        self._grip = np.array([ident(site, f"{s}_grip") for s in SIDES])
        self._hand = np.array([ident(body, f"{s}_hand") for s in SIDES])
        self._seat = np.array([ident(site, f"seat_{s}") for s in SIDES])
        self._feeder = np.array([ident(site, f"feeder_{s}") for s in SIDES])
        self._weld = np.array([ident(eq, f"grasp_{s}") for s in SIDES])
        self._part_mocap = int(m.body_mocapid[ident(body, "part")])
        self._proxy_mocap = np.array(
            [m.body_mocapid[ident(body, f"grip_proxy_{s}")] for s in SIDES]
        )
        names = self.robot.actuator_names
        self._finger_act = np.array([[names.index(f"{s}_finger_{f}") for f in "ab"] for s in SIDES])
        self._arm_act = np.array([[names.index(f"{s}_{j}") for j in ARM_JOINTS] for s in SIDES])
        self._arm_dof = np.asarray(self.robot.qvel_adr)[self._arm_act]
        # Static layout from the model at qpos0.
        d = mujoco.MjData(m)
        mujoco.mj_kinematics(m, d)
        self._feeder_pos = jnp.asarray(d.site_xpos[self._feeder])
        self._station_pos = jnp.asarray(m.body_pos[ident(body, "part")])
        self._station_quat = jnp.asarray(m.body_quat[ident(body, "part")])
        self._seat_local = jnp.asarray(m.site_pos[self._seat])
        self._part_cfg = dataclasses.replace(
            cfg.disturbances.parts,
            position_jitter=cfg.part_position_jitter,
            height_jitter=(0.0, 0.0),
            yaw_jitter=cfg.part_yaw_jitter,
            tilt_jitter=(0.0, 0.0),
        )

    # ------------------------------------------------------------- actions
    def action_scale(self) -> np.ndarray:
        """`[nu]`: `action_scale` for legs and waist, the arm and finger scales."""
        cfg, names = self.config, self.robot.actuator_names
        scale = np.full(self.robot.nu, cfg.action_scale)
        for side in SIDES:
            scale[[names.index(f"{side}_{j}") for j in ARM_JOINTS]] = cfg.arm_action_scale
            scale[[names.index(f"{side}_finger_{f}") for f in "ab"]] = cfg.finger_action_scale
        return scale

    # ---------------------------------------------------------------- task
    def sample_task(self, rng: jax.Array) -> dict[str, jax.Array]:
        key_part, key_left, key_right, key_magnet = jax.random.split(rng, 4)
        parts = self.config.disturbances.parts
        nut_pos, nut_quat = self._feeder_pos, jnp.tile(jnp.array([1.0, 0, 0, 0]), (2, 1))
        part_pos, part_quat = self._station_pos, self._station_quat
        magnet = jnp.zeros(())
        if parts.enabled:
            # Nut pose in the feeder: disturbances.parts; part pose: part_*_jitter.
            poses = [
                sample_part_pose(k, parts, nut_pos[i], nut_quat[i])
                for i, k in enumerate((key_left, key_right))
            ]
            # Spawned 0.5 mm up, so a tilted nut does not start inside its pad.
            nut_pos = jnp.stack([p for p, _ in poses]) + jnp.array([0.0, 0.0, 0.0005])
            nut_quat = jnp.stack([q for _, q in poses])
            part_pos, part_quat = sample_part_pose(key_part, self._part_cfg, part_pos, part_quat)
            magnet = sample_magnet_strength(key_magnet, parts)
        return {
            "nut_spawn_pos": nut_pos,
            "nut_spawn_quat": nut_quat,
            "part_pos": part_pos,
            "part_quat": part_quat,
            "magnet": magnet,
            "seated": jnp.zeros(2),
            "dropped": jnp.zeros(2),
            "success_time": -jnp.ones(()),
        }

    def _part_pose_at(self, info: dict[str, Any], steps: jax.Array) -> jax.Array:
        """`[3]` part position after `steps` control steps of the cycle (conveyor)."""
        progress = _smoothstep(steps * self.config.ctrl_dt / self.config.arrival_time)
        offset = jnp.array([0.0, -self.config.conveyor_travel, 0.0]) * (1.0 - progress)
        return info["part_pos"] + offset

    def place_scene(self, data: mjx.Data, info: dict[str, Any]) -> mjx.Data:
        """Nuts at their sampled feeder poses, the part at the conveyor's start."""
        qpos = data.qpos
        for i in range(2):
            a = int(self._nut_qpos[i])
            qpos = qpos.at[a : a + 3].set(info["nut_spawn_pos"][i])
            qpos = qpos.at[a + 3 : a + 7].set(info["nut_spawn_quat"][i])
        mocap_pos = data.mocap_pos.at[self._part_mocap].set(self._part_pose_at(info, 0))
        mocap_quat = data.mocap_quat.at[self._part_mocap].set(info["part_quat"])
        data = data.replace(qpos=qpos, mocap_pos=mocap_pos, mocap_quat=mocap_quat)
        return mjx.kinematics(self.mjx_model, data)

    def _steel_points(self, data: mjx.Data) -> jax.Array:
        """`[2, 3]` the part's steel points, `steel_depth` below each seat."""
        normal = data.site_xmat[self._seat][:, :, 2]
        return data.site_xpos[self._seat] - self.config.steel_depth * normal

    def before_physics(self, data: mjx.Data, action: jax.Array, info: dict[str, Any]) -> mjx.Data:
        """Conveyor (part mocap), gripper engagement (eq_active, proxies), magnetism."""
        del action
        cfg = self.config
        mocap_pos = data.mocap_pos.at[self._part_mocap].set(self._part_pose_at(info, info["steps"]))
        mocap_quat = data.mocap_quat.at[self._part_mocap].set(info["part_quat"])
        grip = data.site_xpos[self._grip]
        nut = data.xpos[self._nut]
        hand_yaw = jax.vmap(heading)(data.xmat[self._hand])
        nut_yaw = jax.vmap(heading)(data.xmat[self._nut])
        yaw_error = symmetric_angle(hand_yaw - nut_yaw, cfg.spline_teeth)
        fingers = data.qpos[np.asarray(self.robot.qpos_adr)[self._finger_act]]  # [2, 2]
        closed = jnp.all(fingers >= cfg.finger_closed, axis=1)
        capture = (jnp.linalg.norm(grip - nut, axis=1) <= cfg.capture_radius) & (
            jnp.abs(yaw_error) <= cfg.capture_yaw
        )
        active = closed & (data.eq_active[self._weld] | capture)
        # The proxy sits at the grip point, level, at the hand's yaw taken to the
        # spline tooth nearest the nut's yaw (the gripper centres the nut).
        proxy_quat = jax.vmap(yaw_quat)(nut_yaw + yaw_error)
        mocap_pos = mocap_pos.at[self._proxy_mocap].set(grip)
        mocap_quat = mocap_quat.at[self._proxy_mocap].set(proxy_quat)
        data = data.replace(
            mocap_pos=mocap_pos,
            mocap_quat=mocap_quat,
            eq_active=data.eq_active.at[self._weld].set(active),
        )
        if cfg.disturbances.parts.enabled:
            steel = self._steel_points(data)
            qfrc = jnp.zeros_like(data.qfrc_applied)
            for i in range(2):
                force = magnetic_force(nut[i], steel, info["magnet"], cfg.disturbances.parts)
                a = int(self._nut_qvel[i])
                qfrc = qfrc.at[a : a + 3].set(force)
            data = data.replace(qfrc_applied=qfrc)
        return data

    # ------------------------------------------------------------- features
    def _scene(self, data: mjx.Data) -> dict[str, jax.Array]:
        """Per-side `[2, ...]` poses and flags used by observations, rewards and success."""
        nut_rot = data.xmat[self._nut]
        seat_rot = data.site_xmat[self._seat]
        qvel = jnp.stack([data.qvel[int(a) : int(a) + 6] for a in self._nut_qvel])
        _, seated = dual_seat_success(
            data.xpos[self._nut],
            nut_rot,
            qvel[:, :3],
            qvel[:, 3:],
            data.site_xpos[self._seat],
            seat_rot,
            self.config,
        )
        held = data.eq_active[self._weld]
        return {
            "grip": data.site_xpos[self._grip],
            "hand_yaw": jax.vmap(heading)(data.xmat[self._hand]),
            "nut": data.xpos[self._nut],
            "nut_yaw": jax.vmap(heading)(nut_rot),
            "seat": data.site_xpos[self._seat],
            "seat_yaw": jax.vmap(heading)(seat_rot),
            "held": held.astype(jnp.float32),
            "seated": (seated & ~held).astype(jnp.float32),
        }

    def observe(self, data: mjx.Data, info: dict[str, Any]) -> Observation:
        obs = super().observe(data, info)
        s = self._scene(data)
        rot = torso_rotation(self.robot, data)
        teeth = self.config.spline_teeth
        grasp_yaw = teeth * (s["hand_yaw"] - s["nut_yaw"])
        place_yaw = teeth * (s["nut_yaw"] - s["seat_yaw"])
        t = info["steps"] * self.config.ctrl_dt
        task = jnp.concatenate(
            [
                ((s["nut"] - s["grip"]) @ rot).ravel(),
                ((s["seat"] - s["nut"]) @ rot).ravel(),
                jnp.sin(grasp_yaw),
                jnp.cos(grasp_yaw),
                jnp.sin(place_yaw),
                jnp.cos(place_yaw),
                s["held"],
                info["seated"],
                jnp.stack([t / self.config.takt, jnp.minimum(t / self.config.arrival_time, 1.0)]),
            ]
        )
        return {k: jnp.concatenate([v, task]) for k, v in obs.items()}

    def advance_task(
        self, data: mjx.Data, prev_info: dict[str, Any], info: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, jax.Array]]:
        s = self._scene(data)
        seated = jnp.maximum(prev_info["seated"], s["seated"])
        dropped = jnp.maximum(prev_info["dropped"], (s["nut"][:, 2] < self.config.drop_height))
        dual = jnp.all(seated > 0)
        now = (prev_info["steps"] + 1) * self.config.ctrl_dt
        first = dual & (prev_info["success_time"] < 0)
        success_time = jnp.where(first, now, prev_info["success_time"])
        updates = {"seated": seated, "dropped": dropped, "success_time": success_time}
        metrics = {
            "success/dual": dual.astype(jnp.float32),
            "success/left": seated[0],
            "success/right": seated[1],
            "cycle_time": jnp.where(dual, success_time, self.config.takt),
            "drops": jnp.sum(dropped),
            "falls": self.fallen(data).astype(jnp.float32),
        }
        return updates, metrics

    def reward_terms(
        self, data: mjx.Data, action: jax.Array, info: dict[str, Any]
    ) -> dict[str, jax.Array]:
        cfg = self.config
        s = self._scene(data)
        held, seated = s["held"], s["seated"]
        on_floor = (s["nut"][:, 2] < cfg.drop_height).astype(jnp.float32)
        free = (1.0 - held) * (1.0 - seated) * (1.0 - on_floor)
        reach = jnp.linalg.norm(s["grip"] - s["nut"], axis=1)
        lift = jnp.clip((s["nut"][:, 2] - info["nut_spawn_pos"][:, 2]) / cfg.lift_height, 0, 1)
        to_seat = jnp.linalg.norm(s["seat"] - s["nut"], axis=1)
        to_seat_xy = jnp.linalg.norm((s["seat"] - s["nut"])[:, :2], axis=1)
        yaw_match = 0.5 * (1.0 + jnp.cos(cfg.spline_teeth * (s["nut_yaw"] - s["seat_yaw"])))
        joint_torque = self.robot.ctrl_to_torque(data.ctrl)
        return {
            "reach": jnp.sum(free * jnp.exp(-reach / cfg.reach_sigma)),
            "grasp": jnp.sum(held),
            "lift": jnp.sum(held * lift),
            "carry": jnp.sum(held * jnp.exp(-to_seat_xy / cfg.carry_sigma)),
            "align": jnp.sum(held * jnp.exp(-to_seat / cfg.align_sigma) * yaw_match),
            "seat": jnp.sum(seated),
            "drop": -jnp.sum(on_floor),
            "fall": -rewards.fell(self.fallen(data)),
            "energy": rewards.energy(joint_torque, data.qvel[self.robot.qvel_adr]),
            "action_rate": rewards.action_rate(action, info["last_action"]),
        }

    # ------------------------------------------------------------ reference
    def reference_action(self, state: State) -> jax.Array:
        """Scripted pick-and-place for one env: `[action_size]` (vmap for a batch).

        Per side, a phase machine read from the state (no memory of its own):
        free nut -> hover above it, descend when aligned, close the fingers
        inside the bore; held nut -> carry above the seat, lower when aligned
        and the part has arrived, open within tolerance; placed -> back off;
        a released nut at rest on the seat but out of tolerance -> pick again.
        Arm joint targets follow damped-least-squares differential IK on the
        MJX Jacobian of the grip point (position) plus the hand yaw, from the
        current joint positions, with a gravity feedforward (the PD offset that
        holds the arm where it is). Legs and waist hold home.
        """
        cfg = self.config
        data, info = state.data, state.info
        s = self._scene(data)
        arrived = info["steps"] * cfg.ctrl_dt >= cfg.arrival_time
        hover, clearance, gap = 0.03, 0.04, 0.001
        action = jnp.zeros(self.robot.nu)
        q_arm = data.qpos[self.robot.qpos_adr]
        for i in range(2):
            grip, nut, seat = s["grip"][i], s["nut"][i], s["seat"][i]
            held = s["held"][i] > 0
            pick_yaw = symmetric_angle(s["nut_yaw"][i] - s["hand_yaw"][i], cfg.spline_teeth)
            place_yaw = symmetric_angle(s["seat_yaw"][i] - s["nut_yaw"][i], cfg.spline_teeth)
            # Free nut: a funnel above it, lower as the grip point lines up (position and
            # yaw, 1 rad weighted as 5 cm); close the fingers inside the bore.
            misalign = jnp.linalg.norm((nut - grip)[:2]) + 0.05 * jnp.abs(pick_yaw)
            height = hover * jnp.clip((misalign - 0.001) / 0.008, 0.0, 1.0)
            pick_target = nut + jnp.array([0.0, 0.0, 1.0]) * height
            close = (jnp.linalg.norm(nut - grip) < 0.8 * cfg.capture_radius) & (
                jnp.abs(pick_yaw) < 0.6 * cfg.capture_yaw
            )
            # Held nut: the same funnel over the seat once the part has arrived; open the
            # fingers a gap above the seat when within tolerance.
            seat_goal = seat + jnp.array([0.0, 0.0, gap])
            misalign = jnp.linalg.norm((seat - nut)[:2]) + 0.02 * jnp.abs(place_yaw)
            height = clearance * jnp.clip((misalign - 0.003) / 0.01, 0.0, 1.0)
            height = jnp.where(arrived, height, clearance)
            nut_target = seat_goal + jnp.array([0.0, 0.0, 1.0]) * height
            place_target = grip + (nut_target - nut)
            release = (
                arrived
                & (jnp.linalg.norm((seat_goal - nut)[:2]) < 0.6 * cfg.position_tolerance)
                & (jnp.abs(seat_goal[2] - nut[2]) < cfg.position_tolerance)
                & (jnp.abs(place_yaw) < 0.7 * cfg.yaw_tolerance)
            )
            # Placed (latched seated, or released and still settling): back off upward, fingers
            # open. A nut that came to rest on the seat out of tolerance is free: picked again.
            on_seat = (jnp.linalg.norm((seat - nut)[:2]) < 0.01) & (nut[2] < seat[2] + 0.01)
            nut_speed = jnp.linalg.norm(data.qvel[int(self._nut_qvel[i]) :][:3])
            settling = ~held & on_seat & (nut_speed >= cfg.max_nut_speed)
            placed = (info["seated"][i] > 0) | settling
            back_target = seat + jnp.array([0, 0, 0.06])
            target = jnp.where(held, place_target, jnp.where(placed, back_target, pick_target))
            yaw_error = jnp.where(held, place_yaw, jnp.where(placed, 0.0, pick_yaw))
            closed = jnp.where(held, ~release, ~placed & close)
            dq = self._ik_step(data, i, target - grip, yaw_error)
            arm = self._arm_act[i]
            # Joint targets: here + IK step + gravity feedforward (the PD offset that holds here).
            hold = data.qfrc_bias[self._arm_dof[i]] / self.robot.kp[arm]
            arm_target = q_arm[arm] + dq + hold
            action = action.at[arm].set(
                (arm_target - self.robot.home_joint_targets[arm]) / cfg.arm_action_scale
            )
            action = action.at[self._finger_act[i]].set(jnp.where(closed, 1.0, -1.0))
        return jnp.clip(action, -1.0, 1.0)

    def _ik_step(
        self, data: mjx.Data, side: int, position_error: jax.Array, yaw_error: jax.Array
    ) -> jax.Array:
        """`[4]` arm joint increment toward a grip-point offset and a hand-yaw change."""
        max_step, yaw_weight, damping, gain, lead = 0.03, 0.1, 1e-4, 0.8, 1.0
        norm = jnp.linalg.norm(position_error)
        position_error = position_error * jnp.minimum(1.0, max_step / jnp.maximum(norm, 1e-9))
        yaw_error = jnp.clip(yaw_error, -0.1, 0.1)
        grip = data.site_xpos[self._grip[side]]
        hand = int(self._hand[side])
        jacp, jacr = mjx.jac(self.mjx_model, data, grip, hand)
        # Aim where the grip point is heading (all dofs: arm and body sway) to damp the loop.
        position_error = position_error - lead * self.config.ctrl_dt * (jacp.T @ data.qvel)
        dofs = self._arm_dof[side]
        jp, jr = jacp[dofs].T, jacr[dofs].T  # [3, 4]
        x_axis = data.xmat[hand][:, 0]
        horizontal = jnp.maximum(x_axis[0] ** 2 + x_axis[1] ** 2, 1e-6)
        yaw_row = jr[2] - x_axis[2] * (x_axis[0] * jr[0] + x_axis[1] * jr[1]) / horizontal
        jac = jnp.concatenate([jp, yaw_weight * yaw_row[None]])
        error = jnp.concatenate([position_error, yaw_weight * yaw_error[None]])
        dq = jac.T @ jnp.linalg.solve(jac @ jac.T + damping * jnp.eye(4), error)
        return gain * dq
