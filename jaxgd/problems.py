"""Problems: a loss over a parameter pytree, with its data, starting point and plot defaults.

A :class:`Problem` is what :func:`jaxgd.run`, :func:`jaxgd.sweep`, :func:`jaxgd.loss_surface`
and :func:`jaxgd.grad_check` take. Its ``loss_fn(params, data, mask)`` is a pure function of the
parameters (any pytree of arrays; ``Params(w, b)`` for the two-parameter problems), a batch of
data (a tuple of arrays whose leading axis of length ``B`` is the example, or None for problems
without data) and an optional ``(B,)`` mask; ``grad_fn`` is its closed-form gradient with the
same signature, where one is known. ``loss_fn`` is a static argument of the compiled scan, so it
must be the same object (or an equal one) from call to call: a new function object recompiles.

A problem with ``takes_key`` (dropout and other randomness in the loss) has
``loss_fn(params, data, mask, key=None)``: the training step passes a fresh PRNG key at every
step, derived from the run's seed (:func:`jaxgd.data.step_key`); wherever jaxgd *measures* the
loss (the full-data loss each step and at the end, surfaces, planes, interpolations, sharpness
and spectra) it passes ``key=None``, and the loss must then be deterministic (eval mode).

:func:`linear_regression` and :func:`notebook` are the notebook's problem, :func:`model_problem`
wraps any JAX model given as a per-example or a batch loss, and :func:`problem` builds one by name.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxgd import _checks
from jaxgd._checks import ArgumentError, ArgumentTypeError
from jaxgd.data import notebook_data
from jaxgd.model import Params, _mean, analytic_grad, mse

LossFn = Callable[[Params, "tuple[jax.Array, ...] | None", "jax.Array | None"], jax.Array]


@dataclasses.dataclass(frozen=True, eq=False)
class Problem:
    """A loss landscape over a parameter pytree.

    Attributes:
      name: short name, used in reports.
      loss_fn: ``(params, data, mask) -> scalar`` — mean loss over the unmasked batch; with
        ``takes_key``, ``(params, data, mask, key=None) -> scalar``.
      grad_fn: the analytic gradient of ``loss_fn`` (same signature, returns a pytree like the
        params), or None where none is known.
      data: tuple of arrays with a leading axis of ``m`` examples (for regression ``(x, y)``), or None.
      w_range, b_range: default plot ranges ``(lo, hi)`` of the two parameters (None for a
        problem with other parameters).
      init: default starting point (a pytree; ``Params(w, b)`` for two parameters).
      minimum: the known global minimiser, or None.
      param_names: axis labels of the two parameters.
      data_names: the names of a regression's two data columns ``(x, y)``: a CSV file's header, or
        ``("x", "y")``.
      minima: every known minimiser to mark on plots (by default just ``minimum``).
      quadratic: True when the loss is a quadratic, so its Hessian is the same everywhere.
      neuron_axis: which axis of each weight indexes the neuron, for filter-normalised random
        planes (:func:`jaxgd.random_plane`): None for the default rule (axis 0 of every leaf with
        ``ndim ≥ 2``: weights stored ``(out, in)``, as jaxgd's :func:`jaxgd.models.mlp` and Equinox
        store them), an int for every leaf (Flax kernels ``(in, out)``: ``-1``), or a pytree like
        the parameters with an int per leaf, or None for a leaf without neurons (normalised as a
        whole). A 2-D leaf's layout is unknown to jaxgd: it assumes ``(out, in)`` unless told.
      takes_key: True when ``loss_fn`` takes a fourth argument, a PRNG key (dropout). Each
        training step passes a fresh key, ``jaxgd.data.step_key(seed, t)`` for step ``t`` of the
        run with ``seed``, so a run is reproducible by its seed and the runs of a sweep differ by
        seed; every *measurement* of the loss (the full-data loss recorded each step, the final
        loss, ``loss_surface``/``planes``/``interpolate``/``project``, sharpness and spectra)
        passes ``key=None``, where the loss must be deterministic (dropout off: eval mode).
    """

    name: str
    loss_fn: LossFn
    grad_fn: LossFn | None
    data: tuple | None
    w_range: tuple[float, float] | None
    b_range: tuple[float, float] | None
    init: Any
    minimum: Params | None = None
    param_names: tuple[str, str] = ("W", "b")
    minima: tuple = None  # type: ignore[assignment]
    quadratic: bool = False
    neuron_axis: Any = None
    takes_key: bool = False
    data_names: tuple[str, str] = ("x", "y")

    def __post_init__(self):
        if self.minima is None:
            object.__setattr__(self, "minima", () if self.minimum is None else (self.minimum,))

    @property
    def two_dimensional(self) -> bool:
        """True for a problem over ``Params(w, b)`` of two scalars (it has a loss *surface*)."""
        return isinstance(self.init, Params) and self.w_range is not None

    @functools.cached_property
    def num_params(self) -> int:
        """The number of scalar parameters (counted once: a problem is frozen)."""
        return int(sum(np.size(v) for v in jax.tree.leaves(self.init)))

    def checked_init(self):
        """``init`` checked as a start (finite, arrays of the problem's dtype), once per dtype: what
        every run that starts at the default starts from (a tree of many leaves costs its checks once)."""
        cache, dtype = self.__dict__.setdefault("_checked_init", {}), np.dtype(self.dtype)
        if dtype not in cache:
            cache[dtype] = _checks.check_params("init", self.init, self.init, dtype)
        return cache[dtype]

    @property
    def num_examples(self) -> int | None:
        """``m``, the number of data points, or None for a problem without data."""
        return None if self.data is None else int(self.data[0].shape[0])

    @property
    def dtype(self):
        """The working float dtype: the data's, or JAX's default float without data."""
        return _checks.check_dtype(None) if self.data is None else self.data[0].dtype

    @functools.cached_property
    def full_loss(self) -> "FullLoss":
        """``params -> loss on the whole data``: one function object per problem, so jitted
        functions that take it as a static argument (``jaxgd.planes``, ``jaxgd.spectrum``)
        compile once per problem."""
        return FullLoss(self.loss_fn, self.data)

    def loss(self, params: Params, idx=None, mask=None, key=None) -> jax.Array:
        """Loss on the whole data (``idx`` None) or on the examples ``idx`` (shape ``(B,)``);
        ``key``: a PRNG key for a problem that :attr:`takes_key` (None: the deterministic loss)."""
        if key is None:
            return self.loss_fn(params, self.batch(idx), mask)
        if not self.takes_key:
            raise ArgumentError("key", f"does not apply to problem {self.name!r}, whose loss takes no key; leave it None")
        return self.loss_fn(params, self.batch(idx), mask, key)

    def grad(self, params, idx=None, mask=None):
        """The analytic gradient, on the whole data or the examples ``idx`` (``jax.grad`` of the
        loss where the problem has no closed form)."""
        fn = self.grad_fn if self.grad_fn is not None else jax.grad(self.loss_fn)
        return fn(params, self.batch(idx), mask)

    def batch(self, idx=None):
        if self.data is None or idx is None:
            return self.data
        return tuple(a[idx] for a in self.data)


class FullLoss:
    """``params -> loss_fn(params, data, None)``: a problem's loss on its whole data
    (:attr:`Problem.full_loss`), its parts kept for evaluators that use the loss's structure
    (:func:`jaxgd.plane_surface`). Hashed and compared by identity, as a function is."""

    __slots__ = ("loss_fn", "data")

    def __init__(self, loss_fn: LossFn, data):
        self.loss_fn, self.data = loss_fn, data

    def __call__(self, params):
        return self.loss_fn(params, self.data, None)


def check_problem_dtype(problem: Problem) -> Problem:
    """Refuse a float64 problem while JAX's x64 mode is off (it was made with x64 on): JAX would
    compute in float32, with warnings."""
    if not jax.config.jax_enable_x64 and any(getattr(a, "dtype", None) == np.float64
                                              for a in jax.tree.leaves((problem.data, problem.init))):
        raise ArgumentError("problem", f"{problem.name!r} holds float64 arrays, but JAX's x64 mode is off now: "
                                       "switch it back on (jax.config.update('jax_enable_x64', True)) or make the "
                                       "problem again with dtype='float32'")
    return problem


def loss_of(problem) -> Callable:
    """``params -> scalar``: a :class:`Problem`'s loss on its whole data (:attr:`Problem.full_loss`,
    one function object per problem), or a function of the parameters as it is given."""
    if isinstance(problem, Problem):
        return problem.full_loss
    if not callable(problem):
        raise ArgumentTypeError("problem", f"must be a jaxgd.Problem or a function params -> scalar, "
                                           f"got {type(problem).__name__}")
    return problem


def neuron_axes(neuron_axis, params) -> tuple[int | None, ...]:
    """Per leaf of ``params`` (flattening order), the axis that indexes the neuron, as given by
    ``neuron_axis`` (see :attr:`Problem.neuron_axis`): a non-negative int, or None for a leaf
    normalised as a whole. Leaves with ``ndim ≤ 1`` (biases, scalars) get 0; they have no neuron
    axis (filter normalisation zeroes or keeps them), and an int given for one is not checked.
    An int out of range for a leaf with ``ndim ≥ 2``, or a tree not shaped like ``params``, is an
    ``ArgumentError`` named ``neuron_axis``."""
    paths, treedef = jax.tree_util.tree_flatten_with_path(params)
    if neuron_axis is None:
        given = [0] * len(paths)
    elif _is_axis(neuron_axis):
        given = [neuron_axis] * len(paths)
    elif jax.tree_util.treedef_is_leaf(jax.tree.structure(neuron_axis)):
        raise ArgumentTypeError("neuron_axis", f"must be None, an int, or a pytree like the parameters with an int or "
                                               f"None per leaf, got {type(neuron_axis).__name__}")
    else:
        whole = object()  # stands for a None leaf, which jax would read as an empty subtree
        tree = jax.tree.map(lambda a: whole if a is None else a, neuron_axis, is_leaf=lambda a: a is None)
        _checks.check_same_tree("neuron_axis", tree, params)
        given = [None if a is whole else a for a in treedef.flatten_up_to(tree)]
    out = []
    for (path, leaf), axis in zip(paths, given):
        if axis is not None and not _is_axis(axis):
            raise ArgumentTypeError("neuron_axis", f"must be None, an int, or a pytree like the parameters with an int "
                                                   f"or None per leaf, got {type(axis).__name__} at "
                                                   f"{jax.tree_util.keystr(path) or 'the root'}")
        ndim = np.ndim(leaf)
        if axis is None or ndim <= 1:
            out.append(None if axis is None and ndim > 1 else 0)
        elif not -ndim <= axis < ndim:
            raise ArgumentError("neuron_axis", f"gives axis {axis}, out of range for the {ndim}-D leaf of shape "
                                               f"{np.shape(leaf)} at {jax.tree_util.keystr(path) or 'the root'}")
        else:
            out.append(int(axis) % ndim)
    return tuple(out)


def _is_axis(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _mse_loss(params, data, mask):
    return mse(params, data[0], data[1], mask)


def _mse_grad(params, data, mask):
    return analytic_grad(params, data[0], data[1], mask)


def linear_regression(x, y, dtype=None, name: str = "linear_regression") -> Problem:
    """Fit ``y ≈ w·x + b`` by mean squared error.

    ``x``, ``y``: equal-length 1-D arrays of finite real numbers (complex values are refused). ``dtype``:
    float32 or float64; default JAX's default float (float64 when x64 is on). The known minimum is the least
    squares solution (computed in float64; the minimum-norm one when all x are equal).
    Plot ranges are the notebook's ``[-8, 8]``, widened where needed to keep the minimum and
    the default start ``(-4, -7)`` at least 1 unit inside. Data so large that the loss (or its
    gradient) overflows ``dtype`` somewhere on those ranges is refused (``ArgumentError`` named
    ``"x and y"``): the surface and any run would be non-finite from the start.
    """
    xs, ys = _checks.check_data(x, y)
    dt = _checks.check_dtype(dtype)
    return _regression(xs, ys, dt, name, ("x and y", "make", "rescale them"))


def _regression(xs: np.ndarray, ys: np.ndarray, dt, name: str, blame: tuple[str, str, str]) -> Problem:
    """:func:`linear_regression` on checked float64 data; an overflow is an ``ArgumentError``
    named ``blame[0]``, its sentence ``blame[1] the loss overflow ... ; blame[2]``."""
    A = np.stack([xs, np.ones_like(xs)], axis=1)
    with np.errstate(all="ignore"):
        (w_star, b_star), *_ = np.linalg.lstsq(A, ys, rcond=None)
    init = Params(-4.0, -7.0)

    def rng(c, s):
        return (float(min(-8.0, c - 1, s - 1)), float(max(8.0, c + 1, s + 1)))

    w_range, b_range = (rng(w_star, init.w), rng(b_star, init.b)) if np.isfinite([w_star, b_star]).all() else \
        ((-8.0, 8.0), (-8.0, 8.0))
    corner = _overflow(xs, ys, jnp.dtype(dt), w_range, b_range)
    if corner is not None:
        arg, verb, hint = blame
        raise ArgumentError(arg, f"{verb} the loss overflow {jnp.dtype(dt).name} at (W, b) = {corner}, a corner of "
                                 f"the plot range (the data reach {float(np.max(np.abs([xs, ys]))):.3g}); {hint}")
    return Problem(
        name=name,
        loss_fn=_mse_loss,
        grad_fn=_mse_grad,
        data=(jnp.asarray(xs, dt), jnp.asarray(ys, dt)),
        w_range=w_range,
        b_range=b_range,
        init=init,
        minimum=Params(float(w_star), float(b_star)),
        quadratic=True,
    )


def _overflow(xs: np.ndarray, ys: np.ndarray, dt, w_range, b_range) -> tuple | None:
    """A corner ``(w, b)`` of the plot box where the summed squared error or the summed ``|e·x|``
    (the gradient's) exceeds ``dt``'s largest number, or None. The loss is a convex quadratic, so
    its largest value on the box is at a corner."""
    big = float(np.finfo(dt).max)
    with np.errstate(all="ignore"):
        for w in w_range:
            for b in b_range:
                e = w * xs + b - ys
                if not (np.sum(e * e) <= big and np.sum(np.abs(e * xs)) <= big):
                    return (w, b)
    return None


def notebook(noise: float = 0.0, seed: int = 0, dtype=None) -> Problem:
    """The notebook's problem: :func:`linear_regression` on :func:`jaxgd.notebook_data` (a
    ``noise`` so large that the loss overflows ``dtype`` is an ``ArgumentError`` named ``"noise"``)."""
    x, y = notebook_data(noise, seed, dtype)
    return _regression(np.asarray(x, np.float64), np.asarray(y, np.float64), x.dtype, "notebook",
                       ("noise", f"{noise!r} makes", "use a smaller noise"))


class ExampleLoss:
    """``loss_fn(params, data, mask)`` from a per-example loss: the mask-weighted mean of
    ``vmap(loss_per_example)`` over the batch. Equal (and so not recompiled) when it wraps the
    same function.

    With ``takes_key``, ``loss_fn(params, data, mask, key=None)``: example ``i`` of the batch
    (its position in the batch) gets ``fold_in(key, i)``, or None when ``key`` is None."""

    def __init__(self, loss_per_example: Callable, takes_key: bool = False):
        self.loss_per_example = loss_per_example
        self.takes_key = takes_key

    def __call__(self, params, data, mask=None, key=None):
        f, axes = self.loss_per_example, (None, *([0] * len(data)))
        if not self.takes_key:
            v = jax.vmap(f, in_axes=axes)(params, *data)
        elif key is None:
            v = jax.vmap(lambda p, *example: f(p, *example, None), in_axes=axes)(params, *data)
        else:
            keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(key, jnp.arange(data[0].shape[0], dtype=jnp.uint32))
            v = jax.vmap(f, in_axes=(*axes, 0))(params, *data, keys)
        return _mean(v, mask)

    def __eq__(self, other):
        return (isinstance(other, ExampleLoss) and other.loss_per_example is self.loss_per_example
                and other.takes_key == self.takes_key)

    def __hash__(self):
        return hash((ExampleLoss, self.loss_per_example, self.takes_key))

    def __repr__(self):
        return f"ExampleLoss({getattr(self.loss_per_example, '__name__', self.loss_per_example)!r})"


class BatchLoss:
    """``loss_fn(params, data, mask)`` from a batch loss ``loss(params, batch, mask)`` (the masked
    mean over the batch, as the user wrote it); with ``takes_key``, ``loss_fn(params, data, mask,
    key=None)`` calls ``loss(params, batch, mask, key)``. Equal when it wraps the same function."""

    def __init__(self, loss: Callable, takes_key: bool = False):
        self.loss = loss
        self.takes_key = takes_key

    def __call__(self, params, data, mask=None, key=None):
        if self.takes_key:
            return self.loss(params, data, mask, key)
        return self.loss(params, data, mask)

    def __eq__(self, other):
        return isinstance(other, BatchLoss) and other.loss is self.loss and other.takes_key == self.takes_key

    def __hash__(self):
        return hash((BatchLoss, self.loss, self.takes_key))

    def __repr__(self):
        return f"BatchLoss({getattr(self.loss, '__name__', self.loss)!r})"


def model_problem(loss_per_example: Callable, params0, data, name: str = "model", dtype=None,
                  neuron_axis=None, *, batched: bool = False, takes_key: bool = False) -> Problem:
    """Wrap any JAX model as a :class:`Problem`.

    Args:
      loss_per_example: ``(params, *example) -> scalar``, the loss of one example, e.g.
        ``lambda p, x_i, y_i: (model(p, x_i) - y_i) ** 2``; jaxgd vmaps it over a batch and takes
        the mean over the unmasked examples. With ``batched=True`` it is the *batch* loss instead
        (the name stays): ``(params, batch, mask) -> scalar``, with ``batch`` the tuple of data
        arrays with a leading axis of ``B`` examples and ``mask`` a ``(B,)`` bool array (False on
        the padding of a ragged last minibatch) or None for the whole data; it must return the
        mean over the unmasked examples (a loss that looks at the whole batch may). Pass the same
        function object each time (it is a static argument of the compiled scan).
      params0: the starting point, any pytree of arrays (a dict of layers, an equinox/flax tree).
      data: a tuple of arrays with a common leading axis of ``m`` examples, e.g. ``(x, y)`` with
        x ``(m, d)`` and y ``(m,)``; integer arrays (class labels) are kept as they are.
      dtype: float32 or float64 for the parameters and the floating data; default JAX's default float.
      neuron_axis: which axis of each weight indexes the neuron (:attr:`Problem.neuron_axis`): None
        assumes ``(out, in)`` weights (axis 0: jaxgd's MLP, Equinox); ``-1`` for Flax kernels
        ``(in, out)``; or a pytree like ``params0`` with an int or None per leaf.
      batched: the loss is the batch loss described above (default: per example).
      takes_key: the loss takes one more, last argument, a PRNG key, for dropout-style randomness:
        ``(params, *example, key)`` (example ``i`` of step ``t``'s batch gets
        ``fold_in(jaxgd.data.step_key(seed, t), i)``) or ``(params, batch, mask, key)`` (gets
        ``step_key(seed, t)``). A fresh key at every training step, from the run's seed; ``key=None``
        whenever jaxgd *measures* the loss (the recorded full-data loss, the final loss, surfaces,
        planes, sharpness): the loss must then be deterministic (dropout off, eval mode).

    Non-trainable state: jaxgd carries none. BatchNorm: pass its statistics as constants the loss
    closes over (eval mode), or use LayerNorm; jaxgd never trains them as parameters (every leaf
    of ``params0`` is a parameter the optimizer moves).

    The loss is checked once here with ``jax.eval_shape`` (on one example, or on the whole data
    with and without a mask; with and without a key): a failure or a non-scalar result is an
    :class:`~jaxgd.ArgumentError` named ``loss_per_example``.

    Every optimizer, ``run``, ``sweep``, sample orders, schedules and diagnostics work on it
    (``newton`` forms the dense Hessian: keep it to a few thousand parameters).
    """
    if not callable(loss_per_example):
        what = "(params, batch, mask" if batched else "(params, *example"
        raise ArgumentTypeError("loss_per_example", f"must be a function {what}{', key' if takes_key else ''}) -> "
                                                    f"scalar, got {type(loss_per_example).__name__}")
    for flag, v in (("batched", batched), ("takes_key", takes_key)):
        _checks.check_bool(flag, v)
    dt = _checks.check_dtype(dtype)
    if not isinstance(data, (tuple, list)) or not data:
        raise ArgumentTypeError("data", f"must be a non-empty tuple of arrays, e.g. (x, y), got {type(data).__name__}")
    arrays = []
    for i, a in enumerate(data):
        a = np.asarray(a)
        if a.ndim == 0 or a.dtype.kind not in "biuf":
            raise ArgumentError("data", f"item {i} must be a numeric array with a leading example axis, "
                                        f"got dtype {a.dtype} and shape {a.shape}")
        if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
            raise ArgumentError("data", f"item {i} must be finite")
        arrays.append(jnp.asarray(a, dt) if a.dtype.kind == "f" else jnp.asarray(a))
    m = {a.shape[0] for a in arrays}
    if len(m) != 1 or 0 in m:
        raise ArgumentError("data", f"arrays must share a non-zero leading length, got {[a.shape[0] for a in arrays]}")
    leaves = jax.tree.leaves(params0)
    if not leaves:
        raise ArgumentError("params0", "must hold at least one array")
    like = jax.tree.map(lambda v: np.zeros(np.shape(v)), params0)
    init = _checks.check_params("params0", params0, like, dt)
    data = tuple(arrays)
    if batched:
        fn = loss_per_example.loss if isinstance(loss_per_example, BatchLoss) else loss_per_example
        loss_fn = BatchLoss(fn, takes_key)
        _check_loss(fn, takes_key, "for a batch", [("the whole data and mask=None", (init, data, None)),
                                               ("the whole data and a mask", (init, data, jnp.ones(m.pop(), bool)))])
    else:
        fn = loss_per_example.loss_per_example if isinstance(loss_per_example, ExampleLoss) else loss_per_example
        loss_fn = ExampleLoss(fn, takes_key)
        _check_loss(fn, takes_key, "per example", [("one example", (init, *(a[0] for a in data)))])
    neuron_axes(neuron_axis, init)
    return Problem(name=name, loss_fn=loss_fn, grad_fn=None, data=data, w_range=None, b_range=None,
                   init=init, neuron_axis=neuron_axis, takes_key=takes_key)


def _check_loss(fn: Callable, takes_key: bool, per: str, trials: list) -> None:
    """Trace ``fn`` on each ``(what, args)`` of ``trials`` (with ``key=None`` and a key when it
    takes one) by ``jax.eval_shape``; a failure or a result that is not a real floating-point scalar is an
    ``ArgumentError`` named ``loss_per_example``, in one line."""
    keys = [((None,), " with key=None"), ((jax.random.key(0),), " with a key")] if takes_key else [((), "")]
    for what, args in trials:
        for key, how in keys:
            try:
                v = jax.eval_shape(fn, *args, *key)
            except Exception as e:
                hint = (" (jaxgd measures the loss with key=None: the loss must then be deterministic, e.g. dropout "
                        "off)" if how == " with key=None" else "")
                raise ArgumentError("loss_per_example", f"failed on params0 and {what}{how}{hint}: "
                                                        f"{_checks.error_line(e)}") from None
            shape = getattr(v, "shape", None)
            if shape != ():
                got = f"shape {shape}" if shape is not None else type(v).__name__
                where = f" (on params0 and {what}{how})" if how or per != "per example" else ""
                raise ArgumentError("loss_per_example", f"must return a scalar {per}, got {got}{where}")
            if not jnp.issubdtype(v.dtype, jnp.floating):  # an integer loss has zero gradients; a complex one none
                raise ArgumentError("loss_per_example", f"must return a real floating-point scalar (its gradient is "
                                                        f"taken), got dtype {v.dtype}")

