"""ADMM building blocks (after Stellato et al., OSQP, 2020), as small pure functions.

All functions work on the *scaled* problem (see `scaling.Scaled`). The x-update solves
the reduced KKT system `(P + sigma I + A' R A) x = sigma x_k - q + A' (R z_k - y_k)`,
`R = diag(rho_vec)`, with a dense Cholesky factor kept across iterations.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.linalg import cho_factor, cho_solve

from mjxbot.qp.scaling import Scaled
from mjxbot.qp.types import (
    DUAL_INFEASIBLE,
    MAX_ITER_REACHED,
    PRIMAL_INFEASIBLE,
    SOLVED,
    UNSOLVED,
    QPSettings,
)

RHO_EQ_TOL = 1e-4  # rows with u - l below this (scaled) are equality rows
_TINY = 1e-30


def norms_inf(*vectors: jax.Array) -> tuple[jax.Array, ...]:
    """Infinity norms of equally long vectors in one reduction (one XLA kernel, not k).

    Args:
      *vectors: k vectors of the same length [l] (l may be 0).

    Returns:
      k scalars.
    """
    norms = jnp.max(jnp.abs(jnp.stack(vectors, axis=1)), axis=0, initial=0.0)
    return tuple(norms)


def rho_vector(rho: jax.Array, l: jax.Array, u: jax.Array, settings: QPSettings) -> jax.Array:
    """Per-row step sizes.

    Args:
      rho: [] scalar step size.
      l: [m] scaled lower bounds.
      u: [m] scaled upper bounds.
      settings: solver settings.

    Returns:
      [m] rho_min on free rows, `rho * rho_eq_scale` on equality rows, rho elsewhere.
    """
    free = jnp.isinf(l) & jnp.isinf(u)
    eq = (u - l) < RHO_EQ_TOL
    rv = jnp.where(eq, rho * settings.rho_eq_scale, rho)
    return jnp.where(free, settings.rho_min, rv).astype(l.dtype)


def factor(P: jax.Array, A: jax.Array, rho_vec: jax.Array, settings: QPSettings) -> jax.Array:
    """Factorizes the reduced KKT matrix `K = P + sigma I + A' diag(rho_vec) A` (Cholesky).

    Args:
      P: [n, n] scaled cost matrix.
      A: [m, n] scaled constraint matrix.
      rho_vec: [m] per-row step sizes.
      settings: solver settings (sigma, kkt_solver).

    Returns:
      [n, n] lower Cholesky factor of K (`kkt_solver="cholesky"`), or K^-1 formed from that
      factor (`kkt_solver="inverse"`: one mat-vec per iteration instead of two triangular
      solves, several times faster on CPU for n <= a few hundred).
    """
    n = P.shape[0]
    K = P + settings.sigma * jnp.eye(n, dtype=P.dtype) + (A.T * rho_vec) @ A
    L = cho_factor(K, lower=True)[0]
    if settings.kkt_solver == "inverse":
        L_inv = lower_triangular_inverse(L)
        return L_inv.T @ L_inv
    return L


_TRI_LEAF = 8  # diagonal-block size solved by substitution in `lower_triangular_inverse`


def _diag_blocks(M: jax.Array, size: int) -> jax.Array:
    """[N / size, size, size] diagonal blocks of an [N, N] matrix."""
    k = M.shape[0] // size
    idx = jnp.arange(k)
    return M.reshape(k, size, k, size)[idx, :, idx, :]


def lower_triangular_inverse(L: jax.Array) -> jax.Array:
    """Inverse of a lower-triangular matrix by blocked recursive doubling.

    `L` is padded with an identity block to `N = 8 * 2^k >= n`; the 8 x 8 diagonal blocks are
    inverted together by (8-step, batched) forward substitution, then pairs of inverted
    blocks are merged level by level, `[[X1, 0], [-X2 L21 X1, X2]]`, with batched matmuls.
    That is ~30 XLA ops for n = 60 instead of an n-step loop, and it batches well under
    `vmap`. (XLA:CPU's triangular solve with a matrix right-hand side was measured at
    ~8 ms for n = 60 on a loaded 2-core machine; see docs/qp.md.)

    Args:
      L: [n, n] nonsingular lower-triangular matrix.

    Returns:
      [n, n] L^-1 (lower triangular).
    """
    n = L.shape[0]
    if n == 0:
        return L
    levels = max(0, int(np.ceil(np.log2(max(n, 1) / _TRI_LEAF))))
    N = _TRI_LEAF * 2**levels
    if n < N:
        L = jnp.pad(L, ((0, N - n), (0, N - n))) + jnp.diag(
            jnp.concatenate([jnp.zeros(n, L.dtype), jnp.ones(N - n, L.dtype)])
        )
    blocks = _diag_blocks(L, _TRI_LEAF)  # [k, 8, 8]
    eye = jnp.eye(_TRI_LEAF, dtype=L.dtype)
    X = jnp.zeros_like(blocks)
    for i in range(_TRI_LEAF):
        row = (eye[i] - jnp.einsum("bk,bkj->bj", blocks[:, i], X)) / blocks[:, i, i, None]
        X = X.at[:, i].set(row)
    size = _TRI_LEAF
    while size < N:
        pairs = _diag_blocks(L, 2 * size)  # [k/2, 2s, 2s]
        L21 = pairs[:, size:, :size]
        X1, X2 = X[0::2], X[1::2]
        X21 = -jnp.einsum("bij,bjk,bkl->bil", X2, L21, X1)
        top = jnp.concatenate([X1, jnp.zeros_like(X1)], axis=2)
        bot = jnp.concatenate([X21, X2], axis=2)
        X = jnp.concatenate([top, bot], axis=1)
        size *= 2
    return X[0, :n, :n]


def kkt_solve(F: jax.Array, rhs: jax.Array, settings: QPSettings) -> jax.Array:
    """Solves `K x = rhs` with the output of `factor`.

    Args:
      F: [n, n] Cholesky factor or inverse of K.
      rhs: [n] right-hand side.
      settings: solver settings (kkt_solver).

    Returns:
      [n] solution.
    """
    if settings.kkt_solver == "inverse":
        return F @ rhs
    return cho_solve((F, True), rhs)


class Iterate(NamedTuple):
    """ADMM iterate in scaled space: x [n], z [m], y [m]."""

    x: jax.Array
    z: jax.Array
    y: jax.Array


def step(
    data: Scaled, L: jax.Array, rho_vec: jax.Array, it: Iterate, settings: QPSettings
) -> Iterate:
    """One over-relaxed ADMM iteration.

    Args:
      data: scaled problem.
      L: [n, n] output of `factor`.
      rho_vec: [m] step sizes used in `L`.
      it: current iterate.
      settings: solver settings (sigma, alpha).

    Returns:
      The next iterate.
    """
    sigma, alpha = settings.sigma, settings.alpha
    rhs = sigma * it.x - data.q + data.A.T @ (rho_vec * it.z - it.y)
    x_t = kkt_solve(L, rhs, settings)
    z_t = data.A @ x_t
    x = alpha * x_t + (1.0 - alpha) * it.x
    z_h = alpha * z_t + (1.0 - alpha) * it.z
    z = jnp.clip(z_h + it.y / rho_vec, data.l, data.u)
    y = it.y + rho_vec * (z_h - z)
    return Iterate(x, z, y)


class Products(NamedTuple):
    """The matrix-vector products a termination check needs (scaled space).

    Attributes:
      Ax: [m] `A x`.
      Px: [n] `P x`.
      Aty: [n] `A' y`.
      Adx: [m] `A dx` (dual infeasibility certificate).
      Pdx: [n] `P dx` (dual infeasibility certificate).
      Atdy: [n] `A' dy` (primal infeasibility certificate).
    """

    Ax: jax.Array
    Px: jax.Array
    Aty: jax.Array
    Adx: jax.Array
    Pdx: jax.Array
    Atdy: jax.Array


def products(data: Scaled, it: Iterate, dx: jax.Array, dy: jax.Array) -> Products:
    """All matrix-vector products of a check, computed once for residuals and certificates.

    (Stacking them into two matrix products, `[A; P] [x, dx]` and `[y, dy]' A`, saved a
    few us per check but changed the rounding enough to move tight-tolerance solves of the
    WBC tests onto a different rho history, so they are kept as separate mat-vecs.)

    Args:
      data: scaled problem.
      it: iterate.
      dx: [n] last primal step.
      dy: [m] last dual step.

    Returns:
      The products.
    """
    A, P = data.A, data.P
    return Products(A @ it.x, P @ it.x, A.T @ it.y, A @ dx, P @ dx, A.T @ dy)


class Residuals(NamedTuple):
    """Residuals of an iterate.

    Attributes:
      prim: unscaled primal residual `||A x - z||_inf`.
      dual: unscaled dual residual `||P x + q + A'y||_inf`.
      eps_prim: primal tolerance `eps_abs + eps_rel * max(||Ax||, ||z||)`.
      eps_dual: dual tolerance `eps_abs + eps_rel * max(||Px||, ||A'y||, ||q||)`.
      prim_ratio: scaled primal residual over its normalizer (for the rho update).
      dual_ratio: scaled dual residual over its normalizer (for the rho update).
      gap: unscaled duality gap `x'Px + q'x + S(y)`, `S(y) = u'max(y, 0) + l'min(y, 0)`
        (components of y that point at an absent bound are dropped).
      eps_gap: gap tolerance `eps_abs + eps_rel * max(|x'Px|, |q'x|, |S(y)|)`.
    """

    prim: jax.Array
    dual: jax.Array
    eps_prim: jax.Array
    eps_dual: jax.Array
    prim_ratio: jax.Array
    dual_ratio: jax.Array
    gap: jax.Array
    eps_gap: jax.Array


def residuals(data: Scaled, it: Iterate, prods: Products, settings: QPSettings) -> Residuals:
    """Unscaled residuals, their tolerances and the scaled ratios used to adapt rho.

    Args:
      data: scaled problem.
      it: iterate in scaled space.
      prods: `products` of `it` (only Ax, Px, Aty are used).
      settings: solver settings (eps_abs, eps_rel).

    Returns:
      The residuals.
    """
    Ax, Px, Aty = prods.Ax, prods.Px, prods.Aty
    e_inv, d_inv, c_inv = 1.0 / data.E, 1.0 / data.D, 1.0 / data.c
    r_p = Ax - it.z
    r_d = Px + data.q + Aty
    prim, ax_u, z_u, r_p_s, ax_s, z_s = norms_inf(
        e_inv * r_p, e_inv * Ax, e_inv * it.z, r_p, Ax, it.z
    )
    dual, px_u, aty_u, q_u, r_d_s, px_s, aty_s, q_s = norms_inf(
        d_inv * r_d, d_inv * Px, d_inv * Aty, d_inv * data.q, r_d, Px, Aty, data.q
    )
    dual = c_inv * dual
    eps_prim = settings.eps_abs + settings.eps_rel * jnp.maximum(ax_u, z_u)
    eps_dual = settings.eps_abs + settings.eps_rel * c_inv * jnp.maximum(
        jnp.maximum(px_u, aty_u), q_u
    )
    prim_ratio = r_p_s / (jnp.maximum(ax_s, z_s) + _TINY)
    dual_ratio = r_d_s / (jnp.maximum(jnp.maximum(px_s, aty_s), q_s) + _TINY)
    # Duality gap (invariant to D and E; scaled by c).
    y_up = jnp.where(jnp.isinf(data.u), 0.0, jnp.maximum(it.y, 0.0))
    y_lo = jnp.where(jnp.isinf(data.l), 0.0, jnp.minimum(it.y, 0.0))
    support = jnp.sum(jnp.where(y_up > 0, data.u, 0.0) * y_up) + jnp.sum(
        jnp.where(y_lo < 0, data.l, 0.0) * y_lo
    )
    xPx, qx = jnp.dot(it.x, Px), jnp.dot(data.q, it.x)
    gap = c_inv * jnp.abs(xPx + qx + support)
    gap_scale = c_inv * jnp.maximum(jnp.maximum(jnp.abs(xPx), jnp.abs(qx)), jnp.abs(support))
    eps_gap = settings.eps_abs + settings.eps_rel * gap_scale
    return Residuals(prim, dual, eps_prim, eps_dual, prim_ratio, dual_ratio, gap, eps_gap)


def certificate_dy(data: Scaled, dy: jax.Array) -> jax.Array:
    """`dy` without components that point against an absent bound.

    Such components cannot be part of a primal infeasibility certificate and would multiply
    an infinite bound.

    Args:
      data: scaled problem.
      dy: [m] difference of consecutive dual iterates.

    Returns:
      [m] the cleaned step (the `dy` that `products` and `primal_infeasible` take).
    """
    drop = (jnp.isinf(data.u) & (dy > 0)) | (jnp.isinf(data.l) & (dy < 0))
    return jnp.where(drop, 0.0, dy)


def primal_infeasible(data: Scaled, dy: jax.Array, Atdy: jax.Array, eps: float) -> jax.Array:
    """OSQP's primal infeasibility test on the dual step `dy` (scaled space).

    `dy` certifies infeasibility if `A' dy ~ 0` and `u' max(dy, 0) + l' min(dy, 0) < 0`
    (both tested on the unscaled data, relative to `||dy||`).

    Args:
      data: scaled problem.
      dy: [m] output of `certificate_dy`.
      Atdy: [n] `A' dy`.
      eps: tolerance `eps_prim_inf`.

    Returns:
      [] bool.
    """
    dy_u = data.E * dy
    (norm_dy,) = norms_inf(dy_u)
    (at_dy,) = norms_inf(Atdy / data.D)
    u_u = jnp.where(jnp.isinf(data.u), 0.0, data.u / data.E)
    l_u = jnp.where(jnp.isinf(data.l), 0.0, data.l / data.E)
    support = jnp.sum(u_u * jnp.maximum(dy_u, 0.0) + l_u * jnp.minimum(dy_u, 0.0))
    return (norm_dy > _TINY) & (at_dy <= eps * norm_dy) & (support <= -eps * norm_dy)


def dual_infeasible(
    data: Scaled, dx: jax.Array, Adx: jax.Array, Pdx: jax.Array, eps: float
) -> jax.Array:
    """OSQP's dual infeasibility (unboundedness) test on the primal step `dx` (scaled).

    `dx` certifies unboundedness if `P dx ~ 0`, `q' dx < 0` and `A dx` lies in the
    recession cone of [l, u] (all on the unscaled data, relative to `||dx||`).

    Args:
      data: scaled problem.
      dx: [n] difference of consecutive primal iterates.
      Adx: [m] `A dx`.
      Pdx: [n] `P dx`.
      eps: tolerance `eps_dual_inf`.

    Returns:
      [] bool.
    """
    dx_u = data.D * dx
    norm_dx, p_dx = norms_inf(dx_u, Pdx / data.D)
    tol = eps * norm_dx
    c_inv = 1.0 / data.c
    p_dx = c_inv * p_dx
    q_dx = c_inv * jnp.dot(data.q, dx)
    a_dx = Adx / data.E
    upper_ok = jnp.isinf(data.u) | (a_dx <= tol)
    lower_ok = jnp.isinf(data.l) | (a_dx >= -tol)
    cone_ok = jnp.all(upper_ok & lower_ok)
    return (norm_dx > _TINY) & (p_dx <= tol) & (q_dx <= -tol) & cone_ok


def classify(
    res: Residuals,
    data: Scaled,
    dx: jax.Array,
    dy: jax.Array,
    prods: Products,
    out_of_iterations: jax.Array,
    settings: QPSettings,
) -> jax.Array:
    """Status after a check: SOLVED, infeasible, MAX_ITER_REACHED or UNSOLVED (continue).

    Args:
      res: residuals of the current iterate.
      data: scaled problem.
      dx: [n] last primal step.
      dy: [m] last dual step, cleaned by `certificate_dy`.
      prods: `products` of the iterate and the steps.
      out_of_iterations: [] bool, whether the iteration budget is spent.
      settings: solver settings.

    Returns:
      [] int32 status code.
    """
    solved = (res.prim <= res.eps_prim) & (res.dual <= res.eps_dual)
    check_gap = settings.check_dualgap
    if check_gap is None:  # auto: float64 only (see QPSettings.check_dualgap)
        check_gap = jnp.finfo(data.q.dtype).bits >= 64
    if check_gap:
        solved = solved & (res.gap <= res.eps_gap)
    p_inf = primal_infeasible(data, dy, prods.Atdy, settings.eps_prim_inf)
    d_inf = dual_infeasible(data, dx, prods.Adx, prods.Pdx, settings.eps_dual_inf)
    status = jnp.where(out_of_iterations, MAX_ITER_REACHED, UNSOLVED)
    status = jnp.where(d_inf, DUAL_INFEASIBLE, status)
    status = jnp.where(p_inf, PRIMAL_INFEASIBLE, status)
    status = jnp.where(solved, SOLVED, status)
    return status.astype(jnp.int32)


def rho_estimate(rho: jax.Array, res: Residuals, settings: QPSettings) -> jax.Array:
    """OSQP's rho update `rho * sqrt(prim_ratio / dual_ratio)`, clipped to [rho_min, rho_max].

    Args:
      rho: [] current scalar rho.
      res: residuals of the current iterate.
      settings: solver settings.

    Returns:
      [] new scalar rho.
    """
    new = rho * jnp.sqrt(res.prim_ratio / (res.dual_ratio + _TINY))
    new = jnp.where(jnp.isfinite(new), new, rho)
    return jnp.clip(new, settings.rho_min, settings.rho_max)


def check(
    data: Scaled,
    it: Iterate,
    dx: jax.Array,
    dy: jax.Array,
    out_of_iterations: jax.Array,
    settings: QPSettings,
) -> tuple[Residuals, jax.Array]:
    """Residuals and status of an iterate whose last step was (dx, dy).

    Args:
      data: scaled problem.
      it: current iterate.
      dx: [n] last primal step.
      dy: [m] last dual step.
      out_of_iterations: [] bool, whether the iteration budget is spent.
      settings: solver settings.

    Returns:
      (residuals, [] int32 status code).
    """
    dy = certificate_dy(data, dy)
    prods = products(data, it, dx, dy)
    res = residuals(data, it, prods, settings)
    return res, classify(res, data, dx, dy, prods, out_of_iterations, settings)
