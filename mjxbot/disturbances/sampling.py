"""Sampling primitives shared by the disturbance families."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def uniform(key: jax.Array, bounds: tuple[float, float], shape: tuple[int, ...] = ()) -> jax.Array:
    """Uniform samples in `[min, max)` of a config range; `shape` as given."""
    return jax.random.uniform(key, shape, minval=bounds[0], maxval=bounds[1])


def is_neutral(bounds: tuple[float, float], neutral: float) -> bool:
    """True when a config range is the neutral constant (the parameter is left alone)."""
    return bounds[0] == neutral and bounds[1] == neutral


def random_direction(key: jax.Array, vertical_share: float) -> jax.Array:
    """`[3]` unit vector: uniform heading, vertical component uniform in `±vertical_share`."""
    key_heading, key_vertical = jax.random.split(key)
    heading = jax.random.uniform(key_heading, (), maxval=2 * jnp.pi)
    z = jax.random.uniform(key_vertical, (), minval=-vertical_share, maxval=vertical_share)
    horizontal = jnp.sqrt(1.0 - z * z)
    return jnp.stack([horizontal * jnp.cos(heading), horizontal * jnp.sin(heading), z])


def unit_sphere(key: jax.Array) -> jax.Array:
    """`[3]` unit vector uniform on the sphere."""
    return random_direction(key, 1.0)
