"""Benchmark of mjxbot.qp against OSQP C, jaxopt's BoxOSQP, qpax and DAQP (or quadprog).

Run:  JAX_PLATFORMS=cpu python benchmarks/bench_qp.py [--quick]

Sections (one table each, solvers side by side):
  1. success rate on whole-body-control (WBC) shaped QPs at eps 1e-3 / 1e-5 / 1e-7;
  2. median iterations at eps 1e-5;
  3. median and p99 wall-clock latency of one warm-started solve (warm start from the
     solution of the problem 5 % away), pooled over 10 problems per size, float64, eps
     1e-5; JAX solvers jitted (mjxbot.qp twice: its defaults, and one Ruiz pass from the
     warm start's scaling with rho restarted, `warm_scaling=1, warm_rho=False`, as OSQP
     C's warm start after a new setup); with the median process CPU time (all threads;
     less sensitive to other jobs on the machine) and the median iterations of the timed
     solves. OSQP C twice: setup (scaling, factorization)
     + solve, the whole-body case whose matrices change every tick, and with its
     factorization cached, the case where only vectors change;
  4. per-QP time when batched with vmap (JAX solvers) vs. sequential (C solvers), n = 60,
     with the same two OSQP C columns;
  5. success rate on the Maros-Meszaros subset in tests/data/maros_meszaros;
  6. (`heldout`, not in the default run) per-problem success on the 25 smallest
     Maros-Meszaros problems that tests/data does not hold (benchmarks/data/
     maros_meszaros_heldout), mjxbot.qp against OSQP C, eps 1e-6, max_iter 20,000,
     objective within 1e-4 (relative, at least absolute) of Clarabel's.

Success (sections 1-5) = the solver reports convergence AND |f - f*| <= sqrt(eps) *
max(1, |f*|), f* from Clarabel at 1e-10. Missing packages give a column of "n/a" and a note.
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import os
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import scipy.io  # noqa: E402
import scipy.sparse as sp  # noqa: E402

from mjxbot import qp  # noqa: E402

TOLS = (1e-3, 1e-5, 1e-7)
LAT_TOL = 1e-5
MAX_ITER = 4000
LAT_INSTANCES = 10  # problems per size in the latency table (seeds of `wbc_qp`)
WBC_SIZES = (30, 60, 100)
CHUNK = 2  # solve_batch chunk size (its default)
BIG = 1e20
MM_DIR = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "maros_meszaros")
MM_BUCKETS = ((16, 40), (16, 240), (104, 176), (328, 416))
HELDOUT_DIR = os.path.join(os.path.dirname(__file__), "data", "maros_meszaros_heldout")
HELDOUT_EPS = 1e-6
HELDOUT_MAX_ITER = 20_000
HELDOUT_OBJ_TOL = 1e-4
NOTES: list[str] = []


def _try_import(name):
    try:
        return __import__(name)
    except Exception as e:  # noqa: BLE001
        NOTES.append(f"{name}: not available ({type(e).__name__}); column skipped")
        return None


osqp = _try_import("osqp")
clarabel = _try_import("clarabel")
qpax = _try_import("qpax")
daqp = _try_import("daqp")
quadprog = None if daqp is not None else _try_import("quadprog")
try:
    import jaxopt
except Exception:  # noqa: BLE001
    jaxopt = None
    NOTES.append("jaxopt: not available; column skipped")

ACTIVE_SET = "daqp" if daqp is not None else ("quadprog" if quadprog is not None else None)
SOLVERS = ["mjxbot.qp", "OSQP C", "jaxopt BoxOSQP", "qpax", ACTIVE_SET or "active-set"]


# ----------------------------------------------------------------------------- problems


def wbc_qp(n_target, seed=0, perturb=0.0):
    """A WBC-shaped QP, x = [qdd, tau, f]: dynamics and contact equalities, friction pyramids,
    box bounds; tracking + regularization cost. Feasible by construction."""
    nv, nc = {30: (12, 4), 60: (24, 6), 100: (38, 10)}[n_target]
    nu = nv - 6
    rng = np.random.default_rng(seed)
    B = rng.standard_normal((nv, nv)) / np.sqrt(nv)
    M = B @ B.T + 0.5 * np.eye(nv)
    Jc = rng.standard_normal((3 * nc, nv))
    h = rng.standard_normal(nv) * 5.0
    Jdqd = rng.standard_normal(3 * nc) * 0.1
    nt = nv // 2
    Jt = rng.standard_normal((nt, nv))
    a_des = rng.standard_normal(nt) * 2.0
    n = nv + nu + 3 * nc
    S = np.zeros((nv, nu))
    S[6:, :] = np.eye(nu)
    A_dyn = np.hstack([M, -S, -Jc.T])
    A_con = np.hstack([Jc, np.zeros((3 * nc, nu + 3 * nc))])
    f0 = np.tile([0.0, 0.0, 1.0], nc) * rng.uniform(20, 200, 3 * nc)
    x0 = np.concatenate([rng.uniform(-5, 5, nv), rng.uniform(-20, 20, nu), f0])
    if perturb:
        prng = np.random.default_rng(seed + 10_000)
        h = h + perturb * prng.standard_normal(nv)
        a_des = a_des + perturb * prng.standard_normal(nt)
    b_dyn = A_dyn @ x0 + 0.1 * np.tanh(h)
    b_con = A_con @ x0 + Jdqd
    mu = 0.7
    F = []
    for c in range(nc):
        for sx, ax in ((1, 0), (-1, 0), (1, 1), (-1, 1)):
            row = np.zeros(n)
            row[nv + nu + 3 * c + ax] = sx
            row[nv + nu + 3 * c + 2] = -mu
            F.append(row)
    A = np.vstack([A_dyn, A_con, np.array(F), np.eye(n)])
    inf = np.inf
    lb = np.concatenate([-50 * np.ones(nv), -80 * np.ones(nu), np.tile([-inf, -inf, 0.0], nc)])
    ub = np.concatenate([50 * np.ones(nv), 80 * np.ones(nu), np.tile([inf, inf, 400.0], nc)])
    l = np.concatenate([b_dyn, b_con, -inf * np.ones(4 * nc), lb])
    u = np.concatenate([b_dyn, b_con, np.zeros(4 * nc), ub])
    W = np.concatenate([1e-3 * np.ones(nv), 1e-4 * np.ones(nu + 3 * nc)])
    P = np.pad(Jt.T @ Jt, ((0, n - nv), (0, n - nv))) + np.diag(W)
    q = np.concatenate([-Jt.T @ a_des, np.zeros(n - nv)])
    return P, q, A, l, u


def load_mm(directory=MM_DIR):
    out = {}
    for f in sorted(glob.glob(os.path.join(directory, "*.mat"))):
        d = scipy.io.loadmat(f)

        def dense(M):
            return M.toarray() if sp.issparse(M) else np.asarray(M, float)

        q, l, u = (np.asarray(d[k], float).ravel() for k in ("q", "l", "u"))
        out[os.path.splitext(os.path.basename(f))[0]] = (dense(d["P"]), q, dense(d["A"]), l, u)
    return out


def pad(P, q, A, l, u, n_pad, m_pad):
    n, m = len(q), len(l)
    P2 = np.zeros((n_pad, n_pad))
    P2[:n, :n] = P
    P2[range(n, n_pad), range(n, n_pad)] = 1.0
    A2 = np.zeros((m_pad, n_pad))
    A2[:m, :n] = A
    q2 = np.zeros(n_pad)
    q2[:n] = q
    l2, u2 = np.full(m_pad, -np.inf), np.full(m_pad, np.inf)
    l2[:m], u2[:m] = l, u
    return P2, q2, A2, l2, u2


def split_rows(A, l, u):
    """(A_eq, b_eq, G, h) with G x <= h for the finite one-sided parts."""
    l = np.where(l <= -BIG, -np.inf, l)
    u = np.where(u >= BIG, np.inf, u)
    eq = np.isfinite(l) & np.isfinite(u) & (np.abs(u - l) < 1e-12)
    up = np.isfinite(u) & ~eq
    lo = np.isfinite(l) & ~eq
    G = np.vstack([A[up], -A[lo]])
    h = np.concatenate([u[up], -l[lo]])
    return A[eq], l[eq], G, h


def reference(P, q, A, l, u):
    if clarabel is None:
        return None
    Ae, be, G, h = split_rows(A, l, u)
    n = len(q)
    M = sp.csc_matrix(np.vstack([Ae, G]).reshape(-1, n))
    cones = ([clarabel.ZeroConeT(len(be))] if len(be) else []) + (
        [clarabel.NonnegativeConeT(len(h))] if len(h) else []
    )
    s = clarabel.DefaultSettings()
    s.verbose = False
    s.tol_gap_abs = s.tol_gap_rel = s.tol_feas = 1e-10
    sol = clarabel.DefaultSolver(
        sp.csc_matrix(np.triu(P)), q, M, np.concatenate([be, h]), cones, s
    ).solve()
    if str(sol.status) not in ("Solved", "AlmostSolved"):
        return None
    x = np.array(sol.x)
    return 0.5 * x @ P @ x + q @ x


# ----------------------------------------------------------------------------- solver adapters
# Each adapter: make(P, q, A, l, u, tol) -> solve(warm) -> (x, ok, iters, warm_out).


def _mjx_settings(tol, **warm):
    return qp.QPSettings(eps_abs=tol, eps_rel=tol, max_iter=MAX_ITER, **warm)


_MJX_JIT = {}


def mjx_fn(tol, **warm):
    key = (tol, *sorted(warm.items()))
    if key not in _MJX_JIT:
        s = _mjx_settings(tol, **warm)
        _MJX_JIT[key] = (
            jax.jit(lambda P, q, A, l, u: qp.solve(P, q, A, l, u, s)),
            jax.jit(lambda P, q, A, l, u, init: qp.solve(P, q, A, l, u, s, init)),
        )
    return _MJX_JIT[key]


def make_mjx(P, q, A, l, u, tol, **warm_settings):
    cold, warm = mjx_fn(tol, **warm_settings)
    args = [jnp.asarray(a) for a in (P, q, A, l, u)]

    def run(init=None):
        s = cold(*args) if init is None else warm(*args, init)
        s.x.block_until_ready()
        return np.asarray(s.x), int(s.status) == qp.SOLVED, int(s.iterations), s

    def timed(init):  # what the latency table times: one jitted call, no host transfers
        jax.block_until_ready(warm(*args, init))

    run.timed = timed
    return run


def make_mjx_warm_scaled(P, q, A, l, u, tol):
    """`make_mjx` whose warm solve runs one Ruiz pass from the warm start's scaling
    (`QPSettings.warm_scaling`) and restarts rho (`warm_rho=False`), as OSQP's warm start
    after a new setup does: the right rho for a problem 5 % away (docs/qp.md)."""
    return make_mjx(P, q, A, l, u, tol, warm_scaling=1, warm_rho=False)


def make_osqp(P, q, A, l, u, tol):
    """OSQP C on one problem. `run` solves the problem set up here (scaling and
    factorization done once, as when only vectors change); `run.with_setup` sets up a
    fresh solver inside the call, as a whole-body tick must, whose matrices change."""
    if osqp is None:
        return None
    matrices = (sp.csc_matrix(np.triu(P)), sp.csc_matrix(A))
    vectors = (q, np.maximum(l, -BIG), np.minimum(u, BIG))

    def set_up():
        m = osqp.OSQP()
        m.setup(
            matrices[0], vectors[0], matrices[1], *vectors[1:],
            eps_abs=tol, eps_rel=tol, max_iter=MAX_ITER, verbose=False, polishing=False,
        )  # fmt: skip
        return m

    m = set_up()

    def solve(solver, init):
        if init is not None:
            solver.warm_start(x=init[0], y=init[1])
        r = solver.solve()
        return r.x, r.info.status_val == 1, r.info.iter, (r.x, r.y)

    def run(init=None):
        return solve(m, init)

    run.with_setup = lambda init=None: solve(set_up(), init)
    return run


_JAXOPT = {}


def jaxopt_fn(tol):
    if jaxopt is None:
        return None
    if tol not in _JAXOPT:
        solver = jaxopt.BoxOSQP(tol=tol, maxiter=MAX_ITER, eq_qp_solve="lu", jit=True)

        def f(P, q, A, l, u, init):
            return solver.run(init, params_obj=(P, q), params_eq=A, params_ineq=(l, u))

        _JAXOPT[tol] = jax.jit(f)
    return _JAXOPT[tol]


def make_jaxopt(P, q, A, l, u, tol):
    f = jaxopt_fn(tol)
    if f is None:
        return None
    l = np.where(l <= -BIG, -np.inf, l)
    u = np.where(u >= BIG, np.inf, u)
    args = [jnp.asarray(a) for a in (P, q, A, l, u)]

    def run(init=None):
        params, state = f(*args, init)
        jax.block_until_ready(params)
        ok = int(state.status) == 1 if hasattr(state, "status") else float(state.error) <= tol
        return np.asarray(params.primal[0]), ok, int(state.iter_num), params

    return run


_QPAX = {}


def make_qpax(P, q, A, l, u, tol):
    if qpax is None:
        return None
    Ae, be, G, h = split_rows(A, l, u)
    if tol not in _QPAX:
        _QPAX[tol] = jax.jit(lambda *a: qpax.solve_qp(*a, solver_tol=tol))
    f = _QPAX[tol]
    args = [jnp.asarray(a) for a in (P, q, Ae, be, G, h)]

    def run(init=None):  # interior point: no warm start
        out = f(*args)
        jax.block_until_ready(out)
        return np.asarray(out[0]), bool(out[4]), int(out[5]), None

    return run


def make_active_set(P, q, A, l, u, tol):
    if daqp is not None:
        lo = np.maximum(np.where(np.isinf(l), -1e30, l), -1e30)
        hi = np.minimum(np.where(np.isinf(u), 1e30, u), 1e30)
        sense = np.where(np.abs(hi - lo) < 1e-12, 5, 0).astype(np.int32)
        H, f, Ad = (np.ascontiguousarray(a, dtype=np.float64) for a in (P, q, A))

        def run(init=None):  # DAQP: no warm start through the python API
            x, _, flag, info = daqp.solve(H, f, Ad, hi, lo, sense, primal_tol=tol)
            return np.asarray(x), flag >= 1, int(info.get("iterations", 0)), None

        return run
    if quadprog is not None:
        Ae, be, G, h = split_rows(A, l, u)
        C = np.vstack([Ae, -G]).T
        b = np.concatenate([be, -h])

        def run(init=None):
            try:
                x = quadprog.solve_qp(P, -q, C, b, len(be))[0]
                return x, True, 0, None
            except ValueError:
                return np.zeros(len(q)), False, 0, None

        return run
    return None


MAKERS = [make_mjx, make_osqp, make_jaxopt, make_qpax, make_active_set]
# The latency and batch tables' columns: (label, maker, the attribute of `run` that one
# timing calls; None: `run` itself). A whole-body QP's matrices change every tick, so
# scaling and factorization belong in the timed call: mjxbot.qp, jaxopt, qpax and DAQP
# redo them on every call, and "OSQP C setup+solve" does. "OSQP C cached" keeps OSQP's
# factorization (a problem whose vectors alone change).
TIMED_COLUMNS = (
    (SOLVERS[0], make_mjx, "timed"),
    (f"{SOLVERS[0]} warm scaling, rho restarted", make_mjx_warm_scaled, "timed"),
    ("OSQP C setup+solve", make_osqp, "with_setup"),
    ("OSQP C cached", make_osqp, None),
    (SOLVERS[2], make_jaxopt, None),
    (SOLVERS[3], make_qpax, None),
    (SOLVERS[4], make_active_set, None),
)
SEQUENTIAL = ("OSQP C setup+solve", "OSQP C cached", SOLVERS[4])  # C solvers, one QP at a time


def timed_call(run, attr):
    return run if attr is None else getattr(run, attr)


# ----------------------------------------------------------------------------- sections


def success(run, P, q, f_ref, tol):
    try:
        x, ok, it, _ = run()
    except Exception:  # noqa: BLE001
        return False, 0
    if x is None or not np.all(np.isfinite(x)):
        return False, it
    f = 0.5 * x @ P @ x + q @ x
    return bool(ok and abs(f - f_ref) <= np.sqrt(tol) * max(1.0, abs(f_ref))), it


def table(title, header, rows):
    print(f"\n### {title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for r in rows:
        print("| " + " | ".join(str(c) for c in r) + " |")


def fmt_rate(k, n):
    return f"{k}/{n}"


def section_success(probs, title, iters_tol=None):
    rows, it_rows = [], []
    for tol in TOLS:
        cells, its = [], []
        for make in MAKERS:
            k, n, it_list = 0, 0, []
            for P, q, A, l, u, f_ref in probs:
                run = make(P, q, A, l, u, tol)
                if run is None:
                    break
                ok, it = success(run, P, q, f_ref, tol)
                k, n = k + ok, n + 1
                it_list.append(it)
            cells.append(fmt_rate(k, n) if n else "n/a")
            its.append(f"{np.median(it_list):.0f}" if it_list else "n/a")
        rows.append([f"{tol:g}"] + cells)
        if tol == iters_tol:
            it_rows.append([f"{tol:g}"] + its)
    table(title, ["eps"] + SOLVERS, rows)
    if it_rows:
        table(title + ": median iterations", ["eps"] + SOLVERS, it_rows)


def section_latency(reps, instances=LAT_INSTANCES):
    """Latency pooled over `instances` problems per size (seeds), `reps // instances`
    timed calls each: one instance's iteration count is not typical of its size."""
    rows = []
    per_instance = max(1, reps // instances)
    for n in WBC_SIZES:
        cells = []
        for _, make, attr in TIMED_COLUMNS:
            ts, cpu, iters = [], [], []
            for seed in range(instances):
                run0 = make(*wbc_qp(n, seed=seed), LAT_TOL)
                if run0 is None:
                    break
                warm = run0()[3]
                run = make(*wbc_qp(n, seed=seed, perturb=0.05), LAT_TOL)
                iters.append(run(warm)[2])  # also compiles
                call = timed_call(run, attr)
                for _ in range(per_instance):
                    c, t = time.process_time(), time.perf_counter()
                    call(warm)
                    ts.append(time.perf_counter() - t)
                    cpu.append(time.process_time() - c)
            if not ts:
                cells.append("n/a")
                continue
            ts = np.array(ts) * 1e3
            cells.append(
                f"{np.median(ts):.3f} / {np.percentile(ts, 99):.3f} "
                f"({np.median(cpu) * 1e3:.3f}, {np.median(iters):.0f} it)"
            )
        rows.append([str(n)] + cells)
    table(
        f"Warm-started solve latency, ms: wall median / p99 (process CPU time median, "
        f"median iterations), {per_instance} reps on each of {instances} problems per size, "
        f"eps {LAT_TOL:g}, float64",
        ["n"] + [label for label, _, _ in TIMED_COLUMNS],
        rows,
    )


def section_batch(sizes, n=60):
    rows = []
    probs = [wbc_qp(n, seed=s) for s in range(max(sizes))]
    stacked_all = [np.stack(a) for a in zip(*probs, strict=True)]
    s = _mjx_settings(LAT_TOL)
    jax_fns = {
        "mjxbot.qp": jax.jit(jax.vmap(lambda *a: qp.solve(*a, settings=s))),
        "mjxbot.qp solve_batch": lambda *a: qp.solve_batch(*a, settings=s, chunk_size=CHUNK),
    }
    jf = jaxopt_fn(LAT_TOL)
    if jf is not None:
        jax_fns["jaxopt BoxOSQP"] = jax.jit(jax.vmap(lambda *a: jf(*a, None)))
    if qpax is not None:
        split = [split_rows(p[2], p[3], p[4]) for p in probs]
        qpax_args = [np.stack([p[0] for p in probs]), np.stack([p[1] for p in probs])] + [
            np.stack([sp_[i] for sp_ in split]) for i in range(4)
        ]
        jax_fns["qpax"] = jax.jit(jax.vmap(lambda *a: qpax.solve_qp(*a, solver_tol=LAT_TOL)))
    seq = {}
    for name, make, attr in (column for column in TIMED_COLUMNS if column[0] in SEQUENTIAL):
        runs = [make(*p, LAT_TOL) for p in probs[:64]]
        if runs[0] is None:
            continue
        calls = [timed_call(r, attr) for r in runs]
        t = time.perf_counter()
        for call in calls:
            call()
        seq[name] = (time.perf_counter() - t) / len(runs) * 1e6
    slow = set()
    labels = [label for label, _, _ in TIMED_COLUMNS]
    names = labels[:1] + ["mjxbot.qp solve_batch"] + labels[1:]
    for b in sizes:
        cells = []
        for name in names:
            if name in jax_fns:
                if name in slow:
                    cells.append("skipped (slow)")
                    continue
                f = jax_fns[name]
                args = (
                    [a[:b] for a in qpax_args]
                    if name == "qpax"
                    else [jnp.asarray(a[:b]) for a in stacked_all]
                )
                jax.block_until_ready(f(*args))
                t = time.perf_counter()
                jax.block_until_ready(f(*args))
                dt = time.perf_counter() - t
                cells.append(f"{dt / b * 1e6:.1f}")
                if dt > 20.0:
                    slow.add(name)
            elif name in seq:
                cells.append(f"{seq[name]:.1f} (seq.)")
            else:
                cells.append("n/a")
        rows.append([str(b)] + cells)
    table(
        f"Per-QP time, us, n={n}, eps {LAT_TOL:g}: vmap batch (JAX) vs sequential (C); "
        f"solve_batch with chunk_size={CHUNK}",
        ["batch"] + names,
        rows,
    )


def _best_time(f, *args, reps=3):
    jax.block_until_ready(f(*args))
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        jax.block_until_ready(f(*args))
        ts.append(time.perf_counter() - t)
    return min(ts)


def _batched(s, mode):
    if mode == "vmap":
        return jax.jit(jax.vmap(lambda *a: qp.solve(*a, settings=s)))
    return lambda *a: qp.solve_batch(*a, settings=s, chunk_size=CHUNK)


def section_batch_costs(b, n=60):
    """Per-QP cost of setup, one ADMM iteration and one factorization, batched."""
    probs = [wbc_qp(n, seed=s) for s in range(b)]
    args = [jnp.asarray(np.stack(a)) for a in zip(*probs, strict=True)]
    rows = []
    for mode in ("vmap", "solve_batch"):
        t1 = _best_time(
            _batched(qp.QPSettings(fixed_iterations=1, adaptive_rho=False), mode), *args
        )
        s101 = qp.QPSettings(fixed_iterations=101, adaptive_rho=False)
        t101 = _best_time(_batched(s101, mode), *args)
        # adaptive_rho_tolerance=1: refactorize at both rho updates (iterations 50 and 100).
        s_ref = dataclasses.replace(s101, adaptive_rho=True, adaptive_rho_tolerance=1.0)
        t_ref = _best_time(_batched(s_ref, mode), *args)
        per_it = (t101 - t1) / 100 / b * 1e6
        per_fac = (t_ref - t101) / 2 / b * 1e6
        rows.append([mode, f"{t1 / b * 1e6:.1f}", f"{per_it:.2f}", f"{per_fac:.1f}"])
    table(
        f"Batched cost breakdown, us per QP, batch {b}, n={n}, float64 "
        "(setup = solve with 1 iteration; iteration and refactorization from differences)",
        ["mode", "setup + 1 iteration", "per iteration", "per refactorization"],
        rows,
    )


def section_wbc_path(b, n=60):
    """float32, warm-started, batched: the whole-body-controller use of `solve_batch`."""
    probs = [wbc_qp(n, seed=s) for s in range(b)]
    new = [wbc_qp(n, seed=s, perturb=0.05) for s in range(b)]
    f32 = [jnp.asarray(np.stack(a), jnp.float32) for a in zip(*probs, strict=True)]
    f32n = [jnp.asarray(np.stack(a), jnp.float32) for a in zip(*new, strict=True)]
    refs = [reference(*p) for p in new[:32]]
    rows = []
    for label, s in (
        ("adaptive, eps 1e-3", qp.QPSettings()),
        ("fixed_iterations=25", qp.QPSettings(fixed_iterations=25)),
        ("fixed_iterations=50", qp.QPSettings(fixed_iterations=50)),
        (
            "fixed_iterations=50, scheduled refactorization",
            qp.QPSettings(fixed_iterations=50, scheduled_refactorization=True),
        ),
    ):
        warm0 = qp.solve_batch(*f32, settings=s, chunk_size=CHUNK)

        def f(*a, s=s, warm0=warm0):
            return qp.solve_batch(*a, settings=s, init=warm0, chunk_size=CHUNK)

        dt = _best_time(f, *f32n)
        sol = f(*f32n)
        errs = []
        for i, ref in enumerate(refs):
            P, q = new[i][0], new[i][1]
            x = np.asarray(sol.x[i], float)
            errs.append(abs(0.5 * x @ P @ x + q @ x - ref) / max(1.0, abs(ref)))
        rows.append(
            [
                label,
                f"{dt / b * 1e6:.1f}",
                f"{np.mean(np.asarray(sol.status) == qp.SOLVED):.2f}",
                f"{np.median(errs):.1e} / {np.max(errs):.1e}",
            ]
        )
    table(
        f"WBC path: float32, warm-started solve_batch, batch {b}, n={n}",
        ["settings", "us per QP", "fraction SOLVED", "rel. obj. error median / max (32)"],
        rows,
    )


def section_mm(quick):
    probs = load_mm()
    refs = {k: reference(*v) for k, v in probs.items()}
    names = [k for k in probs if refs[k] is not None]
    NOTES.append(
        "Maros-Meszaros: problems without a Clarabel reference are left out: "
        + ", ".join(k for k in probs if refs[k] is None)
    )
    rows = []
    for tol in TOLS:
        cells = []
        # mjxbot.qp: problems padded into a few shapes and solved as vmap batches.
        s = _mjx_settings(tol)
        f = jax.jit(jax.vmap(lambda *a, s=s: qp.solve(*a, settings=s)))
        k = 0
        for bucket in MM_BUCKETS:
            members = [
                nm
                for nm in names
                if next(
                    b for b in MM_BUCKETS if b[0] >= len(probs[nm][1]) and b[1] >= len(probs[nm][3])
                )
                == bucket
            ]
            if not members:
                continue
            padded = [pad(*probs[nm], *bucket) for nm in members]
            sol = f(*[np.stack(a) for a in zip(*padded, strict=True)])
            for i, nm in enumerate(members):
                P, q = probs[nm][0], probs[nm][1]
                x = np.asarray(sol.x[i])[: len(q)]
                fx = 0.5 * x @ P @ x + q @ x
                ok = int(sol.status[i]) == qp.SOLVED
                k += ok and abs(fx - refs[nm]) <= np.sqrt(tol) * max(1.0, abs(refs[nm]))
        cells.append(fmt_rate(k, len(names)))
        for make in MAKERS[1:]:
            if make in (make_jaxopt, make_qpax) and quick:
                cells.append("skipped (--quick)")
                continue
            k, n = 0, 0
            for nm in names:
                run = make(*probs[nm], tol)
                if run is None:
                    break
                ok, _ = success(run, probs[nm][0], probs[nm][1], refs[nm], tol)
                k, n = k + ok, n + 1
            cells.append(fmt_rate(k, n) if n else "n/a")
        rows.append([f"{tol:g}"] + cells)
    table(f"Maros-Meszaros subset ({len(names)} problems): success", ["eps"] + SOLVERS, rows)


def section_heldout():
    """Problems the tests never saw, one by one (each its own compile): status, iterations
    and objective of mjxbot.qp and OSQP C against Clarabel's."""
    probs = load_mm(HELDOUT_DIR)
    settings = qp.QPSettings(eps_abs=HELDOUT_EPS, eps_rel=HELDOUT_EPS, max_iter=HELDOUT_MAX_ITER)
    solved = dict.fromkeys(["mjxbot.qp"] + (["OSQP C"] if osqp is not None else []), 0)
    rows, no_ref = [], []
    for name in sorted(probs, key=lambda k: len(probs[k][1]) + len(probs[k][3])):
        P, q, A, l, u = probs[name]
        ref = reference(P, q, A, l, u)
        if ref is None:
            no_ref.append(name)
            continue
        sol = qp.solve(P, q, A, l, u, settings=settings)
        runs = [(qp.STATUS_NAMES[int(sol.status)], int(sol.iterations), np.asarray(sol.x))]
        if osqp is not None:
            m = osqp.OSQP()
            m.setup(
                sp.csc_matrix(np.triu(P)), q, sp.csc_matrix(A),
                np.maximum(l, -BIG), np.minimum(u, BIG), eps_abs=HELDOUT_EPS,
                eps_rel=HELDOUT_EPS, max_iter=HELDOUT_MAX_ITER, verbose=False,
            )  # fmt: skip
            r = m.solve()
            runs.append(("solved" if r.info.status_val == 1 else r.info.status, r.info.iter, r.x))
        row = [name, f"{len(q)} / {len(l)}", f"{ref:.6g}"]
        for solver, (status, iterations, x) in zip(solved, runs, strict=True):
            f = 0.5 * x @ P @ x + q @ x if x is not None and np.all(np.isfinite(x)) else np.nan
            ok = status == "solved" and abs(f - ref) <= HELDOUT_OBJ_TOL * max(1.0, abs(ref))
            solved[solver] += ok
            row.append(f"{'ok' if ok else 'FAIL'}: {status}, {iterations} it, f {f:.6g}")
        rows.append(row)
    judged = len(rows)
    rows.append(["**solved**", "", "", *(f"{k}/{judged}" for k in solved.values())])
    table(
        f"Maros-Meszaros held out ({judged} problems with a Clarabel reference; "
        f"without: {', '.join(no_ref) or 'none'}), eps {HELDOUT_EPS:g}, "
        f"max_iter {HELDOUT_MAX_ITER}",
        ["problem", "n / m", "Clarabel f*", *solved],
        rows,
    )


def main():
    # The tables are float64; set here, not on import, so that benchmarks/gpu_check.py
    # can use the problem generators next to float32 envs.
    jax.config.update("jax_enable_x64", True)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer seeds, reps and batch sizes")
    ap.add_argument(
        "--sections",
        default="success,latency,batch,costs,wbc,mm",
        help="comma-separated subset of: success,latency,batch,costs,wbc,mm,heldout",
    )
    args = ap.parse_args()
    sec = set(args.sections.split(","))
    seeds = 3 if args.quick else 10
    reps = 100 if args.quick else 300
    sizes = (1, 64, 1024) if args.quick else (1, 64, 1024, 4096)
    t0 = time.time()
    print(f"Load average at start (1/5/15 min): {os.getloadavg()}")
    if "success" in sec:
        probs = []
        for n in WBC_SIZES:
            for s in range(seeds):
                P, q, A, l, u = wbc_qp(n, seed=s)
                probs.append((P, q, A, l, u, reference(P, q, A, l, u)))
        section_success(probs, f"WBC QPs (n = 30/60/100, {seeds} seeds each): success", 1e-5)
    if "latency" in sec:
        section_latency(reps)
    if "batch" in sec:
        section_batch(sizes)
    if "costs" in sec:
        section_batch_costs(1024)
    if "wbc" in sec:
        section_wbc_path(1024)
    if "mm" in sec:
        section_mm(args.quick)
    if "heldout" in sec:
        section_heldout()
    if dataclasses.is_dataclass(qp.QPSettings):
        print(f"\nmjxbot.qp settings: {qp.QPSettings()} (eps / max_iter={MAX_ITER} per table)")
    for note in NOTES:
        print(f"- {note}")
    print(f"\nLoad average at end (1/5/15 min): {os.getloadavg()}")
    print(f"Total benchmark time: {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
