"""Update rules, written from scratch as optax ``GradientTransformation``s.

Every rule acts elementwise on each parameter, its state starts at zero, and its update is
the full step (learning rate included), so ``θ ← θ + update`` (``optax.apply_updates``).

=========  ==================================================================================
gd         θ ← θ − lr·g
momentum   v ← β·v + (1−β)·g;  θ ← θ − lr·v                       (EMA form; β = ``beta``)
nesterov   v ← β·v + (1−β)·g;  θ ← θ − lr·(β·v + (1−β)·g)         (look-ahead of the above)
rmsprop    s ← ρ·s + (1−ρ)·g²; θ ← θ − lr·g/(√s + ε)               (ρ = ``decay``; ε outside √)
adam       m ← β₁·m + (1−β₁)·g; v ← β₂·v + (1−β₂)·g²; t ← t + 1 (t = 1 at the first step);
           θ ← θ − lr·m̂/(√v̂ + ε) with m̂ = m/(1−β₁ᵗ), v̂ = v/(1−β₂ᵗ)
newton     θ ← θ − lr·(H + δI)⁻¹g, H the Hessian of the batch loss (``jax.hessian``; δ = ``damping``)
lbfgs      optax's L-BFGS with its zoom line search (``optax.lbfgs``; use lr = 1)
=========  ==================================================================================

Equivalences with optax (tested): momentum ≡ ``optax.sgd(lr·(1−β), momentum=β)``,
nesterov ≡ ``optax.sgd(lr·(1−β), momentum=β, nesterov=True)``,
rmsprop ≡ ``optax.rmsprop(lr, decay, eps, eps_in_sqrt=False)``, adam ≡ ``optax.adam(lr, b1, b2, eps)``.

Hyperparameters may be traced arrays, so a sweep over them compiles once. Any optax
optimizer is also reachable as ``"optax:NAME"``; see :func:`resolve`.
"""

from __future__ import annotations

import inspect
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxgd._checks import ArgumentError, ArgumentTypeError, check_number


class TraceState(NamedTuple):
    """Momentum / Nesterov state: the velocity ``v`` (a pytree like the params)."""

    v: Any


class RMSState(NamedTuple):
    """RMSProp state: the running mean of squared gradients ``s``."""

    s: Any


class AdamState(NamedTuple):
    """Adam state: step count (int32), first moment ``mu``, second moment ``nu``."""

    count: jax.Array
    mu: Any
    nu: Any


def _zeros(params):
    return jax.tree.map(jnp.zeros_like, params)


def _ema(decay, old, new):
    return jax.tree.map(lambda o, n: decay * o + (1 - decay) * n, old, new)


def gd(lr) -> optax.GradientTransformation:
    """Plain gradient descent: update = −lr·g."""

    def update(g, state, params=None):
        return jax.tree.map(lambda gi: -lr * gi, g), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def momentum(lr, beta=0.9) -> optax.GradientTransformation:
    """Heavy ball, EMA form: v ← β·v + (1−β)·g; update = −lr·v."""

    def update(g, state, params=None):
        v = _ema(beta, state.v, g)
        return jax.tree.map(lambda vi: -lr * vi, v), TraceState(v)

    return optax.GradientTransformation(lambda p: TraceState(_zeros(p)), update)


def nesterov(lr, beta=0.9) -> optax.GradientTransformation:
    """Nesterov momentum, EMA form: v ← β·v + (1−β)·g; update = −lr·(β·v + (1−β)·g)."""

    def update(g, state, params=None):
        v = _ema(beta, state.v, g)
        return jax.tree.map(lambda vi, gi: -lr * (beta * vi + (1 - beta) * gi), v, g), TraceState(v)

    return optax.GradientTransformation(lambda p: TraceState(_zeros(p)), update)


def rmsprop(lr, decay=0.9, eps=1e-8) -> optax.GradientTransformation:
    """RMSProp: s ← ρ·s + (1−ρ)·g²; update = −lr·g/(√s + ε)."""

    def update(g, state, params=None):
        s = _ema(decay, state.s, jax.tree.map(jnp.square, g))
        return jax.tree.map(lambda gi, si: -lr * gi / (jnp.sqrt(si) + eps), g, s), RMSState(s)

    return optax.GradientTransformation(lambda p: RMSState(_zeros(p)), update)


