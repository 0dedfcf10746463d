"""The curvature engine's calls (issue 25): every public curvature function compiles once per loss and
shapes and is reused by later direct calls; a Problem's HVPs run over its data in chunks, equal to the
one-piece HVPs to rounding (float64, against a dense ``jax.hessian`` of the loss written out)."""

from __future__ import annotations

import jax
from jax.flatten_util import ravel_pytree
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgd
from jaxgd import curvature, planes, spectrum
from helpers import mlp_params

pytestmark = pytest.mark.xdist_group("spectrum_chunks")  # its module fixtures are made once

SIZES = (3, 5, 1)  # 3·5 + 5 + 5·1 + 1 = 26 parameters
M = 50  # examples: chunks of 7 leave a ragged last chunk of 1
_rng = np.random.default_rng(4)
X = _rng.standard_normal((M, 3))
Y = np.sin(X[:, 0]) + X[:, 1] * X[:, 2]
TRACES = [0]  # times the loss was traced: each compilation traces it


def per_example(p, x, y):
    TRACES[0] += 1
    h = jnp.tanh(p["layer0"]["w"] @ x + p["layer0"]["b"])
    return (p["layer1"]["w"] @ h + p["layer1"]["b"] - y)[0] ** 2


def written_out(params):
    """The same loss on all the data at once, without jaxgd (the reference)."""
    h = jnp.tanh(X @ params["layer0"]["w"].T + params["layer0"]["b"][None])
    return jnp.mean(((h @ params["layer1"]["w"].T)[:, 0] + params["layer1"]["b"][0] - Y) ** 2)


@pytest.fixture(scope="module")
def prob():
    return jaxgd.model_problem(per_example, mlp_params(0, SIZES), (X, Y))


def dense(params):
    x, unravel = ravel_pytree(params)
    return jax.hessian(lambda y: written_out(unravel(y)))(x)


def test_default_chunk_rule():
    """max(1, 2²² // n) examples, at most m: the planes' point batches' budget."""
    assert spectrum.default_chunk(10**5, 3466) == 2**22 // 3466 == 1210
    assert spectrum.default_chunk(500, 3466) == 500  # in one piece
    assert spectrum.default_chunk(10, 10**8) == 1
    assert spectrum.CHUNK_ELEMENTS == planes.MAX_ELEMENTS


@pytest.mark.parametrize("chunk", [1, 7, None])
def test_chunked_hessian_equals_one_piece(prob, chunk):
    """The dense Hessian (every HVP of a basis vector) over chunks of 1, 7 (a ragged last chunk: the last
    7 examples, 6 of them masked) and in one piece: the written-out Hessian to 1e-12."""
    H = spectrum.dense_hessian(prob, prob.init, examples_per_chunk=chunk)
    ref = dense(prob.init)
    assert float(jnp.max(jnp.abs(H - ref))) <= 1e-12 * float(jnp.max(jnp.abs(ref)))


def test_chunked_estimators_equal_one_piece(prob):
    """Lanczos and Hutchinson with the same start and probes, chunks of 7 against one piece; one leaf's
    block in chunks against the dense block."""
    p = mlp_params(1, SIZES)
    v0 = jax.tree.map(jnp.ones_like, p)
    key = jax.random.key(3)
    whole = spectrum.top_eigenpairs(prob, p, v0, k=3, max_iter=26, tol=1e-10)
    cut = spectrum.top_eigenpairs(prob, p, v0, k=3, max_iter=26, tol=1e-10, examples_per_chunk=7)
    lam = jnp.linalg.eigvalsh(dense(p))[::-1][:3]
    np.testing.assert_allclose(whole.eigenvalues, lam, rtol=1e-10)
    np.testing.assert_allclose(cut.eigenvalues, whole.eigenvalues, rtol=1e-12)
    a, b = (spectrum.hutchinson_trace(prob, p, key, num=4, examples_per_chunk=c) for c in (None, 7))
    np.testing.assert_allclose(b.estimate, a.estimate, rtol=1e-12)
    leaf = spectrum.top_k(prob, p, key, k=2, max_iter=15, tol=1e-10, leaf="layer0/w", examples_per_chunk=7)
    block = dense(p)[5:20, 5:20]  # leaf layer0/w: entries 5..19 of ravel_pytree (layer0/b first)
    np.testing.assert_allclose(leaf.eigenvalues, jnp.linalg.eigvalsh(block)[::-1][:2], rtol=1e-10)


