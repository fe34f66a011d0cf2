"""Tests of mjxbot.qp against Clarabel (trusted reference, solved at tight tolerance).

float64 is enabled only inside this module (module-scoped `jax.enable_x64` context), so
other test modules in the same pytest process keep JAX's default float32.
"""

from __future__ import annotations

import dataclasses
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mjxbot import qp
from mjxbot.qp.scaling import equilibrate

pytestmark = pytest.mark.optimized  # solves of up to 20,000 iterations (conftest)

scipy_io = pytest.importorskip("scipy.io")
sp = pytest.importorskip("scipy.sparse")
clarabel = pytest.importorskip("clarabel")

# Tolerances.
EPS = 1e-6  # solver tolerance (eps_abs = eps_rel) for the accuracy tests
OBJ_RTOL = 1e-4  # |f - f_ref| <= OBJ_RTOL * max(1, |f_ref|)
X_ATOL = 1e-3  # max |x - x_ref| on strictly convex random problems
FEAS_TOL = 1e-4  # max violation of l <= Ax <= u, relative to max(1, ||Ax||_inf)
VMAP_ATOL = 1e-9  # vmap vs per-problem solutions
F32_OBJ_RTOL = 1e-2  # float32 at default tolerance (1e-3)
CLARABEL_TOL = 1e-10

DATA_DIR = os.path.join(os.path.dirname(__file__), "data", "maros_meszaros")
# Problems left out of the accuracy comparison, with the reason.
MM_EXCLUDED = {
    "PRIMALC1": "Clarabel reports DualInfeasible on this copy; OSQP C hits max_iter",
    "QSHARE2B": "needs > 20000 ADMM iterations at 1e-6 (OSQP C: max_iter at 4000 too)",
}
# Pad each problem into one of these (n, m) shapes so a few compilations serve all.
MM_BUCKETS = ((16, 40), (16, 240), (104, 176), (328, 416))

PAD_P_DIAG = 1.0  # padded variables: 0.5 x_i^2, optimum x_i = 0
SETTINGS = qp.QPSettings(eps_abs=EPS, eps_rel=EPS, max_iter=20000, polish=True)


@pytest.fixture(scope="module", autouse=True)
def _x64():
    with jax.enable_x64(True):
        yield


# ----------------------------------------------------------------------------- helpers


def clarabel_solve(P, q, A, l, u):
    """Reference solution (x, objective) or (None, status string)."""
    n = len(q)
    eq_rows, le_rows, b_eq, b_le = [], [], [], []
    for i in range(A.shape[0]):
        lo, hi = l[i], u[i]
        if abs(hi - lo) < 1e-12 and abs(lo) < qp.INF_BOUND:
            eq_rows.append(A[i])
            b_eq.append(lo)
            continue
        if hi < qp.INF_BOUND:
            le_rows.append(A[i])
            b_le.append(hi)
        if lo > -qp.INF_BOUND:
            le_rows.append(-A[i])
            b_le.append(-lo)
    Acl = sp.csc_matrix(np.array(eq_rows + le_rows, float).reshape(-1, n))
    cones = []
    if eq_rows:
        cones.append(clarabel.ZeroConeT(len(eq_rows)))
    if le_rows:
        cones.append(clarabel.NonnegativeConeT(len(le_rows)))
    s = clarabel.DefaultSettings()
    s.verbose = False
    s.tol_gap_abs = s.tol_gap_rel = s.tol_feas = CLARABEL_TOL
    solver = clarabel.DefaultSolver(
        sp.csc_matrix(np.triu(P)), np.asarray(q, float), Acl, np.array(b_eq + b_le), cones, s
    )
    sol = solver.solve()
    if str(sol.status) not in ("Solved", "AlmostSolved"):
        return None, str(sol.status)
    x = np.array(sol.x)
    return x, 0.5 * x @ P @ x + q @ x


