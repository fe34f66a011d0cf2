"""Run logging: `metrics.jsonl`, a rich progress bar and W&B.

The learning curve is drawn from `metrics.jsonl` by `mjxbot.evaluation.plot_learning_curve`.

W&B never stops training: a failing `wandb` call is reported once and
logging to W&B stops, everything else goes on.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import sys
import uuid
from pathlib import Path
from typing import Any

from mjxbot.config import to_dict
from mjxbot.errors import MjxbotError
from mjxbot.training.schema import TrainConfig, WandbConfig

METRICS_FILE = "metrics.jsonl"
WANDB_ID_FILE = "wandb_run_id"
# Shown until the first iteration's metrics arrive: its XLA compile takes a minute.
COMPILING = "compiling the training step (first iteration)..."


def _has_wandb_key() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    try:
        return "api.wandb.ai" in netrc.read_text()
    except OSError:
        return False


def _online(host: str = "api.wandb.ai", timeout: float = 2.0) -> bool:
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def wandb_mode(cfg: WandbConfig) -> str:
    """The mode to run W&B in: the config's, or for `auto` the environment's or a guess.

    `auto` honours `WANDB_MODE`; otherwise it is online only with an API key
    and a reachable server (W&B raises at once without a key), else offline.
    """
    if cfg.mode != "auto":
        return cfg.mode
    env_mode = os.environ.get("WANDB_MODE", "").strip().lower()
    if env_mode in ("online", "offline", "disabled"):
        return env_mode
    if env_mode == "dryrun":
        return "offline"
    return "online" if _has_wandb_key() and _online() else "offline"


class RunDirError(MjxbotError):
    """The run directory cannot be created or written."""


def check_writable(directory: Path) -> None:
    """Creates `directory` and writes, syncs and removes a probe file in it.

    Raises:
      RunDirError: on any OS error (read-only, permission denied, disk or
        quota full), before training spends anything.
    """
    probe = directory / f".write-probe-{os.getpid()}"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with probe.open("wb") as f:
            f.write(bytes(4096))
            f.flush()
            os.fsync(f.fileno())
        probe.unlink()
    except OSError as e:
        raise RunDirError(
            f"run directory {directory} is not writable ({e.strerror or type(e).__name__})"
        ) from e


def write_text_atomic(path: Path, text: str) -> None:
    """Writes `path` through a temporary file and a rename: a kill leaves the old or new text."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """The records of `metrics.jsonl`; a torn last line (disk full mid-write) is dropped."""
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        return []
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines[:-1]]
    with contextlib.suppress(json.JSONDecodeError):
        records += [json.loads(line) for line in lines[-1:]]
    return records


def _finite(x: Any) -> Any:
    return None if isinstance(x, float) and not math.isfinite(x) else x


class RunLogger:
    """Writes one run's logs; `log` is the `progress_fn` of `train()`.

    Args:
      config: the resolved config (its `logging` section decides what runs).
      run_dir: the run directory.
      total_steps: env steps of the whole run (progress bar, ETA).
      start_step: step the run resumes from; `metrics.jsonl` lines past it
        (written after the last checkpoint of an interrupted run) are dropped.
      resume: continue the W&B run whose id is stored in the run dir.
      enabled: False on processes other than 0 of a multi-host run.
    """

    def __init__(
        self,
        config: TrainConfig,
        run_dir: str | Path,
        total_steps: int,
        start_step: int = 0,
        resume: bool = False,
        enabled: bool = True,
    ):
        self.config = config
        self.run_dir = Path(run_dir)
        self.total_steps = total_steps
        self.enabled = enabled
        self._wandb = None
        self._progress = None
        self._task = None
        self.wandb_dir: Path | None = None
        if not enabled:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        path = self.run_dir / METRICS_FILE
        kept = [r for r in read_metrics(self.run_dir) if r.get("step", 0) <= start_step]
        if not resume:
            kept = []
        write_text_atomic(path, "".join(json.dumps(record) + "\n" for record in kept))
        self._file = path.open("a")
        self._init_wandb(resume)
        self._init_progress(start_step)

    # --------------------------------------------------------------- W&B
    def _init_wandb(self, resume: bool) -> None:
        cfg = self.config.logging.wandb
        mode = wandb_mode(cfg)
        self.wandb_mode = mode
        if mode == "disabled":
            return
        id_file = self.run_dir / WANDB_ID_FILE
        try:
            import wandb

            run_id = id_file.read_text().strip() if id_file.is_file() else uuid.uuid4().hex[:12]
            run = wandb.init(
                project=cfg.project,
                entity=cfg.entity,
                group=cfg.group,
                tags=list(cfg.tags) or None,
                name=cfg.name,
                config=to_dict(self.config),
                dir=str(self.run_dir),
                id=run_id,
                resume="allow",
                mode=mode,
                settings=wandb.Settings(silent=True, console="off"),
            )
            id_file.write_text(run_id)
            self._wandb = run
            self.wandb_dir = Path(run.dir).parent if run is not None else None
        except Exception as e:  # noqa: BLE001 - W&B must never stop training
            print(f"warning: W&B disabled for this run ({type(e).__name__}: {e})", file=sys.stderr)
            self._wandb = None

    def _wandb_log(self, metrics: dict[str, Any], step: int) -> None:
        if self._wandb is None:
            return
        try:
            self._wandb.log(metrics, step=step)
        except Exception as e:  # noqa: BLE001
            print(f"warning: W&B logging stopped ({type(e).__name__}: {e})", file=sys.stderr)
            self._wandb = None

    # ---------------------------------------------------------- progress
    def _init_progress(self, start_step: int) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self.console = Console(stderr=True)
        self.compiling = True  # until the first iteration's metrics arrive
        if not (self.config.logging.progress_bar and self.console.is_terminal):
            print(f"{self.config.env_name}: {COMPILING}", file=sys.stderr, flush=True)
            return
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed:,.0f}/{task.total:,.0f} steps"),
            TextColumn("{task.fields[speed]}"),
            TimeRemainingColumn(),
            TextColumn("return {task.fields[ret]}"),
            console=self.console,
        )
        self._task = self._progress.add_task(
            self.config.env_name,
            total=self.total_steps,
            completed=start_step,
            speed=COMPILING,
            ret="-",
        )
        self._progress.start()

    def _show(self, step: int, metrics: dict[str, float]) -> None:
        ret = metrics.get("episode/return", float("nan"))
        ret_text = f"{ret:.2f}" if math.isfinite(ret) else "-"
        sps = metrics.get("time/sps", 0.0)
        self.compiling = False
        if self._progress is not None:
            speed = f"{sps:,.0f} steps/s"
            self._progress.update(self._task, completed=step, speed=speed, ret=ret_text)
        else:
            eta = (self.total_steps - step) / sps if sps > 0 else float("nan")
            eta_text = f"{eta:.0f}s" if math.isfinite(eta) else "-"
            print(
                f"step {step:,}/{self.total_steps:,}  {sps:,.0f} steps/s  "
                f"ETA {eta_text}  return {ret_text}",
                file=sys.stderr,
                flush=True,
            )

    # -------------------------------------------------------------- API
    def log(self, step: int, metrics: dict[str, float]) -> None:
        """Appends to metrics.jsonl, logs to W&B, updates the progress display."""
        if not self.enabled:
            return
        record = {"step": int(step), **{k: _finite(v) for k, v in metrics.items()}}
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        self._wandb_log(metrics, step)
        if "time/sps" in metrics:
            self._show(step, metrics)

    def close(self, summary: dict[str, Any] | None = None) -> None:
        if not self.enabled:
            return
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        self._file.close()
        if self._wandb is not None:
            try:
                if summary:
                    for k, v in summary.items():
                        self._wandb.summary[k] = v
                self._wandb.finish()
            except Exception as e:  # noqa: BLE001
                print(f"warning: W&B finish failed ({type(e).__name__}: {e})", file=sys.stderr)
            self._wandb = None
