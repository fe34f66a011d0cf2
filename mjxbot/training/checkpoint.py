"""Orbax checkpoints of the whole training state, with task metadata.

A checkpoint is a directory `<run_dir>/checkpoints/<env_step>/` with three
items:

* `state`: every non-empty array of the `TrainState` (params, normalizer,
  optimizer state, PRNG key, batched env state, episode accumulators,
  iteration), keyed by position and pytree path. Orbax cannot store
  zero-size arrays (MJX keeps a few, e.g. `act` of a model without
  activations); those are rebuilt from the run's own template on restore.
* `policy`: normalizer and network params alone, loadable without an env.
* `meta`: JSON with the task, observation and action sizes, the network
  config and the step, used to refuse a checkpoint of another task.

Orbax writes each checkpoint into a temporary directory
(`<step>.orbax-checkpoint-tmp-<n>`) and renames it to `<step>` when complete;
a rename within one filesystem is atomic, so a process killed mid-save leaves
only a temporary directory, which is never listed as a step and is removed
when the directory is next opened. No pickle: arrays are tensorstore/OCDBT
files, metadata is JSON.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from mjxbot.errors import MjxbotError

META_VERSION = 1


class CheckpointError(MjxbotError):
    """A checkpoint is missing, unreadable or belongs to another run setup."""


def _leaf_names(tree: Any) -> list[tuple[str, Any]]:
    out = []
    for i, (path, leaf) in enumerate(jax.tree_util.tree_leaves_with_path(tree)):
        name = re.sub(r"[^A-Za-z0-9_]+", "_", jax.tree_util.keystr(path)).strip("_")
        out.append((f"{i:04d}_{name}", leaf))
    return out


def flatten(tree: Any) -> dict[str, Any]:
    """`{name: leaf}` for every leaf with at least one element."""
    return {name: leaf for name, leaf in _leaf_names(tree) if np.size(leaf) > 0}


def unflatten(template: Any, flat: dict[str, Any]) -> Any:
    """Inverse of `flatten`: `template`'s structure, leaves from `flat` (empty ones kept)."""
    leaves = [flat.get(name, leaf) for name, leaf in _leaf_names(template)]
    return jax.tree.unflatten(jax.tree.structure(template), leaves)


def _abstract(tree: Any) -> Any:
    def f(x):
        x = x if hasattr(x, "dtype") else np.asarray(x)
        sharding = getattr(x, "sharding", None)
        return jax.ShapeDtypeStruct(np.shape(x), x.dtype, sharding=sharding)

    return jax.tree.map(f, tree)


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"[:300]


