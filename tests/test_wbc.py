"""Whole-body QP: dynamics consistency, cones and limits, QP-only standing, training.

The formulation test runs in float64 (`jax.enable_x64` inside the test only) at tight
tolerance; the standing test drives MuJoCo C (`mj_step`) with the jitted float32 controller
tick (one compile) so 5 s of simulated time cost seconds; a tiny `train.py` run trains with
the QP in the loop. The MJX env with `controller="qp"` (standing from the reset noise, and
against the PD hold under `balance`'s pushes) is tested in test_tasks.py.
"""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import TINY, TOTAL_STEPS, metrics, run_train
from mujoco import mjx

from mjxbot import qp as qpsolver
from mjxbot import wbc
from mjxbot.errors import ConfigError
from mjxbot.robot import RobotConfig, load_robot
from mjxbot.training import config as tconfig
from mjxbot.wbc.config import WBCConfig

DYNAMICS_TOL = 1e-5  # N or N m: |M qacc + c - S tau - J'f|_inf at the tight settings
CONE_TOL = 1e-3  # N: friction pyramid, unilateral and inactive forces (weight: 510 N)
TORQUE_TOL = 1e-4  # N m: unclipped torques within the actuator limits
HEIGHT_DROP_TOL = 0.03  # m: torso height below home while standing / after pushes
N_RANDOM_STATES = 6
START_NOISE = 0.005  # rad: joint offsets from `home` at the start of the standing test
FEET_DRIFT_TOL = 0.01  # m: foot travel over the standing test
RELEASE_TOL = 0.1  # N: planned load on a released foot (eps 1e-3 of the 64 N force unit)


@pytest.fixture(scope="module")
def robot():
    return load_robot(RobotConfig())


def _random_states(robot, n, seed=0):
    rng = np.random.default_rng(seed)
    nu = robot.nu
    qpos = np.tile(robot.home_qpos, (n, 1))
    qpos[:, robot.qpos_adr] += rng.uniform(-0.15, 0.15, (n, nu))
    qpos[:, 2] += rng.uniform(-0.01, 0.03, n)  # some sole points lift off
    qvel = np.zeros((n, robot.model.nv))
    qvel[:, :6] = rng.uniform(-0.3, 0.3, (n, 6))
    qvel[:, robot.qvel_adr] = rng.uniform(-1.0, 1.0, (n, nu))
    return qpos, qvel


def test_dynamics_equation_cones_and_limits(robot):
    with jax.enable_x64(True):
        mx = mjx.put_model(robot.model)
        ctrl = wbc.WholeBodyController(robot, WBCConfig(), settings=wbc.TIGHT_SETTINGS)
        lay = ctrl.layout
        data0 = mjx.make_data(robot.model)
        targets = wbc.home_targets(lay)
        targets = targets.replace(posture=jnp.asarray(targets.posture, jnp.float64))

        def one(qpos, qvel):
            d = wbc.dynamics_terms(mx, data0.replace(qpos=qpos, qvel=qvel))
            qp = wbc.build_qp(mx, d, lay, ctrl.config, targets)
            sol = qpsolver.solve(qp.P, qp.q, qp.A, qp.l, qp.u, settings=ctrl.settings)
            nr = lay.nr
            tau_raw = qp.M_act @ sol.x[:nr] + qp.c_act - qp.Jt_act @ sol.x[nr:]
            points, _ = wbc.contact_points(lay, d)
            jacp = jax.vmap(lambda p, b: mjx.jac(mx, d, p, b)[0])(
                points, jnp.asarray(lay.contact_bodies)
            )  # [nc, nv, 3]
            M = mjx.full_m(mx, d)
            c = d.qfrc_bias - d.qfrc_passive
            return dict(
                status=sol.status,
                qacc=jnp.zeros(mx.nv).at[lay.dofs].set(sol.x[:nr]),
                tau=wbc.torques(qp, sol.x, lay),
                tau_raw=tau_raw,
                f=wbc.contact_forces(sol.x, lay),
                jacp=jacp,
                M=M,
                c=c,
                active=qp.active,
                mu=wbc.friction(mx, lay),
            )

        qpos, qvel = _random_states(robot, N_RANDOM_STATES)
        out = jax.jit(jax.vmap(one))(jnp.asarray(qpos), jnp.asarray(qvel))
        out = jax.tree.map(np.asarray, out)

    assert (out["status"] == qpsolver.SOLVED).all(), out["status"]
    assert 0 < out["active"].sum() < out["active"].size, "want states with and without contact"
    for k in range(N_RANDOM_STATES):
        s_tau = np.zeros(robot.model.nv)
        s_tau[robot.qvel_adr] = out["tau"][k]
        jtf = np.einsum("cvi,ci->v", out["jacp"][k], out["f"][k])
        residual = out["M"][k] @ out["qacc"][k] + out["c"][k] - s_tau - jtf
        worst = int(np.argmax(np.abs(residual)))
        assert np.abs(residual).max() < DYNAMICS_TOL, (
            f"state {k}: dynamics residual {residual[worst]:.2e} at dof {worst}"
        )
    f, mu = out["f"], out["mu"][:, :, None] / np.sqrt(2.0)
    assert (f[..., 2] >= -CONE_TOL).all(), f"normal force {f[..., 2].min():.2e} N"
    assert (np.abs(f[..., :2]) <= mu * f[..., 2:3] + CONE_TOL).all(), "friction pyramid violated"
    assert (np.abs(f[out["active"] == 0]) <= CONE_TOL).all(), "force on an inactive contact"
    lo, hi = robot.torque_limit[:, 0], robot.torque_limit[:, 1]
    assert (out["tau_raw"] >= lo - TORQUE_TOL).all() and (out["tau_raw"] <= hi + TORQUE_TOL).all()


