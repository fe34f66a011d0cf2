"""The scripted pick-and-place: a stateless phase machine on differential IK.

The baseline a trained policy is judged against, jittable and vmappable:
`jax.vmap(functools.partial(reference_action, env))(state.data, state.info)`;
in residual mode (`NutStationConfig.policy_mode`) the env adds a policy's action to it.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
from mujoco import mjx

from mjxbot.envs.nut_station.config import NutStationConfig
from mjxbot.envs.nut_station.success import heading, symmetric_angle

if TYPE_CHECKING:  # the env calls this module in residual mode
    from mjxbot.envs.nut_station.env import NutStation

RELEASE_GAP = 0.001  # m: the nut is released this far above its seat point
HOME_STEP = 0.05  # rad per control step: how fast a placed side's arm returns home
# Fraction of the arm's offset from home removed per control step in the IK's null space.
POSTURE_GAIN = 0.05
PICK_HOVER = 0.03  # m: the grip's height over a free nut while far from lined up
# Horizontal misalignment (m, yaw included) below which the grip descends fully onto a free
# nut; the hover rises to `PICK_HOVER` over the next `PICK_FUNNEL_WIDTH`.
PICK_FUNNEL_START = 0.002
PICK_FUNNEL_WIDTH = 0.008
CLOSE_RADIUS = 0.8  # of `capture_radius`: how near the nut the fingers start to close


def release_checks(
    cfg: NutStationConfig, nut: jax.Array, seat: jax.Array, place_yaw: jax.Array, tilt: jax.Array
) -> dict[str, jax.Array]:
    """Which of the held nut's release conditions hold, each a bool (vmappable).

    The margins are tighter than the seat's tolerances, because a released nut
    still settles: `position` is the horizontal error to the seat point (0.9 of
    `position_tolerance`), `height` the vertical one to `RELEASE_GAP` above it
    (one `position_tolerance`), `yaw` the spline yaw error (0.7 of
    `yaw_tolerance`), `tilt` the nut axis off the seat normal (half of
    `tilt_tolerance`). The controller releases once all hold and the part has arrived.

    Args:
      cfg: the station's tolerances.
      nut: `[3]` held nut centre.
      seat: `[3]` seat point.
      place_yaw: spline yaw error, seat minus nut, wrapped to the spline symmetry.
      tilt: the nut axis's angle (rad) from the seat normal.
    """
    goal = seat + jnp.array([0.0, 0.0, RELEASE_GAP])
    return {
        "position": jnp.linalg.norm((goal - nut)[:2]) < 0.9 * cfg.position_tolerance,
        "height": jnp.abs(goal[2] - nut[2]) < cfg.position_tolerance,
        "yaw": jnp.abs(place_yaw) < 0.7 * cfg.yaw_tolerance,
        "tilt": tilt < 0.5 * cfg.tilt_tolerance,
    }


def pick_hover_height(misalign: jax.Array) -> jax.Array:
    """The grip's height (m) over a free nut at a horizontal misalignment `misalign` (m).

    The funnel must let the grip come within the closing distance at a steady error of a
    couple of millimetres: starting at 1 mm, it hovered 3.75 mm up at 2 mm off, 4.2 mm from
    the nut, and a body swaying in a shift's carried-over cycle held it there for seconds
    (docs/nut_station.md, "The pick funnel").
    """
    return PICK_HOVER * jnp.clip((misalign - PICK_FUNNEL_START) / PICK_FUNNEL_WIDTH, 0.0, 1.0)


def reference_action(env: NutStation, data: mjx.Data, info: dict[str, Any]) -> jax.Array:
    """Scripted pick-and-place for one env: `[action_size]` (vmap for a batch).

    Per side, a phase machine read from the state (no memory of its own):
    free nut -> hover above it, descend when aligned, close the fingers
    inside the bore; held nut -> carry above the seat, lower when aligned
    and the part has arrived, open within `release_checks`; placed -> back
    off, and once both sides are placed the arms return to the home pose; a
    released nut at rest on the seat but out of tolerance -> pick again.
    Arm and wrist joint targets follow damped-least-squares differential IK
    on the MJX Jacobians of the grip point (position) and
    the hand (orientation: tool axis vertical, hand yaw), from the current
    joint positions, with a gravity feedforward (the PD offset that holds
    the arm where it is). Legs and waist hold home.
    """
    cfg = env.config
    s = env.scene(data)
    arrived = info["steps"] * cfg.ctrl_dt >= cfg.arrival_time
    clearance = 0.04
    action = jnp.zeros(env.robot.nu)
    q_arm = data.qpos[env.robot.qpos_adr]
    # Placed (latched seated, or released and still settling). A nut that came to rest on
    # the seat out of tolerance is free again: picked and placed anew.
    on_seat = (jnp.linalg.norm((s["seat"] - s["nut"])[:, :2], axis=1) < 0.01) & (
        s["nut"][:, 2] < s["seat"][:, 2] + 0.01
    )
    nut_speed = jnp.stack([jnp.linalg.norm(data.qvel[int(a) : int(a) + 3]) for a in env.nut_dofs])
    settling = (s["held"] == 0) & on_seat & (nut_speed >= cfg.max_nut_speed)
    placed_sides = (info["seated"] > 0) | settling
    both_placed = jnp.all(placed_sides)
    for i in range(2):
        grip, nut, seat = s["grip"][i], s["nut"][i], s["seat"][i]
        held = s["held"][i] > 0
        pick_yaw = symmetric_angle(s["nut_yaw"][i] - s["hand_yaw"][i], cfg.spline_teeth)
        place_yaw = symmetric_angle(s["seat_yaw"][i] - s["nut_yaw"][i], cfg.spline_teeth)
        # Free nut: a funnel above it, lower as the grip point lines up (position and
        # yaw, 1 rad weighted as 5 cm); close the fingers inside the bore.
        misalign = jnp.linalg.norm((nut - grip)[:2]) + 0.05 * jnp.abs(pick_yaw)
        pick_target = nut + jnp.array([0.0, 0.0, 1.0]) * pick_hover_height(misalign)
        close = (jnp.linalg.norm(nut - grip) < CLOSE_RADIUS * cfg.capture_radius) & (
            jnp.abs(pick_yaw) < 0.6 * cfg.capture_yaw
        )
        # Held nut: the same funnel over the seat once the part has arrived; open the
        # fingers a gap above the seat when within tolerance.
        seat_goal = seat + jnp.array([0.0, 0.0, RELEASE_GAP])
        misalign = jnp.linalg.norm((seat - nut)[:2]) + 0.02 * jnp.abs(place_yaw)
        height = clearance * jnp.clip((misalign - 0.003) / 0.01, 0.0, 1.0)
        height = jnp.where(arrived, height, clearance)
        nut_target = seat_goal + jnp.array([0.0, 0.0, 1.0]) * height
        place_target = grip + (nut_target - nut)
        checks = release_checks(cfg, nut, seat, place_yaw, s["tilt"][i])
        release = arrived & functools.reduce(jnp.logical_and, checks.values())
        # Placed: fingers open, back off upward (the arms go home once both are placed).
        placed = placed_sides[i]
        back_target = seat + jnp.array([0, 0, 0.06])
        target = jnp.where(held, place_target, jnp.where(placed, back_target, pick_target))
        yaw_error = jnp.where(held, place_yaw, jnp.where(placed, 0.0, pick_yaw))
        closed = jnp.where(held, ~release, ~placed & close)
        arm = env.arm_actuators[i]
        home = env.robot.home_joint_targets[arm]
        # A placed arm returns to the home pose in joint space, so that the next cycle of a
        # shift starts where a fresh one does: IK alone lets the 7-joint arm drift in its
        # null space from cycle to cycle (dual success fell to 59 % and then 34 % over the
        # 2nd and 3rd cycles of continuous operation when it only backed off upward).
        to_home = jnp.clip(home - q_arm[arm], -HOME_STEP, HOME_STEP)
        reach = ik_step(env, data, i, target - grip, yaw_error, home - q_arm[arm])
        dq = jnp.where(both_placed, to_home, reach)
        # Joint targets: here + IK step + gravity feedforward (the PD offset that holds here).
        hold = data.qfrc_bias[env.arm_dofs[i]] / env.robot.kp[arm]
        arm_target = q_arm[arm] + dq + hold
        action = action.at[arm].set((arm_target - home) / cfg.arm_action_scale)
        action = action.at[env.finger_actuators[i]].set(jnp.where(closed, 1.0, -1.0))
    return jnp.clip(action, -1.0, 1.0)


def ik_step(
    env: NutStation,
    data: mjx.Data,
    side: int,
    position_error: jax.Array,
    yaw_error: jax.Array,
    to_home: jax.Array,
) -> jax.Array:
    """`[7]` arm and wrist joint increment toward a grip-point offset, with the tool axis
    vertical (a level nut) and the hand's yaw changed by `yaw_error`; in the task's null
    space, a step `POSTURE_GAIN * to_home` (`[7]`, home minus the arm's joints) back to home.

    The 7-joint arm has one redundant direction (the elbow's swivel about the shoulder-wrist
    line). Without the posture step it drifts along it from cycle to cycle of a shift: the
    shoulder and wrist yaw wind up in opposite directions until a joint reaches its limit
    and the reach fails.
    """
    max_step, max_turn, turn_weight, damping, gain, lead = 0.03, 0.1, 0.1, 1e-4, 0.8, 1.0
    norm = jnp.linalg.norm(position_error)
    position_error = position_error * jnp.minimum(1.0, max_step / jnp.maximum(norm, 1e-9))
    grip = data.site_xpos[env.grip_sites[side]]
    hand = int(env.hand_bodies[side])
    jacp, jacr = mjx.jac(env.mjx_model, data, grip, hand)
    # Aim where the grip point is heading (all dofs: arm and body sway) to damp the loop.
    position_error = position_error - lead * env.config.ctrl_dt * (jacp.T @ data.qvel)
    # Target frame: level (tool axis along world z) at the hand's heading plus the yaw error;
    # the error is the rotation vector from the hand's frame to it (small-angle form).
    rot = data.xmat[hand]
    target = yaw_matrix(heading(rot) + jnp.clip(yaw_error, -max_turn, max_turn))
    turn = 0.5 * jnp.sum(jnp.cross(rot.T, target.T), axis=0)
    turn = turn * jnp.minimum(1.0, max_turn / jnp.maximum(jnp.linalg.norm(turn), 1e-9))
    dofs = env.arm_dofs[side]
    jac = jnp.concatenate([jacp[dofs].T, turn_weight * jacr[dofs].T])  # [6, 7]
    error = jnp.concatenate([position_error, turn_weight * turn])
    pinv = jac.T @ jnp.linalg.inv(jac @ jac.T + damping * jnp.eye(6))  # [7, 6]
    posture = POSTURE_GAIN * (to_home - pinv @ (jac @ to_home))
    return gain * (pinv @ error) + posture


def yaw_matrix(yaw: jax.Array) -> jax.Array:
    """`[3, 3]` rotation by `yaw` about world z."""
    c, s = jnp.cos(yaw), jnp.sin(yaw)
    return jnp.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
