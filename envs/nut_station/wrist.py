"""The station's arms: wrists and rotor inertia, added to the robot's MJCF via `mujoco.MjSpec`.

The base humanoid's 4-DoF arms end at the hand with no wrist, which is all the
balance tasks need. At the station each hand gets three hinges at its origin
(the end of the forearm): pitch and roll keep the gripper's tool axis vertical
wherever the arm reaches, yaw turns the held nut about that axis onto the
spline. Torque motors drive them, like every other joint.

The shoulder yaw and the elbow get the rotor inertia of geared arm motors. The station's
stiff arm PD (`kd` 10, explicit, at the 4 ms physics step) needs it: with the base model's
0.01 kg m^2, the shoulder yaw's inertia at home is 0.023 kg m^2 and `kd * dt / I` is 1.7
(explicit damping diverges past 2, and sooner in the coupled arm). The arms chattered at
2-3 rad/s around any target, home included, and a shift carried that motion from each
cycle into the next.
"""

from __future__ import annotations

import mujoco

from mjxbot.errors import ModelError

# name, axis in the hand frame (z: the tool axis), range (rad). Applied in this order from
# the forearm: pitch, roll, yaw.
WRIST_JOINTS = (
    ("wrist_pitch", (0.0, 1.0, 0.0), (-1.5, 1.5)),
    ("wrist_roll", (1.0, 0.0, 0.0), (-1.5, 1.5)),
    ("wrist_yaw", (0.0, 0.0, 1.0), (-3.0, 3.0)),
)
WRIST_NAMES = tuple(name for name, _, _ in WRIST_JOINTS)
WRIST_TORQUE = 10.0  # N m, each joint
# The hand (0.5 kg, about 1.5e-3 kg m^2 about the wrist) is light for the explicit PD at
# 4 ms: rotor inertia keeps the wrist's PD loop well inside its stable range.
WRIST_ARMATURE = 0.01
WRIST_DAMPING = 0.2
# kg m^2: shoulder yaw and elbow, `kd * dt / I` about 0.5 and 0.35 at home.
ARM_ARMATURE = 0.07
ROTOR_JOINTS = ("shoulder_yaw", "elbow")


def add_wrists(spec: mujoco.MjSpec, sides: tuple[str, ...]) -> None:
    """Adds `WRIST_JOINTS` and their motors to each `<side>_hand` body of `spec`.

    Joints and motors are named `<side>_<joint>` (e.g. `left_wrist_pitch`).

    Raises:
      ModelError: the model has no body `<side>_hand`.
    """
    for side in sides:
        hand = spec.body(f"{side}_hand")
        if hand is None:
            raise ModelError(f"nut_station: the robot has no body {side}_hand for a wrist")
        for joint, axis, limits in WRIST_JOINTS:
            name = f"{side}_{joint}"
            hand.add_joint(
                name=name,
                type=mujoco.mjtJoint.mjJNT_HINGE,
                axis=axis,
                range=limits,
                limited=mujoco.mjtLimited.mjLIMITED_TRUE,
                armature=WRIST_ARMATURE,
                damping=WRIST_DAMPING,
            )
            spec.add_actuator(
                name=name,
                target=name,
                trntype=mujoco.mjtTrn.mjTRN_JOINT,
                ctrlrange=(-WRIST_TORQUE, WRIST_TORQUE),
                ctrllimited=mujoco.mjtLimited.mjLIMITED_TRUE,
            )


def add_rotor_inertia(spec: mujoco.MjSpec, sides: tuple[str, ...]) -> None:
    """Sets `ARM_ARMATURE` on each side's `ROTOR_JOINTS` (`<side>_shoulder_yaw`, ...).

    Raises:
      ModelError: the model has no such joint.
    """
    for side in sides:
        for joint in ROTOR_JOINTS:
            found = spec.joint(f"{side}_{joint}")
            if found is None:
                raise ModelError(f"nut_station: the robot has no joint {side}_{joint}")
            found.armature = ARM_ARMATURE
