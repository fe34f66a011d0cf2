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

from mjxbot.envs.nut_station.config import NutStationConfig
from mjxbot.envs.nut_station.env import NutStation
from mjxbot.envs.nut_station.scripted import reference_action
from mjxbot.envs.nut_station.success import dual_seat_success, seat_success

__all__ = [
    "NutStation",
    "NutStationConfig",
    "dual_seat_success",
    "reference_action",
    "seat_success",
]
