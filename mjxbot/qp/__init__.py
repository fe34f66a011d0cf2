"""Dense OSQP-style QP solver in JAX (jit / vmap, float32 / float64).

Solves `min 0.5 x'Px + q'x  s.t.  l <= Ax <= u`; see `solve` and docs/qp.md.
"""

from mjxbot.qp.solver import solve, solve_batch, validate
from mjxbot.qp.types import (
    DUAL_INFEASIBLE,
    INF_BOUND,
    MAX_ITER_REACHED,
    PRIMAL_INFEASIBLE,
    SOLVED,
    STATUS_NAMES,
    UNSOLVED,
    QPInputError,
    QPSettings,
    QPSolution,
)

__all__ = [
    "DUAL_INFEASIBLE",
    "INF_BOUND",
    "MAX_ITER_REACHED",
    "PRIMAL_INFEASIBLE",
    "SOLVED",
    "STATUS_NAMES",
    "UNSOLVED",
    "QPInputError",
    "QPSettings",
    "QPSolution",
    "solve",
    "solve_batch",
    "validate",
]
