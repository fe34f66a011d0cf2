"""Brax PPO pieces assembled into one jitted training iteration.

`make_trainer` returns pure functions over a `TrainState`:

* `init(key) -> TrainState`: networks, normalizer, optimizer and `[B]` envs.
* `train_step(TrainState) -> (TrainState, metrics)`: rollout (`lax.scan` over
  `T` steps, env vmapped over `B` envs), normalizer update, then
  `num_updates_per_batch` epochs of minibatch SGD on Brax's
  `compute_ppo_loss` (GAE keeps truncation apart from termination).

Policies are evaluated by `mjxbot.evaluation.Evaluator`, the evaluation `eval.py` runs.

The functions are written for the global batch. Multi-device and multi-host
runs shard every per-env array along the batch axis of a `Mesh` and replicate
the rest (`state_shardings`); XLA inserts the collectives, so a run on `D`
devices computes what one device would, up to float reduction order.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax
from brax.training import types as brax_types
from brax.training.acme import running_statistics, specs
from brax.training.agents.ppo import losses as ppo_losses
from brax.training.agents.ppo import networks as ppo_networks
from flax import linen
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from mjxbot.env import HumanoidEnv
from mjxbot.env.state import State
from mjxbot.training.curriculum import advance_levels, mean_level, start_levels
from mjxbot.training.schema import CurriculumConfig, NetworkConfig, PPOConfig

BATCH_AXIS = "batch"

_ACTIVATIONS: dict[str, Callable] = {
    "swish": linen.swish,
    "relu": linen.relu,
    "tanh": linen.tanh,
    "elu": linen.elu,
}


@flax.struct.dataclass
class EnvCarry:
    """Per-env arrays carried across iterations (sharded along the batch axis).

    Attributes:
      state: the batched env `State`, `[B, ...]`.
      episode_return: `[B]` return of the running episode so far.
      episode_length: `[B]` steps of the running episode so far.
    """

    state: State
    episode_return: jax.Array
    episode_length: jax.Array


@flax.struct.dataclass
class TrainState:
    """Everything a training iteration reads and writes; a checkpoint holds all of it.

    Attributes:
      params: policy and value network parameters.
      normalizer: running observation statistics.
      opt_state: Adam (and clipping) state.
      key: `[2]` uint32 PRNG key for the next iteration.
      env: per-env state and episode accumulators.
      iteration: `[]` int32 count of completed iterations.
    """

    params: ppo_losses.PPONetworkParams
    normalizer: running_statistics.RunningStatisticsState
    opt_state: Any
    key: jax.Array
    env: EnvCarry
    iteration: jax.Array


def policy_params(ts: TrainState) -> tuple[Any, Any, Any]:
    """`(normalizer, policy, value)`: what Brax's `make_inference_fn` policies take."""
    return (ts.normalizer, ts.params.policy, ts.params.value)


def make_networks(
    observation_size: dict[str, tuple[int, ...]],
    action_size: int,
    network: NetworkConfig,
    normalize_observations: bool,
) -> ppo_networks.PPONetworks:
    """Brax PPO networks: actor on `policy_obs_key`, critic on `value_obs_key`."""
    normalize = running_statistics.normalize if normalize_observations else (lambda x, _: x)
    return ppo_networks.make_ppo_networks(
        observation_size=observation_size,
        action_size=action_size,
        preprocess_observations_fn=normalize,
        policy_hidden_layer_sizes=network.policy_hidden_layer_sizes,
        value_hidden_layer_sizes=network.value_hidden_layer_sizes,
        activation=_ACTIVATIONS[network.activation],
        policy_obs_key=network.policy_obs_key,
        value_obs_key=network.value_obs_key,
        distribution_type=network.distribution,
        init_noise_std=network.init_noise_std,
        mean_kernel_init_fn=None if network.mean_init_scale is None else _scaled_lecun_uniform,
        mean_kernel_init_kwargs={"scale": network.mean_init_scale},
    )


def _scaled_lecun_uniform(scale: float) -> Callable:
    """LeCun-uniform with its variance multiplied by `scale`."""
    return jax.nn.initializers.variance_scaling(scale, "fan_in", "uniform")


def init_policy_params(
    networks: ppo_networks.PPONetworks, observation_size: dict[str, tuple[int, ...]], key
) -> tuple[Any, ppo_losses.PPONetworkParams]:
    """Fresh `(normalizer, PPONetworkParams)` from `key`."""
    key_policy, key_value = jax.random.split(key)
    params = ppo_losses.PPONetworkParams(
        policy=networks.policy_network.init(key_policy),
        value=networks.value_network.init(key_value),
    )
    obs_spec = {k: specs.Array(tuple(v), jnp.dtype("float32")) for k, v in observation_size.items()}
    return running_statistics.init_state(obs_spec), params


