"""Framework adapters: an Equinox, Flax NNX or Flax Linen model as a jaxgd :class:`~jaxgd.Problem`.

``from_equinox(model, loss, data)``, ``from_nnx(model, loss, data)`` and ``from_linen(module,
variables, loss, data)`` each return :func:`jaxgd.model_problem` of a loss over the model's
*trainable* arrays. ``loss(model, *example)`` is written as the user writes it: it gets something
callable as ``model(x)`` — the Equinox module, the NNX module, or for Linen
``lambda *a, **k: module.apply(variables, *a, **k)`` — with the current parameters, and returns
the loss of one example (jaxgd vmaps it over the batch and takes the mean over the unmasked
examples).

What is trained, and what is held fixed:

- Equinox: every inexact (floating) array, ``eqx.partition(model, eqx.is_inexact_array)``; the
  rest (functions, integer arrays, ``eqx.nn.StateIndex`` contents) is held fixed.
- NNX: the ``nnx.Param`` variables (``nnx.split(model, nnx.Param, ...)``), as a nested dict of their
  values; every other variable is held fixed.
- Linen: the ``"params"`` collection; the other collections are held fixed.

The parameters are a :class:`ModelParams` node: its one child ``params`` is the tree of trainable
arrays, and its aux data rebuilds the user's object (the structure and the fixed state, compared
by identity, so the same model never recompiles). Trajectories, sweeps and saved files carry it
with no extra field, and ``Trajectory.model(k)`` gives the user's object back at step ``k``.

Layouts: Equinox stores weights ``(out, in, ...)`` (neuron axis 0); Flax kernels are ``(in, out)``
(Dense) and ``(..., in, out)`` (Conv): neuron axis ``-1``. The problem's ``neuron_axis`` says so,
so filter-normalised planes (:func:`jaxgd.random_plane`) scale per neuron.

State that training would update is refused, not carried: jaxgd's steps keep no state but the
parameters and the optimizer's. An ``eqx.nn.BatchNorm`` not in inference mode, an ``nnx.BatchNorm``
not in eval mode (``use_running_average`` False), a Linen module whose apply writes a collection
(``batch_stats`` in training mode), and an NNX loss that writes any non-``Param`` variable (a
``BatchStat``, the ``RngCount`` of a dropout's ``nnx.Rngs``) are each an
:class:`~jaxgd.ArgumentError` in one line saying what to do.

Equinox and Flax are optional (the ``frameworks`` extra: ``pip install 'jaxgd[frameworks]'``),
imported by the adapter that needs them; ``import jaxgd`` imports neither.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
from typing import Callable

import jax
import numpy as np

from jaxgd._checks import ArgumentError, ArgumentTypeError
from jaxgd.problems import Problem, model_problem

EXTRA = "frameworks"
NO_BATCHNORM = "jaxgd does not carry BatchNorm running statistics"


@contextlib.contextmanager
def _needs(package: str, adapter: str):
    """Around the adapter's ``importlib.import_module`` of ``package``: without it, an
    ``ImportError`` in one line naming the extra."""
    try:
        yield
    except ImportError:
        raise ImportError(f"jaxgd.{adapter} needs {package}, which is not installed: "
                          f"pip install 'jaxgd[{EXTRA}]'") from None


class StateWrite(ArgumentError):
    """The model would update state that jaxgd holds fixed (BatchNorm statistics, an RNG count)."""


# --- the parameter node ------------------------------------------------------------------------

class _Same:
    """A fixed part of the model, compared by identity (arrays and unhashable objects)."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __eq__(self, other):
        return isinstance(other, _Same) and other.value is self.value

    def __hash__(self):
        return id(self.value)


