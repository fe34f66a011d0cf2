"""Types of the QP solver: settings, solution pytree, status codes and input errors.

The problem solved is::

    minimize    0.5 x' P x + q' x
    subject to  l <= A x <= u

with dense `P` (n x n, symmetric positive semidefinite) and `A` (m x n).
"""

from __future__ import annotations

import dataclasses

import jax
from flax import struct

from mjxbot.errors import MjxbotError

# Status codes (int32 in `QPSolution.status`).
UNSOLVED = 0
"""Internal: the solver is still iterating (never returned by `solve`)."""
SOLVED = 1
"""Primal and dual residuals meet `eps_abs + eps_rel * scale`."""
MAX_ITER_REACHED = 2
"""The iteration budget ran out (or `fixed_iterations` ended) before convergence."""
PRIMAL_INFEASIBLE = 3
"""A certificate of primal infeasibility was found (no x satisfies l <= Ax <= u)."""
DUAL_INFEASIBLE = 4
"""A certificate of dual infeasibility was found (the objective is unbounded below)."""

STATUS_NAMES = {
    UNSOLVED: "unsolved",
    SOLVED: "solved",
    MAX_ITER_REACHED: "max_iter_reached",
    PRIMAL_INFEASIBLE: "primal_infeasible",
    DUAL_INFEASIBLE: "dual_infeasible",
}

INF_BOUND = 1e20
"""Bounds with magnitude >= INF_BOUND (or +-inf) are treated as absent."""


class QPInputError(MjxbotError, ValueError):
    """The QP data is malformed (shapes, symmetry of P, l > u); raised before solving."""