def adam(lr, b1=0.9, b2=0.999, eps=1e-8) -> optax.GradientTransformation:
    """Adam with bias correction, ε outside the square root (t = 1 at the first step)."""

    def update(g, state, params=None):
        t = state.count + 1
        mu = _ema(b1, state.mu, g)
        nu = _ema(b2, state.nu, jax.tree.map(jnp.square, g))
        c1 = 1 - b1 ** t.astype(jnp.result_type(b1, float))
        c2 = 1 - b2 ** t.astype(jnp.result_type(b2, float))
        step = jax.tree.map(lambda m, v: -lr * (m / c1) / (jnp.sqrt(v / c2) + eps), mu, nu)
        return step, AdamState(t, mu, nu)

    def init(p):
        return AdamState(jnp.zeros([], jnp.int32), _zeros(p), _zeros(p))

    return optax.GradientTransformation(init, update)


def newton(lr, damping=0.0) -> optax.GradientTransformationExtraArgs:
    """Newton's method: θ ← θ − lr·(H + δI)⁻¹g, with H = ``jax.hessian`` of the batch loss.

    Needs the loss: ``update(g, state, params, value_fn=...)`` (``run`` passes it). On a
    quadratic loss one step with lr 1 lands on the minimum. ``damping`` δ ≥ 0 regularises an
    indefinite or singular Hessian.
    """
    from jax.flatten_util import ravel_pytree

    def update(g, state, params=None, *, value_fn=None, **extra):
        if value_fn is None or params is None:
            raise ValueError("newton needs params and value_fn (the loss) in update()")
        flat, unravel = ravel_pytree(params)
        H = jax.hessian(lambda f: value_fn(unravel(f)))(flat)
        step = jnp.linalg.solve(H + damping * jnp.eye(flat.shape[0], dtype=flat.dtype), ravel_pytree(g)[0])
        return unravel(-lr * step), state

    return optax.GradientTransformationExtraArgs(lambda p: optax.EmptyState(), update)


def lbfgs(lr=1.0, memory_size=10) -> optax.GradientTransformationExtraArgs:
    """optax's L-BFGS with its zoom line search (``optax.lbfgs``); ``lr`` scales the direction
    before the line search, so lr = 1 is the usual choice."""
    return optax.lbfgs(learning_rate=lr, memory_size=memory_size)


# name -> (constructor, {hyperparameter: (default, low, low_open, high, high_open)})
_UNIT = (0.0, False, 1.0, True)  # in [0, 1)
BUILTIN = {
    "gd": (gd, {}),
    "momentum": (momentum, {"beta": (0.9, *_UNIT)}),
    "nesterov": (nesterov, {"beta": (0.9, *_UNIT)}),
    "rmsprop": (rmsprop, {"decay": (0.9, *_UNIT), "eps": (1e-8, 0.0, False, None, False)}),
    "adam": (adam, {"b1": (0.9, *_UNIT), "b2": (0.999, *_UNIT), "eps": (1e-8, 0.0, False, None, False)}),
    "newton": (newton, {"damping": (0.0, 0.0, False, None, False)}),
    "lbfgs": (lbfgs, {}),
}
OPTIMIZERS = tuple(BUILTIN)
OPTAX_PREFIX = "optax:"


class Spec(NamedTuple):
    """A resolved optimizer: the static ``kind`` (hashable) and its traced ``hyper`` numbers."""

    kind: tuple
    hyper: dict


def _names() -> str:
    return ", ".join(map(repr, OPTIMIZERS)) + " or 'optax:NAME' (any optax optimizer, e.g. 'optax:adamw')"