def _frozen(tree) -> tuple:
    """A hashable key of a pytree of fixed parts: its structure and its leaves, arrays and
    unhashable leaves by identity, the others by value."""
    def one(v):
        if isinstance(v, (np.ndarray, jax.Array)):
            return _Same(v)
        try:
            hash(v)
        except TypeError:
            return _Same(v)
        return v

    leaves, treedef = jax.tree.flatten(tree)
    return treedef, tuple(one(v) for v in leaves)


class _Rebuild:
    """What rebuilds the user's object from the trainable arrays (a :class:`ModelParams`'s aux
    data). Equal, with equal hashes, when built from the same model, so a compiled run is reused."""

    framework = ""

    def __init__(self, key):
        self._key = (type(self), key)

    def __eq__(self, other):
        return isinstance(other, _Rebuild) and other._key == self._key

    def __hash__(self):
        return hash(self._key)

    def user(self, params):
        """The user's object with these parameters."""
        raise NotImplementedError

    def callable(self, params):
        """What the loss gets as ``model``: callable as ``model(x)``."""
        return self.user(params)

    def check(self, model) -> None:
        """After the loss ran on ``model``: refuse writes to state jaxgd holds fixed."""


@jax.tree_util.register_pytree_with_keys_class
class ModelParams:
    """A framework model's parameters as jaxgd trains them.

    ``params``: the trainable arrays (the pytree's one child) — Equinox's inexact-array half of
    the module (the module with None elsewhere), NNX's ``nnx.Param`` values as a nested dict, or
    Linen's ``"params"`` collection. In a trajectory each leaf has the step axis (and a sweep's
    run axis) in front. ``model()`` rebuilds the user's object: the Equinox module, the NNX
    module, or Linen's variables dict (``{"params": ..., **other collections}``).
    """

    __slots__ = ("params", "rebuild")

    def __init__(self, params, rebuild: _Rebuild):
        self.params, self.rebuild = params, rebuild

    def tree_flatten_with_keys(self):
        return ((jax.tree_util.GetAttrKey("params"), self.params),), self.rebuild

    @classmethod
    def tree_unflatten(cls, rebuild, children):
        return cls(children[0], rebuild)

    def model(self):
        """The user's object with these parameters (one point: no step axis)."""
        return self.rebuild.user(self.params)

    __jaxgd_model__ = model  # what Trajectory.model calls

    def __repr__(self):
        return f"ModelParams({self.rebuild.framework}, params={self.params!r})"


class _OnModel:
    """``(ModelParams, *rest) -> loss(model, *rest)``: the user's loss on the rebuilt model. One
    object per user loss (:func:`_on_model`), so a problem made twice compiles once."""

    def __init__(self, loss: Callable):
        self.loss = loss

    def __call__(self, params: ModelParams, *rest):
        model = params.rebuild.callable(params.params)
        out = self.loss(model, *rest)
        params.rebuild.check(model)
        return out

    def __repr__(self):
        return f"_OnModel({getattr(self.loss, '__name__', self.loss)!r})"


@functools.lru_cache(maxsize=256)
def _cached(loss: Callable) -> _OnModel:
    return _OnModel(loss)


def _on_model(loss: Callable) -> _OnModel:
    try:
        return _cached(loss)
    except TypeError:  # an unhashable callable: a program of its own per problem
        return _OnModel(loss)


def _problem(loss, params: ModelParams, data, name, dtype, batched, takes_key, neuron_axis,
             model_arg: str) -> Problem:
    """:func:`jaxgd.model_problem` of ``loss`` on the model. Its errors name the adapter's
    arguments (``loss``, ``model_arg`` for ``params0``); a refusal of a state write met while it
    traced the loss is passed on as it is."""
    if not callable(loss):
        raise ArgumentTypeError("loss", f"must be a function loss(model, *example) -> scalar, got {type(loss).__name__}")
    try:
        return model_problem(_on_model(loss), params, data, name=name, dtype=dtype, neuron_axis=neuron_axis,
                             batched=batched, takes_key=takes_key)
    except (ArgumentError, ArgumentTypeError) as e:
        if isinstance(e.__context__, StateWrite):  # met while model_problem traced the loss
            raise e.__context__ from None
        raise type(e)({"loss_per_example": "loss", "params0": model_arg}.get(e.name, e.name), e.detail) from None


