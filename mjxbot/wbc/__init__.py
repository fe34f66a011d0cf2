"""Whole-body QP control of the humanoid (docs/wbc.md).

`WholeBodyController(robot, config)` builds, from an MJX state, a QP over joint
accelerations and sole contact forces (floating-base dynamics, friction
pyramids, torque and joint limits, weighted CoM / height / orientation / feet /
hands / posture tasks), solves it with `mjxbot.qp` warm-started from the
previous tick and returns joint torques. Everything is pure: jit and vmap.
"""

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
    "TaskTargets",
    "WholeBodyController",
    "build_qp",
    "contact_forces",
    "contact_points",
    "control_settings",
    "dynamics_terms",
    "friction",
    "home_targets",
    "make_layout",
    "torques",
]