def random_qp(seed, n=20, m=30, cond=1.0, n_eq=0, n_inf=0):
    """A feasible random QP; P has condition number `cond` (PD)."""
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    P = Q @ np.diag(np.logspace(0, np.log10(cond), n)) @ Q.T
    P = 0.5 * (P + P.T)
    q = rng.standard_normal(n) * 10
    A = rng.standard_normal((m, n))
    x0 = rng.standard_normal(n)
    Ax0 = A @ x0
    l = Ax0 - rng.uniform(0.1, 1.0, m)
    u = Ax0 + rng.uniform(0.1, 1.0, m)
    l[:n_eq] = u[:n_eq] = Ax0[:n_eq]
    if n_inf:
        rows = rng.choice(np.arange(n_eq, m), n_inf, replace=False)
        half = n_inf // 2
        l[rows[:half]] = -np.inf
        u[rows[half:]] = 1e20  # OSQP-style "infinity"
        if n_inf > 2:
            l[rows[-1]], u[rows[-1]] = -1e20, np.inf  # a free row
    return P, q, A, l, u


def pad(P, q, A, l, u, n_pad, m_pad):
    """Embeds a QP in a larger one with zero variables and free rows (same solution)."""
    n, m = len(q), len(l)
    P2 = np.zeros((n_pad, n_pad))
    P2[:n, :n] = P
    P2[range(n, n_pad), range(n, n_pad)] = PAD_P_DIAG
    A2 = np.zeros((m_pad, n_pad))
    A2[:m, :n] = A
    q2 = np.zeros(n_pad)
    q2[:n] = q
    l2 = np.full(m_pad, -np.inf)
    u2 = np.full(m_pad, np.inf)
    l2[:m], u2[:m] = l, u
    return P2, q2, A2, l2, u2


def load_mm(name):
    d = scipy_io.loadmat(os.path.join(DATA_DIR, name + ".mat"))

    def dense(M):
        return M.toarray() if sp.issparse(M) else np.asarray(M, float)

    P, A = dense(d["P"]), dense(d["A"])
    q, l, u = (np.asarray(d[k], float).ravel() for k in ("q", "l", "u"))
    return P, q, A, l, u


def check_solution(sol, P, q, A, l, u, x_ref, f_ref, check_x):
    assert int(sol.status) == qp.SOLVED, qp.STATUS_NAMES[int(sol.status)]
    x = np.asarray(sol.x)
    f = 0.5 * x @ P @ x + q @ x
    assert abs(f - f_ref) <= OBJ_RTOL * max(1.0, abs(f_ref)), (f, f_ref)
    Ax = A @ x
    lo = np.where(l <= -qp.INF_BOUND, -np.inf, l)
    hi = np.where(u >= qp.INF_BOUND, np.inf, u)
    with np.errstate(invalid="ignore"):
        v_lo = np.where(np.isfinite(lo), lo - Ax, 0.0)
        v_hi = np.where(np.isfinite(hi), Ax - hi, 0.0)
    viol = max(np.max(v_lo, initial=0.0), np.max(v_hi, initial=0.0))
    assert viol <= FEAS_TOL * max(1.0, np.max(np.abs(Ax), initial=0.0))
    if check_x:
        np.testing.assert_allclose(x, x_ref, atol=X_ATOL)


# ----------------------------------------------------------------------------- accuracy

RANDOM_CASES = {
    "well_conditioned": dict(seed=0),
    "ill_conditioned": dict(seed=1, cond=1e6),
    "equality_rows": dict(seed=2, n_eq=8),
    "infinite_bounds": dict(seed=3, n_eq=4, n_inf=10),
}


@pytest.mark.parametrize("case", sorted(RANDOM_CASES))
def test_random_qp_matches_clarabel(case):
    P, q, A, l, u = random_qp(**RANDOM_CASES[case])
    x_ref, f_ref = clarabel_solve(P, q, A, l, u)
    assert x_ref is not None
    sol = qp.solve(P, q, A, l, u, settings=SETTINGS)
    assert sol.x.dtype == jnp.float64
    check_solution(sol, P, q, A, l, u, x_ref, f_ref, check_x=True)


MM_NAMES = sorted(os.path.splitext(f)[0] for f in os.listdir(DATA_DIR) if f.endswith(".mat"))


