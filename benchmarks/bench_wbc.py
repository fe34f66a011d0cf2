"""Whole-body QP controller tick (build + solve) latency and batched throughput.

    JAX_PLATFORMS=cpu python benchmarks/bench_wbc.py [--batches 1 64 1024] [--ticks 200]

One tick is `WholeBodyController.__call__`: dynamics terms, the QP of the
humanoid (n = 55, m = 96) and its warm-started solve, jitted, float32 as in
the env. Latency: one env, (a) in closed loop with MuJoCo C physics, standing
under two torso pushes (`wbc.run_standing`, one tick per physics step) and
(b) on independent states with fresh joint noise, each warm started from the
previous tick (a harder case: the warm start is from an unrelated state). The QPs of
(b) are then solved alone, warm started tick after tick, by mjxbot.qp and by OSQP C with
its setup (scaling and factorization) inside the timing, since the matrices change every
tick. Throughput: the tick vmapped over a batch (warm started from other states'
solutions), against one `mjx.step` of the same batch measured in the same process.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from mujoco import mjx  # noqa: E402

from mjxbot import wbc  # noqa: E402
from mjxbot.robot import (
    RobotConfig,  # noqa: E402
    load_robot,  # noqa: E402
)
from mjxbot.wbc.config import WBCConfig  # noqa: E402

JOINT_NOISE = 0.02  # rad: half-width of the uniform noise on the independent states
START_NOISE = 0.005  # rad: joint noise of the closed-loop start (as tests/test_wbc.py)
PUSHES = (wbc.TorsoPush(1.5, 0.1, (80.0, 0.0, 0.0)), wbc.TorsoPush(3.0, 0.1, (0.0, -60.0, 0.0)))
OSQP_INFINITY = 1e20  # bounds beyond this are infinite for OSQP


def osqp_ticks(qps: list[tuple[np.ndarray, ...]], eps: float, max_iter: int):
    """OSQP C on each `(P, q, A, l, u)` in turn: a fresh setup (scaling, factorization) and
    a solve warm started from the previous solution, timed together. Returns `(seconds,
    iterations)`, `[len(qps)]` each, or None without the osqp package."""
    try:
        import osqp
        import scipy.sparse as sp
    except ImportError:
        return None
    seconds, iterations, warm = [], [], None
    for P, q, A, l, u in qps:
        t0 = time.perf_counter()
        solver = osqp.OSQP()
        solver.setup(
            sp.csc_matrix(np.triu(P)), q, sp.csc_matrix(A),
            np.maximum(l, -OSQP_INFINITY), np.minimum(u, OSQP_INFINITY),
            eps_abs=eps, eps_rel=eps, max_iter=max_iter, verbose=False, polishing=False,
        )  # fmt: skip
        if warm is not None:
            solver.warm_start(x=warm[0], y=warm[1])
        result = solver.solve()
        seconds.append(time.perf_counter() - t0)
        iterations.append(result.info.iter)
        warm = (result.x, result.y)
    return np.asarray(seconds), np.asarray(iterations)


def noisy_states(robot, data: mjx.Data, key: jax.Array, batch: int) -> mjx.Data:
    """`batch` copies of `home` with uniform joint noise (leading axis `batch`)."""
    noise = jax.random.uniform(key, (batch, robot.nu), minval=-JOINT_NOISE, maxval=JOINT_NOISE)
    home = jnp.asarray(robot.home_qpos, jnp.float32)
    qpos = jnp.tile(home, (batch, 1)).at[:, robot.qpos_adr].add(noise)
    return jax.vmap(lambda q: data.replace(qpos=q))(qpos)


def latency_row(label: str, seconds: np.ndarray, iterations: np.ndarray) -> None:
    """Prints one latency row: wall-time median, p99, max and ADMM iterations."""
    ms = 1e3 * seconds
    its = "/".join(f"{v:.0f}" for v in np.percentile(iterations, [50, 99, 100]))
    print(f"{label:<34s}{np.median(ms):10.3f}{np.percentile(ms, 99):8.3f}{ms.max():8.3f}{its:>20s}")


def timed(fn, *args, repeats: int) -> np.ndarray:
    """Wall seconds of `repeats` calls after one warm-up (compile) call."""
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    return np.asarray(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batches", type=int, nargs="+", default=[1, 64, 1024])
    p.add_argument("--ticks", type=int, default=200, help="independent noisy-state ticks")
    p.add_argument("--seconds", type=float, default=5.0, help="closed-loop simulated time")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    print(f"Load average (1/5/15 min): {os.getloadavg()}")

    robot = load_robot(RobotConfig())
    model = mjx.put_model(robot.model)
    ctrl = wbc.WholeBodyController(robot, WBCConfig())
    targets = wbc.home_targets(ctrl.layout)
    data = mjx.make_data(robot.model)

    # ---- latency: one env, warm-started tick after tick
    print(f"WBC tick latency, one env, float32, max_iter {ctrl.config.max_iter}")
    print(
        f"{'states':<34s}{'median ms':>10s}{'p99 ms':>8s}{'max ms':>8s}{'iters med/p99/max':>20s}"
    )
    run = wbc.run_standing(robot, ctrl, args.seconds, PUSHES, start_noise=START_NOISE)
    standing = "stood" if robot.home_qpos[2] - run.heights.min() < 0.03 else "fell"
    latency_row(f"closed loop, 2 pushes ({standing})", run.tick_seconds, run.iterations)
    tick = jax.jit(lambda d, warm: ctrl(model, d, targets, warm))
    states = noisy_states(robot, data, jax.random.key(0), args.ticks + 1)
    # Two warm-up calls: jit compiles once for the uncommitted `init_state()` arrays and
    # once more for committed ones (a previous tick's output), as JAX keys on that.
    warm = ctrl.init_state()
    for _ in range(2):
        _, warm = jax.block_until_ready(tick(jax.tree.map(lambda x: x[0], states), warm))
    lat, iters = [], []
    for i in range(1, args.ticks + 1):
        d = jax.tree.map(lambda x, i=i: x[i], states)
        t0 = time.perf_counter()
        _, warm = jax.block_until_ready(tick(d, warm))
        lat.append(time.perf_counter() - t0)
        iters.append(int(warm.iterations))
    latency_row("independent noisy states", np.asarray(lat), np.asarray(iters))

    # ---- the same states' QPs, solve alone: mjxbot.qp against OSQP C with its setup
    build = jax.jit(lambda d: ctrl.build(model, d, targets))
    solve = jax.jit(ctrl.solve)
    qps = [build(jax.tree.map(lambda x, i=i: x[i], states)) for i in range(args.ticks + 1)]
    warm = ctrl.init_state()
    for _ in range(2):  # compiles, for uncommitted and committed warm starts (as above)
        _, warm = jax.block_until_ready(solve(qps[0], warm))
    lat, iters = [], []
    for qp in qps[1:]:
        t0 = time.perf_counter()
        _, warm = jax.block_until_ready(solve(qp, warm))
        lat.append(time.perf_counter() - t0)
        iters.append(int(warm.iterations))
    latency_row("  QP solve alone: mjxbot.qp", np.asarray(lat), np.asarray(iters))
    matrices = [tuple(np.asarray(a, np.float64) for a in qp[:5]) for qp in qps]
    osqp = osqp_ticks(matrices, ctrl.config.eps, ctrl.config.max_iter)
    if osqp is None:
        print("  QP solve alone: OSQP C skipped (the osqp package is not installed)")
    else:  # float64, as OSQP C has no float32 build on PyPI
        osqp_seconds, osqp_iterations = osqp[0][1:], osqp[1][1:]
        latency_row("  QP solve alone: OSQP C setup+solve", osqp_seconds, osqp_iterations)

    # ---- throughput: vmapped ticks vs vmapped mjx.step at the same batch
    batched_tick = jax.jit(jax.vmap(lambda d, w: ctrl(model, d, targets, w)))
    batched_step = jax.jit(jax.vmap(lambda d: mjx.step(model, d)))
    print(f"\n{'batch':>6s}{'ticks/s':>12s}{'mjx.step/s':>12s}{'tick / step':>13s}")
    for batch in args.batches:
        # Warm started from the solutions of other noisy states, as from a previous tick.
        previous = noisy_states(robot, data, jax.random.key(2 * batch), batch)
        cold = jax.vmap(lambda _: ctrl.init_state())(jnp.arange(batch))
        _, w = batched_tick(previous, cold)
        d = noisy_states(robot, data, jax.random.key(2 * batch + 1), batch)
        t_tick = np.median(timed(batched_tick, d, w, repeats=args.repeats))
        t_step = np.median(timed(batched_step, d, repeats=args.repeats))
        print(f"{batch:6d}{batch / t_tick:12,.0f}{batch / t_step:12,.0f}{t_tick / t_step:13.2f}")


if __name__ == "__main__":
    main()
