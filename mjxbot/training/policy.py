"""A trained policy from a run directory, without the training script.

A checkpoint's `meta` holds the network config and observation sizes next
to the params, which is all `restore_policy_params` needs; `deterministic_act`
is the policy those params drive. A callable `policy(obs) -> action` comes
from an export (`mjxbot.export.load_policy`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
from brax.training.agents.ppo import networks as ppo_networks

from mjxbot.config import from_dict
from mjxbot.training.checkpoint import Checkpointer
from mjxbot.training.ppo import init_policy_params, make_networks, strip_weak_types
from mjxbot.training.schema import NetworkConfig


def networks_from_meta(meta: dict[str, Any]) -> ppo_networks.PPONetworks:
    """The Brax PPO networks a checkpoint's metadata describes (sizes and network config)."""
    obs_size = {k: tuple(v) for k, v in meta["observation_size"].items()}
    network = from_dict(NetworkConfig, meta["network"])
    return make_networks(
        obs_size, meta["action_size"], network, meta.get("normalize_observations", True)
    )


def restore_policy_params(
    run_dir: str | Path, step: int | None = None
) -> tuple[ppo_networks.PPONetworks, tuple[Any, Any, Any], dict[str, Any]]:
    """The networks and params of a run's checkpoint (the latest by default).

    Returns:
      `(networks, params, meta)`: `params` is `(normalizer, policy, value)`,
      what Brax's `make_inference_fn` policies take; `meta` the checkpoint
      metadata (task name, observation sizes, network config, step).
    """
    ckpt = Checkpointer(Path(run_dir) / "checkpoints", create=False)
    step, meta = ckpt.read_meta(step)
    networks = networks_from_meta(meta)
    obs_size = {k: tuple(v) for k, v in meta["observation_size"].items()}
    normalizer, params = init_policy_params(networks, obs_size, jax.random.PRNGKey(0))
    template = strip_weak_types((normalizer, params.policy, params.value))
    return networks, ckpt.restore(step, template, item="policy"), meta


def deterministic_act(networks: ppo_networks.PPONetworks) -> Callable[[Any, Any], jax.Array]:
    """The deterministic policy of `networks` with its params as an argument.

    Returns:
      `act(params, obs) -> action`: `params` is `(normalizer, policy[, value])`,
      `obs` the env's observation dict (or a batch of them), `action` the
      mode of the action distribution, `[..., action_size]`. Evaluation
      (`mjxbot.evaluation`) and exports (`mjxbot.export`) run this function.
    """
    make_policy = ppo_networks.make_inference_fn(networks)

    def act(params: Any, obs: Any) -> jax.Array:
        # A deterministic Brax policy draws nothing: no key.
        return make_policy(params, deterministic=True)(obs, None)[0]

    return act