@pytest.mark.parametrize("name", [n for n in MM_NAMES if n not in MM_EXCLUDED])
def test_maros_meszaros_matches_clarabel(name):
    P, q, A, l, u = load_mm(name)
    x_ref, f_ref = clarabel_solve(P, q, A, l, u)
    assert x_ref is not None
    n, m = len(q), len(l)
    n_pad, m_pad = next(b for b in MM_BUCKETS if b[0] >= n and b[1] >= m)
    sol = qp.solve(*pad(P, q, A, l, u, n_pad, m_pad), settings=SETTINGS)
    sol = sol.replace(x=sol.x[:n])
    # Non-strictly-convex problems (LPs among them) have non-unique x: compare objectives.
    check_solution(sol, P, q, A, l, u, x_ref, f_ref, check_x=False)


def test_primal_infeasible():
    # x0 + x1 >= 2 and x0 + x1 <= 1, boxes on both.
    P = np.eye(2)
    q = np.zeros(2)
    A = np.array([[1.0, 1.0], [1.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    l = np.array([2.0, -np.inf, -5.0, -5.0])
    u = np.array([np.inf, 1.0, 5.0, 5.0])
    sol = qp.solve(P, q, A, l, u)
    assert int(sol.status) == qp.PRIMAL_INFEASIBLE


def test_dual_infeasible():
    # min -x0 + x1^2 with x0 unbounded above (only x0 >= 0).
    P = np.diag([0.0, 1.0])
    q = np.array([-1.0, 0.0])
    A = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 2.0]])
    l = np.array([0.0, -1.0, -np.inf, -3.0])
    u = np.array([np.inf, 1.0, np.inf, 3.0])
    sol = qp.solve(P, q, A, l, u)
    assert int(sol.status) == qp.DUAL_INFEASIBLE


def test_max_iter_status():
    P, q, A, l, u = random_qp(1, cond=1e6)
    s = qp.QPSettings(eps_abs=1e-9, eps_rel=1e-9, max_iter=20)
    sol = qp.solve(P, q, A, l, u, settings=s)
    assert int(sol.status) == qp.MAX_ITER_REACHED
    assert int(sol.iterations) == 20


# ----------------------------------------------------------------------------- warm start, vmap

WARM_SETTINGS = qp.QPSettings(eps_abs=1e-5, eps_rel=1e-5)


@pytest.fixture(scope="module")
def jitted_solve():
    return jax.jit(lambda P, q, A, l, u, init: qp.solve(P, q, A, l, u, WARM_SETTINGS, init))


@pytest.fixture(scope="module")
def jitted_cold():
    return jax.jit(lambda P, q, A, l, u: qp.solve(P, q, A, l, u, WARM_SETTINGS))


def test_warm_start_cuts_iterations(jitted_solve, jitted_cold):
    P, q, A, l, u = random_qp(4, n_eq=4, n_inf=4)
    first = jitted_cold(P, q, A, l, u)
    q2 = q + 1e-2 * np.random.default_rng(0).standard_normal(len(q))
    cold = jitted_cold(P, q2, A, l, u)
    warm = jitted_solve(P, q2, A, l, u, first)
    assert int(cold.status) == int(warm.status) == qp.SOLVED
    assert int(warm.iterations) < int(cold.iterations), (warm.iterations, cold.iterations)
    np.testing.assert_allclose(warm.x, cold.x, atol=1e-2)


def test_vmap_equals_per_problem(jitted_cold):
    probs = [random_qp(10 + i, n_eq=3, n_inf=4) for i in range(6)]
    stacked = [np.stack(a) for a in zip(*probs, strict=True)]
    batch = jax.jit(jax.vmap(jitted_cold))(*stacked)
    for i, prob in enumerate(probs):
        one = jitted_cold(*prob)
        assert int(batch.status[i]) == int(one.status) == qp.SOLVED
        assert int(batch.iterations[i]) == int(one.iterations)
        np.testing.assert_allclose(batch.x[i], one.x, atol=VMAP_ATOL)
        np.testing.assert_allclose(batch.y[i], one.y, atol=VMAP_ATOL)


def test_fixed_iterations_under_vmap():
    s = qp.QPSettings(fixed_iterations=37)
    probs = [random_qp(20 + i) for i in range(3)]
    stacked = [np.stack(a) for a in zip(*probs, strict=True)]
    sol = jax.jit(jax.vmap(lambda *a: qp.solve(*a, settings=s)))(*stacked)
    np.testing.assert_array_equal(sol.iterations, 37)


