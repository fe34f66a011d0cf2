"""Test-wide settings: CPU only, and jitted env functions shared per module."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("WANDB_MODE", "disabled")
