"""`solve`: an OSQP-style ADMM QP solver in JAX with a dense, cached Cholesky factor.

Loop structure (see docs/qp.md): one flat while loop; each trip runs `check_interval` ADMM
steps as straight-line code, then a termination / infeasibility check, and every
`adaptive_rho_interval` iterations the rho update (refactorizing only if rho changed by more
than `adaptive_rho_tolerance`). Under `vmap` the refactorization runs for the batch only if
some problem needs it (`_refactor_fn`'s batching rule). `solve_batch` runs large batches as
a sequential loop over small chunks (see docs/qp.md, "Batching").
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from mjxbot.qp import admm
from mjxbot.qp.admm import Iterate, Residuals
from mjxbot.qp.polish import polish
from mjxbot.qp.scaling import Scaled, equilibrate
from mjxbot.qp.types import (
    INF_BOUND,
    SOLVED,
    UNSOLVED,
    QPInputError,
    QPSettings,
    QPSolution,
)


def _is_concrete(*arrays) -> bool:
    return not any(isinstance(a, jax.core.Tracer) for a in arrays)


def validate(P, q, A, l, u, init: QPSolution | None = None) -> None:
    """Checks the QP data; raises `QPInputError` with a one-line message if malformed.

    Shapes are always checked; values (symmetry of P, l <= u, NaNs) only on concrete
    arrays, so this is a no-op for values under `jit`/`vmap` tracing.

    Args:
      P: [n, n] cost matrix.
      q: [n] linear cost.
      A: [m, n] constraint matrix.
      l: [m] lower bounds.
      u: [m] upper bounds.
      init: optional warm start whose `x` and `D` must be [n], `y` and `E` [m].
    """
    shapes = {k: np.shape(v) for k, v in dict(P=P, q=q, A=A, l=l, u=u).items()}
    if len(shapes["q"]) != 1:
        raise QPInputError(f"q must be a vector of shape (n,), got shape {shapes['q']}")
    n = shapes["q"][0]
    if shapes["P"] != (n, n):
        raise QPInputError(f"P must have shape (n, n) = ({n}, {n}), got {shapes['P']}")
    if len(shapes["A"]) != 2 or shapes["A"][1] != n:
        raise QPInputError(f"A must have shape (m, {n}), got {shapes['A']}")
    m = shapes["A"][0]
    for k in ("l", "u"):
        if shapes[k] != (m,):
            raise QPInputError(f"{k} must have shape (m,) = ({m},), got {shapes[k]}")
    if init is not None:
        got = tuple(np.shape(v) for v in (init.x, init.y, init.D, init.E))
        if got != ((n,), (m,), (n,), (m,)):
            raise QPInputError(
                f"init must have x and D of shape ({n},), y and E of shape ({m},); "
                f"got x, y, D, E of shapes {got}"
            )
    if not _is_concrete(P, q, A, l, u):
        return
    P_np, q_np, A_np = np.asarray(P), np.asarray(q), np.asarray(A)
    l_np, u_np = np.asarray(l), np.asarray(u)
    for k, v in (("P", P_np), ("q", q_np), ("A", A_np)):
        if not np.all(np.isfinite(v)):
            raise QPInputError(f"{k} contains NaN or infinite entries")
    if np.any(np.isnan(l_np)) or np.any(np.isnan(u_np)):
        raise QPInputError("l or u contains NaN")
    if n:
        scale = max(1.0, float(np.max(np.abs(P_np))))
        asym = float(np.max(np.abs(P_np - P_np.T)))
        tol = float(np.sqrt(np.finfo(np.result_type(P_np.dtype, np.float32)).eps)) * scale
        if asym > tol:
            raise QPInputError(f"P is not symmetric: max |P - P'| = {asym:.3g} > {tol:.3g}")
    bad = np.flatnonzero(l_np > u_np)
    if bad.size:
        i = int(bad[0])
        raise QPInputError(
            f"l > u in {bad.size} row(s), first row {i}: l={l_np[i]:.6g} > u={u_np[i]:.6g}"
        )


def _run_steps(data: Scaled, L, rho_vec, it: Iterate, num: int, settings: QPSettings):
    """Runs `num` >= 1 ADMM steps; returns the last iterate and its (dx, dy) step.

    The first `num - 1` steps are a `fori_loop` unrolled `settings.unroll` times, or
    straight-line code if that covers them all: each trip of an XLA:CPU loop costs about
    as much as one ADMM step at n = 60 (docs/qp.md).
    """

    def body(_, it):
        return admm.step(data, L, rho_vec, it, settings)

    if num > 1:
        unroll = True if settings.unroll >= num - 1 else settings.unroll
        it = jax.lax.fori_loop(0, num - 1, body, it, unroll=unroll)
    new = admm.step(data, L, rho_vec, it, settings)
    return new, new.x - it.x, new.y - it.y


def _factor_at(rho, P, A, l, u, settings: QPSettings):
    """`(rho_vec, L)`: the per-row rho of step size `rho` and the KKT factor it gives."""
    rho_vec = admm.rho_vector(rho, l, u, settings)
    return rho_vec, admm.factor(P, A, rho_vec, settings)


@functools.cache
def _refactor_fn(settings: QPSettings):
    """`(need, new_rho, rho, rho_vec, F, P, A, l, u) -> (rho, rho_vec, F)` for one problem.

    Unbatched it is a `lax.cond` (refactorize only if `need`). Under `vmap` a plain `cond`
    with a batched predicate would become a select, i.e. *every* problem would be
    refactorized at *every* rho check. The custom batching rule instead refactorizes the
    whole batch only if *any* problem needs it (one batched factorization, then a
    per-problem select), and skips the work entirely otherwise.
    """

    def one(need, new_rho, rho, rho_vec, F, P, A, l, u):
        def yes(_):
            return new_rho, *_factor_at(new_rho, P, A, l, u, settings)

        return jax.lax.cond(need, yes, lambda _: (rho, rho_vec, F), None)

    f = jax.custom_batching.custom_vmap(one)

    @f.def_vmap
    def _rule(axis_size, in_batched, need, new_rho, rho, rho_vec, F, P, A, l, u):
        args = (need, new_rho, rho, rho_vec, F, P, A, l, u)
        args = [
            a if b else jnp.broadcast_to(a, (axis_size,) + jnp.shape(a))
            for a, b in zip(args, in_batched, strict=True)
        ]
        need, new_rho, rho, rho_vec, F, P, A, l, u = args

        def yes(_):
            refactor = functools.partial(_factor_at, settings=settings)
            rv, F_new = jax.vmap(refactor)(new_rho, P, A, l, u)
            sel = jax.vmap(lambda c, a, b: jnp.where(c, a, b))
            return sel(need, new_rho, rho), sel(need, rv, rho_vec), sel(need, F_new, F)

        out = jax.lax.cond(jnp.any(need), yes, lambda _: (rho, rho_vec, F), None)
        return out, (True, True, True)

    return f


def _update_rho(data: Scaled, rho, rho_vec, L, res: Residuals, allowed, settings: QPSettings):
    """Adapts rho; refactorizes only on a change beyond the tolerance (see `_refactor_fn`),
    or at every call with `scheduled_refactorization`."""
    new_rho = admm.rho_estimate(rho, res, settings)
    if settings.scheduled_refactorization:
        scaled = (data.P, data.A, data.l, data.u)
        return new_rho, *_factor_at(new_rho, *scaled, settings), jnp.ones((), jnp.int32)
    tol = settings.adaptive_rho_tolerance
    need = allowed & ((new_rho > rho * tol) | (new_rho < rho / tol))
    rho, rho_vec, L = _refactor_fn(settings)(
        need, new_rho, rho, rho_vec, L, data.P, data.A, data.l, data.u
    )
    return rho, rho_vec, L, need.astype(jnp.int32)


def _solve_scaled(data: Scaled, it0: Iterate, rho0, settings: QPSettings):
    """ADMM loop on the scaled problem. Returns (iterate, residuals, status, iters, rho, nref).

    One flat `while_loop`: each trip runs `check_interval` steps and a check, and every
    `adaptive_rho_interval // check_interval`-th trip also the rho update. (A loop nest
    of rho chunks around check chunks cost ~4x more per check on XLA:CPU, see docs/qp.md.)
    """
    dtype = data.q.dtype
    rho = jnp.asarray(rho0, dtype)
    rho_vec, L = _factor_at(rho, data.P, data.A, data.l, data.u, settings)
    nref0 = jnp.zeros((), jnp.int32)
    interval = settings.adaptive_rho_interval
    adaptive = settings.adaptive_rho

    if settings.fixed_iterations > 0:
        total = settings.fixed_iterations
        chunks, rem = divmod(total, interval)

        def chunk(_, carry):
            it, _, _, rho, rho_vec, L, nref = carry
            it, dx, dy = _run_steps(data, L, rho_vec, it, interval, settings)
            if adaptive:
                res, _ = admm.check(data, it, dx, dy, False, settings)
                rho, rho_vec, L, did = _update_rho(data, rho, rho_vec, L, res, True, settings)
                nref = nref + did
            return it, dx, dy, rho, rho_vec, L, nref

        zero_dx, zero_dy = jnp.zeros_like(data.q), jnp.zeros_like(data.l)
        it, dx, dy, rho, rho_vec, L, nref = jax.lax.fori_loop(
            0, chunks, chunk, (it0, zero_dx, zero_dy, rho, rho_vec, L, nref0)
        )
        if rem:
            it, dx, dy = _run_steps(data, L, rho_vec, it, rem, settings)
        res, status = admm.check(data, it, dx, dy, True, settings)
        return it, res, status, jnp.asarray(total, jnp.int32), rho, nref

    def body(c):
        it, k, _, _, rho, rho_vec, L, nref = c
        it, dx, dy = _run_steps(data, L, rho_vec, it, settings.check_interval, settings)
        k = k + settings.check_interval
        res, status = admm.check(data, it, dx, dy, k >= settings.max_iter, settings)
        if adaptive:
            allowed = (status == UNSOLVED) & (k % interval == 0)
            rho, rho_vec, L, did = _update_rho(data, rho, rho_vec, L, res, allowed, settings)
            nref = nref + did
        return it, k, res, status, rho, rho_vec, L, nref

    # `res` is a placeholder until the first check (the loop always runs one).
    res0 = Residuals(*(jnp.zeros((), dtype) for _ in Residuals._fields))
    carry = (it0, jnp.zeros((), jnp.int32), res0, jnp.asarray(UNSOLVED, jnp.int32))
    carry = jax.lax.while_loop(lambda c: c[3] == UNSOLVED, body, carry + (rho, rho_vec, L, nref0))
    it, k, res, status, rho, _, _, nref = carry
    return it, res, status, k, rho, nref


def _prepare(P, q, A, l, u):
    """Casts to one float dtype, symmetrizes P and maps |bounds| >= INF_BOUND to +-inf."""
    dtype = jnp.result_type(P, q, A, l, u)
    if not jnp.issubdtype(dtype, jnp.floating):
        dtype = jnp.result_type(float)
    P, q, A, l, u = (jnp.asarray(a, dtype) for a in (P, q, A, l, u))
    P = 0.5 * (P + P.T)
    l = jnp.where(l <= -INF_BOUND, -jnp.inf, l)
    u = jnp.where(u >= INF_BOUND, jnp.inf, u)
    return P, q, A, l, u


def _solve_impl(P, q, A, l, u, init, settings: QPSettings) -> QPSolution:
    P, q, A, l, u = _prepare(P, q, A, l, u)
    dtype = q.dtype
    if init is None or settings.warm_scaling is None:
        data = equilibrate(P, q, A, l, u, settings.scaling)
    else:
        start = (init.D, init.E, init.c)
        data = equilibrate(P, q, A, l, u, settings.warm_scaling, start)
    if init is None:
        x0 = jnp.zeros_like(q)
        y0 = jnp.zeros_like(l)
        z0 = jnp.clip(jnp.zeros_like(l), data.l, data.u)
        rho0 = jnp.asarray(settings.rho, dtype)
    else:
        x0 = jnp.asarray(init.x, dtype) / data.D
        y0 = jnp.asarray(init.y, dtype) * data.c / data.E
        z0 = jnp.clip(data.A @ x0, data.l, data.u)
        rho0 = jnp.asarray(init.rho if settings.warm_rho else settings.rho, dtype)
        rho0 = jnp.clip(rho0, settings.rho_min, settings.rho_max)
    it, res, status, iters, rho, nref = _solve_scaled(data, Iterate(x0, z0, y0), rho0, settings)

    polished = jnp.asarray(False)
    if settings.polish:

        def do_polish(it):
            cand = polish(data, it, settings)
            zero_dx, zero_dy = jnp.zeros_like(cand.x), jnp.zeros_like(cand.y)
            prods = admm.products(data, cand, zero_dx, zero_dy)
            r = admm.residuals(data, cand, prods, settings)
            ok = (r.prim <= jnp.maximum(res.prim, 1e-3 * res.eps_prim)) & (
                r.dual <= jnp.maximum(res.dual, 1e-3 * res.eps_dual)
            )
            ok = ok & jnp.all(jnp.isfinite(cand.x)) & jnp.all(jnp.isfinite(cand.y))
            chosen = jax.tree.map(lambda a, b: jnp.where(ok, a, b), cand, it)
            r = jax.tree.map(lambda a, b: jnp.where(ok, a, b), r, res)
            return chosen, r, ok

        def skip(it):
            return it, res, jnp.asarray(False)

        it, res, polished = jax.lax.cond(status == SOLVED, do_polish, skip, it)

    x = data.D * it.x
    y = data.E * it.y / data.c
    z = it.z / data.E
    obj = 0.5 * x @ (P @ x) + q @ x
    return QPSolution(
        x=x,
        y=y,
        z=z,
        status=status,
        iterations=iters,
        prim_res=res.prim,
        dual_res=res.dual,
        obj_val=obj,
        rho=rho,
        polished=polished,
        refactorizations=nref,
        D=data.D,
        E=data.E,
        c=data.c,
    )


@functools.partial(jax.jit, static_argnames=("settings",))
def _solve_jit(P, q, A, l, u, init, settings):
    return _solve_impl(P, q, A, l, u, init, settings)


def solve(
    P: jax.Array,
    q: jax.Array,
    A: jax.Array,
    l: jax.Array,
    u: jax.Array,
    settings: QPSettings | None = None,
    init: QPSolution | None = None,
) -> QPSolution:
    """Solves `min 0.5 x'Px + q'x  s.t.  l <= Ax <= u` with OSQP-style ADMM.

    Works under `jit` and `vmap`; the dtype (float32 / float64) follows the inputs. Bounds
    of magnitude >= 1e20 (or infinite) are treated as absent.

    Args:
      P: [n, n] symmetric positive semidefinite cost matrix (dense).
      q: [n] linear cost.
      A: [m, n] constraint matrix (dense; m may be 0).
      l: [m] lower bounds.
      u: [m] upper bounds.
      settings: static solver settings (defaults to `QPSettings()`).
      init: warm start from a previous solution (its x, y and rho; with
        `settings.warm_scaling`, its scaling too).

    Returns:
      A `QPSolution`.

    Raises:
      QPInputError: on malformed input (checked before solving; value checks only on
        concrete, i.e. untraced, arrays).
    """
    settings = QPSettings() if settings is None else settings
    validate(P, q, A, l, u, init)
    return _solve_jit(P, q, A, l, u, init, settings)


@functools.partial(jax.jit, static_argnames=("settings", "chunk_size"))
def _solve_batch_jit(P, q, A, l, u, init, settings, chunk_size):
    def one(args):
        return _solve_impl(*args, settings)

    # chunk_size 1: a plain sequential map (a size-1 vmap would batch every op for nothing).
    batch_size = chunk_size if chunk_size > 1 else None
    return jax.lax.map(one, (P, q, A, l, u, init), batch_size=batch_size)


def solve_batch(
    P: jax.Array,
    q: jax.Array,
    A: jax.Array,
    l: jax.Array,
    u: jax.Array,
    settings: QPSettings | None = None,
    init: QPSolution | None = None,
    chunk_size: int = 2,
) -> QPSolution:
    """Solves a batch of QPs (leading axis) in chunks of `chunk_size` problems.

    Equivalent to `jax.vmap(solve)` (same per-problem results), but runs the batch as a
    sequential loop over chunks, each chunk a `vmap` of the full solver. Two effects make
    this several times faster than one big `vmap` on CPU (see docs/qp.md, "Batching"):
    a chunk's matrices stay in cache across all its ADMM iterations (a big `vmap` streams
    every problem's `K^-1` and `A` from memory at every iteration), and a chunk runs only
    until *its* slowest problem has converged.

    Args:
      P, q, A, l, u: the problem data of `solve` with a leading batch axis.
      settings: static solver settings (defaults to `QPSettings()`).
      init: batched warm start (a batched `QPSolution`), or None.
      chunk_size: problems per chunk (static); 1-4 suits CPUs (2 measured fastest at
        n = 60, docs/qp.md), use `jax.vmap(solve)` on accelerators.

    Returns:
      A batched `QPSolution`.
    """
    settings = QPSettings() if settings is None else settings
    if chunk_size < 1:
        raise QPInputError(f"chunk_size must be >= 1, got {chunk_size}")
    if np.ndim(q) != 2:
        raise QPInputError(f"q must have shape (batch, n), got {np.shape(q)}")
    batch = np.shape(q)[0]
    for k, v in dict(P=P, A=A, l=l, u=u).items():
        if np.ndim(v) < 1 or np.shape(v)[0] != batch:
            raise QPInputError(f"{k} must have leading batch axis {batch}, got {np.shape(v)}")
    if batch == 0:
        raise QPInputError("empty batch")
    first = jax.tree.map(lambda a: a[0], init) if init is not None else None
    validate(P[0], q[0], A[0], l[0], u[0], first)
    return _solve_batch_jit(P, q, A, l, u, init, settings, min(chunk_size, batch))