@dataclasses.dataclass(frozen=True)
class QPSettings:
    """Solver settings. Frozen and hashable: passed as a static argument under `jit`.

    Attributes:
      eps_abs: absolute tolerance on the unscaled primal and dual residuals.
      eps_rel: relative tolerance (times the magnitude of the terms of each residual).
      max_iter: maximum number of ADMM iterations (data-dependent loop mode).
      rho: initial ADMM step size (inequality rows; equality rows use `rho * rho_eq_scale`).
      sigma: regularization of the x-update (keeps the reduced KKT matrix positive definite).
      alpha: over-relaxation parameter in (0, 2).
      scaling: number of modified-Ruiz equilibration iterations (0 disables scaling).
      warm_scaling: with a warm start (`init`), run this many Ruiz passes starting from
        the warm start's scaling (`QPSolution.D`, `E`, `c`) instead of `scaling` passes
        from none. Consecutive control QPs are alike, so the previous tick's scaling needs
        little refinement. None (default): every solve scales from scratch.
      warm_rho: with a warm start, continue from its rho (`init.rho`, default); False
        restarts from `rho`, as OSQP's warm start after a new setup does. A converged rho
        can be far from what the next, perturbed problem needs (docs/qp.md).
      adaptive_rho: whether to adapt rho from the ratio of the residuals.
      adaptive_rho_interval: iterations between rho updates; a multiple of `check_interval`.
        The KKT matrix is refactorized at most once per interval.
      adaptive_rho_tolerance: refactorize only if the new rho differs by more than this factor.
      check_interval: iterations between termination / infeasibility checks.
      fixed_iterations: if > 0, run exactly this many iterations with no data-dependent loop
        (status is then SOLVED or MAX_ITER_REACHED / infeasible from the final check).
      scheduled_refactorization: with `fixed_iterations`, refactorize at every rho update
        (every `adaptive_rho_interval` iterations) whatever rho's change, instead of only
        when it moved by more than `adaptive_rho_tolerance`. The solve then has no
        data-dependent control flow at all (no `lax.cond`, no `while_loop`), so a vmapped
        batch on an accelerator runs without the device-to-host copy of a conditional's
        predicate; the price is a factorization per interval.
      check_dualgap: also require the unscaled duality gap `|x'Px + q'x + S(y)|` to be
        below `eps_abs + eps_rel * max(|x'Px|, |q'x|, |S(y)|)` (as OSQP >= 1.0 does by
        default): the residual tests alone can pass with a poor objective when `||q||`
        is large (e.g. Maros-Meszaros DUALC2). None (default): on for float64, off for
        float32, where `S(y)` is a sum of large, cancelling terms whose rounding error
        exceeds `eps_rel * |S(y)|` (measured: warm-started float32 WBC QPs went from a
        median of 10 to 130 iterations and 98% to 92% SOLVED with the check on).
      eps_prim_inf: tolerance of the primal infeasibility certificate.
      eps_dual_inf: tolerance of the dual infeasibility certificate.
      polish: refine a SOLVED solution by solving the KKT system on the guessed active set.
      polish_delta: regularization of the polishing KKT system.
      polish_refine_iter: iterative-refinement steps in polishing.
      rho_min: smallest rho (also used on free rows, with both bounds infinite).
      rho_max: largest rho.
      rho_eq_scale: ratio of the equality-row rho to the inequality-row rho.
      kkt_solver: "inverse" (default): after each Cholesky factorization form K^-1 once and
        apply it as a mat-vec; "cholesky": two triangular solves per iteration.
      unroll: unroll factor of the ADMM steps between checks (compile time vs. loop
        overhead); >= check_interval - 1 (the default) makes them straight-line code: on
        XLA:CPU each loop trip costs about as much as one step at n = 60.
    """

    eps_abs: float = 1e-3
    eps_rel: float = 1e-3
    max_iter: int = 4000
    rho: float = 0.1
    sigma: float = 1e-6
    alpha: float = 1.6
    scaling: int = 10
    warm_scaling: int | None = None
    warm_rho: bool = True
    adaptive_rho: bool = True
    adaptive_rho_interval: int = 50
    adaptive_rho_tolerance: float = 5.0
    check_interval: int = 10
    fixed_iterations: int = 0
    scheduled_refactorization: bool = False
    check_dualgap: bool | None = None
    eps_prim_inf: float = 1e-4
    eps_dual_inf: float = 1e-4
    polish: bool = False
    polish_delta: float = 1e-6
    polish_refine_iter: int = 3
    rho_min: float = 1e-6
    rho_max: float = 1e6
    rho_eq_scale: float = 1e3
    kkt_solver: str = "inverse"
    unroll: int = 10

    def __post_init__(self):
        if self.check_interval < 1:
            raise QPInputError(f"check_interval must be >= 1, got {self.check_interval}")
        if self.adaptive_rho_interval < 1 or self.adaptive_rho_interval % self.check_interval:
            raise QPInputError(
                f"adaptive_rho_interval ({self.adaptive_rho_interval}) must be a positive "
                f"multiple of check_interval ({self.check_interval})"
            )
        if not 0.0 < self.alpha < 2.0:
            raise QPInputError(f"alpha must lie in (0, 2), got {self.alpha}")
        if self.rho <= 0 or self.sigma <= 0:
            raise QPInputError(f"rho and sigma must be positive, got {self.rho}, {self.sigma}")
        if self.max_iter < 1 or self.fixed_iterations < 0:
            raise QPInputError("max_iter must be >= 1 and fixed_iterations >= 0")
        if self.scheduled_refactorization and self.fixed_iterations == 0:
            raise QPInputError("scheduled_refactorization needs fixed_iterations > 0")
        if self.kkt_solver not in ("inverse", "cholesky"):
            raise QPInputError(
                f"kkt_solver must be 'inverse' or 'cholesky', got {self.kkt_solver!r}"
            )
        if self.unroll < 1:
            raise QPInputError(f"unroll must be >= 1, got {self.unroll}")
        if self.adaptive_rho_tolerance < 1.0:
            raise QPInputError("adaptive_rho_tolerance must be >= 1")
        if self.warm_scaling is not None and self.warm_scaling < 0:
            raise QPInputError(f"warm_scaling must be >= 0 or None, got {self.warm_scaling}")


@struct.dataclass
class QPSolution:
    """Result of `solve` (a pytree; batched along a leading axis under `vmap`).

    Attributes:
      x: [n] primal solution.
      y: [m] constraint duals (negative on active lower bounds, positive on upper bounds).
      z: [m] projected constraint values, `z = clip(A x, l, u)` at convergence.
      status: int32 status code (SOLVED, MAX_ITER_REACHED, PRIMAL_INFEASIBLE,
        DUAL_INFEASIBLE).
      iterations: int32 number of ADMM iterations run.
      prim_res: unscaled primal residual `||A x - z||_inf`.
      dual_res: unscaled dual residual `||P x + q + A' y||_inf`.
      obj_val: objective `0.5 x'Px + q'x` at `x`.
      rho: final scalar step size (reused by a warm start).
      polished: whether the polished solution was accepted.
      refactorizations: number of KKT refactorizations triggered by rho updates.
      D: [n] Ruiz variable scaling the solve used.
      E: [m] Ruiz constraint scaling the solve used.
      c: cost scaling the solve used (with `D`, `E` the start of the next solve's
        scaling under `QPSettings.warm_scaling`).
    """

    x: jax.Array
    y: jax.Array
    z: jax.Array
    status: jax.Array
    iterations: jax.Array
    prim_res: jax.Array
    dual_res: jax.Array
    obj_val: jax.Array
    rho: jax.Array
    polished: jax.Array
    refactorizations: jax.Array
    D: jax.Array
    E: jax.Array
    c: jax.Array