def test_qp_only_stands_5s_and_recovers_from_pushes(robot):
    """MuJoCo C physics, the float32 controller tick jitted once; pushes on the torso."""
    ctrl = wbc.WholeBodyController(robot, WBCConfig())
    # 8 N s and 6 N s impulses from two directions; the last one ends 1.9 s before the end.
    pushes = (wbc.TorsoPush(1.5, 0.1, (80.0, 0.0, 0.0)), wbc.TorsoPush(3.0, 0.1, (0.0, -60.0, 0.0)))
    run = wbc.run_standing(robot, ctrl, 5.0, pushes, start_noise=START_NOISE)
    assert run.compiles == 1, "the controller tick recompiled"
    drop = robot.home_qpos[2] - run.heights.min()
    assert drop < HEIGHT_DROP_TOL, f"torso dropped {drop:.3f} m"
    assert run.upright > np.cos(0.1), f"torso tilted: cos {run.upright:.3f}"
    assert run.final_speed < 0.05, "not at rest 1.9 s after the last push"
    assert run.feet_drift < FEET_DRIFT_TOL, f"feet moved {run.feet_drift:.3f} m"


def test_the_config_sets_the_ruiz_passes_of_each_tick():
    assert wbc.control_settings(WBCConfig()).warm_scaling == 1
    scratch = wbc.control_settings(WBCConfig(scaling=2, warm_scaling=None))
    assert (scratch.scaling, scratch.warm_scaling) == (2, None)


def test_robot_without_hands_gets_a_controller_without_hand_tasks():
    handless = load_robot(RobotConfig(hands=()))
    ctrl = wbc.WholeBodyController(handless, WBCConfig())
    assert ctrl.layout.hand_ids.shape == (0,)
    action = jnp.zeros(ctrl.action_size).at[12].set(1.0)  # after 6 task and 6 foot entries
    targets = ctrl.targets(action)
    assert targets.hands.shape == (0, 3)
    first = ctrl.layout.residual_idx[0]
    residual = targets.posture[first] - ctrl.layout.home_q[first]
    assert residual == pytest.approx(WBCConfig().residual_range)
    with pytest.raises(ConfigError, match="match fewer joints with wbc.residual_joints"):
        wbc.WholeBodyController(handless, WBCConfig(residual_joints="."))


def test_swing_entries_lift_one_foot_at_most(robot):
    ctrl = wbc.WholeBodyController(robot, WBCConfig())
    k = 6 + 3 * len(ctrl.layout.hand_ids)  # left foot's entries k:k+3, right foot's k+3:k+6
    zero = jnp.zeros(ctrl.action_size)
    assert ctrl.targets(zero).swing.tolist() == [0.0, 0.0]
    below = zero.at[k].set(0.9 * WBCConfig().swing_threshold)
    assert ctrl.targets(below).swing.tolist() == [0.0, 0.0]
    both = zero.at[k].set(0.8).at[k + 3].set(0.9).at[k + 4].set(-0.5)
    targets = ctrl.targets(both)
    assert targets.swing.tolist() == [0.0, 1.0]
    assert targets.feet[1, 0] == pytest.approx(-0.5 * WBCConfig().step_range)


def test_a_commanded_step_releases_lifts_and_lands_the_foot(robot):
    """Left foot: 0.25 s of swing toward 0.1 m behind its place, then stance again."""
    config = WBCConfig()
    ctrl = wbc.WholeBodyController(robot, config)
    k = 6 + 3 * len(ctrl.layout.hand_ids)
    step_back = -0.1 / config.step_range
    stepping = ctrl.targets(jnp.zeros(ctrl.action_size).at[k].set(1.0).at[k + 1].set(step_back))
    home = wbc.home_targets(ctrl.layout)
    swing = (0.2, 0.45)  # s

    run = wbc.run_standing(
        robot, ctrl, 2.0, targets_at=lambda t: stepping if swing[0] <= t < swing[1] else home
    )
    dt = robot.model.opt.timestep
    during = slice(round(swing[0] / dt), round(swing[1] / dt))
    left_z0 = run.feet[0, 0, 2]
    assert run.compiles == 1
    assert np.abs(run.planned_load[during, 0]).max() < RELEASE_TOL  # contacts released
    assert run.feet[during, 0, 2].max() > left_z0 + 0.6 * config.swing_height  # lifted
    assert run.feet[-1, 0, 0] < run.feet[0, 0, 0] - 0.06  # landed well behind
    assert abs(run.feet[-1, 0, 2] - left_z0) < 0.005  # back on the floor
    assert run.planned_load[-1, 0] > 0.2 * robot.model.body_mass.sum() * 9.81  # bears load
    assert run.heights.min() > run.heights[0] - HEIGHT_DROP_TOL
    assert run.upright > 0.99


def test_training_with_the_qp_in_the_loop(cache, tmp_path):
    """train.py with `env.controller=qp`: the same trainer, one compile, QP-only baseline."""
    run = tmp_path / "run"
    qp = ["--set", "env.controller=qp", "--set", "env.wbc.rate=control"]
    proc = run_train(cache, *TINY, *qp, "--run-dir", str(run))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert tconfig.from_yaml_text((run / "config.yaml").read_text()).env.controller == "qp"
    assert [r["step"] for r in metrics(run) if "time/sps" in r][-1] == TOTAL_STEPS
    assert json.loads((run / "run_info.json").read_text())["train_step_traces"] == 1
    evals = json.loads((run / "eval.json").read_text())["results"]
    for actor in ("policy", "qp_only"):
        assert np.isfinite(evals[actor]["mean_return"]), actor
    assert evals["qp_only"]["qp_latency_ms"] > 0  # the closing evaluation runs on the QP env
    assert "policy vs QP only" in proc.stdout
