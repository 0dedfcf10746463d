"""Planes through parameter space: the loss landscape of a real model seen in two dimensions.

A :class:`Plane` is ``origin + a·d1 + b·d2`` with ``origin``, ``d1``, ``d2`` pytrees like the
model's parameters. The functions that need a loss take a ``problem``: a :class:`jaxgd.Problem`
(its loss on the whole data, :attr:`~jaxgd.Problem.full_loss`) or a function ``f(params) ->
scalar``; jitted with that function static, so the same problem reuses its compilations. Vectors are compared, normed and projected
as flat vectors (``jax.flatten_util.ravel_pytree`` order, ``n`` numbers).

Directions come from
- :func:`random_plane`: Gaussian, filter-normalised — Li, Xu, Taylor, Studer & Goldstein (2018),
  "Visualizing the Loss Landscape of Neural Nets" (NeurIPS);
- :func:`pca_plane`: the top principal components of an optimiser path (Li et al. 2018, §7), with
  the same statistic for a Gaussian random walk as a baseline — Antognini & Sohl-Dickstein (2018),
  "PCA of high dimensional random walks with comparison to neural network training" (NeurIPS);
- :func:`hessian_plane`: the top two Hessian eigenvectors (:mod:`jaxgd.spectrum`).

:func:`plane_surface` evaluates the loss on a grid in bounded memory, :func:`interpolate` along a
segment (Goodfellow, Vinyals & Saxe 2015, "Qualitatively characterizing neural network
optimization problems"), and :func:`project` puts a path's points into plane coordinates.
A weight's layout is unknown to jaxgd: :func:`random_plane` takes a leaf's *leading* axis as the
neuron (``(out, in)`` matrices: jaxgd's MLP, Equinox) unless told otherwise by ``neuron_axis`` or
the problem's :attr:`~jaxgd.Problem.neuron_axis` (Flax kernels are ``(in, out)``: axis ``-1``).
"""

from __future__ import annotations

from functools import partial
from typing import Any, Callable, NamedTuple, Union

import jax
from jax.flatten_util import ravel_pytree
import jax.numpy as jnp
import numpy as np

from jaxgd._checks import ArgumentError, ArgumentTypeError
from jaxgd.model import _mean
from jaxgd.models import FirstLayer
from jaxgd.problems import ExampleLoss, FullLoss, Problem, loss_of, neuron_axes
from jaxgd.spectrum import top_k

PyTree = Any
Loss = Callable[[PyTree], jax.Array]
ProblemOrLoss = Union[Problem, Loss]

# Numbers held at once by the grid evaluators: (points evaluated together) × (parameters).
# 2**22 float64 = 32 MiB of parameter copies; the loss's own activations scale with it too.
MAX_ELEMENTS = 2**22
# On a CPU, batches of a few dozen points run fastest: a 101² plane of a 1,060-parameter MLP on 512
# examples took 0.54 s in batches of 61 points and 0.89 s in batches of 3,956 (2 cores, float64),
# whose activations no longer fit in cache. Accelerators get the memory bound alone.
CPU_POINTS = 64


class Plane(NamedTuple):
    """The points ``origin + a·d1 + b·d2``; each field a pytree like the parameters."""

    origin: PyTree
    d1: PyTree
    d2: PyTree


def _num_params(tree: PyTree) -> int:
    return sum(int(jnp.size(leaf)) for leaf in jax.tree_util.tree_leaves(tree))