def _primitive_names(jaxpr) -> set[str]:
    """Every primitive in `jaxpr` and in the jaxprs nested in its equations' parameters."""
    names = set()
    for eqn in jaxpr.eqns:
        names.add(eqn.primitive.name)
        for value in eqn.params.values():
            for sub in value if isinstance(value, tuple | list) else (value,):
                if isinstance(sub, jax.extend.core.ClosedJaxpr):
                    sub = sub.jaxpr
                if isinstance(sub, jax.extend.core.Jaxpr):
                    names |= _primitive_names(sub)
    return names


def test_scheduled_refactorization_has_no_data_dependent_control_flow():
    stacked = [np.stack(a) for a in zip(*(random_qp(20 + i) for i in range(3)), strict=True)]

    def primitives(settings):
        batched = jax.vmap(lambda *a: qp.solve(*a, settings=settings))
        return _primitive_names(jax.make_jaxpr(batched)(*stacked).jaxpr)

    branching = {"cond", "while"}
    # The default refactorization is a conditional, which the walk must see.
    assert branching & primitives(qp.QPSettings(fixed_iterations=100))
    scheduled = qp.QPSettings(fixed_iterations=100, scheduled_refactorization=True)
    assert not branching & primitives(scheduled)
    with pytest.raises(qp.QPInputError, match="scheduled_refactorization needs fixed_iterations"):
        qp.QPSettings(scheduled_refactorization=True)


SCHEDULED_ITERATIONS = 4000  # enough for every RANDOM_CASES problem at EPS


def test_scheduled_refactorization_matches_clarabel_under_vmap():
    settings = dataclasses.replace(
        SETTINGS, fixed_iterations=SCHEDULED_ITERATIONS, scheduled_refactorization=True
    )
    probs = [random_qp(**RANDOM_CASES[case]) for case in sorted(RANDOM_CASES)]
    stacked = [np.stack(a) for a in zip(*probs, strict=True)]
    sol = jax.jit(jax.vmap(lambda *a: qp.solve(*a, settings=settings)))(*stacked)
    np.testing.assert_array_equal(
        sol.refactorizations, SCHEDULED_ITERATIONS // settings.adaptive_rho_interval
    )
    for i, prob in enumerate(probs):
        x_ref, f_ref = clarabel_solve(*prob)
        check_solution(jax.tree.map(lambda a, i=i: a[i], sol), *prob, x_ref, f_ref, check_x=True)


# ----------------------------------------------------------------------------- float32


