"""loss_surface: layout, chunking, closed form; grad_check."""

import numpy as np
import pytest

import jaxgd
from jaxgd import Params, surface

import helpers as ref


def test_orientation_on_a_non_square_grid(problem):
    w = np.array([-3.0, 0.0, 2.0, 5.0])  # 4 values of W
    b = np.array([-1.0, 3.0, 7.0])  # 3 values of b
    S = np.asarray(jaxgd.loss_surface(problem, w, b))
    assert S.shape == (4, 3)
    x, y = problem.data
    for i in range(4):
        for j in range(3):
            np.testing.assert_allclose(S[i, j], float(jaxgd.mse(Params(w[i], b[j]), x, y)), rtol=1e-13)
    # the minimum (2, 3) is at i=2, j=1 — not at the transposed place
    assert np.unravel_index(S.argmin(), S.shape) == (2, 1)


def test_closed_form_quadratic(problem):
    # For the notebook's data mean(x) = 0: L = (w-2)^2 mean(x^2) + (b-3)^2.
    w, b = np.linspace(-8, 8, 13), np.linspace(-6, 9, 7)
    S = np.asarray(jaxgd.loss_surface(problem, w, b))
    mx2 = np.mean(ref.X**2)
    closed = (w[:, None] - 2) ** 2 * mx2 + (b[None, :] - 3) ** 2
    np.testing.assert_allclose(S, closed, rtol=1e-12, atol=1e-12)


def test_chunked_equals_unchunked(problem, monkeypatch):
    w, b = np.linspace(-8, 8, 37), np.linspace(-8, 8, 23)
    whole = np.asarray(jaxgd.loss_surface(problem, w, b))
    monkeypatch.setattr(surface, "CHUNK_ELEMENTS", 51 * 23 * 5)  # 5 rows per chunk, ragged rest of 2
    assert surface._rows_per_chunk(problem, 23) == 5
    chunked = np.asarray(jaxgd.loss_surface(problem, w, b))
    np.testing.assert_allclose(chunked, whole, rtol=1e-15)
    np.testing.assert_allclose(whole, ref.surface_loops(w, b), rtol=1e-12)


def test_grad_check_reports_agreement(problem):
    g = np.linspace(-8, 8, 21)
    gc = jaxgd.grad_check(problem, g, g)
    assert gc.autodiff.w.shape == (21, 21)
    assert gc.max_abs_error < 1e-12 and gc.max_rel_error < 1e-13
    # and it would notice a wrong analytic gradient: the notebook comment's e·W instead of e·x
    import dataclasses

    bad = dataclasses.replace(problem, grad_fn=_comment_grad)
    assert jaxgd.grad_check(bad, g, g).max_rel_error > 0.1


def _comment_grad(params, data, mask):
    x, y = data
    e = params.w * x + params.b - y
    return Params(2 * (e * params.w).mean(), 2 * e.mean())


@pytest.mark.parametrize("bad", [[], [[1.0, 2.0]], [1.0, np.nan]])
def test_bad_grid(problem, bad):
    with pytest.raises(ValueError, match="w_values"):
        jaxgd.loss_surface(problem, bad, [0.0])


def test_an_axis_past_the_working_dtype_is_refused():
    """1e308 is finite in float64 but not in float32: it was accepted and became inf (issue 23)."""
    p = jaxgd.notebook(dtype="float32")
    with pytest.raises(jaxgd.ArgumentError, match=r"^w_values must be finite in float32 \(\|value\| ≤ 3\.403e\+38\), got 1e\+308$"):
        jaxgd.loss_surface(p, [1e308], [1.0])
    assert np.asarray(jaxgd.loss_surface(p, [1.0], [1.0])).shape == (1, 1)