def strip_weak_types(tree: Any) -> Any:
    """Concrete dtypes on every leaf, so a jitted step compiles exactly once."""

    def f(leaf):
        leaf = jnp.asarray(leaf)
        return leaf.astype(leaf.dtype)

    return jax.tree.map(f, tree)


def _batch_spec(x: Any) -> P:
    return P(BATCH_AXIS) if getattr(x, "ndim", 0) >= 1 else P()


def state_shardings(mesh: Mesh, ts: TrainState) -> TrainState:
    """Sharding pytree: `env` split along the batch axis, everything else replicated."""
    replicated = NamedSharding(mesh, P())
    return TrainState(
        params=jax.tree.map(lambda _: replicated, ts.params),
        normalizer=jax.tree.map(lambda _: replicated, ts.normalizer),
        opt_state=jax.tree.map(lambda _: replicated, ts.opt_state),
        key=replicated,
        env=jax.tree.map(lambda x: NamedSharding(mesh, _batch_spec(x)), ts.env),
        iteration=replicated,
    )


@dataclasses.dataclass(frozen=True)
class Trainer:
    """The pure pieces of a PPO run; see the module docstring.

    Attributes:
      networks: Brax PPO networks.
      make_policy: Brax inference-function factory, `make_policy(params, deterministic)`.
      optimizer: the optax transformation.
      init: `key -> TrainState` (unjitted, global batch).
      train_step: `TrainState -> (TrainState, metrics)` (unjitted).
      steps_per_iteration: env steps per `train_step` (all devices and hosts).
    """

    networks: ppo_networks.PPONetworks
    make_policy: Callable
    optimizer: optax.GradientTransformation
    init: Callable
    train_step: Callable
    steps_per_iteration: int