# --- Equinox -----------------------------------------------------------------------------------

class _Equinox(_Rebuild):
    framework = "equinox"

    def __init__(self, static, combine):
        super().__init__(_frozen(static))
        self.static, self._combine = static, combine

    def user(self, params):
        return self._combine(params, self.static)


def from_equinox(model, loss: Callable, data, name: str | None = None, dtype=None, batched: bool = False,
                 takes_key: bool = False) -> Problem:
    """An Equinox module as a :class:`~jaxgd.Problem`.

    Args:
      model: an ``equinox.Module`` (e.g. ``eqx.nn.MLP``). Its inexact arrays are the parameters
        (``eqx.partition(model, eqx.is_inexact_array)``, ``eqx.nn.StateIndex`` contents excluded);
        the rest is held fixed. Weights are ``(out, in, ...)``: ``neuron_axis`` 0.
      loss: ``loss(model, *example) -> scalar``, e.g. ``lambda m, x, y: (m(x)[0] - y) ** 2``.
        Pass the same function object each time (it is part of the compiled program's key).
      data: a tuple of arrays with a leading axis of ``m`` examples, as :func:`jaxgd.model_problem`.
      name: the problem's name (default the module's class name). dtype: of the parameters and
        the floating data (default JAX's default float; the model's own arrays are cast).
      batched: the loss is the batch loss ``loss(model, batch, mask)`` instead (``batch`` the
        tuple of data arrays with a leading axis of ``B`` examples, ``mask`` ``(B,)`` bool or
        None; it returns the mean over the unmasked examples; the model is called on the batch,
        e.g. ``jax.vmap(model)(x)``), as :func:`jaxgd.model_problem`'s ``batched``.
      takes_key: the loss takes a last argument, a PRNG key, for dropout:
        ``loss(model, *example, key)`` or ``loss(model, batch, mask, key)``. A fresh key each
        training step from the run's seed; None whenever jaxgd measures the loss, where it must
        be deterministic — e.g. ``eqx.nn.Dropout`` called as ``dropout(h, key=key,
        inference=key is None)``.

    An ``eqx.nn.BatchNorm`` with ``inference=False`` is refused (:class:`~jaxgd.ArgumentError`):
    jaxgd does not carry running statistics. ``Trajectory.model(k)`` gives the module at step ``k``.
    """
    with _needs("equinox", "from_equinox"):
        eqx = importlib.import_module("equinox")
    if not isinstance(model, eqx.Module):
        raise ArgumentTypeError("model", f"must be an equinox.Module, got {type(model).__name__}")
    is_norm = lambda v: isinstance(v, eqx.nn.BatchNorm)  # noqa: E731
    for path, leaf in jax.tree_util.tree_flatten_with_path(model, is_leaf=is_norm)[0]:
        if is_norm(leaf) and not leaf.inference:
            raise StateWrite("model", f"holds an eqx.nn.BatchNorm in training mode at {jax.tree_util.keystr(path)}: "
                                      f"{NO_BATCHNORM}: use eqx.nn.inference_mode(model) (fixed statistics) or "
                                      "eqx.nn.LayerNorm")
    params, static = eqx.partition(model, eqx.is_inexact_array, is_leaf=lambda v: isinstance(v, eqx.nn.StateIndex))
    return _problem(loss, ModelParams(params, _Equinox(static, eqx.combine)), data,
                    name or type(model).__name__, dtype, batched, takes_key, 0, "model")


# --- Flax NNX ----------------------------------------------------------------------------------

