"""Self-contained policy exports: `jax.export` and ONNX programs with JSON metadata, no pickle.

An export is a directory:

* `policy.jax`: the deterministic policy `obs [B, n] float32 -> action [B, a]
  float32` serialized by `jax.export` (StableHLO in a flatbuffer), with the
  observation normalizer and the network params baked in as constants; `B`
  is symbolic, and the program is lowered for CPU and CUDA.
* `policy.onnx`: the same function converted by jax2onnx (input `obs`,
  output `action`, dynamic batch), checked against `policy.jax` with
  onnxruntime before it is written.
* `meta.json`: format and version, task, robot, controller, observation
  sizes and the policy's observation key, action size, network config,
  step, the env config, and the SHA-256 of both program files.

`load_policy` reads JSON and `jax.export`'s flatbuffer only: nothing is
ever unpickled, so a pickle planted in an export is refused unexecuted. A
file whose checksum differs from `meta.json` is refused before it is parsed.

    python -m mjxbot.export RUN_DIR OUT [--step N] [--no-onnx]
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any

import jax
import jax.numpy as jnp
import numpy as np
import tyro

from mjxbot.cli import parse_cli
from mjxbot.errors import MjxbotError, run_cli

FORMAT = "mjxbot-policy-export"
FORMAT_VERSION = 1
META_FILE = "meta.json"
JAX_FILE = "policy.jax"
ONNX_FILE = "policy.onnx"
# Lowered for both, so an export made on a CPU also runs on an NVIDIA GPU.
PLATFORMS = ("cpu", "cuda")
# Largest onnxruntime - jax action difference accepted at export time, relative
# to max(1, |action|); float32 reordering of the MLP stays near 1e-7 to 1e-6.
ONNX_TOLERANCE = 1e-5
ONNX_CHECK_BATCHES = (1, 7)
# Checkpoint metadata carried into the export unchanged.
CHECKPOINT_KEYS = (
    "env_name",
    "step",
    "observation_size",
    "action_size",
    "network",
    "normalize_observations",
)
REQUIRED_KEYS = (*CHECKPOINT_KEYS, "controller")


class ExportError(MjxbotError):
    """An export cannot be written, or a path is not a readable export of this format."""


# ------------------------------------------------------------------ writing
def policy_function(networks: Any, params: tuple[Any, Any, Any], obs_key: str) -> Callable:
    """The deterministic policy on the policy observation alone.

    Args:
      networks: Brax PPO networks.
      params: `(normalizer, policy, value)`, as in training.
      obs_key: observation entry the policy network reads.

    Returns:
      `f(obs [B, n]) -> action [B, a]`: `training.policy.deterministic_act`, the
      policy evaluation runs, so it computes exactly what is evaluated.
    """
    from mjxbot.training.policy import deterministic_act

    act = deterministic_act(networks)

    def f(obs: jax.Array) -> jax.Array:
        # Brax's policy network picks `obs_key` (and its normalizer statistics) from the dict.
        return act(params, {obs_key: obs})

    return f


def serialize_jax(f: Callable, obs_dim: int) -> bytes:
    """`f` exported for `[B, obs_dim]` float32 inputs with a symbolic `B`, serialized."""
    (batch,) = jax.export.symbolic_shape("batch")
    spec = jax.ShapeDtypeStruct((batch, obs_dim), jnp.float32)
    return bytes(jax.export.export(jax.jit(f), platforms=PLATFORMS)(spec).serialize())


def convert_onnx(f: Callable, obs_dim: int) -> bytes:
    """`f` as a serialized ONNX model (input `obs` `[batch, obs_dim]`, output `action`)."""
    try:
        import jax2onnx
    except ImportError as e:
        raise ExportError(
            f"ONNX export needs jax2onnx ({e}); pip install 'mjxbot[export]' or pass --no-onnx"
        ) from None
    model = jax2onnx.to_onnx(
        f,
        [("batch", obs_dim)],
        model_name="mjxbot_policy",
        input_names=["obs"],
        output_names=["action"],
    )
    return model.SerializeToString()


def onnx_session(model: bytes) -> Any:
    """An onnxruntime CPU session of a serialized ONNX model."""
    try:
        import onnxruntime
    except ImportError as e:
        raise ExportError(f"ONNX needs onnxruntime ({e}); pip install 'mjxbot[export]'") from None
    return onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])


def action_error(got: np.ndarray, want: np.ndarray) -> float:
    """Largest `|got - want| / max(1, |want|)` over `[B, a]` actions.

    Absolute for tanh-bounded actions, relative for unbounded (`normal`) ones.
    """
    return float(np.max(np.abs(got - want) / np.maximum(1.0, np.abs(want))))


def onnx_error(model: bytes, f: Callable, obs_dim: int, seed: int = 0) -> float:
    """`action_error` of onnxruntime against `f` on random observations.

    Batches of `ONNX_CHECK_BATCHES` sizes of standard-normal observations.
    """
    session = onnx_session(model)
    rng = np.random.default_rng(seed)
    worst = 0.0
    for batch in ONNX_CHECK_BATCHES:
        obs = rng.standard_normal((batch, obs_dim), dtype=np.float32)
        (got,) = session.run(["action"], {"obs": obs})
        worst = max(worst, action_error(got, np.asarray(f(obs))))
    return worst


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_export(
    out: str | Path,
    networks: Any,
    params: tuple[Any, Any, Any],
    meta: dict[str, Any],
    onnx: bool = True,
) -> Path:
    """Writes an export of a policy into the new directory `out`.

    Args:
      out: directory to create; it must not exist yet (or be empty).
      networks: Brax PPO networks of the policy.
      params: `(normalizer, policy, value)`.
      meta: at least `REQUIRED_KEYS` (the checkpoint's and the controller
        `pd|qp`); any other entry (env config, robot) is written as given.
      onnx: also write `policy.onnx` (needs jax2onnx and onnxruntime).

    Returns:
      `out`. The files appear at once: they are written to a temporary
      sibling directory that is renamed at the end.
    """
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ExportError(f"{out} already exists; export into a new directory")
    obs_key = meta["network"]["policy_obs_key"]
    (obs_dim,) = meta["observation_size"][obs_key]  # the policy MLP reads a flat vector
    f = policy_function(networks, params, obs_key)
    files = {JAX_FILE: serialize_jax(f, obs_dim)}
    full = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        **meta,
        "policy_obs_key": obs_key,
        "input": {"name": "obs", "shape": ["batch", obs_dim], "dtype": "float32"},
        "output": {"name": "action", "shape": ["batch", int(meta["action_size"])]},
        "jax_version": jax.__version__,
    }
    if onnx:
        files[ONNX_FILE] = convert_onnx(f, obs_dim)
        error = onnx_error(files[ONNX_FILE], f, obs_dim)
        if not error <= ONNX_TOLERANCE:
            raise ExportError(
                f"the ONNX model differs from the jax policy by {error:.3g} "
                f"(> {ONNX_TOLERANCE}); not writing {out}"
            )
        full["onnx_max_error"] = error
    full["sha256"] = {name: sha256(data) for name, data in files.items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        for name, data in files.items():
            (tmp / name).write_bytes(data)
        (tmp / META_FILE).write_text(json.dumps(full, indent=2))
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def export_run(
    run_dir: str | Path, out: str | Path, step: int | None = None, onnx: bool = True
) -> Path:
    """Exports the policy of a `train.py` run's checkpoint (the latest by default) to `out`."""
    from mjxbot.config import to_dict
    from mjxbot.robot import resolve_mjcf
    from mjxbot.training.config import from_yaml_text
    from mjxbot.training.policy import restore_policy_params

    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise ExportError(f"{run_dir} is not a train.py run directory (no config.yaml)")
    env_config = from_yaml_text((run_dir / "config.yaml").read_text()).env
    networks, params, ckpt_meta = restore_policy_params(run_dir, step)
    mjcf = env_config.robot.mjcf
    meta = {
        **{k: ckpt_meta[k] for k in CHECKPOINT_KEYS},
        "controller": env_config.controller,
        "robot": {"mjcf": mjcf, "sha256": sha256(resolve_mjcf(mjcf).read_bytes())},
        "env_config": to_dict(env_config),
    }
    return write_export(out, networks, params, meta, onnx=onnx)


