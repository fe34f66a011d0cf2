"""A run directory: where a run's config, checkpoints and info live, new or resumed.

`open_run` is what `train.py` does before training: it loads the config (a
resumed run starts from the config it saved), checks that the directory is
writable, opens the checkpoints and saves the resolved config.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

import jax

from mjxbot.config import load_yaml
from mjxbot.training import config as tconfig
from mjxbot.training.checkpoint import Checkpointer, CheckpointError
from mjxbot.training.logging import check_writable, write_text_atomic
from mjxbot.training.schema import TrainConfig

RESOLVED_CONFIG = "config.yaml"
RUN_INFO = "run_info.json"


@dataclasses.dataclass
class OpenedRun:
    """A run ready to train.

    Attributes:
      config: the resolved config (sizes filled for the hardware).
      run_dir: the run directory.
      checkpointer: None when checkpoints are off.
      restore: a complete checkpoint exists and training continues from it.
      start_step: the env step training continues from (0 for a new run).
    """

    config: TrainConfig
    run_dir: Path
    checkpointer: Checkpointer | None
    restore: bool
    start_step: int


def _load_config(
    configs: list[str], sets: list[str], run_dir: str | None, resume: bool
) -> tuple[TrainConfig, Path]:
    if not resume:
        config = tconfig.load(configs, sets)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        return config, Path(run_dir or f"runs/{config.env_name}-{stamp}")
    if not run_dir:
        raise CheckpointError("--resume needs --run-dir DIR of the run to continue")
    saved = Path(run_dir) / RESOLVED_CONFIG
    if not saved.is_file():
        raise CheckpointError(f"no run to resume in {run_dir} ({RESOLVED_CONFIG} is missing)")
    return tconfig.load(configs, sets, base=load_yaml(saved)), Path(run_dir)


def _open_checkpoints(
    config: TrainConfig, run_dir: Path, resume: bool
) -> tuple[Checkpointer | None, bool, int]:
    folder = run_dir / "checkpoints"
    if resume:
        checkpointer = Checkpointer(folder, config.checkpoint.max_to_keep, create=False)
        # Pre-empted before its first checkpoint was complete: start over.
        restore = checkpointer.latest_step() is not None
        start_step = checkpointer.read_meta()[0] if restore else 0
        origin = f"checkpoint {start_step}" if restore else "the start (no complete checkpoint)"
        print(f"resuming {run_dir} from {origin}", file=sys.stderr)
        return checkpointer, restore, start_step
    if not config.checkpoint.enabled:
        return None, False, 0
    if folder.is_dir() and any(folder.iterdir()):
        raise CheckpointError(
            f"{run_dir} already holds checkpoints; pass --resume or another --run-dir"
        )
    return Checkpointer(folder, config.checkpoint.max_to_keep), False, 0


def open_run(configs: list[str], sets: list[str], run_dir: str | None, resume: bool) -> OpenedRun:
    """Loads the config, opens the run directory and its checkpoints.

    Args:
      configs: YAML files merged in order.
      sets: `key=value` overrides applied last.
      run_dir: the directory; None: `runs/<env>-<time>` for a new run.
      resume: continue the run in `run_dir` from its saved config.

    Raises:
      CheckpointError: nothing to resume, or a new run over existing checkpoints.
      ConfigError: bad config input.
      RunDirError: the directory is not writable.
    """
    config, path = _load_config(configs, sets, run_dir, resume)
    config = tconfig.resolve_auto(config, jax.default_backend(), jax.device_count())
    check_writable(path)
    checkpointer, restore, start_step = _open_checkpoints(config, path, resume)
    if jax.process_index() == 0:
        path.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path / RESOLVED_CONFIG, tconfig.dump(config))
    return OpenedRun(config, path, checkpointer, restore, start_step)
