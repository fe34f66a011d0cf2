"""What is evaluated: a `train.py` run directory or a policy export, checked before loading.

A source's metadata (task, robot, observation and action sizes, controller)
is read and checked against the env first; params are restored or the
program deserialized only when it fits.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mjxbot.config import from_dict, load_yaml
from mjxbot.disturbances.config import DisturbanceConfig
from mjxbot.env import HumanoidEnv
from mjxbot.errors import MjxbotError
from mjxbot.evaluation.rollout import ActFn
from mjxbot.registry import ALL_ENVS


class EvalError(MjxbotError):
    """A run, policy, task or flag that evaluation cannot use (reported as one line)."""


@dataclasses.dataclass
class Source:
    """What is evaluated.

    Attributes:
      path: the run directory or export.
      kind: `run` or `export`.
      meta: checkpoint or export metadata (task, sizes, network, step).
      config: the run's `TrainConfig`; None for an export.
      load: `() -> (act, params)`, the policy (`rollout.ActFn`) and its params;
        call it after `check_policy_fits`.
    """

    path: Path
    kind: str
    meta: dict[str, Any]
    config: Any
    load: Callable[[], tuple[ActFn, Any]]

    @property
    def controller(self) -> str:
        """The controller the policy was trained with."""
        return self.config.env.controller if self.config is not None else self.meta["controller"]


def read_run_meta(run_dir: str | Path) -> dict[str, Any]:
    """The latest checkpoint's metadata (task, sizes, network), without restoring params."""
    from mjxbot.training.checkpoint import Checkpointer

    ckpt = Checkpointer(Path(run_dir) / "checkpoints", create=False)
    _, meta = ckpt.read_meta()
    return meta


def _run_source(path: Path) -> Source:
    # Imported here: mjxbot.training imports this package (its evaluator).
    from mjxbot.training import config as tconfig
    from mjxbot.training.policy import deterministic_act, restore_policy_params
    from mjxbot.training.run_dir import RESOLVED_CONFIG

    if not (path / RESOLVED_CONFIG).is_file():
        raise EvalError(f"{path} has checkpoints but no {RESOLVED_CONFIG}: not a train.py run")
    config = tconfig.from_yaml_text((path / RESOLVED_CONFIG).read_text())
    meta = read_run_meta(path)

    def load() -> tuple[ActFn, Any]:
        networks, params, _ = restore_policy_params(path, meta["step"])
        return deterministic_act(networks), params

    return Source(path, "run", meta, config, load)


def _export_source(path: Path) -> Source:
    from mjxbot.export import load_policy

    policy, meta = load_policy(path)
    # The exported program holds its params: the act ignores the params argument.
    return Source(path, "export", meta, None, lambda: ((lambda _, obs: policy(obs)), None))


def load_source(path: Path) -> Source:
    """The run directory or export at `path`; nothing restored yet.

    Raises:
      EvalError: nothing at `path`, or a run without its config.
      ExportError: not a readable export.
    """
    if not path.exists():
        raise EvalError(f"no run directory or exported policy at {path}")
    # Imported here: mjxbot.training imports this package (its closing evaluation).
    from mjxbot.training.run_dir import RESOLVED_CONFIG

    if path.is_dir() and ((path / "checkpoints").exists() or (path / RESOLVED_CONFIG).is_file()):
        return _run_source(path)
    return _export_source(path)


def check_task(source: Source, task: str | None) -> str:
    """The task to evaluate on: `task`, else the policy's own; refuses any other."""
    trained = source.meta.get("env_name")
    task = task or trained
    if task is None:
        raise EvalError(f"policy at {source.path} does not name its task; pass --task")
    if task not in ALL_ENVS:
        raise EvalError(f"unknown task {task!r}; registered tasks: {', '.join(sorted(ALL_ENVS))}")
    if trained is not None and task != trained:
        raise EvalError(f"policy at {source.path} was trained for task {trained!r}, not {task!r}")
    return task


def task_config(source: Source, task: str):
    """The env config of `task`: the run's own when it trained on it, else the task's defaults."""
    if source.config is not None and source.config.env_name == task:
        return source.config.env
    cls = ALL_ENVS[task].config_class
    if isinstance(source.meta.get("env_config"), dict):
        return from_dict(cls, source.meta["env_config"], "env")
    return cls()


def disturbances_from(flag: str, current: DisturbanceConfig) -> DisturbanceConfig:
    """`on`: `current`; `off`: none; else the YAML file's `disturbances` mapping
    (top level, under `disturbances:` or under `env: disturbances:`)."""
    if flag == "on":
        return current
    if flag == "off":
        return DisturbanceConfig()
    path = Path(flag)
    if not path.is_file():
        raise EvalError(f"--disturbances: {flag} is neither on, off nor an existing YAML file")
    data = load_yaml(path) or {}
    if isinstance(data.get("env"), dict):
        data = data["env"]
    if isinstance(data.get("disturbances"), dict):
        data = data["disturbances"]
    return from_dict(DisturbanceConfig, data, "disturbances")


def _check_robot(source: Source, env: HumanoidEnv, task: str) -> None:
    robot = env.config.robot.mjcf
    saved = source.meta.get("robot")
    if isinstance(saved, dict):
        saved = saved.get("mjcf")
    if isinstance(saved, str) and Path(saved).name != Path(robot).name:
        raise EvalError(f"policy at {source.path} is for robot {saved}, task {task!r} uses {robot}")


def check_policy_fits(source: Source, env: HumanoidEnv, task: str) -> None:
    """Refuses a policy whose observation or action sizes (or robot) differ from the env's."""
    _check_robot(source, env, task)
    meta = source.meta
    key = (meta.get("network") or {}).get("policy_obs_key", "state")
    saved_obs = (meta.get("observation_size") or {}).get(key)
    env_obs = env.observation_size.get(key)
    saved_act = meta.get("action_size")
    if (saved_obs is not None and tuple(saved_obs) != tuple(env_obs or ())) or (
        saved_act is not None and int(saved_act) != env.action_size
    ):
        raise EvalError(
            f"policy at {source.path} takes observation {key!r} of size {tuple(saved_obs or ())} "
            f"and gives {saved_act} actions; task {task!r} on robot {env.config.robot.mjcf} with "
            f"controller {env.config.controller} has {tuple(env_obs or ())} and "
            f"{env.action_size}: a policy for another robot, task or controller"
        )