# ------------------------------------------------------------------ reading
def read_meta(path: str | Path) -> dict[str, Any]:
    """The validated `meta.json` of the export at `path` (format and version checked)."""
    path = Path(path)
    if not (path / META_FILE).is_file():
        what = f"a directory without {META_FILE}"
        if not path.exists():
            what = "missing"
        elif path.is_file():
            what = "a file"
        raise ExportError(f"{path} is not a policy export ({what}; expected a {FORMAT} directory)")
    try:
        meta = json.loads((path / META_FILE).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ExportError(f"{path / META_FILE} is corrupted: not JSON ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ExportError(f"{path} is not an {FORMAT} directory ({META_FILE} has another format)")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ExportError(
            f"{path} has export format version {meta.get('format_version')!r}; "
            f"this mjxbot reads version {FORMAT_VERSION}"
        )
    missing = [k for k in (*REQUIRED_KEYS, "policy_obs_key", "input", "sha256") if k not in meta]
    if missing:
        raise ExportError(f"{path / META_FILE} is incomplete: no {', '.join(missing)}")
    return meta


def read_checked(path: str | Path, meta: dict[str, Any], name: str) -> bytes:
    """The bytes of file `name` of an export, refused unless they match `meta`'s SHA-256."""
    file = Path(path) / name
    want = meta["sha256"].get(name) if isinstance(meta["sha256"], dict) else None
    if want is None or not file.is_file():
        raise ExportError(f"export {path} has no {name}")
    data = file.read_bytes()
    if sha256(data) != want:
        raise ExportError(f"{file} is corrupted: its SHA-256 differs from {META_FILE}")
    return data


def load_exported(path: str | Path) -> tuple[jax.export.Exported, dict[str, Any]]:
    """`(exported, meta)`: the checked, deserialized `policy.jax` of an export."""
    meta = read_meta(path)
    data = read_checked(path, meta, JAX_FILE)
    try:
        exported = jax.export.deserialize(bytearray(data))
    except Exception as e:  # noqa: BLE001 - flatbuffer parsing raises many types
        first = (str(e).strip().splitlines() or [""])[0][:200]
        raise ExportError(
            f"{Path(path) / JAX_FILE} is not a jax.export program: {type(e).__name__}: {first}"
        ) from None
    obs_dim, action_size = meta["input"]["shape"][1], int(meta["action_size"])
    (in_aval,), (out_aval,) = exported.in_avals, exported.out_avals
    if in_aval.shape[1:] != (obs_dim,) or out_aval.shape[1:] != (action_size,):
        raise ExportError(
            f"{Path(path) / JAX_FILE} maps {in_aval.shape} to {out_aval.shape}; {META_FILE} "
            f"says {obs_dim} observations and {action_size} actions"
        )
    return exported, meta


def load_policy(path: str | Path) -> tuple[Callable, dict[str, Any]]:
    """The policy of an export, without any training code.

    Returns:
      `(policy, meta)`: `policy(obs) -> action`, jitted and deterministic, where
      `obs` is the observation dict of the env (or its policy entry alone) with
      any leading batch shape, `[..., n] -> [..., a]`. `meta` is the export's
      `meta.json`.
    """
    exported, meta = load_exported(path)
    obs_key = meta["policy_obs_key"]
    obs_dim, action_size = meta["input"]["shape"][1], int(meta["action_size"])

    @jax.jit
    def policy(obs: Mapping[str, jax.Array] | jax.Array) -> jax.Array:
        x = jnp.asarray(obs[obs_key] if isinstance(obs, Mapping) else obs, jnp.float32)
        if x.shape[-1:] != (obs_dim,):
            raise ExportError(f"exported policy takes {obs_dim} observations, got {x.shape}")
        flat = exported.call(x.reshape(-1, obs_dim))
        return flat.reshape(*x.shape[:-1], action_size)

    return policy, meta


def load_onnx(path: str | Path) -> Any:
    """An onnxruntime session of an export's checked `policy.onnx` (`obs` -> `action`)."""
    return onnx_session(read_checked(path, read_meta(path), ONNX_FILE))


# ---------------------------------------------------------------------- CLI
@dataclasses.dataclass
class ExportArgs:
    """Export a run's policy."""

    run_dir: Annotated[str, tyro.conf.Positional, tyro.conf.arg(metavar="RUN_DIR")]
    """train.py run directory"""
    out: Annotated[str, tyro.conf.Positional, tyro.conf.arg(metavar="OUT")]
    """new export directory"""
    step: Annotated[int | None, tyro.conf.arg(metavar="N", help_behavior_hint="")] = None
    """checkpoint step (default: the latest)"""
    no_onnx: bool = False
    """skip policy.onnx"""


def main(argv: list[str] | None = None) -> int:
    args = parse_cli(ExportArgs, argv, "python -m mjxbot.export", "Export a run's policy.")

    def run() -> int:
        out = export_run(args.run_dir, args.out, args.step, onnx=not args.no_onnx)
        print(f"wrote {out}")
        return 0

    return run_cli(run)


if __name__ == "__main__":
    sys.exit(main())