def make_trainer(
    env: HumanoidEnv,
    ppo: PPOConfig,
    network: NetworkConfig,
    mesh: Mesh | None = None,
    trace_counter: list[int] | None = None,
    curriculum: CurriculumConfig | None = None,
) -> Trainer:
    """Builds the PPO functions for `env` with `ppo.num_envs` envs.

    Args:
      env: the task (one env; it is vmapped here).
      ppo: hyperparameters with concrete sizes (no 0 = auto left).
      network: network config.
      mesh: if given, minibatches are constrained to be split along its batch axis.
      trace_counter: a one-element list incremented whenever `train_step` is traced.
      curriculum: success-gated disturbance levels moved during the rollout;
        None or disabled leaves the env's own level.
    """
    curriculum = curriculum or CurriculumConfig(enabled=False)
    num_envs, unroll = ppo.num_envs, ppo.unroll_length
    minibatch = num_envs // ppo.num_minibatches
    obs_size = env.observation_size
    networks = make_networks(obs_size, env.action_size, network, ppo.normalize_observations)
    make_policy = ppo_networks.make_inference_fn(networks)
    dist = networks.parametric_action_distribution
    policy_apply = networks.policy_network.apply

    adam = optax.adam(ppo.learning_rate)
    optimizer = (
        optax.chain(optax.clip_by_global_norm(ppo.max_grad_norm), adam)
        if ppo.max_grad_norm > 0
        else adam
    )
    loss_fn = functools.partial(
        ppo_losses.compute_ppo_loss,
        ppo_network=networks,
        entropy_cost=ppo.entropy_cost,
        discounting=ppo.discounting,
        reward_scaling=ppo.reward_scaling,
        gae_lambda=ppo.gae_lambda,
        clipping_epsilon=ppo.clipping_epsilon,
        normalize_advantage=ppo.normalize_advantage,
        vf_coefficient=ppo.vf_loss_coefficient,
    )
    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
    batched_reset = jax.vmap(env.reset)
    batched_step = jax.vmap(env.step)

    def constrain(x: jax.Array, spec: P) -> jax.Array:
        if mesh is None:
            return x
        return jax.lax.with_sharding_constraint(x, NamedSharding(mesh, spec))

    def init(key: jax.Array) -> TrainState:
        key_net, key_env, key_next = jax.random.split(key, 3)
        normalizer, params = init_policy_params(networks, obs_size, key_net)
        state = start_levels(batched_reset(jax.random.split(key_env, num_envs)), curriculum)
        zeros = jnp.zeros((num_envs,))
        ts = TrainState(
            params=params,
            normalizer=normalizer,
            opt_state=optimizer.init(params),
            key=key_next,
            env=EnvCarry(state, zeros, zeros),
            iteration=jnp.zeros((), jnp.int32),
        )
        return strip_weak_types(ts)

    def rollout(ts: TrainState, key: jax.Array):
        """`unroll` steps of all envs -> (EnvCarry, Transition `[T, B]`, stats)."""

        def step(carry: EnvCarry, key_t: jax.Array):
            state = carry.state
            logits = policy_apply(ts.normalizer, ts.params.policy, state.obs)
            raw = dist.sample_no_postprocessing(logits, key_t)
            action = dist.postprocess(raw)
            nstate = advance_levels(batched_step(state, action), curriculum)
            ep_return = carry.episode_return + nstate.reward
            ep_length = carry.episode_length + 1.0
            done = nstate.done
            transition = brax_types.Transition(
                observation=state.obs,
                action=action,
                reward=nstate.reward,
                discount=1.0 - done,
                next_observation=nstate.obs,
                extras={
                    "policy_extras": {
                        "log_prob": dist.log_prob(logits, raw),
                        "raw_action": raw,
                        "distribution_params": logits,
                    },
                    "state_extras": {"truncation": nstate.info["truncation"]},
                },
            )
            stats = {
                "done": done,
                "done_return": done * ep_return,
                "done_length": done * ep_length,
                "fell": done * (1.0 - nstate.info["truncation"]),
                "metrics": nstate.metrics,
            }
            carry = EnvCarry(nstate, ep_return * (1.0 - done), ep_length * (1.0 - done))
            return carry, (transition, stats)

        carry, (data, stats) = jax.lax.scan(step, ts.env, jax.random.split(key, unroll))
        return carry, data, stats

    def rollout_metrics(stats: dict[str, Any]) -> dict[str, jax.Array]:
        episodes = stats["done"].sum()
        safe = jnp.maximum(episodes, 1.0)
        out = {
            "episode/count": episodes,
            "episode/return": jnp.where(episodes > 0, stats["done_return"].sum() / safe, jnp.nan),
            "episode/length": jnp.where(episodes > 0, stats["done_length"].sum() / safe, jnp.nan),
            "episode/fall_rate": jnp.where(episodes > 0, stats["fell"].sum() / safe, jnp.nan),
        }
        scales = env.config.reward_scales
        for name, value in stats["metrics"].items():
            if name.startswith("reward/"):
                # Per-step mean of the unscaled term and of its share of the reward.
                term = name.removeprefix("reward/")
                out[name] = value.mean()
                out[f"reward_scaled/{term}"] = value.mean() * scales.get(term, 0.0) * env.dt
            else:
                # Counters (disturbances, non-finite resets): per-step mean and
                # the sum over envs at the end of the rollout.
                out[f"env/{name}"] = value.mean()
                out[f"env/{name}_total"] = value[-1].sum()
        return out

    def sgd_epoch(carry, key: jax.Array, data, normalizer):
        opt_state, params = carry
        key_perm, key_grad = jax.random.split(key)

        def shuffle(x):
            x = jax.random.permutation(key_perm, x)
            x = x.reshape((ppo.num_minibatches, minibatch) + x.shape[1:])
            return constrain(x, P(None, BATCH_AXIS))

        batches = jax.tree.map(shuffle, data)

        def minibatch_step(carry, inputs):
            opt_state, params = carry
            batch, key_loss = inputs
            (_, metrics), grads = grad_fn(params, normalizer, batch, key_loss)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            params = optax.apply_updates(params, updates)
            metrics["grad_norm"] = optax.tree.norm(grads)
            return (opt_state, params), metrics

        keys = jax.random.split(key_grad, ppo.num_minibatches)
        return jax.lax.scan(minibatch_step, (opt_state, params), (batches, keys))

    def train_step(ts: TrainState) -> tuple[TrainState, dict[str, jax.Array]]:
        if trace_counter is not None:
            trace_counter[0] += 1
        key_rollout, key_sgd, key_next = jax.random.split(ts.key, 3)
        env_carry, data, stats = rollout(ts, key_rollout)
        # [T, B, ...] -> [B, T, ...]: minibatches are whole env trajectories.
        data = jax.tree.map(lambda x: constrain(jnp.swapaxes(x, 0, 1), P(BATCH_AXIS)), data)
        normalizer = ts.normalizer
        if ppo.normalize_observations:
            normalizer = running_statistics.update(normalizer, data.observation)
        (opt_state, params), loss_metrics = jax.lax.scan(
            functools.partial(sgd_epoch, data=data, normalizer=normalizer),
            (ts.opt_state, ts.params),
            jax.random.split(key_sgd, ppo.num_updates_per_batch),
        )
        metrics = {f"loss/{k}": v.mean() for k, v in loss_metrics.items()}
        metrics.update(rollout_metrics(stats))
        metrics["reward/total"] = data.reward.mean()
        metrics["reward/max_abs"] = jnp.abs(data.reward).max()
        metrics["curriculum/level"] = mean_level(env_carry.state)
        new_ts = TrainState(
            params=params,
            normalizer=normalizer,
            opt_state=opt_state,
            key=key_next,
            env=env_carry,
            iteration=ts.iteration + 1,
        )
        return new_ts, metrics

    return Trainer(
        networks=networks,
        make_policy=make_policy,
        optimizer=optimizer,
        init=init,
        train_step=train_step,
        steps_per_iteration=num_envs * unroll,
    )
