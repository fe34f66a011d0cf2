"""Whole-body QP control of the humanoid (docs/wbc.md).

`WholeBodyController(robot, config)` builds, from an MJX state, a QP over joint
accelerations and sole contact forces (floating-base dynamics, friction
pyramids, torque and joint limits, weighted CoM / height / orientation / feet /
hands / posture tasks), solves it with `mjxbot.qp` warm-started from the
previous tick and returns joint torques. Everything is pure: jit and vmap.
`run_standing` drives it in closed loop with MuJoCo C physics (tests, benchmarks).
"""

from mjxbot.wbc.closed_loop import StandingRun, TorsoPush, run_standing
from mjxbot.wbc.controller import TIGHT_SETTINGS, WholeBodyController, control_settings
from mjxbot.wbc.layout import Layout, make_layout
from mjxbot.wbc.problem import (
    QPData,
    TaskTargets,
    build_qp,
    contact_forces,
    contact_points,
    dynamics_terms,
    friction,
    home_targets,
    torques,
)

__all__ = [
    "TIGHT_SETTINGS",
    "Layout",
    "QPData",
    "StandingRun",
    "TaskTargets",
    "TorsoPush",
    "WholeBodyController",
    "build_qp",
    "contact_forces",
    "contact_points",
    "control_settings",
    "dynamics_terms",
    "friction",
    "home_targets",
    "make_layout",
    "run_standing",
    "torques",
]
