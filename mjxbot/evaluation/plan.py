"""Who runs where: the checked source, the task's envs per controller, the actors, the seeds.

`make_plan` does every check that needs no compile (task, disturbances,
policy sizes against the env) before any param is restored.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import jax

from mjxbot.env import HumanoidEnv
from mjxbot.env.control import ZERO_ACTION_ACTORS
from mjxbot.evaluation.rollout import POLICY, ActFn
from mjxbot.evaluation.source import (
    Source,
    check_policy_fits,
    check_task,
    disturbances_from,
    load_source,
    task_config,
)
from mjxbot.registry import load_env

CPU_EPISODES = 32
GPU_EPISODES = 1024
DEFAULT_SEED = 1234  # an export carries no eval.seed


@dataclasses.dataclass
class Plan:
    """An evaluation's setup.

    Attributes:
      source: what is evaluated.
      task: the task.
      base: the task's env config with the chosen disturbances.
      controller: controller of the policy's env.
      envs: controller -> env; the policy's first.
      actors: actor (`policy`, or an env's `zero_action_actor`) -> controller of its env.
      unavailable: actor -> why it is not evaluated.
      episodes: envs per actor.
      seed: seed of the reset keys.
      act, params: the policy and its params.
      notes: what was skipped or approximated, and why (the report's `notes`).
    """

    source: Source
    task: str
    base: Any
    controller: str
    envs: dict[str, HumanoidEnv]
    actors: dict[str, str]
    unavailable: dict[str, str]
    episodes: int
    seed: int
    act: ActFn
    params: Any
    notes: list[str]

    @property
    def main_env(self) -> HumanoidEnv:
        return self.envs[self.controller]

    @property
    def dt(self) -> float:
        return self.main_env.config.ctrl_dt

    def groups(self) -> dict[str, tuple[str, ...]]:
        """controller -> the actors on its env, the policy first."""
        by: dict[str, list[str]] = {}
        for actor, ctrl in self.actors.items():
            by.setdefault(ctrl, []).append(actor)
        return {ctrl: tuple(actors) for ctrl, actors in by.items()}

    def act_for(self, actors: tuple[str, ...]) -> ActFn | None:
        """The policy when `actors` include it; None for zero-action rows only."""
        return self.act if POLICY in actors else None


def _baseline_envs(task: str, base: Any, main_env: HumanoidEnv, baselines: set[str]):
    """`(actors, envs, unavailable)` with every requested baseline whose env builds."""
    controller = main_env.config.controller
    actors = {POLICY: controller}
    envs: dict[str, HumanoidEnv] = {controller: main_env}
    unavailable: dict[str, str] = {}
    for ctrl in ("pd", "qp"):
        if ctrl not in baselines:
            continue
        if ctrl not in envs:
            try:
                envs[ctrl] = load_env(task, dataclasses.replace(base, controller=ctrl))
            except Exception as e:  # noqa: BLE001 - a baseline that cannot be built is reported
                first = (str(e).strip().splitlines() or [""])[0][:200]
                why = f"cannot build the {ctrl} env: {type(e).__name__}: {first}"
                unavailable[ZERO_ACTION_ACTORS[ctrl]] = why
                continue
        actors[envs[ctrl].zero_action_actor] = ctrl
    return actors, envs, unavailable


def _episodes_and_seed(source: Source, episodes: int, seed: int | None) -> tuple[int, int]:
    """The flags', else the run's `eval.num_envs` / `eval.seed`, else defaults by hardware."""
    accelerated = jax.default_backend() in ("gpu", "cuda", "rocm", "tpu")
    run_eval = source.config.eval if source.config is not None else None
    n = episodes or (run_eval.num_envs if run_eval else 0)
    n = n or (GPU_EPISODES if accelerated else CPU_EPISODES)
    if seed is None:
        seed = run_eval.seed if run_eval else DEFAULT_SEED
    return n, seed


def make_plan(
    path: Path,
    task: str | None,
    controller: str | None,
    disturbances: str,
    baselines: set[str],
    episodes: int,
    seed: int | None,
) -> Plan:
    """Loads and checks the source, builds the envs and loads the policy.

    Args:
      path: run directory or export.
      task: the task (None: the policy's own).
      controller: controller of the policy's env (None: the policy's own).
      disturbances: `on`, `off` or a YAML file (`source.disturbances_from`).
      baselines: `pd` and/or `qp`, the zero-action actors to run.
      episodes: envs per actor (0: the run's `eval.num_envs`, else by hardware).
      seed: reset-key seed (None: the run's `eval.seed`).
    """
    source = load_source(path)
    task = check_task(source, task)
    base = task_config(source, task)
    base = dataclasses.replace(
        base, disturbances=disturbances_from(disturbances, base.disturbances)
    )
    controller = controller or base.controller
    main_env = load_env(task, dataclasses.replace(base, controller=controller))
    check_policy_fits(source, main_env, task)
    act, params = source.load()
    notes = []
    if source.controller != controller:
        trained = source.controller
        notes.append(f"policy: trained with controller {trained}, evaluated with {controller}")
    actors, envs, unavailable = _baseline_envs(task, base, main_env, baselines)
    notes += [f"{actor}: not evaluated ({why})" for actor, why in unavailable.items()]
    n, seed = _episodes_and_seed(source, episodes, seed)
    return Plan(
        source=source,
        task=task,
        base=base,
        controller=controller,
        envs=envs,
        actors=actors,
        unavailable=unavailable,
        episodes=n,
        seed=seed,
        act=act,
        params=params,
        notes=notes,
    )


def output_dir(source: Source, out: str | None) -> Path:
    """`out`, else `RUN/eval` for a run and `eval-<name>` for an export; created."""
    if out:
        path = Path(out)
    elif source.kind == "run":
        path = source.path / "eval"
    else:
        path = Path(f"eval-{source.path.stem}")
    path.mkdir(parents=True, exist_ok=True)
    return path
