"""Where nut_station cycles fail: by phase per side, and by disturbance, policy vs scripted.

    JAX_PLATFORMS=cpu python benchmarks/nut_station_failures.py policies/nut_station \
        --episodes 1024 --seed 1234

One cycle per env, the policy and the scripted controller (the residual env's
zero action) from the same reset keys as `eval.py --seed` (`eval_keys`). Each
actor runs in a batch of its own, where `eval.py` runs both in one: on 1,024
cycles of seed 1234 the counts differed from `eval.py`'s by 3 (policy) and 1
(scripted). Each side that is not seated at takt gets one phase, the first
that applies:

- `fell`: the robot fell during the cycle;
- `never grasped`: the gripper never held the nut;
- `dropped`: the nut went below `drop_height`;
- `held at takt`: still in the gripper when the cycle ended (the release
  conditions of the scripted controller, `release_checks`, that were not met
  at the end are counted: position, height, yaw, tilt; and when the nut was
  first grasped);
- `released, not seated`: let go at the seat but outside a tolerance (the
  tolerances it misses are counted: position, yaw, tilt, moving).

With `--cycles K` each env runs K cycles back to back in continuous
operation (`env.continuous`, as `eval.py --shift-hours`: the robot carries on
into the next cycle's fresh scene, a fall resets it), and every cycle counts.

    JAX_PLATFORMS=cpu python benchmarks/nut_station_failures.py policies/nut_station \
        --episodes 64 --cycles 8 --seed 1234

The disturbance table gives the dual-side failure rate of each actor per
bucket: pushes started in the cycle, magnet strength, the nut's tilt in the
feeder and its yaw off the nearest gripper tooth, split at terciles.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from brax import math as brax_math  # noqa: E402

from mjxbot.disturbances import set_curriculum  # noqa: E402
from mjxbot.envs.nut_station.scripted import release_checks  # noqa: E402
from mjxbot.envs.nut_station.success import heading, symmetric_angle  # noqa: E402
from mjxbot.evaluation.episodes import eval_keys  # noqa: E402
from mjxbot.evaluation.metrics import wilson_interval  # noqa: E402
from mjxbot.evaluation.source import (  # noqa: E402
    check_policy_fits,
    check_task,
    load_source,
    task_config,
)
from mjxbot.registry import load_env  # noqa: E402

PHASES = ("fell", "never grasped", "dropped", "held at takt", "released, not seated")
MISSES = ("position", "yaw", "tilt", "moving")
UNRELEASED = ("position", "height", "yaw", "tilt")


def cycle_outcomes(
    env, act, params, keys: jax.Array, use_policy: bool, cycles: int = 1
) -> dict[str, np.ndarray]:
    """What the cycles of `[B]` envs, `cycles` each, ended with: `[N]` or per side `[N, 2]`
    arrays over the `N` cycles of envs that had not fallen in an earlier one.

    The scene is read one step before the cycle's end (its last step
    auto-resets the env, or with `env.config.continuous` carries the robot
    into the next cycle); the seated flags come from the last step's metrics.
    """
    cfg = env.config

    def step(state, _):
        action = jnp.zeros((keys.shape[0], env.action_size))
        if use_policy:
            action = act(params, state.obs)
        state = jax.vmap(env.step)(state, action)
        held = jax.vmap(lambda d: env.scene(d)["held"])(state.data)
        return state, (held, state.metrics["falls"])

    def nut_speeds(data) -> tuple[jax.Array, jax.Array]:
        qvel = jnp.stack([data.qvel[:, int(a) : int(a) + 6] for a in env.nut_dofs], 1)
        return jnp.linalg.norm(qvel[..., :3], axis=-1), jnp.linalg.norm(qvel[..., 3:], axis=-1)

    def cycle(state, _):
        start = state.info
        pushes_before = state.metrics["disturbance/pushes"]  # a cumulative counter
        state, (held, falls) = jax.lax.scan(step, state, None, length=cfg.episode_length - 1)
        scene = jax.vmap(env.scene)(state.data)
        speed, spin = nut_speeds(state.data)
        last, _ = step(state, None)
        spawn = jax.vmap(jax.vmap(brax_math.quat_to_3x3))(start["nut_spawn_quat"])  # [B, 2, 3, 3]
        yaw_off = symmetric_angle(jax.vmap(jax.vmap(heading))(spawn), cfg.spline_teeth)
        yaw_error = symmetric_angle(scene["nut_yaw"] - scene["seat_yaw"], cfg.spline_teeth)
        checks = jax.vmap(jax.vmap(lambda *a: release_checks(cfg, *a)))(
            scene["nut"], scene["seat"], -yaw_error, scene["tilt"]
        )
        outcome = {
            "seated": jnp.stack([last.metrics["success/left"], last.metrics["success/right"]], 1),
            "fell": jnp.maximum(jnp.max(falls, 0), last.metrics["falls"]) > 0,
            "ever_held": jnp.any(held > 0, axis=0),
            "grasped_at": jnp.argmax(held > 0, axis=0) * cfg.ctrl_dt,
            **{f"release_{k}": ~v for k, v in checks.items()},
            "held_end": scene["held"] > 0,
            "dropped": state.info["dropped"] > 0,
            "position": jnp.linalg.norm(scene["nut"] - scene["seat"], axis=-1)
            > cfg.position_tolerance,
            "yaw": jnp.abs(yaw_error) > cfg.yaw_tolerance,
            "tilt": scene["tilt"] > cfg.tilt_tolerance,
            "moving": (speed > cfg.max_nut_speed) | (spin > cfg.max_nut_spin),
            "pushes": last.metrics["disturbance/pushes"] - pushes_before,
            "magnet": start["magnet"],
            "feeder_tilt": jnp.degrees(jnp.arccos(jnp.clip(spawn[..., 2, 2], -1, 1))).max(-1),
            "feeder_yaw": jnp.degrees(jnp.abs(yaw_off)).max(-1),
        }
        return last, outcome

    def run(keys):
        # Every disturbance at full strength, as in eval.py.
        state = set_curriculum(jax.vmap(env.reset)(keys), jnp.ones(keys.shape[0]))
        return jax.lax.scan(cycle, state, None, length=cycles)[1]

    out = {k: np.asarray(v) for k, v in jax.device_get(jax.jit(run)(keys)).items()}
    # A fall resets the env mid-cycle, so that env's later windows no longer line up with its
    # cycles: each env counts up to and including the cycle it first fell in.
    fell = out["fell"]  # [cycles, B]
    standing = np.cumsum(fell, axis=0) - fell == 0
    return {k: v[standing] for k, v in out.items()}


def side_phases(o: dict[str, np.ndarray]) -> np.ndarray:
    """`[B, 2]` index into `PHASES` of each unseated side, -1 where seated."""
    fell = np.broadcast_to(o["fell"][:, None], o["seated"].shape)
    conditions = [fell, ~o["ever_held"], o["dropped"], o["held_end"], np.ones_like(fell)]
    phase = np.select(conditions, np.arange(len(PHASES)))
    return np.where(o["seated"] > 0, -1, phase)


def phase_table(outcomes: dict[str, dict[str, np.ndarray]]) -> None:
    """Unseated sides per phase for each actor, and the tolerances missed at release."""
    actors = list(outcomes)
    print(f"{'unseated sides by phase':<28s}" + "".join(f"{a:>12s}" for a in actors))
    phases = {a: side_phases(o) for a, o in outcomes.items()}
    for i, name in enumerate(PHASES):
        print(f"{name:<28s}" + "".join(f"{int(np.sum(phases[a] == i)):>12d}" for a in actors))
    print(f"{'  of which missed:':<28s}")
    for miss in MISSES:
        counts = [np.sum((phases[a] == len(PHASES) - 1) & outcomes[a][miss]) for a in actors]
        print(f"{'    ' + miss:<28s}" + "".join(f"{int(c):>12d}" for c in counts))
    held = len(PHASES) - 2
    print(f"{'  held at takt, not met:':<28s}")
    for check in UNRELEASED:
        counts = [np.sum((phases[a] == held) & outcomes[a][f"release_{check}"]) for a in actors]
        print(f"{'    ' + check:<28s}" + "".join(f"{int(c):>12d}" for c in counts))
    print(f"{'first grasp (s), mean:':<28s}")
    for label, which in (("    seated sides", -1), ("    held at takt", held)):
        times = [outcomes[a]["grasped_at"][phases[a] == which] for a in actors]
        cells = [f"{t.mean():>12.2f}" if t.size else f"{'-':>12s}" for t in times]
        print(f"{label:<28s}" + "".join(cells))
    totals = [int(np.sum(phases[a] >= 0)) for a in actors]
    print(f"{'all unseated sides':<28s}" + "".join(f"{t:>12d}" for t in totals))


def _buckets(values: np.ndarray, key: str, name: str, unit: str) -> list[tuple[str, Callable]]:
    """Tercile buckets of a continuous disturbance `key` (one when it is constant): `(label,
    outcomes -> mask)`, the edges from `values`."""
    if np.ptp(values) == 0:
        return [(f"{name} {values[0]:.3g} {unit}", lambda o: np.ones(o[key].shape, bool))]
    lo, hi = np.quantile(values, [1 / 3, 2 / 3])
    return [
        (f"{name} <= {lo:.3g} {unit}", lambda o: o[key] <= lo),
        (f"{name} ({lo:.3g}, {hi:.3g}]", lambda o: (o[key] > lo) & (o[key] <= hi)),
        (f"{name} > {hi:.3g} {unit}", lambda o: o[key] > hi),
    ]


def disturbance_table(outcomes: dict[str, dict[str, np.ndarray]]) -> None:
    """Dual-side failures / cycles per disturbance bucket, tercile edges from the first actor's
    cycles (the same cycles for every actor, except after a fall in continuous operation)."""
    o = next(iter(outcomes.values()))
    buckets = [
        ("no push", lambda o: o["pushes"] == 0),
        ("1 push", lambda o: o["pushes"] == 1),
        ("2+ pushes", lambda o: o["pushes"] >= 2),
        *_buckets(o["magnet"], "magnet", "magnet", "N"),
        *_buckets(o["feeder_tilt"], "feeder_tilt", "feeder tilt", "deg"),
        *_buckets(o["feeder_yaw"], "feeder_yaw", "feeder yaw off tooth", "deg"),
    ]
    actors = list(outcomes)
    print(f"{'dual-side failures / cycles':<36s}" + "".join(f"{a:>14s}" for a in actors))
    for label, bucket in buckets:
        cells = []
        for a in actors:
            mask = bucket(outcomes[a])
            failed = ~np.all(outcomes[a]["seated"] > 0, axis=1)
            cells.append(f"{int(np.sum(failed & mask))}/{int(mask.sum())}")
        print(f"{label:<36s}" + "".join(f"{c:>14s}" for c in cells))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("policy", type=Path, help="a train.py run directory or a policy export")
    p.add_argument("--episodes", type=int, default=1024)
    p.add_argument("--seed", type=int, default=1234, help="as eval.py --seed")
    p.add_argument(
        "--cycles", type=int, default=1, help="cycles per env; above 1, in continuous operation"
    )
    args = p.parse_args()
    if args.episodes < 1 or args.cycles < 1:
        p.error("--episodes and --cycles must be at least 1")

    source = load_source(args.policy)
    task = check_task(source, None)
    cfg = task_config(source, task)
    env = load_env(task, dataclasses.replace(cfg, continuous=args.cycles > 1))
    check_policy_fits(source, env, task)
    act, params = source.load()
    keys = eval_keys(args.seed, args.episodes)
    outcomes = {
        actor: cycle_outcomes(env, act, params, keys, actor == "policy", args.cycles)
        for actor in ("policy", env.zero_action_actor)
    }
    mode = ""
    if args.cycles > 1:
        mode = f" x {args.cycles} continuous cycles, up to each env's first fall"
    print(f"{task}: {args.episodes} envs per actor{mode}, seed {args.seed}, default disturbances")
    for actor, o in outcomes.items():
        n = o["fell"].shape[0]
        dual = int(np.sum(np.all(o["seated"] > 0, axis=1)))
        lo, hi = wilson_interval(dual, n)
        print(f"{actor}: dual-side success {dual}/{n} = {dual / n:.3f} [{lo:.3f}, {hi:.3f}]")
    phase_table(outcomes)
    disturbance_table(outcomes)


if __name__ == "__main__":
    main()