class _NNX(_Rebuild):
    framework = "nnx"

    def __init__(self, nnx, graphdef, state_def, rest):
        super().__init__((graphdef, state_def, _frozen(rest)))
        self.nnx, self.graphdef, self.state_def, self.rest = nnx, graphdef, state_def, rest

    def user(self, params):
        state = jax.tree.unflatten(self.state_def, jax.tree.leaves(params))
        rest = jax.tree.map(lambda v: v, self.rest)  # new Variables: merge would share them with this problem
        return self.nnx.merge(self.graphdef, state, rest)

    def check(self, model) -> None:
        nnx = self.nnx
        after = nnx.split(model, nnx.Param, ...)[2]
        before = jax.tree_util.tree_flatten_with_path(self.rest)[0]
        for (path, old), new in zip(before, jax.tree.leaves(after)):
            if new is not old:
                var = _variable_type(self.rest, path)
                where = jax.tree_util.keystr(path[:-1] if path and isinstance(path[-1], jax.tree_util.GetAttrKey)
                                             else path)
                hint = (f"{NO_BATCHNORM}: call model.eval() (fixed statistics) or use LayerNorm"
                        if issubclass(var, nnx.BatchStat) else
                        "switch dropout off (model.eval()) or draw its randomness from a key jaxgd passes "
                        "(takes_key=True)" if issubclass(var, nnx.RngState) else
                        "jaxgd holds every variable but nnx.Param fixed")
                raise StateWrite("model", f"is updated by the loss ({var.__name__} at {where}), but jaxgd keeps no "
                                          f"state between steps: {hint}")


def _variable_type(state, path) -> type:
    """The NNX variable type holding the leaf at ``path`` of a flattened ``nnx.State``."""
    node = state
    for k in path:
        if isinstance(k, jax.tree_util.GetAttrKey):
            return type(node)
        node = node[k.key]
    return type(node)


def from_nnx(model, loss: Callable, data, name: str | None = None, dtype=None, batched: bool = False,
             takes_key: bool = False) -> Problem:
    """A Flax NNX module as a :class:`~jaxgd.Problem`.

    Args:
      model: an ``nnx.Module``. Its ``nnx.Param`` variables are the parameters (a nested dict of
        their values, ``nnx.to_pure_dict(state)``'s layout); every other variable is held fixed.
        Kernels are ``(in, out)`` (``nnx.Linear``) or ``(..., in, out)`` (``nnx.Conv``):
        ``neuron_axis`` ``-1``.
      loss: ``loss(model, *example) -> scalar``; it gets a copy of the module with the current
        parameters (merged from the split state, so the module you passed is never changed).
      data, name, dtype, batched, takes_key: as :func:`from_equinox`. For dropout with
        ``takes_key``, give the ``nnx.Dropout`` no stream of its own and call it as
        ``dropout(h, deterministic=key is None, rngs=key)``.

    An ``nnx.BatchNorm`` not in eval mode (``use_running_average`` False: call ``model.eval()``)
    is refused, and so is a loss that writes any other variable (a ``BatchStat`` of your own, the
    ``RngCount`` of an ``nnx.Dropout``'s stream): each an :class:`~jaxgd.ArgumentError` in one
    line. ``Trajectory.model(k)`` gives a new module with the step-``k`` parameters.
    """
    with _needs("flax", "from_nnx"):
        nnx = importlib.import_module("flax.nnx")
    if not isinstance(model, nnx.Module):
        raise ArgumentTypeError("model", f"must be a flax.nnx.Module, got {type(model).__name__}")
    for path, sub in nnx.iter_modules(model):
        if isinstance(sub, nnx.BatchNorm) and not sub.use_running_average:
            where = "".join(f"[{p!r}]" for p in path) or "the root"
            raise StateWrite("model", f"holds an nnx.BatchNorm in training mode at {where}: {NO_BATCHNORM}: call "
                                      "model.eval() (fixed statistics) or use nnx.LayerNorm")
    graphdef, state, rest = nnx.split(model, nnx.Param, ...)
    params = jax.tree.unflatten(jax.tree.structure(nnx.to_pure_dict(state)), jax.tree.leaves(state))
    rebuild = _NNX(nnx, graphdef, jax.tree.structure(state), jax.tree.map(lambda v: v, rest))  # not the model's
    return _problem(loss, ModelParams(params, rebuild), data, name or type(model).__name__, dtype,
                    batched, takes_key, -1, "model")