class Checkpointer:
    """Saves and restores `TrainState`s under one directory.

    Args:
      directory: where the numbered checkpoint directories live.
      max_to_keep: how many of the newest checkpoints are kept.
    """

    def __init__(self, directory: str | Path, max_to_keep: int = 3, create: bool = True):
        self.directory = Path(directory).absolute()
        self.max_to_keep = max_to_keep
        if not create and not self.directory.is_dir():
            raise CheckpointError(f"no checkpoint directory at {self.directory}")
        options = ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep,
            create=create,
            enable_async_checkpointing=False,
            cleanup_tmp_directories=True,  # leftovers of saves killed midway
        )
        try:
            self._manager = ocp.CheckpointManager(
                self.directory, options=options, item_names=("state", "policy", "meta")
            )
        except Exception as e:  # noqa: BLE001 - orbax raises many types
            raise CheckpointError(
                f"cannot open checkpoints in {self.directory}: {_one_line(e)}"
            ) from e

    def latest_step(self) -> int | None:
        """The newest complete checkpoint's step, or None."""
        self._manager.reload()
        return self._manager.latest_step()

    def all_steps(self) -> list[int]:
        self._manager.reload()
        return list(self._manager.all_steps())

    def save(self, step: int, state: Any, policy: Any, meta: dict[str, Any]) -> None:
        """Writes checkpoint `step` (blocking; all processes must call it)."""
        meta = {"version": META_VERSION, "step": int(step), **meta}
        args = ocp.args.Composite(
            state=ocp.args.StandardSave(flatten(state)),
            policy=ocp.args.StandardSave(flatten(policy)),
            meta=ocp.args.JsonSave(meta),
        )
        if step in self.all_steps():
            return
        try:
            self._manager.save(int(step), args=args, force=True)
            self._manager.wait_until_finished()
        except Exception as e:  # noqa: BLE001 - disk full, permissions, ...
            raise CheckpointError(
                f"could not write checkpoint {self.directory / str(step)} ({_one_line(e)}); "
                f"the newest complete one is {self.latest_step()}"
            ) from e

    def require_space(self, checkpoint_bytes: int) -> None:
        """Raises `CheckpointError` unless the disk holds `max_to_keep + 1` such checkpoints."""
        needed = checkpoint_bytes * (self.max_to_keep + 1)
        free = shutil.disk_usage(self.directory).free
        if free < needed:
            raise CheckpointError(
                f"{self.directory} has {free / 2**20:.0f} MiB free; checkpoints need "
                f"{needed / 2**20:.0f} MiB (max_to_keep + 1 of {checkpoint_bytes:,} bytes)"
            )

    def read_meta(self, step: int | None = None) -> tuple[int, dict[str, Any]]:
        """`(step, meta)` of checkpoint `step` (default: the latest)."""
        step = self._resolve(step)
        try:
            restored = self._manager.restore(
                step, args=ocp.args.Composite(meta=ocp.args.JsonRestore())
            )
            meta = restored["meta"]
        except Exception as e:  # noqa: BLE001
            raise CheckpointError(
                f"checkpoint {self.directory / str(step)} is unreadable: {_one_line(e)}"
            ) from e
        if not isinstance(meta, dict) or meta.get("version") != META_VERSION:
            raise CheckpointError(f"checkpoint {self.directory / str(step)} has no valid metadata")
        return step, meta

    def restore(self, step: int | None, template: Any, item: str = "state") -> Any:
        """Restores `item` of checkpoint `step` into the structure and shardings of `template`."""
        step = self._resolve(step)
        flat_template = {
            k: v if hasattr(v, "dtype") else np.asarray(v) for k, v in flatten(template).items()
        }
        try:
            restored = self._manager.restore(
                step,
                args=ocp.args.Composite(
                    **{item: ocp.args.StandardRestore(_abstract(flat_template))}
                ),
            )
            flat = restored[item]
        except Exception as e:  # noqa: BLE001
            raise CheckpointError(
                f"checkpoint {self.directory / str(step)} is unreadable: {_one_line(e)}"
            ) from e
        if set(flat) != set(flat_template):
            raise CheckpointError(
                f"checkpoint {self.directory / str(step)} holds a different training state"
            )
        for name, leaf in flat.items():
            want = flat_template[name]
            if np.shape(leaf) != np.shape(want) or leaf.dtype != want.dtype:
                raise CheckpointError(
                    f"checkpoint {self.directory / str(step)}: {name} has shape "
                    f"{np.shape(leaf)}, this run expects {np.shape(want)}"
                )
        return unflatten(template, flat)

    def _resolve(self, step: int | None) -> int:
        if step is None:
            step = self.latest_step()
            if step is None:
                raise CheckpointError(f"no complete checkpoint in {self.directory}")
        elif step not in self.all_steps():
            raise CheckpointError(f"no checkpoint {step} in {self.directory}")
        return step

    def close(self) -> None:
        # orbax 0.12's close() does not wait for the clean-up of leftover temporary
        # directories that opening starts in a thread (only `save` waits): a run that
        # fails at once would exit under it, with a traceback at interpreter shutdown.
        self._manager._maybe_await_cleanup_tmp_directory()
        self._manager.close()


def check_compatible(meta: dict[str, Any], expected: dict[str, Any], where: str) -> None:
    """Raises `CheckpointError` when `meta` describes another task or other sizes."""
    for key in ("env_name", "observation_size", "action_size", "num_envs", "network"):
        if key in expected and meta.get(key) != expected[key]:
            raise CheckpointError(
                f"checkpoint {where} is from a different setup: {key}={meta.get(key)!r}, "
                f"this run has {key}={expected[key]!r}"
            )