def control_qp(seed, n=30):
    """A control-sized QP: tracking cost, an equality block, box and coupling inequalities."""
    rng = np.random.default_rng(seed)
    J = rng.standard_normal((n // 2, n))
    P = J.T @ J + 1e-2 * np.eye(n)
    q = -J.T @ rng.standard_normal(n // 2)
    x0 = rng.uniform(-0.5, 0.5, n)
    E = rng.standard_normal((6, n))
    G = rng.standard_normal((12, n))
    A = np.vstack([E, G, np.eye(n)])
    l = np.concatenate([E @ x0, np.full(12, -np.inf), -np.ones(n)])
    u = np.concatenate([E @ x0, G @ x0 + 0.1, np.ones(n)])
    return P, q, A, l, u


def test_float32_control_sized():
    for seed in range(3):
        P, q, A, l, u = control_qp(seed)
        _, f_ref = clarabel_solve(P, q, A, l, u)
        args = [np.asarray(a, np.float32) for a in (P, q, A, l, u)]
        sol = qp.solve(*args)
        assert sol.x.dtype == jnp.float32
        assert int(sol.status) == qp.SOLVED, qp.STATUS_NAMES[int(sol.status)]
        x = np.asarray(sol.x, float)
        f = 0.5 * x @ P @ x + q @ x
        assert abs(f - f_ref) <= F32_OBJ_RTOL * max(1.0, abs(f_ref)), (f, f_ref)


WARM_SCALING_SETTINGS = dataclasses.replace(SETTINGS, warm_scaling=1)


def test_ruiz_passes_resume_from_a_carried_scaling():
    """3 passes, then 7 more from their scaling, are the 10 passes from none: the scaling
    is the whole state of the passes, so carrying it loses nothing."""
    P, q, A, l, u = (jnp.asarray(a) for a in random_qp(6, n_eq=3))
    first = equilibrate(P, q, A, l, u, 3)
    resumed = equilibrate(P, q, A, l, u, 7, (first.D, first.E, first.c))
    scratch = equilibrate(P, q, A, l, u, 10)
    for got, want in zip(resumed, scratch, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12)
    with_ones = equilibrate(P, q, A, l, u, 3, (jnp.ones(len(q)), jnp.ones(len(l)), 1.0))
    for got, want in zip(with_ones, first, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_a_diverged_carried_scaling_restarts_from_ones():
    P, q, A, l, u = (jnp.asarray(a) for a in random_qp(6, n_eq=3))
    D = jnp.full(len(q), jnp.nan).at[0].set(-1.0)
    E = jnp.full(len(l), jnp.inf)
    restarted = equilibrate(P, q, A, l, u, 4, (D, E, jnp.asarray(0.0)))
    for got, want in zip(restarted, equilibrate(P, q, A, l, u, 4), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12)


@pytest.mark.parametrize("warm_rho", [True, False])
def test_warm_scaling_matches_clarabel_along_a_chain_of_perturbed_problems(warm_rho):
    """Each solve warm-started from the previous one, its scaling one Ruiz pass from the
    previous scaling (a control loop's ticks), rho carried or restarted: every solve
    matches Clarabel."""
    rng = np.random.default_rng(3)
    P, q, A, l, u = random_qp(7, n_eq=3, n_inf=4)
    settings = dataclasses.replace(WARM_SCALING_SETTINGS, warm_rho=warm_rho)
    solve = jax.jit(lambda q, l, u, init: qp.solve(P, q, A, l, u, settings, init))
    warm = qp.solve(P, q, A, l, u, SETTINGS)
    for _ in range(4):
        q_k = q + 0.05 * rng.standard_normal(len(q))
        shift = 0.05 * rng.standard_normal(len(l))
        l_k, u_k = l + shift, u + shift
        warm = solve(q_k, l_k, u_k, warm)
        x_ref, f_ref = clarabel_solve(P, q_k, A, l_k, u_k)
        check_solution(warm, P, q_k, A, l_k, u_k, x_ref, f_ref, check_x=True)
    scratch = equilibrate(*(jnp.asarray(a) for a in (P, q_k, A, l_k, u_k)), SETTINGS.scaling)
    np.testing.assert_allclose(warm.D, scratch.D, rtol=0.05)  # 5 passes resumed vs 10 fresh


def test_a_warm_start_carries_its_rho_unless_told_to_restart():
    P, q, A, l, u = random_qp(8, n=6, m=4)
    fixed = qp.QPSettings(adaptive_rho=False, rho=0.1)
    init = qp.solve(P, q, A, l, u, fixed).replace(rho=jnp.asarray(3.0))
    carried = qp.solve(P, q, A, l, u, fixed, init)
    restarted = qp.solve(P, q, A, l, u, dataclasses.replace(fixed, warm_rho=False), init)
    assert float(carried.rho) == 3.0 and float(restarted.rho) == 0.1


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda d: d.update(P=d["P"][:, :-1]), "P must have shape"),
        (lambda d: d.update(q=d["q"][:, None]), "q must be a vector"),
        (lambda d: d.update(A=d["A"][:, :-1]), "A must have shape"),
        (lambda d: d.update(l=d["l"][:-1]), "l must have shape"),
        (lambda d: d.update(P=d["P"] + np.triu(np.ones_like(d["P"]), 1)), "not symmetric"),
        (lambda d: d.update(l=d["u"] + 1.0), "l > u"),
    ],
)
def test_invalid_input_raises(mutate, match):
    P, q, A, l, u = random_qp(0, n=4, m=3)
    d = dict(P=P, q=q, A=A, l=l, u=u)
    mutate(d)
    with pytest.raises(qp.QPInputError, match=match):
        qp.solve(**d)


def test_settings_validation():
    with pytest.raises(
        qp.QPInputError,
        match=r"adaptive_rho_interval \(50\) must be a positive multiple of check_interval \(7\)",
    ):
        qp.QPSettings(check_interval=7, adaptive_rho_interval=50)
    with pytest.raises(qp.QPInputError, match=r"alpha must lie in \(0, 2\), got 2.5"):
        qp.QPSettings(alpha=2.5)
    with pytest.raises(qp.QPInputError, match=r"warm_scaling must be >= 0 or None, got -1"):
        qp.QPSettings(warm_scaling=-1)


def test_a_warm_start_without_its_scaling_shape_raises():
    P, q, A, l, u = random_qp(0, n=4, m=3)
    init = qp.solve(P, q, A, l, u)
    with pytest.raises(qp.QPInputError, match=r"init must have x and D of shape \(4,\)"):
        qp.solve(P, q, A, l, u, init=init.replace(D=init.D[:-1]))


# ----------------------------------------------------------------------------- performance fixes


@pytest.mark.parametrize("n", [1, 7, 8, 9, 60, 130])
def test_lower_triangular_inverse(n):
    from mjxbot.qp.admm import lower_triangular_inverse

    M = np.random.default_rng(n).standard_normal((n, n))
    L = np.linalg.cholesky(M @ M.T + n * np.eye(n))
    X = np.asarray(lower_triangular_inverse(jnp.asarray(L)))
    np.testing.assert_allclose(X @ L, np.eye(n), atol=1e-12)
    assert np.all(np.triu(X, 1) == 0.0)


def test_scaling_keeps_lotschd_fast():
    # With the cost scale computed as in OSQP (||q|| limited before the max), 10 Ruiz passes
    # solve LOTSCHD in ~130 iterations (OSQP C: 150); before the fix it took ~2100.
    P, q, A, l, u = load_mm("LOTSCHD")
    s = qp.QPSettings(eps_abs=1e-5, eps_rel=1e-5)
    sol = qp.solve(P, q, A, l, u, settings=s)
    assert int(sol.status) == qp.SOLVED
    assert int(sol.iterations) <= 500, int(sol.iterations)


def test_duality_gap_check_dualc2():
    # Residuals alone pass at iteration 270 with a 0.9% objective error (||q|| ~ 2.4e5 makes
    # the dual tolerance ~2.4); the duality-gap test keeps iterating to an accurate point.
    P, q, A, l, u = load_mm("DUALC2")
    _, f_ref = clarabel_solve(P, q, A, l, u)
    sol = qp.solve(P, q, A, l, u, settings=qp.QPSettings(eps_abs=1e-5, eps_rel=1e-5))
    assert int(sol.status) == qp.SOLVED
    assert abs(float(sol.obj_val) - f_ref) <= np.sqrt(1e-5) * abs(f_ref)


@pytest.fixture(scope="module")
def vmapped_batch(jitted_cold):
    """4 stacked problems and their `vmap`ped solve: the reference of every chunk size."""
    probs = [random_qp(30 + i, n_eq=3, n_inf=4) for i in range(4)]
    stacked = [np.stack(a) for a in zip(*probs, strict=True)]
    return stacked, jax.jit(jax.vmap(jitted_cold))(*stacked)


@pytest.mark.parametrize("chunk_size", [1, 2])
def test_solve_batch_equals_vmap(vmapped_batch, chunk_size):
    # 4 problems in chunks of 2 (no remainder chunk: each chunk shape is one more
    # compilation of the whole solver, and lax.map handles remainders itself); chunk 1 is
    # the unbatched sequential path.
    stacked, ref = vmapped_batch
    out = qp.solve_batch(*stacked, settings=WARM_SETTINGS, chunk_size=chunk_size)
    np.testing.assert_array_equal(out.status, ref.status)
    np.testing.assert_array_equal(out.iterations, ref.iterations)
    np.testing.assert_allclose(out.x, ref.x, atol=VMAP_ATOL)
    with pytest.raises(qp.QPInputError, match="leading batch axis"):
        qp.solve_batch(stacked[0], stacked[1], stacked[2][:2], stacked[3], stacked[4])