def resolve(optimizer: str, lr, hyper: dict) -> Spec:
    """Check an optimizer name and its hyperparameters, before anything is traced.

    Built-ins take the keyword hyperparameters listed in :data:`BUILTIN`, each a finite number
    in its range. ``"optax:NAME"`` calls ``optax.NAME(learning_rate=lr, **hyper)``; its numeric
    hyperparameters are traced (each a finite number: a string where optax's default is a number is
    refused), others (bools, strings, None, functions such as a ``mask``) are static. ``lr`` may be a schedule
    (a function of the step count, as optax's): it is then static, part of ``kind``.

    ``kind`` is ``(name, static keyword items, schedule or None)``.
    """
    schedule = lr if callable(lr) else None
    if schedule is not None:
        lr = 1.0
    if not isinstance(optimizer, str):
        raise ArgumentTypeError("optimizer", f"must be a string, one of {_names()}; got {optimizer!r}")
    if optimizer in BUILTIN:
        _, table = BUILTIN[optimizer]
        unknown = sorted(set(hyper) - set(table))
        if unknown:
            allowed = ", ".join(table) or "none"
            raise ArgumentTypeError(unknown[0], f"is not a hyperparameter of optimizer {optimizer!r} "
                                                f"(its hyperparameters: {allowed})")
        values = {"lr": lr}
        for name, (default, low, low_open, high, high_open) in table.items():
            values[name] = check_number(name, hyper.get(name, default), low=low, low_open=low_open,
                                        high=high, high_open=high_open)
        return _with_schedule(Spec((optimizer, (), None), values), schedule)
    if optimizer.startswith(OPTAX_PREFIX):
        name = optimizer[len(OPTAX_PREFIX):]
        fn = getattr(optax, name, None) if name.isidentifier() and not name.startswith("_") else None
        if not callable(fn):
            raise ArgumentError("optimizer", f"{optimizer!r}: optax has no optimizer named {name!r}")
        try:
            params = inspect.signature(fn).parameters
        except (TypeError, ValueError):
            params = {}
        if "learning_rate" not in params:
            raise ArgumentError("optimizer", f"{optimizer!r}: optax.{name} is not an optimizer taking learning_rate")
        traced = {"lr": lr}
        static = {}
        for k, v in hyper.items():
            default = params[k].default if k in params else inspect.Parameter.empty
            numeric_default = isinstance(default, (int, float)) and not isinstance(default, bool)
            if isinstance(v, str) and numeric_default:
                raise ArgumentTypeError(k, f"must be a number (optax.{name}'s default is {default!r}), got {v!r}")
            if isinstance(v, (bool, str)) or v is None or callable(v):  # static: flags, names, masks, schedules
                static[k] = v
            else:
                traced[k] = check_number(k, v)
        try:
            tx = fn(learning_rate=schedule or lr, **{k: v for k, v in traced.items() if k != "lr"}, **static)
        except TypeError as e:
            raise ArgumentTypeError("optimizer", f"{optimizer!r} rejected its arguments: {e}") from None
        if not isinstance(tx, optax.GradientTransformation):
            raise ArgumentError("optimizer", f"{optimizer!r}: optax.{name} is not an optimizer taking learning_rate")
        return _with_schedule(Spec((optimizer, tuple(sorted(static.items())), None), traced), schedule)
    raise ArgumentError("optimizer", f"must be one of {_names()}; got {optimizer!r}")


def with_lr(spec: Spec, lr) -> Spec:
    """``spec`` at another learning rate: a number (traced) or a schedule (static)."""
    if callable(lr):
        return _with_schedule(spec._replace(kind=(*spec.kind[:2], None)), lr)
    return Spec((*spec.kind[:2], None), {**spec.hyper, "lr": lr})


def _with_schedule(spec: Spec, schedule) -> Spec:
    if schedule is None:
        return spec
    hyper = {k: v for k, v in spec.hyper.items() if k != "lr"}
    return Spec((spec.kind[0], spec.kind[1], schedule), hyper)


def build(kind: tuple, hyper: dict) -> optax.GradientTransformation:
    """The transformation for a resolved ``kind`` with (possibly traced) ``hyper``.

    With a schedule, a built-in rule runs at lr 1 and ``optax.scale_by_schedule`` multiplies its
    update by ``schedule(step)`` (step 0 first), which is the rule at lr = schedule(step).
    """
    name, static, schedule = kind
    hyper = dict(hyper)
    if name == UNION:
        return union(static, hyper)
    if name in BUILTIN:
        if schedule is None:
            return BUILTIN[name][0](**hyper)
        return optax.chain(BUILTIN[name][0](lr=1.0, **hyper), optax.scale_by_schedule(schedule))
    lr = schedule if schedule is not None else hyper.pop("lr")
    return getattr(optax, name[len(OPTAX_PREFIX):])(learning_rate=lr, **hyper, **dict(static))


UNION = "union"


class UnionState(NamedTuple):
    """The state of :func:`union`: the run's member index ``which`` and every member's state."""

    which: jax.Array
    states: tuple


def union_kind(kinds) -> tuple:
    """The ``kind`` of several resolved optimizers in one compiled program (see :func:`union`)."""
    return (UNION, tuple(kinds), None)


