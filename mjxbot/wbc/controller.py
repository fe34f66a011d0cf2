"""The whole-body QP controller: policy actions -> task targets -> QP -> torques."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from mujoco import mjx

from mjxbot import qp as qpsolver
from mjxbot.robot import Robot
from mjxbot.wbc.config import WBCConfig
from mjxbot.wbc.layout import Layout, make_layout
from mjxbot.wbc.problem import QPData, TaskTargets, build_qp, dynamics_terms, torques


def control_settings(config: WBCConfig) -> qpsolver.QPSettings:
    """Solver settings of the control loop: iterate to `eps` (at most `max_iter`), or a
    fixed budget of `iterations`; no polishing."""
    return qpsolver.QPSettings(
        eps_abs=config.eps,
        eps_rel=config.eps,
        max_iter=config.max_iter,
        fixed_iterations=config.iterations,
        scaling=config.scaling,
        warm_scaling=config.warm_scaling,
        adaptive_rho_interval=20,
        check_dualgap=False,
    )


TIGHT_SETTINGS = qpsolver.QPSettings(
    eps_abs=1e-7, eps_rel=1e-7, max_iter=20000, check_dualgap=False, polish=True
)
"""Settings to verify the formulation (tests): solved to 1e-7, then polished."""


class WholeBodyController:
    """Jittable whole-body QP controller of one humanoid (methods are pure; vmap freely).

    Args:
      robot: the loaded robot.
      config: WBC settings.
      settings: QP solver settings; `control_settings(config)` by default.
    """

    def __init__(
        self, robot: Robot, config: WBCConfig, settings: qpsolver.QPSettings | None = None
    ):
        self.config = config
        self.layout: Layout = make_layout(robot, config)
        self.settings = settings if settings is not None else control_settings(config)

    # ---------------------------------------------------------------- actions
    @property
    def action_size(self) -> int:
        """The policy's action size (equal to `nu`, so PD and QP policies are interchangeable)."""
        return self.layout.nu

    def targets(self, action: jax.Array) -> TaskTargets:
        """Maps an action in `[-1, 1]^nu` to task targets; zero action holds `home`.

        Layout: `[0]` base height offset, `[1:4]` torso roll, pitch, yaw offsets,
        `[4:6]` CoM x, y offset, then 3 per hand (torso-frame offset), then 3 per
        foot (swing entry, step target x, y), then a posture residual on the
        `wbc.residual_joints` joints; any entries left over are ignored. Ranges
        are the `*_range` fields of `WBCConfig`. A foot swings while its entry is
        above `wbc.swing_threshold`, and only the foot with the larger entry.
        """
        cfg, lay = self.config, self.layout
        a = jnp.clip(action, -1.0, 1.0)
        nh, nf = len(lay.hand_ids), len(lay.foot_ids)
        k = 6 + 3 * nh
        feet = a[k : k + 3 * nf].reshape(nf, 3)
        k += 3 * nf
        wants = feet[:, 0] > cfg.swing_threshold
        swing = wants & (jnp.arange(nf) == jnp.argmax(feet[:, 0]))
        residual = a[k : k + len(lay.residual_idx)] * cfg.residual_range
        posture = jnp.asarray(lay.home_q, a.dtype).at[lay.residual_idx].add(residual)
        return TaskTargets(
            height=a[0] * cfg.height_range,
            orientation=a[1:4] * cfg.orientation_range,
            com=a[4:6] * cfg.com_range,
            hands=a[6 : 6 + 3 * nh].reshape(nh, 3) * cfg.hand_range,
            swing=swing.astype(a.dtype),
            feet=feet[:, 1:] * cfg.step_range,
            posture=posture,
        )

    # ----------------------------------------------------------------- solver
    def init_state(self, dtype=jnp.float32) -> qpsolver.QPSolution:
        """A zero warm start (equivalent to a cold start) with the solver's initial rho."""
        n, m = self.layout.n_var, self.layout.n_con
        zi = jnp.zeros((), jnp.int32)
        return qpsolver.QPSolution(
            x=jnp.zeros(n, dtype),
            y=jnp.zeros(m, dtype),
            z=jnp.zeros(m, dtype),
            status=zi,
            iterations=zi,
            prim_res=jnp.zeros((), dtype),
            dual_res=jnp.zeros((), dtype),
            obj_val=jnp.zeros((), dtype),
            rho=jnp.asarray(self.settings.rho, dtype),
            polished=jnp.zeros((), bool),
            refactorizations=zi,
            D=jnp.ones(n, dtype),
            E=jnp.ones(m, dtype),
            c=jnp.ones((), dtype),
        )

    def build(self, model: mjx.Model, data: mjx.Data, targets: TaskTargets) -> QPData:
        """Recomputes the dynamics terms of `data` and builds its QP."""
        return build_qp(model, dynamics_terms(model, data), self.layout, self.config, targets)

    def solve(
        self, qp: QPData, warm: qpsolver.QPSolution | None
    ) -> tuple[jax.Array, qpsolver.QPSolution]:
        """Solves `qp` warm-started from `warm`; returns `([nu] torques, solution)`."""
        sol = qpsolver.solve(qp.P, qp.q, qp.A, qp.l, qp.u, settings=self.settings, init=warm)
        x = jnp.where(jnp.all(jnp.isfinite(sol.x)), sol.x, jnp.zeros_like(sol.x))
        return torques(qp, x, self.layout), sol

    def __call__(
        self,
        model: mjx.Model,
        data: mjx.Data,
        targets: TaskTargets,
        warm: qpsolver.QPSolution | None = None,
    ) -> tuple[jax.Array, qpsolver.QPSolution]:
        """One tick, build plus solve: `([nu] torques, solution to warm-start the next tick)`."""
        return self.solve(self.build(model, data, targets), warm)

    def reset_warm(self, sol: qpsolver.QPSolution) -> qpsolver.QPSolution:
        """Drops a non-finite warm start (keeps shapes)."""
        ok = jnp.all(jnp.isfinite(sol.x)) & jnp.all(jnp.isfinite(sol.y))
        return jax.tree.map(lambda a, b: jnp.where(ok, a, b), sol, self.init_state(sol.x.dtype))
