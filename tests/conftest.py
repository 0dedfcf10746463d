"""Tests run in float64 (the notebook's precision); x64 is enabled before any array exists."""

import jax

jax.config.update("jax_enable_x64", True)

import pytest  # noqa: E402


@pytest.fixture
def restore_x64():
    """For tests that call the CLI in-process: it sets x64 from --dtype."""
    yield
    jax.config.update("jax_enable_x64", True)