# --- Flax Linen --------------------------------------------------------------------------------

class _Apply:
    """``module.apply(variables, *args, **kwargs)`` with the collections immutable: a module that
    writes one (BatchNorm in training mode) is refused."""

    def __init__(self, module, variables, errors):
        self.module, self.variables, self._errors = module, variables, errors

    def __call__(self, *args, **kwargs):
        if "mutable" in kwargs:
            raise StateWrite("module", f"is applied with mutable={kwargs['mutable']!r}, but jaxgd keeps no state "
                                       "between steps: apply it without mutable collections")
        try:
            return self.module.apply(self.variables, *args, **kwargs)
        except self._errors.ModifyScopeVariableError:
            raise StateWrite("module", f"writes a variable collection when applied: {NO_BATCHNORM} or other state: "
                                       "apply it with use_running_average=True (fixed statistics) or use "
                                       "nn.LayerNorm") from None


class _Linen(_Rebuild):
    framework = "linen"

    def __init__(self, module, rest: dict, errors):
        super().__init__((_frozen(module), _frozen(rest)))
        self.module, self.rest, self._errors = module, rest, errors

    def user(self, params):
        return {"params": params, **self.rest}

    def callable(self, params):
        return _Apply(self.module, self.user(params), self._errors)


def from_linen(module, variables, loss: Callable, data, name: str | None = None, dtype=None, batched: bool = False,
               takes_key: bool = False) -> Problem:
    """A Flax Linen module and its variables as a :class:`~jaxgd.Problem`.

    Args:
      module: an ``flax.linen.Module``.
      variables: its variables, ``module.init(key, x)``: a mapping with a ``"params"``
        collection — the parameters; the other collections are held fixed. Kernels are
        ``(in, out)`` (``nn.Dense``) or ``(..., in, out)`` (``nn.Conv``): ``neuron_axis`` ``-1``.
      loss: ``loss(model, *example) -> scalar`` where ``model(*args, **kwargs)`` is
        ``module.apply(variables, *args, **kwargs)`` with the current parameters (keywords such as
        ``train=False``, ``rngs=`` and ``method=`` pass through; ``mutable=`` is refused).
      data, name, dtype, batched, takes_key: as :func:`from_equinox`. For dropout with
        ``takes_key``: ``model(x, train=key is not None, rngs=None if key is None else
        {"dropout": key})`` (your module's own flag).

    A module whose apply writes a collection (``nn.BatchNorm`` with ``use_running_average``
    False updating ``batch_stats``) is refused (:class:`~jaxgd.ArgumentError`, one line).
    ``Trajectory.model(k)`` gives the variables dict at step ``k`` (``{"params": ..., **others}``).
    """
    with _needs("flax", "from_linen"):
        linen, errors = importlib.import_module("flax.linen"), importlib.import_module("flax.errors")
    if not isinstance(module, linen.Module):
        raise ArgumentTypeError("module", f"must be a flax.linen.Module, got {type(module).__name__}")
    if not hasattr(variables, "keys") or "params" not in variables:
        raise ArgumentTypeError("variables", f"must be the module's variables, a mapping with a 'params' collection "
                                             f"(module.init(key, x)), got {type(variables).__name__}")
    rest = {k: v for k, v in variables.items() if k != "params"}
    return _problem(loss, ModelParams(variables["params"], _Linen(module, rest, errors)), data,
                    name or type(module).__name__, dtype, batched, takes_key, -1, "variables")


__all__ = ["ModelParams", "from_equinox", "from_linen", "from_nnx"]
