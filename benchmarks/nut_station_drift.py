"""Where the robot stands at each cycle boundary of shift mode, and the success per cycle.

    JAX_PLATFORMS=cpu python benchmarks/nut_station_drift.py --stations 16 --cycles 10

The scripted controller (the residual config's zero action) at `--stations` stations in
continuous operation (`env.continuous=true`: a time-out carries the robot into the next
cycle, a fall restarts it), every default disturbance on. At the end of each cycle it
prints, over the stations that have not fallen yet, how far the pelvis, the feet's
midpoint and each foot (horizontal) are from where the station's first cycle started,
the pelvis against the feet, the pelvis's turn about the vertical, the arms' largest
joint offset from home and largest joint speed (mean over stations), and the dual-side
success of that cycle. The first cycle starts from
a reset, as every cycle of `eval.py` without `--shift-hours` does; the later ones start
where the last one ended.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from mjxbot.registry import load_env  # noqa: E402
from mjxbot.training import config as tconfig  # noqa: E402

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "nut_station_residual.yaml"


def shift_trace(env, stations: int, cycles: int, seed: int) -> dict[str, np.ndarray]:
    """Zero-action steps over `cycles` cycles: per step `[T, B, ...]` pelvis xy, feet xy
    `[T, B, 2, 2]`, pelvis yaw, the arms' largest joint offset from home and joint speed,
    `done`, truncation and dual-side success."""
    feet, torso = jnp.asarray(env.robot.foot_ids), env.robot.torso_id
    success = env.task_metrics.success
    arms = np.concatenate(env.arm_actuators)
    qpos_adr, qvel_adr = env.robot.qpos_adr[arms], env.robot.qvel_adr[arms]
    home = env.robot.home_joint_targets[arms]

    def run(keys):
        state = jax.vmap(env.reset)(keys)

        def body(s, _):
            s = jax.vmap(env.step)(s, jnp.zeros((stations, env.action_size)))
            xy, rot = s.data.xpos[..., :2], s.data.xmat[:, torso]
            yaw = jnp.arctan2(rot[:, 1, 0], rot[:, 0, 0])
            arm_offset = jnp.abs(s.data.qpos[:, qpos_adr] - home).max(-1)
            arm_speed = jnp.abs(s.data.qvel[:, qvel_adr]).max(-1)
            return s, (xy[:, torso], xy[:, feet], yaw, arm_offset, arm_speed, s.done,
                       s.info["truncation"], s.metrics[success])  # fmt: skip

        steps = env.config.episode_length * cycles
        return jax.lax.scan(body, state, None, length=steps)[1]

    keys = jax.random.split(jax.random.key(seed), stations)
    names = ("pelvis", "feet", "yaw", "arm_offset", "arm_speed", "done", "truncation", "success")
    return dict(zip(names, map(np.asarray, jax.jit(run)(keys)), strict=True))


def print_table(trace: dict[str, np.ndarray], cycle_steps: int) -> None:
    fell = (trace["done"] > 0) & (trace["truncation"] == 0)
    pelvis, feet, yaw = trace["pelvis"], trace["feet"], trace["yaw"]
    mid = feet.mean(axis=2)
    # Each station's start: the first step's state (one control step after the reset).
    offset0 = pelvis[0] - mid[0]
    print("| cycle | stations standing | pelvis drift mean / max (mm) | feet' midpoint drift "
          "mean / max (mm) | each foot's drift mean / max (mm) | pelvis over feet, off its "
          "start (mm) | pelvis turn mean / max (deg) | arm joint off home (rad) | arm joint speed "
          "(rad/s) | dual-side success |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    for c, end in enumerate(range(cycle_steps - 1, len(pelvis), cycle_steps)):
        up = ~fell[: end + 1].any(axis=0)
        if not up.any():
            break
        d_pelvis = np.linalg.norm(pelvis[end] - pelvis[0], axis=-1)[up] * 1e3
        d_mid = np.linalg.norm(mid[end] - mid[0], axis=-1)[up] * 1e3
        d_foot = np.linalg.norm(feet[end] - feet[0], axis=-1)[up] * 1e3
        lean = np.linalg.norm(pelvis[end] - mid[end] - offset0, axis=-1)[up] * 1e3
        turn = np.degrees(np.abs(np.angle(np.exp(1j * (yaw[end] - yaw[0])))))[up]
        won = trace["success"][end][up]
        # The last step before the carry: the step at `end` already starts the next cycle.
        arm_offset, arm_speed = trace["arm_offset"][end - 1][up], trace["arm_speed"][end - 1][up]
        print(
            f"| {c + 1} | {up.sum()}/{up.size} | {d_pelvis.mean():.1f} / {d_pelvis.max():.1f} | "
            f"{d_mid.mean():.1f} / {d_mid.max():.1f} | {d_foot.mean():.1f} / {d_foot.max():.1f} | "
            f"{lean.mean():.1f} | {turn.mean():.2f} / {turn.max():.2f} | "
            f"{arm_offset.mean():.2f} | {arm_speed.mean():.2f} | {int(won.sum())}/{won.size} |"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--stations", type=int, default=16)
    p.add_argument("--cycles", type=int, default=10)
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args()
    config = tconfig.load([CONFIG], ["env.continuous=true"])
    env = load_env(config.env_name, config.env)
    trace = shift_trace(env, args.stations, args.cycles, args.seed)
    print_table(trace, env.config.episode_length)


if __name__ == "__main__":
    main()