def union(kinds: tuple, hypers: tuple, which) -> optax.GradientTransformation:
    """Several optimizers as one transformation, so runs of different optimizers share one compiled sweep.

    ``hypers``: each member's hyperparameters ``{name: number}`` (in ``kinds``' order); ``which``:
    the member a run uses (an int index into ``kinds``, traced). Every member updates its own state
    from the same gradient; the update is member ``which``'s (a select: the chosen member's numbers
    are used as computed).
    """
    txs = [build(k, h) for k, h in zip(kinds, hypers)]
    extra = [isinstance(t, optax.GradientTransformationExtraArgs) for t in txs]

    def init(params):
        return UnionState(jnp.asarray(which, jnp.int32), tuple(t.init(params) for t in txs))

    def update(g, state, params=None, **extra_args):
        outs = [t.update(g, s, params, **extra_args) if x else t.update(g, s, params)
                for t, s, x in zip(txs, state.states, extra)]
        u = outs[0][0]
        for i, (ui, _) in enumerate(outs[1:], 1):
            u = jax.tree.map(lambda a, b, i=i: jnp.where(state.which == i, b, a), u, ui)
        return u, UnionState(state.which, tuple(s for _, s in outs))

    cls = optax.GradientTransformationExtraArgs if any(extra) else optax.GradientTransformation
    return cls(init, update)


def moments(state):
    """``(first, second)``: the moment estimates in an optimizer state (a pytree like the
    params, or None where the rule keeps none). first: momentum's velocity, Adam's mu;
    second: RMSProp's s, Adam's nu. Looks through chains; knows optax's trace, rms and adam states.
    In a :func:`union`, the moments of the run's member (NaN where it keeps none)."""
    if isinstance(state, UnionState):
        return tuple(_union_moment(state, [moments(s)[k] for s in state.states]) for k in (0, 1))
    if isinstance(state, TraceState):
        return state.v, None
    if isinstance(state, RMSState):
        return None, state.s
    if isinstance(state, (AdamState, optax.ScaleByAdamState)):
        return state.mu, state.nu
    if isinstance(state, optax.TraceState):
        return state.trace, None
    if isinstance(state, optax.ScaleByRmsState):
        return None, state.nu
    if isinstance(state, tuple):
        for sub in state:
            m = moments(sub)
            if m != (None, None):
                return m
    return None, None


def _union_moment(state: UnionState, parts):
    """Member ``which``'s moment; NaN for a member that keeps none; None if no member keeps one."""
    like = next((p for p in parts if p is not None), None)
    if like is None:
        return None
    out = jax.tree.map(lambda a: jnp.full_like(a, jnp.nan), like)
    for i, p in enumerate(parts):
        if p is not None:
            out = jax.tree.map(lambda a, b, i=i: jnp.where(state.which == i, b, a), out, p)
    return out


SCHEDULES = ("constant", "exponential", "cosine", "warmup-cosine")


def make_schedule(kind: str, lr: float, steps: int, decay_rate: float = 0.99, warmup: int | None = None,
                  final_fraction: float = 0.0):
    """A learning-rate schedule by name (optax's), or the number ``lr`` for "constant".

    exponential: lr·decay_rate^t. cosine: from lr down to lr·final_fraction over ``steps``.
    warmup-cosine: linear from 0 to lr over ``warmup`` steps (default a tenth of the run),
    then cosine down to lr·final_fraction at ``steps``.
    """
    if kind not in SCHEDULES:
        raise ArgumentError("schedule", f"must be one of {', '.join(map(repr, SCHEDULES))}; got {kind!r}")
    decay_rate = check_number("decay_rate", decay_rate, low=0, low_open=True, high=1)
    final_fraction = check_number("final_fraction", final_fraction, low=0, high=1)
    if kind == "constant":
        return lr
    if kind == "exponential":
        return optax.exponential_decay(lr, transition_steps=1, decay_rate=decay_rate)
    if kind == "cosine":
        return optax.cosine_decay_schedule(lr, decay_steps=steps, alpha=final_fraction)
    if steps < 2:
        raise ArgumentError("schedule", f"warmup-cosine needs a run of at least 2 steps (a warm-up, then the decay); "
                                        f"this run has {steps} step: raise epochs, or use cosine")
    warmup = max(1, steps // 10) if warmup is None else warmup
    if not 0 < warmup < steps:
        raise ArgumentError("warmup", f"must be an integer in [1, {steps - 1}] (fewer than the {steps} steps), got {warmup}")
    return optax.warmup_cosine_decay_schedule(0.0, lr, warmup_steps=warmup, decay_steps=steps,
                                              end_value=lr * final_fraction)