def batch_points(count: int, n: int, max_elements: int = MAX_ELEMENTS) -> int:
    """Points the grid evaluators vmap together out of ``count``, each making ``n`` numbers:
    ``max(1, max_elements // n)``, at most :data:`CPU_POINTS` on a CPU, at most ``count``."""
    batch = max(1, max_elements // max(n, 1))
    if jax.default_backend() == "cpu":
        batch = min(batch, CPU_POINTS)
    return min(batch, max(count, 1))


def _map_points(fn: Callable, xs: PyTree, n: int, max_elements: int):
    """``vmap(fn)`` over the leading axis of ``xs`` in batches of :func:`batch_points` points
    (``lax.map``, a ragged last batch is one more vmap), so at most ``max_elements`` parameter
    numbers are held at once when each point makes ``n`` of them."""
    count = jax.tree_util.tree_leaves(xs)[0].shape[0]
    batch = batch_points(count, n, max_elements)
    return jax.vmap(fn)(xs) if batch >= count else jax.lax.map(fn, xs, batch_size=batch)


def _axis(name: str, v, dtype) -> jax.Array:
    v = jnp.asarray(v)
    if v.ndim != 1 or v.shape[0] == 0:
        raise ValueError(f"{name}: must be a non-empty 1-D array, got shape {v.shape}")
    return v.astype(dtype)


def _float_dtype(tree: PyTree):
    """The leaves' common dtype (weak types ignored), or the default float if not floating."""
    dtype = jnp.result_type(*(jnp.asarray(leaf).dtype for leaf in jax.tree_util.tree_leaves(tree)))
    return dtype if jnp.issubdtype(dtype, jnp.floating) else jnp.result_type(float)


def _first_layer(f) -> tuple[FirstLayer, tuple] | None:
    """``(layer, data)`` where ``f`` is a problem's full-data loss (:class:`~jaxgd.problems.FullLoss`)
    whose per-example loss declares its linear first layer (:class:`jaxgd.models.FirstLayer`, as
    jaxgd's MLP does) and takes no key; else None, and the evaluators take the general path. A user's
    model (Equinox, Flax, a function of its own) declares none: jaxgd never guesses its layout."""
    loss_fn = f.loss_fn if isinstance(f, FullLoss) else None
    if type(loss_fn) is not ExampleLoss or loss_fn.takes_key:
        return None
    layer = getattr(loss_fn.loss_per_example, "first_layer", None)
    return (layer, f.data) if isinstance(layer, FirstLayer) else None


def _losses(f, trees: tuple, xs: PyTree, coef: Callable, max_elements: int) -> jax.Array:
    """``out[i] = f(Σ_k c_k·trees[k])`` ``(P,)``, ``(c_0, c_1, ...) = coef(x_i)`` for the ``P`` points
    ``x_i`` of ``xs`` (leading axis; a ``c_k`` of None stands for 1, no product), ``trees`` pytrees like
    the parameters; batched by :func:`_map_points`. Where ``f`` declares a linear first layer
    (:func:`_first_layer`), its pre-activation is computed once per tree (``len(trees)`` passes over
    the data instead of ``P``) and combined per point the same way: equal to the general path to rounding."""
    at = lambda c, ts: jax.tree_util.tree_map(lambda *v: _combine(c, v), *ts)
    split = _first_layer(f)
    if split is None:
        point = lambda x: f(at(coef(x), trees))
    else:
        (pre, rest), data = split
        examples = (0,) * len(data)
        Z = tuple(jax.vmap(pre, in_axes=(None, *examples))(t, *data) for t in trees)  # each (m, ...)
        rest = jax.vmap(rest, in_axes=(None, 0, *examples))
        point = lambda x: _mean(rest(at(coef(x), trees), at(coef(x), Z), *data), None)
    return _map_points(point, xs, _num_params(trees[0]), max_elements)


def _combine(c: tuple, v: tuple) -> jax.Array:
    """``c[0]·v[0] + c[1]·v[1] + ...``, summed left to right; a ``c[k]`` of None is 1."""
    out = None
    for ck, vk in zip(c, v):
        term = vk if ck is None else ck * vk
        out = term if out is None else out + term
    return out


@partial(jax.jit, static_argnames=("f", "max_elements"))
def _surface(f, plane, a, b, max_elements):
    A, B = a.shape[0], b.shape[0]
    grid = (jnp.repeat(a, B), jnp.tile(b, A))  # row-major: point i·B + j is (a[i], b[j])
    return _losses(f, tuple(plane), grid, lambda ab: (None, *ab), max_elements).reshape(A, B)


def plane_surface(problem: ProblemOrLoss, plane: Plane, a, b, *, max_elements: int = MAX_ELEMENTS) -> jax.Array:
    """The loss on a grid of the plane: ``S[i, j] = L(origin + a[i]·d1 + b[j]·d2)``, ``L`` the
    problem's full-data loss (or the function given).

    ``a`` ``(A,)``, ``b`` ``(B,)``; returns ``(A, B)`` — rows follow ``d1`` (plot ``z=S.T`` with
    ``x=a, y=b`` in plotly). The ``A·B`` points are evaluated by ``vmap`` in ``lax.map`` batches of
    ``max(1, max_elements // n)`` points, ``n`` = number of parameters: whole rows when they fit,
    pieces of a row when one does not, never the whole grid × parameters. Jitted, the loss and
    ``max_elements`` static: pass the same problem (or function object) to reuse the compilation.

    A problem whose per-example loss declares its first layer linear in the parameters
    (:class:`jaxgd.models.FirstLayer`: jaxgd's own :func:`jaxgd.models.mlp` does) has that layer's
    pre-activation computed once per direction — three passes over the data, not one per point —
    and combined per point, ``z = z(origin) + a·z(d1) + b·z(d2)``; the rest of the network runs per
    point. Equal to the general path to rounding. Every other loss (a user's Equinox or Flax model, a
    bare function) is evaluated point by point: jaxgd never guesses a layout.
    """
    f = loss_of(problem)
    _check_plane(plane)
    return checked_surface(f, plane, a, b, max_elements)


def checked_surface(f: Loss, plane: Plane, a, b, max_elements: int = MAX_ELEMENTS) -> jax.Array:
    """:func:`plane_surface` of a loss function on a plane already checked (:func:`_check_plane`): for a
    caller that evaluates one plane in many blocks (:func:`jaxgd.landscape`), checked once."""
    dtype = _float_dtype(plane.origin)
    return _surface(f, plane, _axis("a", a, dtype), _axis("b", b, dtype), max_elements)


def _check_plane(plane: Plane) -> None:
    """A plane's origin and directions finite, the directions non-zero and not parallel (else the surface is
    NaN, or the projection's coordinates NaN or inf, with no word); an ``ArgumentError`` naming ``plane``."""
    try:
        o, d1, d2 = (np.asarray(ravel_pytree(v)[0]) for v in plane[:3])
    except jax.errors.TracerArrayConversionError:  # under the caller's jit: the values are not known here
        return
    for name, v in (("origin", o), ("d1", d1), ("d2", d2)):
        if not np.all(np.isfinite(v)):
            raise ArgumentError("plane", f"{name} must be finite, got a non-finite value at flat index "
                                         f"{int(np.argmax(~np.isfinite(v)))}")
    n1, n2 = float(np.linalg.norm(d1)), float(np.linalg.norm(d2))
    if n1 == 0 or n2 == 0:
        raise ArgumentError("plane", f"{'d1' if n1 == 0 else 'd2'} must not be zero")
    if 1 - abs(float(d1 @ d2)) / (n1 * n2) <= 100 * np.finfo(d1.dtype).eps:
        raise ArgumentError("plane", "d1 and d2 must not be parallel: they span no plane")


def _rescaled(d: jax.Array, p: jax.Array, axes: tuple[int, ...]) -> jax.Array:
    """``d`` with each slice over ``axes`` scaled to the Frobenius norm of the same slice of ``p``."""
    norm = lambda x: jnp.sqrt(jnp.sum(x * x, axis=axes, keepdims=True))
    dn = norm(d)
    return d * jnp.where(dn > 0, norm(p) / jnp.where(dn > 0, dn, 1), 0)


def _direction(params: PyTree, key: jax.Array, normalize: str | None, keep_biases: bool,
               axes: tuple[int | None, ...]) -> PyTree:
    leaves, treedef = jax.tree_util.tree_flatten(params)
    out = []
    for i, (p, axis) in enumerate(zip(leaves, axes)):
        p = jnp.asarray(p)
        k, dtype = jax.random.fold_in(key, i), _float_dtype(p)
        if p.ndim >= 2 and axis:  # drawn neuron-first, so a transposed layout draws the same numbers
            d = jnp.moveaxis(jax.random.normal(k, jnp.moveaxis(p, axis, 0).shape, dtype), 0, axis)
        else:
            d = jax.random.normal(k, p.shape, dtype)
        if normalize is not None:
            if p.ndim <= 1:
                d = p.astype(d.dtype) if keep_biases else jnp.zeros_like(d)
            elif normalize == "filter" and axis is not None:
                d = _rescaled(d, p, tuple(a for a in range(p.ndim) if a != axis))
            else:
                d = _rescaled(d, p, tuple(range(p.ndim)))
        out.append(d)
    return jax.tree_util.tree_unflatten(treedef, out)


def random_plane(problem_or_params, *args, normalize: str | None = "filter", keep_biases: bool = False,
                 neuron_axis=None) -> Plane:
    """``random_plane(problem, params, key)`` or ``random_plane(params, key)``: a plane through
    ``params`` along two Gaussian directions (keys ``split(key)``; leaf ``i`` of a direction uses
    ``fold_in(its key, i)``).

    ``normalize`` (Li et al. 2018, §4):
    - ``"filter"``: in each leaf with ``ndim ≥ 2``, every neuron's slice ``d[..., i, ...]`` (a
      neuron of a dense layer, a filter of a convolution) is rescaled to the Frobenius norm of the
      same slice of ``params``; which axis indexes the neuron is ``neuron_axis``;
    - ``"layer"``: each leaf with ``ndim ≥ 2`` is rescaled to the leaf's norm;
    - ``None``: raw standard Gaussian in every leaf.
    With ``"filter"``/``"layer"``, leaves with ``ndim ≤ 1`` (biases, scalars) are zero, or with
    ``keep_biases=True`` a copy of ``params`` (as Li et al.'s ``net_plotter`` does). Zero slices of
    ``params`` give zero slices of ``d``. Returns ``Plane(params, d1, d2)``.

    ``neuron_axis`` (as :attr:`jaxgd.Problem.neuron_axis`; given, it overrides the problem's):
    None, the default, takes axis 0 — weights stored ``(out, in)``, filters ``(out, in, h, w)``,
    as jaxgd's :func:`jaxgd.models.mlp` and Equinox store them. jaxgd cannot tell a 2-D leaf's
    layout: for Flax kernels ``(in, out)`` pass ``-1``; a pytree like ``params`` gives an int per
    leaf, or None for a leaf normalised as a whole. Each leaf's Gaussian is drawn with its neuron
    axis first and moved into place, so the same network stored ``(out, in)`` with
    ``neuron_axis=0`` and ``(in, out)`` with ``neuron_axis=-1`` gets the same directions, transposed.
    """
    problem = problem_or_params if isinstance(problem_or_params, Problem) else None
    given = args if problem is not None else (problem_or_params, *args)
    if len(given) != 2 or any(isinstance(a, str) for a in given):
        raise ArgumentTypeError("random_plane", "takes (params, key) or (problem, params, key) positionally, and "
                                                "normalize=, keep_biases=, neuron_axis= by name")
    params, key = given
    if normalize not in ("filter", "layer", None):
        raise ValueError(f"normalize: must be 'filter', 'layer' or None, got {normalize!r}")
    if keep_biases and normalize is None:
        raise ValueError("keep_biases: applies only with normalize='filter' or 'layer'")
    if neuron_axis is None and problem is not None:
        neuron_axis = problem.neuron_axis
    return Plane(params, *_directions(params, key, normalize, keep_biases, neuron_axes(neuron_axis, params)))


@partial(jax.jit, static_argnames=("normalize", "keep_biases", "axes"))
def _directions(params, key, normalize, keep_biases, axes):
    k1, k2 = jax.random.split(key)
    return tuple(_direction(params, k, normalize, keep_biases, axes) for k in (k1, k2))


class PCAPlane(NamedTuple):
    """What :func:`pca_plane` returns."""

    plane: Plane  # origin = the final point; d1, d2 unit (flattened), orthogonal
    explained: jax.Array  # (2,) variance ratios of the two components
    random_walk_explained: jax.Array  # (2,) the same for a Gaussian random walk of the path's shape


def _centred(X: jax.Array, center: str) -> jax.Array:
    """The rows of ``X`` ``(P, n)`` less their mean (``"mean"``) or less the last row (``"final"``)."""
    return X - (jnp.mean(X, axis=0, keepdims=True) if center == "mean" else X[-1:])


def _top_components(D: jax.Array):
    """Thin SVD of ``D`` ``(P, n)`` through its ``(P, P)`` Gram matrix (``P ≪ n``: never ``n × n``):
    the top two squared singular values ``(2,)`` and their sum over all of them (both of ``D`` scaled by
    a power of two, so that paths out to 1e300 do not overflow: only their ratio means something), and
    the top two right singular vectors ``(2, n)``, orthonormalised (Gram-Schmidt; so ``v2`` is still a unit
    vector ⟂ ``v1`` when ``D`` has rank 1 — then it is arbitrary and its ratio is 0)."""
    big = jnp.max(jnp.abs(D))  # D scaled by a power of two near its largest entry (exact): no overflow in G
    D = D / jnp.where(big > 0, jnp.exp2(jnp.round(jnp.log2(jnp.where(big > 0, big, 1)))), 1).astype(D.dtype)
    G = D @ D.T
    power, U = jnp.linalg.eigh((G + G.T) / 2)  # ascending
    v1, v2 = U[:, ::-1][:, :2].T @ D
    unit = lambda v: v / jnp.maximum(jnp.linalg.norm(v), jnp.finfo(v.dtype).tiny)
    v1 = unit(v1)
    v2 = unit(v2 - (v2 @ v1) * v1)
    return power[::-1][:2], jnp.trace(G), jnp.stack([v1, v2])


def _random_walk(key: jax.Array, steps: int, dim: int, dtype) -> jax.Array:
    """``(steps+1, min(steps, dim))`` points, from 0, of a walk whose Gram matrix ``X Xᵀ`` has the
    distribution of a ``dim``-dimensional walk with standard-normal steps: for ``dim ≥ steps`` the
    steps ``Z`` ``(steps, dim)`` only enter through ``Z Zᵀ ~ Wishart(dim, I)``, drawn by Bartlett's
    decomposition ``A Aᵀ`` (``A`` lower triangular, ``A_ii² ~ χ²(dim − i)``, ``A_ij ~ N(0, 1)``), so
    the rows of ``A`` serve as the steps — ``O(steps²)`` memory for any ``dim``."""
    kz, kc = jax.random.split(key)
    if dim < steps:
        Z = jax.random.normal(kz, (steps, dim), dtype)
    else:
        chi2 = jax.random.chisquare(kc, dim - jnp.arange(steps, dtype=dtype), dtype=dtype)
        Z = jnp.tril(jax.random.normal(kz, (steps, steps), dtype), -1) + jnp.diag(jnp.sqrt(chi2))
    return jnp.concatenate([jnp.zeros((1, Z.shape[1]), dtype), jnp.cumsum(Z, axis=0)])


@partial(jax.jit, static_argnames=("center",))
def _pca(path, key, center):
    X = jax.vmap(lambda p: ravel_pytree(p)[0])(path)
    _, unravel = ravel_pytree(jax.tree_util.tree_map(lambda leaf: leaf[-1], path))
    points, n = X.shape
    power, total, V = _top_components(_centred(X, center))
    V = V * jnp.where(V @ (X[0] - X[-1]) < 0, -1, 1).astype(X.dtype)[:, None]
    walk, walk_total, _ = _top_components(_centred(_random_walk(key, points - 1, n, X.dtype), center))
    return PCAPlane(Plane(unravel(X[-1]), unravel(V[0]), unravel(V[1])), power / total, walk / walk_total)


def evenly(n: int, most: int) -> np.ndarray:
    """At most ``most`` indices of ``range(n)``, evenly spaced, the first and last included (all
    of them when ``n <= most``)."""
    return np.unique(np.linspace(0, n - 1, min(n, most)).round().astype(int))


def pca_plane(*paths: PyTree, key: jax.Array | None = None, center: str = "mean",
              max_points: int | None = None) -> PCAPlane:
    """The plane of the top two principal directions of one or several optimiser paths (Li et al. 2018, §7).

    Each path: a pytree like the parameters whose leaves have a leading axis of its points, e.g.
    a trajectory's ``params`` (start first). With ``max_points``, each path is thinned to at most
    that many points, evenly spaced, its first and last kept (:func:`evenly`). The paths are
    stacked as the second, third, ..., then the first, so the first path's end is the last of the
    ``P`` points (``P ≥ 3``): ``pca_plane(p1, p2)`` is ``pca_plane`` of ``p2`` followed by ``p1``.
    The points are flattened to ``X`` ``(P, n)`` and centred to ``D``; the directions are the top
    right singular vectors of ``D``, from the ``(P, P)`` Gram matrix ``D Dᵀ`` (never ``n × n``;
    thin long paths). ``center="mean"`` (default) is PCA proper: Li et al.'s code applies
    ``sklearn.decomposition.PCA``, which mean-centres, to ``θ_i − θ_final``, so the final point
    only fixes the origin; it is also Antognini & Sohl-Dickstein's (2018) statistic.
    ``center="final"`` takes ``θ_i − θ_final`` uncentred. The origin is the first path's last
    point; ``d1``, ``d2`` are unit, orthogonal, signed so the first stacked point (the first
    path's start when there is one path) has coordinates ≥ 0.

    ``explained`` ``(2,)``: ``s_i² / Σ s²``. ``random_walk_explained`` ``(2,)``: the same for one
    simulated Gaussian random walk with ``P − 1`` steps in ``n`` dimensions, centred the same way
    (``key``, default ``jax.random.key(0)``); for ``n ≫ P ≫ 1`` its first ratio is near
    ``6/π² ≈ 0.61`` with ``"mean"`` (Antognini & Sohl-Dickstein) and ``8/π² ≈ 0.81`` with
    ``"final"``, and it fluctuates by a few hundredths between keys. A path whose ratios resemble
    the walk's shows no more structure than noise.
    """
    if center not in ("mean", "final"):
        raise ValueError(f"center: must be 'mean' or 'final', got {center!r}")
    if not paths:
        raise ArgumentTypeError("pca_plane", "takes one path or several, positionally: pca_plane(path, ...)")
    if max_points is not None and (isinstance(max_points, bool) or not isinstance(max_points, int) or max_points < 2):
        raise ValueError(f"max_points: must be an integer >= 2 or None, got {max_points!r}")
    if len({jax.tree_util.tree_structure(p) for p in paths}) != 1:
        raise ValueError("paths: must share one tree structure (the parameters')")
    parts = []
    for p in (*paths[1:], paths[0]):
        leaves = jax.tree_util.tree_leaves(p)
        points = {jnp.shape(leaf)[0] if jnp.ndim(leaf) else 0 for leaf in leaves}
        n = sum(int(jnp.size(leaf)) for leaf in leaves) // max(min(points), 1) if leaves else 0
        if len(points) != 1 or min(points) < 1 or n < 2:
            raise ValueError(f"path: needs leaves with one leading axis of points, and at least 2 parameters, "
                             f"got leading axes {sorted(points)} and {n} parameters")
        if max_points is not None:
            i = evenly(min(points), max_points)
            p = jax.tree_util.tree_map(lambda a: a[i], p)
        parts.append(p)
    path = parts[0] if len(parts) == 1 else jax.tree_util.tree_map(lambda *a: jnp.concatenate(a), *parts)
    bad = np.logical_or.reduce([~np.isfinite(np.asarray(leaf)).reshape(len(leaf), -1).all(axis=1)
                                for leaf in jax.tree_util.tree_leaves(path)])  # (P,): a point not finite
    if bad.any():
        raise ArgumentError("path", f"must be finite: point {int(np.argmax(bad))} of the {len(bad)} stacked is not "
                                    "(a diverged run? cut it before, e.g. at its diverged_at)")
    total = jnp.shape(jax.tree_util.tree_leaves(path)[0])[0]
    if total < 3:
        raise ValueError(f"path: needs at least 3 points in all, got {total}")
    return _pca(path, jax.random.key(0) if key is None else key, center)


AUTO_MARGIN = 0.15  # span="auto": this fraction of the points' range added on each side


def grid_axes(projections, grid: int, span="auto", *, at_least: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """The axes ``(a, b)``, ``grid`` points each, of a plane's grid.

    ``span="auto"``: from the smallest to the largest finite coordinate of every projection
    given (anything with ``.a`` and ``.b``, e.g. :class:`Projection`), widened by
    :data:`AUTO_MARGIN` (15 %) of that range on each side, and covering ``[-at_least, at_least]``
    first (1 for a random plane, whose directions are scaled like the parameters, as in Li et
    al.); ``[-1, 1]`` along an axis with no finite point. A number ``s > 0``: ``[-s, s]`` along
    both. A pair ``((a0, a1), (b0, b1))``: those ranges.
    """
    if isinstance(span, str):
        if span != "auto":
            raise ArgumentError("span", f"must be 'auto', a number > 0 or ((a0, a1), (b0, b1)), got {span!r}")
        lo, hi = np.full(2, np.inf), np.full(2, -np.inf)
        for p in projections:
            for k, v in enumerate((np.asarray(p.a), np.asarray(p.b))):
                v = v[np.isfinite(v)]
                if v.size:
                    lo[k], hi[k] = min(lo[k], v.min()), max(hi[k], v.max())
        if at_least:
            lo, hi = np.minimum(lo, -at_least), np.maximum(hi, at_least)
        lo, hi = np.where(np.isfinite(lo), lo, -1.0), np.where(np.isfinite(hi), hi, 1.0)
        width = np.maximum(hi - lo, 1e-6)
        lo, hi = lo - AUTO_MARGIN * width, hi + AUTO_MARGIN * width
        return np.linspace(lo[0], hi[0], grid), np.linspace(lo[1], hi[1], grid)
    try:
        ranges = np.broadcast_to(np.asarray(span, dtype=float), (2, 2)) if np.ndim(span) == 2 else None
        if ranges is None:
            s = float(span)
            ranges = np.array([[-s, s], [-s, s]])
    except (TypeError, ValueError):
        ranges = None
    if ranges is None or not np.all(np.isfinite(ranges)) or np.any(ranges[:, 1] <= ranges[:, 0]):
        raise ArgumentError("span", f"must be 'auto', a number > 0 or ((a0, a1), (b0, b1)) with a0 < a1 and "
                                    f"b0 < b1, got {span!r}")
    return np.linspace(*ranges[0], grid), np.linspace(*ranges[1], grid)


def hessian_plane(problem: ProblemOrLoss, params: PyTree, key: jax.Array, *, max_iter: int = 100,
                  tol: float = 1e-6, examples_per_chunk: int | None = None) -> Plane:
    """``Plane(params, v1, v2)`` along the top two Hessian eigenvectors of the problem's full-data
    loss (or the function given) at ``params``
    (algebraically largest eigenvalues; unit norm flattened; signs arbitrary), by
    :func:`jaxgd.spectrum.top_k` with ``k=2``, ``max_iter`` and ``tol``: Lanczos from a Gaussian
    start drawn with ``key`` (``normal(key, (n,))``). Compiled once per loss, shapes, ``max_iter`` and
    chunk size; a problem's HVPs run over its data in chunks of ``examples_per_chunk`` examples (see
    :func:`jaxgd.spectrum.objective`)."""
    vecs = top_k(problem, params, key, k=2, max_iter=max_iter, tol=tol, examples_per_chunk=examples_per_chunk)
    return Plane(params, *(jax.tree_util.tree_map(lambda leaf: leaf[i], vecs.eigenvectors) for i in range(2)))


@partial(jax.jit, static_argnames=("f", "max_elements"))
def _interpolate(f, p0, p1, t, max_elements):
    return _losses(f, (p0, p1), t, lambda ti: (1 - ti, ti), max_elements)


def interpolate(problem: ProblemOrLoss, p0: PyTree, p1: PyTree, t, *,
                max_elements: int = MAX_ELEMENTS) -> jax.Array:
    """Losses along the segment: ``out[i] = L((1 − t[i])·p0 + t[i]·p1)``, shape ``(len(t),)``, ``L``
    the problem's full-data loss or the function given (``t = 0`` is ``p0``, ``t = 1`` is ``p1``;
    values outside [0, 1] extrapolate). Batched like :func:`plane_surface`; jitted with the loss static."""
    return _interpolate(loss_of(problem), p0, p1, _axis("t", t, _float_dtype(p0)), max_elements)


class Projection(NamedTuple):
    """A path seen from a plane; every field ``(T+1,)``."""

    a: jax.Array  # coordinate along d1 of the least-squares projection of point − origin
    b: jax.Array  # coordinate along d2
    loss: jax.Array  # L(point)
    projected_loss: jax.Array  # L(origin + a·d1 + b·d2)
    distance: jax.Array  # ‖point − (origin + a·d1 + b·d2)‖ (flattened), distance to the plane


@partial(jax.jit, static_argnames=("f", "max_elements"))
def _project(plane, path, f, max_elements):
    o, unravel = ravel_pytree(plane.origin)
    D = jnp.stack([ravel_pytree(plane.d1)[0], ravel_pytree(plane.d2)[0]], axis=1)  # (n, 2)
    Q, R = jnp.linalg.qr(D)  # thin; R (2, 2) invertible iff d1, d2 are independent

    def one(p):
        x = ravel_pytree(p)[0]
        c = Q.T @ (x - o)
        ab = jax.scipy.linalg.solve_triangular(R, c)
        y = o + Q @ c  # = o + a·d1 + b·d2
        return ab[0], ab[1], f(p), f(unravel(y)), jnp.linalg.norm(x - y)

    return Projection(*_map_points(one, path, 3 * o.shape[0], max_elements))


def project(plane: Plane, path: PyTree, problem: ProblemOrLoss, *, max_elements: int = MAX_ELEMENTS) -> Projection:
    """Each point of ``path`` (leaves with a leading axis of ``T+1`` points) in plane coordinates,
    with the loss ``L`` there and at its projection (``L`` the problem's full-data loss, or the
    function given).

    ``(a, b)`` minimise ``‖point − origin − a·d1 − b·d2‖`` (``d1``, ``d2`` need not be orthogonal
    or unit, only independent), computed from a thin QR of ``[d1 d2]`` — the same solution as the
    2×2 normal equations, without squaring their condition number. Returns :class:`Projection`
    of ``(T+1,)`` arrays. Batched like :func:`plane_surface`; jitted with the loss static.
    """
    f = loss_of(problem)
    _check_plane(plane)
    return _project(plane, path, f, max_elements)
