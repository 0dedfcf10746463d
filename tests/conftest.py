"""Tests run in float64 (the notebook's precision); x64 is enabled before any array exists."""

import os

import jax

jax.config.update("jax_enable_x64", True)
os.environ.setdefault("JAXGD_CACHE_DIR", "off")  # the CLI's persistent compilation cache: not in tests

import pytest  # noqa: E402


@pytest.fixture
def restore_x64():
    """For tests that call the CLI in-process: it sets x64 from --dtype."""
    yield
    jax.config.update("jax_enable_x64", True)
