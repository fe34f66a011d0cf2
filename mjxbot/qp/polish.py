"""Solution polishing on the guessed active set (after OSQP, Sec. 4).

With fixed shapes (needed under `jit`/`vmap`) the active set is a mask instead of a row
selection: inactive rows get the trivial equation `-y_i = 0` so the system keeps size n + m.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy.linalg import lu_factor, lu_solve

from mjxbot.qp.admm import Iterate
from mjxbot.qp.scaling import Scaled
from mjxbot.qp.types import QPSettings


def polish(data: Scaled, it: Iterate, settings: QPSettings) -> Iterate:
    """Solves the equality-constrained QP on the active set guessed from an ADMM iterate.

    Lower-active rows are those with `z - l < -y`, upper-active ones `u - z < y`. The KKT
    system `[[P, A_act'], [A_act, 0]] [x; y] = [-q; b_act]` is solved with a `polish_delta`
    regularization and `polish_refine_iter` iterative-refinement steps against the
    unregularized matrix.

    Args:
      data: scaled problem.
      it: ADMM iterate (scaled space) whose active set is used.
      settings: solver settings.

    Returns:
      The polished iterate (scaled space): `z = clip(A x, l, u)` and duals projected onto
      the sign each active bound allows.
    """
    n = data.q.shape[0]
    dtype = data.q.dtype
    delta = settings.polish_delta
    low = (it.z - data.l < -it.y) & jnp.isfinite(data.l)
    upp = (data.u - it.z < it.y) & jnp.isfinite(data.u)
    act = low | upp
    b = jnp.where(upp, data.u, jnp.where(low, data.l, 0.0))
    A_act = jnp.where(act[:, None], data.A, 0.0)
    inactive = jnp.where(act, 0.0, 1.0).astype(dtype)

    def kkt(reg_x, reg_y):
        top = jnp.concatenate([data.P + reg_x * jnp.eye(n, dtype=dtype), A_act.T], axis=1)
        bot = jnp.concatenate([A_act, -jnp.diag(inactive + reg_y * (1.0 - inactive))], axis=1)
        return jnp.concatenate([top, bot], axis=0)

    K_reg = kkt(delta, delta)
    K = kkt(0.0, 0.0)
    rhs = jnp.concatenate([-data.q, b])
    lu = lu_factor(K_reg)
    sol = lu_solve(lu, rhs)

    def refine(_, s):
        return s + lu_solve(lu, rhs - K @ s)

    sol = jax.lax.fori_loop(0, settings.polish_refine_iter, refine, sol)
    x = sol[:n]
    y = jnp.where(act, sol[n:], 0.0)
    y = jnp.where(low & ~upp, jnp.minimum(y, 0.0), y)
    y = jnp.where(upp & ~low, jnp.maximum(y, 0.0), y)
    z = jnp.clip(data.A @ x, data.l, data.u)
    return Iterate(x, z, y)
