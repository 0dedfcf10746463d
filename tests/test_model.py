"""The model, its loss and gradient: closed forms, masks, and jax.grad ≡ analytic_grad."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxgd
from jaxgd import Params


def test_mse_is_the_quadratic_closed_form():
    # L(w, b) = E[(w x + b - y)^2] expanded: a quadratic in (w, b) with the data's moments.
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=17), rng.normal(size=17)
    w, b = 0.7, -1.3
    closed = (w**2 * np.mean(x**2) + 2 * w * b * np.mean(x) + b**2 - 2 * w * np.mean(x * y)
              - 2 * b * np.mean(y) + np.mean(y**2))
    np.testing.assert_allclose(float(jaxgd.mse(Params(w, b), x, y)), closed, rtol=1e-12)


def test_mask_means_over_real_points_only():
    x = jnp.arange(8.0)
    y = 3 * x
    mask = jnp.array([True] * 3 + [False] * 5)
    p = Params(1.0, 0.5)
    assert float(jaxgd.mse(p, x, y, mask)) == pytest.approx(float(jaxgd.mse(p, x[:3], y[:3])), rel=1e-14)
    g_mask, g_cut = jaxgd.analytic_grad(p, x, y, mask), jaxgd.analytic_grad(p, x[:3], y[:3])
    np.testing.assert_allclose(np.array(g_mask), np.array(g_cut), rtol=1e-14)
    np.testing.assert_allclose(np.array(jax.grad(jaxgd.mse)(p, x, y, mask)), np.array(g_cut), rtol=1e-14)


finite = st.floats(-50, 50, allow_nan=False)


@jax.jit
def _both_grads(p, x, y, mask):
    """jax.grad of the loss and the analytic gradient, compiled once per (m, masked): eager, every op
    recompiled for each new m (4× the time)."""
    return jax.grad(jaxgd.mse)(p, x, y, mask), jaxgd.analytic_grad(p, x, y, mask)


@settings(max_examples=30, deadline=None)  # each new m compiles anew
@given(w=finite, b=finite, m=st.integers(1, 40), seed=st.integers(0, 2**31), masked=st.booleans())
def test_jax_grad_equals_analytic_grad(w, b, m, seed, masked):
    rng = np.random.default_rng(seed)
    x, y = rng.normal(scale=5, size=m), rng.normal(scale=5, size=m)
    mask = jnp.asarray(rng.random(m) < 0.6).at[0].set(True) if masked else None
    ad, an = _both_grads(Params(jnp.float64(w), jnp.float64(b)), x, y, mask)
    scale = 1 + float(jnp.hypot(an.w, an.b))
    np.testing.assert_allclose(np.array(ad), np.array(an), rtol=1e-12, atol=1e-13 * scale)


def test_float32_gradients_agree_to_float32_precision():
    p = jaxgd.notebook(dtype="float32")
    gc = jaxgd.grad_check(p, np.linspace(-8, 8, 41), np.linspace(-8, 8, 41))
    assert gc.autodiff.w.dtype == np.float32
    # float32 eps ≈ 1.2e-7; the two sum 51 terms in different orders (measured 3.6e-7)
    assert gc.max_rel_error < 2e-6
