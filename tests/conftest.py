"""Test-wide settings (CPU only) and jitted env functions shared by all test modules."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("WANDB_MODE", "disabled")
# Compiled programs are reused across test modules and the CLI subprocesses of one run.
os.environ.setdefault(
    "JAX_COMPILATION_CACHE_DIR",
    os.path.join(os.path.dirname(os.path.dirname(__file__)), ".pytest_cache", "jax"),
)

import functools  # noqa: E402

import jax  # noqa: E402
import pytest  # noqa: E402

import mjxbot  # noqa: E402


class Compiled:
    """An env with its jitted functions, compiled once per test session.

    `rollout` runs vmapped steps over the leading axis of its actions in one `lax.scan`, counts
    its traces, so the batching and the compile-once tests share one compile.
    """

    def __init__(self, env):
        self.env = env
        self.rollout_traces = 0

        def rollout(keys, actions):
            self.rollout_traces += 1
            state = jax.vmap(env.reset)(keys)

            def body(s, action):
                s = jax.vmap(env.step)(s, action)
                return s, s

            return jax.lax.scan(body, state, actions)[1]

        self.reset = jax.jit(env.reset)
        self.step = jax.jit(env.step)
        self.rollout = jax.jit(rollout)


@pytest.fixture(scope="session")
def compiled_env():
    """`compiled_env(name)`: a default-config env with jitted functions, built once per session."""
    return functools.cache(lambda name: Compiled(mjxbot.load_env(name)))
