"""Numerical faults: envs blown up by absurd pushes are reset and counted, training goes
on with finite losses and parameters (README, "Guarantees under faults").

In-process on conftest's mini biped (`MINI_CONFIGS` + `MINI_SETS`): the guards are
the trainer's, whatever the robot; the push magnitudes are constants of the traced
step, so this run compiles a program of its own.
"""

from __future__ import annotations

import math

import numpy as np
from conftest import MINI_CONFIGS, MINI_SETS, ROOT, STEPS_PER_IT, TOTAL_STEPS

from mjxbot.training import config as tconfig


def _all_finite(tree) -> bool:
    import jax

    return all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(tree))


def test_absurd_pushes_blow_up_envs_but_training_goes_on(tmp_path):
    import orbax.checkpoint as ocp

    from mjxbot.training import Checkpointer
    from mjxbot.training.loop import train

    absurd = [
        "env.disturbances.push.enabled=true",
        "env.robot.push_bodies=[pelvis]",
        "env.disturbances.push.force=[1000.0, 1.0e+12]",
        "env.disturbances.push.interval=[0.02, 0.3]",
    ]
    config = tconfig.load([ROOT / path for path in MINI_CONFIGS], [*MINI_SETS, *absurd])
    config = tconfig.resolve_auto(config, "cpu")
    records = []
    ckpt = Checkpointer(tmp_path / "checkpoints", 1)
    _, params, _ = train(
        config, checkpointer=ckpt, progress_fn=lambda _, m: records.append(m), evaluate=False
    )
    ckpt.close()
    resets = [r["env/nonfinite_resets_total"] + r["env/diverged_resets_total"] for r in records]
    assert len(records) == TOTAL_STEPS // STEPS_PER_IT  # every iteration ran
    assert resets[-1] > 0, resets  # some envs blew up (NaN or diverged), were reset and counted
    bound = config.env.guard.max_reward
    assert all(r["reward/max_abs"] <= bound for r in records)  # none of it reached PPO
    for r in records:
        losses = {k: v for k, v in r.items() if k.startswith(("loss/", "reward/total"))}
        assert all(math.isfinite(v) for v in losses.values()), losses
    state = ocp.StandardCheckpointer().restore(
        tmp_path / "checkpoints" / str(TOTAL_STEPS) / "state"
    )
    assert _all_finite(params) and _all_finite(state)  # params, normalizer, Adam moments
