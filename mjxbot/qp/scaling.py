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


def _col_inf_norm(M: jax.Array) -> jax.Array:
    """[n] infinity norm of each column of an [k, n] matrix (0 when k == 0)."""
    return jnp.max(jnp.abs(M), axis=0, initial=0.0)


def equilibrate(
    P: jax.Array, q: jax.Array, A: jax.Array, l: jax.Array, u: jax.Array, iterations: int
) -> Scaled:
    """Scales the data so that the KKT matrix has columns of similar infinity norm.

    Args:
      P: [n, n] symmetric PSD cost matrix.
      q: [n] linear cost.
      A: [m, n] constraint matrix.
      l: [m] lower bounds (may contain -inf).
      u: [m] upper bounds (may contain +inf).
      iterations: number of Ruiz iterations (static); 0 returns the data unscaled.

    Returns:
      The scaled data and scaling vectors.
    """
    n, m = q.shape[0], l.shape[0]
    dtype = q.dtype
    D = jnp.ones(n, dtype)
    E = jnp.ones(m, dtype)
    c = jnp.ones((), dtype)

    def body(_, carry):
        P, q, A, D, E, c = carry
        d = 1.0 / jnp.sqrt(_limit(jnp.maximum(_col_inf_norm(P), _col_inf_norm(A))))
        e = 1.0 / jnp.sqrt(_limit(jnp.max(jnp.abs(A), axis=1, initial=0.0)))
        P = d[:, None] * P * d[None, :]
        A = e[:, None] * A * d[None, :]
        q = d * q
        D, E = D * d, E * e
        cost = jnp.maximum(jnp.mean(_col_inf_norm(P)), jnp.max(jnp.abs(q), initial=0.0))
        gamma = 1.0 / _limit(cost)
        return P * gamma, q * gamma, A, D, E, c * gamma

    if iterations > 0:
        P, q, A, D, E, c = jax.lax.fori_loop(0, iterations, body, (P, q, A, D, E, c))
    return Scaled(P=P, q=q, A=A, l=E * l, u=E * u, D=D, E=E, c=c)