def test_chunked_inside_a_users_jit_and_vmap(prob):
    """Under a trace the call runs inline (chunks and all)."""
    ps = jax.tree.map(lambda a, b: jnp.stack([a, b]), mlp_params(1, SIZES), mlp_params(2, SIZES))
    v0 = jnp.ones(26)
    lam = jax.jit(jax.vmap(lambda p: spectrum.top_eigenpairs(prob, p, v0, k=1, max_iter=26, tol=1e-10,
                                                             examples_per_chunk=7).eigenvalues))(ps)
    ref = [jnp.linalg.eigvalsh(dense(jax.tree.map(lambda a, i=i: a[i], ps)))[-1] for i in range(2)]
    np.testing.assert_allclose(lam[:, 0], ref, rtol=1e-10)


def test_chunks_are_refused_where_they_cannot_be(prob):
    with pytest.raises(jaxgd.ArgumentError, match="^examples_per_chunk .*a jaxgd.Problem only"):
        spectrum.top_eigenpairs(written_out, prob.init, jnp.ones(26), examples_per_chunk=10)
    with pytest.raises(jaxgd.ArgumentError, match="^examples_per_chunk "):
        spectrum.dense_hessian(prob, prob.init, examples_per_chunk=0)
    with pytest.raises(jaxgd.ArgumentError, match="^examples_per_chunk .*which has no data"):
        spectrum.top_eigenpairs(jaxgd.problem("rosenbrock"), jaxgd.problem("rosenbrock").init, jnp.ones(2),
                                examples_per_chunk=10)


CALLS = {
    "top_eigenpairs": lambda f, p, key, c: spectrum.top_eigenpairs(f, p, jnp.ones(26), k=3, max_iter=26,
                                                                   examples_per_chunk=c),
    "top_k": lambda f, p, key, c: spectrum.top_k(f, p, key, k=2, max_iter=15, leaf="layer0/w", examples_per_chunk=c),
    "dense_hessian": lambda f, p, key, c: spectrum.dense_hessian(f, p, examples_per_chunk=c),
    "dense_spectrum": lambda f, p, key, c: spectrum.dense_spectrum(f, p, examples_per_chunk=c),
    "hutchinson_trace": lambda f, p, key, c: spectrum.hutchinson_trace(f, p, key, num=4, examples_per_chunk=c),
    "hutchpp_trace": lambda f, p, key, c: spectrum.hutchpp_trace(f, p, key, num=9, examples_per_chunk=c),
    "slq_density": lambda f, p, key, c: spectrum.slq_density(f, p, key, num_probes=2, lanczos_steps=5,
                                                             examples_per_chunk=c),
    "audit": lambda f, p, key, c: spectrum.audit(f, jax.tree.map(lambda a: a[None], p), key, k=1, num=8,
                                                 num_probes=1, lanczos_steps=2, max_iter=4, examples_per_chunk=c),
    "hessian_plane": lambda f, p, key, c: planes.hessian_plane(f, p, key, max_iter=20, examples_per_chunk=c),
    "curvature.hessian": lambda f, p, key, c: curvature.hessian(f, p),
    "curvature.theory": lambda f, p, key, c: curvature.theory(f, p),
}


@pytest.mark.parametrize("name,chunk", [(name, None if name in ("slq_density", "audit") or name.startswith("curvature")
                                           else 7) for name in CALLS] + [("top_eigenpairs", None)])
def test_second_direct_call_does_not_compile(prob, name, chunk):
    """A second direct call at another point (and key) of the same shapes traces the loss no more: the
    compiled call is reused. A Problem's data are an argument, so a second problem of the same loss and
    data shapes reuses it too. (In chunks of 7, or in one piece: the same compiled functions with
    another static chunk size.)"""
    call = CALLS[name]
    jax.block_until_ready(call(prob, mlp_params(1, SIZES), jax.random.key(1), chunk))
    before = TRACES[0]
    assert before > 0
    other = jaxgd.model_problem(per_example, mlp_params(0, SIZES), (X[::-1].copy(), Y[::-1].copy()))
    for p, key, f in ((mlp_params(2, SIZES), jax.random.key(2), prob), (mlp_params(3, SIZES), jax.random.key(3), other)):
        jax.block_until_ready(call(f, p, key, chunk))
    assert TRACES[0] == before, f"{name} traced the loss again"


def test_a_functions_second_call_does_not_compile():
    """A bare loss (the same function object) compiles once too; tol is traced."""
    count = [0]

    def f(p):
        count[0] += 1
        return written_out(p)

    for seed, tol in ((1, 1e-6), (2, 1e-8)):
        r = spectrum.top_eigenpairs(f, mlp_params(seed, SIZES), jnp.ones(26), k=1, max_iter=26, tol=tol)
        jax.block_until_ready(r)
        if seed == 1:
            first = count[0]
    assert first > 0 and count[0] == first
