"""Modified Ruiz equilibration of the QP data (after Stellato et al., OSQP, 2020, Sec. 5.1).

The scaled problem has `P_s = c D P D`, `q_s = c D q`, `A_s = E A D`, `l_s = E l`,
`u_s = E u`, with diagonal `D` (n) and `E` (m) and a cost scale `c`. Its solution maps back
as `x = D x_s`, `y = E y_s / c`, `z = z_s / E`.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

MIN_SCALING = 1e-4
MAX_SCALING = 1e4


class Scaled(NamedTuple):
    """Scaled problem data and the scaling that produced it.

    Attributes:
      P: [n, n] scaled cost matrix.
      q: [n] scaled linear cost.
      A: [m, n] scaled constraint matrix.
      l: [m] scaled lower bounds (-inf where absent).
      u: [m] scaled upper bounds (+inf where absent).
      D: [n] variable scaling.
      E: [m] constraint scaling.
      c: [] cost scaling.
    """

    P: jax.Array
    q: jax.Array
    A: jax.Array
    l: jax.Array
    u: jax.Array
    D: jax.Array
    E: jax.Array
    c: jax.Array


def _limit(v: jax.Array) -> jax.Array:
    """Guards norms used as scaling divisors: tiny -> 1, huge -> MAX_SCALING."""
    v = jnp.where(v < MIN_SCALING, 1.0, v)
    return jnp.minimum(v, MAX_SCALING)


def _col_max(M: jax.Array) -> jax.Array:
    """[k] maximum of each column of an [r, k] matrix with entries >= 0 (0 when r == 0).

    A tree of elementwise maxima over row halves, which XLA:CPU fuses into one vectorized
    kernel: measured ~2x faster than `jnp.max(M, axis=0)` and ~4x faster than a reduction
    over the contiguous axis at the sizes of control QPs (docs/qp.md).
    """
    if M.shape[0] == 0:
        return jnp.zeros(M.shape[1], M.dtype)
    while M.shape[0] > 1:
        half = M.shape[0] // 2
        top = jnp.maximum(M[:half], M[half : 2 * half])
        M = top if M.shape[0] % 2 == 0 else jnp.concatenate([top, M[2 * half :]])
    return M[0]


def _start_scaling(start, n: int, m: int, dtype) -> tuple[jax.Array, jax.Array, jax.Array]:
    """`(D, E, c)` to start the passes from: ones, or `start` with entries that are not
    finite and positive (a diverged warm start) replaced by 1."""
    if start is None:
        return jnp.ones(n, dtype), jnp.ones(m, dtype), jnp.ones((), dtype)

    def sane(v):
        v = jnp.asarray(v, dtype)
        return jnp.where(jnp.isfinite(v) & (v > 0), v, 1.0)

    D, E, c = start
    return sane(D), sane(E), sane(c)


def equilibrate(
    P: jax.Array,
    q: jax.Array,
    A: jax.Array,
    l: jax.Array,
    u: jax.Array,
    iterations: int,
    start: tuple[jax.Array, jax.Array, jax.Array] | None = None,
) -> Scaled:
    """Scales the data so that the KKT matrix has columns of similar infinity norm.

    Same arithmetic as scaling the matrices in place at every pass, but the passes only
    update the vectors `D`, `E` and the scalar `c`: the column / row norms of the currently
    scaled matrices are `max_i |P_ij| D_i * D_j * c` etc., so each pass is a few fused
    reductions over `|P|` and `|A|`, and `P`, `A` are scaled once at the end. The passes are
    unrolled (static Python loop): no XLA while loop, and XLA fuses across passes.

    Cost scaling follows OSQP: `c <- c / limit(max(mean_j ||P_s[:, j]||_inf,
    limit(||q_s||_inf)))`, where `limit` maps norms below MIN_SCALING to 1 and caps them at
    MAX_SCALING. (Limiting `||q||` *before* the max matters: with a tiny `q` the mean column
    norm of P alone would otherwise set the cost scale.)

    Args:
      P: [n, n] symmetric PSD cost matrix.
      q: [n] linear cost.
      A: [m, n] constraint matrix.
      l: [m] lower bounds (may contain -inf).
      u: [m] upper bounds (may contain +inf).
      iterations: number of Ruiz iterations (static); 0 applies the starting scaling
        (none without `start`).
      start: `(D [n], E [m], c [])` to start the passes from instead of ones: the scaling
        of a previous, similar problem (a warm-started control loop), which the passes
        then only refine.

    Returns:
      The scaled data and scaling vectors.
    """
    n, m = q.shape[0], l.shape[0]
    dtype = q.dtype
    D, E, c = _start_scaling(start, n, m, dtype)
    if iterations <= 0 and start is None:
        return Scaled(P=P, q=q, A=A, l=l, u=u, D=D, E=E, c=c)
    # Row norms of A are column norms of A' (all reductions are `_col_max`).
    abs_P, abs_A, abs_At, abs_q = jnp.abs(P), jnp.abs(A), jnp.abs(A.T), jnp.abs(q)

    def p_col_norms(D):  # column norms of D |P| D, before the cost factor
        return D * _col_max(abs_P * D[:, None])

    p_cols = _col_max(abs_P) if start is None else p_col_norms(D)
    for _ in range(iterations):
        a_cols = D * _col_max(abs_A * E[:, None])
        a_rows = E * _col_max(abs_At * D[:, None])
        d = jax.lax.rsqrt(_limit(jnp.maximum(c * p_cols, a_cols)))
        e = jax.lax.rsqrt(_limit(a_rows))
        D, E = D * d, E * e
        p_cols = p_col_norms(D)
        mean_p = c * jnp.mean(p_cols) if n else jnp.zeros((), dtype)
        q_norm = _limit(c * jnp.max(D * abs_q, initial=0.0))
        c = c / _limit(jnp.maximum(mean_p, q_norm))
    P = (c * D[:, None]) * P * D[None, :]
    A = E[:, None] * A * D[None, :]
    return Scaled(P=P, q=c * D * q, A=A, l=E * l, u=E * u, D=D, E=E, c=c)
