"""The nut station env: feeder, conveyor part, spline gripper welds, success at takt."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
from brax import math as brax_math
from mujoco import mjx

from mjxbot import rewards
from mjxbot.disturbances import magnetic_force, sample_magnet_strength, sample_part_pose
from mjxbot.env import HumanoidEnv, TaskMetrics, torso_rotation
from mjxbot.env.state import Observation, State
from mjxbot.envs.nut_station.config import ARM_JOINTS, SIDES, NutStationConfig
from mjxbot.envs.nut_station.scripted import reference_action
from mjxbot.envs.nut_station.success import (
    dual_seat_success,
    heading,
    smoothstep,
    symmetric_angle,
    yaw_quat,
)
from mjxbot.envs.nut_station.wrist import add_rotor_inertia, add_wrists
from mjxbot.errors import ConfigError
from mjxbot.names import lookup_id, lookup_ids
from mjxbot.robot import ModelEdit


def hand_actuators(model: mujoco.MjModel, mjcf: str) -> tuple[np.ndarray, np.ndarray]:
    """The `ctrl` indices (actuator ids) of the arms `[2, 4]` and fingers `[2, 2]`, per side."""
    what = f"nut_station ({mjcf})"
    actuator = mujoco.mjtObj.mjOBJ_ACTUATOR
    arm = [lookup_ids(model, actuator, [f"{s}_{j}" for j in ARM_JOINTS], what) for s in SIDES]
    finger = [lookup_ids(model, actuator, [f"{s}_finger_{f}" for f in "ab"], what) for s in SIDES]
    return np.array(arm), np.array(finger)


# ---------------------------------------------------------------------- env
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
        self.nut_dofs = np.array([m.jnt_dofadr[j] for j in nut_joints])
        self.grip_sites = np.array([ident(site, f"{s}_grip") for s in SIDES])
        self.hand_bodies = np.array([ident(body, f"{s}_hand") for s in SIDES])
        self._seat = np.array([ident(site, f"seat_{s}") for s in SIDES])
        self._feeder = np.array([ident(site, f"feeder_{s}") for s in SIDES])
        self._weld = np.array([ident(eq, f"grasp_{s}") for s in SIDES])
        self._part_mocap = int(m.body_mocapid[ident(body, "part")])
        self._proxy_mocap = np.array(
            [m.body_mocapid[ident(body, f"grip_proxy_{s}")] for s in SIDES]
        )
        self.arm_actuators, self.finger_actuators = hand_actuators(m, cfg.robot.mjcf)
        self.arm_dofs = np.asarray(self.robot.qvel_adr)[self.arm_actuators]
        names = [m.actuator(i).name for i in range(self.robot.nu)]
        pattern = re.compile(cfg.residual_actuators)
        self.residual_actuators = np.array([i for i, n in enumerate(names) if pattern.search(n)])
        if self.residual_actuators.size == 0:
            raise ConfigError(
                f"residual_actuators {cfg.residual_actuators!r} matches no actuator; "
                f"actuators: {', '.join(names)}"
            )
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
        cfg = self.config
        arm, finger = hand_actuators(self.mj_model, cfg.robot.mjcf)  # before __init__ sets them
        scale = np.full(self.robot.nu, cfg.action_scale)
        scale[arm.ravel()] = cfg.arm_action_scale
        scale[finger.ravel()] = cfg.finger_action_scale
        return scale

    def model_edit(self) -> ModelEdit:
        """The wrists and the arms' rotor inertia (`envs/nut_station/wrist.py`)."""

        def edit(spec: mujoco.MjSpec) -> None:
            add_wrists(spec, SIDES)
            add_rotor_inertia(spec, SIDES)

        return edit

    @property
    def zero_action_actor(self) -> str:
        return "scripted" if self.config.policy_mode == "residual" else super().zero_action_actor

    @property
    def action_size(self) -> int:
        """`nu`, or in `residual` mode the number of `residual_actuators`."""
        if self.config.policy_mode == "residual":
            return int(self.residual_actuators.size)
        return super().action_size

    def compose_action(self, state: State, action: jax.Array) -> jax.Array:
        """The policy's action, or in `residual` mode the scripted one plus a scaled residual."""
        if self.config.policy_mode == "joint":
            return action
        scaled = self.config.residual_scale * jnp.clip(action, -1.0, 1.0)
        residual = jnp.zeros(self.robot.nu).at[self.residual_actuators].set(scaled)
        return jnp.clip(reference_action(self, state.data, state.info) + residual, -1.0, 1.0)

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
        progress = smoothstep(steps * self.config.ctrl_dt / self.config.arrival_time)
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
        return data.replace(qpos=qpos, mocap_pos=mocap_pos, mocap_quat=mocap_quat)

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
        grip = data.site_xpos[self.grip_sites]
        nut = data.xpos[self._nut]
        hand_yaw = jax.vmap(heading)(data.xmat[self.hand_bodies])
        nut_yaw = jax.vmap(heading)(data.xmat[self._nut])
        yaw_error = symmetric_angle(hand_yaw - nut_yaw, cfg.spline_teeth)
        fingers = data.qpos[np.asarray(self.robot.qpos_adr)[self.finger_actuators]]  # [2, 2]
        closed = jnp.all(fingers >= cfg.finger_closed, axis=1)
        capture = (jnp.linalg.norm(grip - nut, axis=1) <= cfg.capture_radius) & (
            jnp.abs(yaw_error) <= cfg.capture_yaw
        )
        active = closed & (data.eq_active[self._weld] | capture)
        # The proxy sits at the grip point in the hand's orientation, turned about the tool
        # axis to the spline tooth nearest the nut's yaw (the gripper centres the nut): a
        # held nut tilts with the hand.
        to_tooth = jax.vmap(yaw_quat)(nut_yaw + yaw_error - hand_yaw)
        proxy_quat = jax.vmap(brax_math.quat_mul)(data.xquat[self.hand_bodies], to_tooth)
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
                a = int(self.nut_dofs[i])
                qfrc = qfrc.at[a : a + 3].set(force)
            data = data.replace(qfrc_applied=qfrc)
        return data

    # ------------------------------------------------------------- features
    def scene(self, data: mjx.Data) -> dict[str, jax.Array]:
        """Per-side `[2, ...]` poses and flags used by observations, rewards and success."""
        nut_rot = data.xmat[self._nut]
        seat_rot = data.site_xmat[self._seat]
        qvel = jnp.stack([data.qvel[int(a) : int(a) + 6] for a in self.nut_dofs])
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
        tilt = jnp.arccos(jnp.clip(jnp.sum(nut_rot[:, :, 2] * seat_rot[:, :, 2], axis=1), -1, 1))
        return {
            "grip": data.site_xpos[self.grip_sites],
            "hand_yaw": jax.vmap(heading)(data.xmat[self.hand_bodies]),
            "nut": data.xpos[self._nut],
            "nut_yaw": jax.vmap(heading)(nut_rot),
            "tilt": tilt,
            "seat": data.site_xpos[self._seat],
            "seat_yaw": jax.vmap(heading)(seat_rot),
            "held": held.astype(jnp.float32),
            "seated": (seated & ~held).astype(jnp.float32),
        }

    def observe(self, data: mjx.Data, info: dict[str, Any]) -> Observation:
        obs = super().observe(data, info)
        s = self.scene(data)
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
                s["tilt"],
                s["held"],
                info["seated"],
                jnp.stack([t / self.config.takt, jnp.minimum(t / self.config.arrival_time, 1.0)]),
            ]
        )
        if self.config.policy_mode == "residual":  # what the policy's action is added to
            task = jnp.concatenate([task, reference_action(self, data, info)])
        return {k: jnp.concatenate([v, task]) for k, v in obs.items()}

    def advance_task(
        self, data: mjx.Data, prev_info: dict[str, Any], info: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, jax.Array]]:
        s = self.scene(data)
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
        s = self.scene(data)
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
