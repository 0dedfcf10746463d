"""Update rules, written from scratch the optax way: a rule without a learning rate, then the learning rate.

Each rule is an optax ``GradientTransformation`` that turns the gradient ``g`` into a *direction*
``d``, without a learning rate (:func:`scale_by_momentum`, :func:`scale_by_nesterov`,
:func:`scale_by_rms`, :func:`scale_by_adam`, :func:`scale_by_newton`; gd's is ``optax.identity``,
lbfgs's ``optax.scale_by_lbfgs``). Each optimizer is its rule, then
``optax.scale_by_learning_rate(lr)``: update = −lr·d and θ ← θ + update (``optax.apply_updates``).
``lr`` is a number, a traced array or a schedule of the step count (optax's): all three take this
one path. Every rule acts elementwise on each parameter and its state starts at zero.

=========  ==================================================================================
gd         d = g
momentum   v ← β·v + (1−β)·g;  d = v                  (EMA form; β = ``beta``; :class:`EmaState`)
nesterov   v ← β·v + (1−β)·g;  d = β·v + (1−β)·g      (look-ahead of the above)
rmsprop    s ← ρ·s + (1−ρ)·g²; d = g/(√s + ε)         (ρ = ``decay``; ε outside √; :class:`RMSState`)
adam       m ← β₁·m + (1−β₁)·g; v ← β₂·v + (1−β₂)·g²; t ← t + 1 (t = 1 at the first step);
           d = m̂/(√v̂ + ε) with m̂ = m/(1−β₁ᵗ), v̂ = v/(1−β₂ᵗ)    (:class:`AdamState`)
newton     d = (H + δI)⁻¹g, H the Hessian of the batch loss (``jax.hessian``; δ = ``damping``)
lbfgs      ``optax.lbfgs``: ``scale_by_lbfgs``, the learning rate, then its zoom line search (lr = 1)
=========  ==================================================================================

Where a direction is a quotient (rmsprop, adam), the learning rate multiplies its numerator before
the division — ``(−lr·g)/(√s + ε)``, not ``−lr·(g/(√s + ε))`` — the order these rules have always
computed in, so their numbers stay the same to the last bit; the other optimizers are exactly
``optax.chain(scale_by_*(...), optax.scale_by_learning_rate(lr))``. Either way the state is the
chain's: ``(rule's state, learning rate's state)`` (``EmptyState``, or a schedule's step count).

Equivalences with optax (tested): momentum ≡ ``optax.sgd(lr·(1−β), momentum=β)`` (whose trace is our
v/(1−β)), nesterov ≡ ``optax.sgd(lr·(1−β), momentum=β, nesterov=True)``,
rmsprop ≡ ``optax.rmsprop(lr, decay, eps, eps_in_sqrt=False)``, adam ≡ ``optax.adam(lr, b1, b2, eps)``.

Hyperparameters may be traced arrays, so a sweep over them compiles once. Any optax
optimizer is also reachable as ``"optax:NAME"``, and a user brings their own as a factory
``f(learning_rate, **hyperparameters)`` (``optax.lion``, a function returning an ``optax.chain``)
or as a built transformation; see :func:`resolve`.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree

from jaxgd._checks import ArgumentError, ArgumentTypeError, check_number, error_line


class EmaState(NamedTuple):
    """Momentum / Nesterov state: the velocity ``v``, an exponential moving average of the
    gradients (a pytree like the params; optax's trace is ``v/(1−β)``)."""

    v: Any


class RMSState(NamedTuple):
    """RMSProp state: the running mean of squared gradients ``s``."""

    s: Any


class AdamState(NamedTuple):
    """Adam state: step count (int32), first moment ``mu``, second moment ``nu``."""

    count: jax.Array
    mu: Any
    nu: Any


class _Rule(NamedTuple):
    """A rule without a learning rate: ``init(params) -> state`` and ``direction(g, state, params,
    **extra) -> (numerator, denominator, state)``, the direction being numerator / denominator
    elementwise (denominator None: the numerator itself). ``extra``: it needs optax's extra args."""

    init: Callable
    direction: Callable
    extra: bool = False


def _quotient(num, den):
    return num if den is None else jax.tree.map(lambda n, d: n / d, num, den)


def _transformation(rule: _Rule, learning_rate=None) -> optax.GradientTransformation:
    """``rule`` as a transformation: its direction (``learning_rate`` None), else the optimizer: optax's
    stage ``scale_by_learning_rate(learning_rate)`` (a number, a traced array or a schedule) applied to
    the rule's numerator before its division, so ``chain(rule, that stage)`` exactly where there is
    no denominator; the state is the chain's, ``(rule's, stage's)``."""
    cls = optax.GradientTransformationExtraArgs if rule.extra else optax.GradientTransformation
    if learning_rate is None:
        def direction(g, state, params=None, **extra):
            num, den, state = rule.direction(g, state, params, **extra)
            return _quotient(num, den), state

        return cls(rule.init, direction)
    lr = optax.scale_by_learning_rate(learning_rate)

    def update(g, state, params=None, **extra):
        num, den, rule_state = rule.direction(g, state[0], params, **extra)
        num, lr_state = lr.update(num, state[1])
        return _quotient(num, den), (rule_state, lr_state)

    return cls(lambda params: (rule.init(params), lr.init(params)), update)


def _zeros(params):
    return jax.tree.map(jnp.zeros_like, params)


def _ema(decay, old, new):
    return jax.tree.map(lambda o, n: decay * o + (1 - decay) * n, old, new)


def _gd() -> _Rule:
    return _Rule(lambda p: optax.EmptyState(), lambda g, state, params=None: (g, None, state))


def _momentum(beta) -> _Rule:
    def direction(g, state, params=None):
        v = _ema(beta, state.v, g)
        return v, None, EmaState(v)

    return _Rule(lambda p: EmaState(_zeros(p)), direction)


def _nesterov(beta) -> _Rule:
    def direction(g, state, params=None):
        v = _ema(beta, state.v, g)
        return jax.tree.map(lambda vi, gi: beta * vi + (1 - beta) * gi, v, g), None, EmaState(v)

    return _Rule(lambda p: EmaState(_zeros(p)), direction)


def _rms(decay, eps) -> _Rule:
    def direction(g, state, params=None):
        s = _ema(decay, state.s, jax.tree.map(jnp.square, g))
        return g, jax.tree.map(lambda si: jnp.sqrt(si) + eps, s), RMSState(s)

    return _Rule(lambda p: RMSState(_zeros(p)), direction)


def _adam(b1, b2, eps) -> _Rule:
    def direction(g, state, params=None):
        t = state.count + 1
        mu = _ema(b1, state.mu, g)
        nu = _ema(b2, state.nu, jax.tree.map(jnp.square, g))
        c1 = 1 - b1 ** t.astype(jnp.result_type(b1, float))
        c2 = 1 - b2 ** t.astype(jnp.result_type(b2, float))
        return (jax.tree.map(lambda m: m / c1, mu), jax.tree.map(lambda v: jnp.sqrt(v / c2) + eps, nu),
                AdamState(t, mu, nu))

    return _Rule(lambda p: AdamState(jnp.zeros([], jnp.int32), _zeros(p), _zeros(p)), direction)


def _newton(damping) -> _Rule:
    def direction(g, state, params=None, *, value_fn=None, **extra):
        if value_fn is None or params is None:
            raise ValueError("newton needs params and value_fn (the loss) in update()")
        flat, unravel = ravel_pytree(params)
        H = jax.hessian(lambda f: value_fn(unravel(f)))(flat)
        step = jnp.linalg.solve(H + damping * jnp.eye(flat.shape[0], dtype=flat.dtype), ravel_pytree(g)[0])
        return unravel(step), None, state

    return _Rule(lambda p: optax.EmptyState(), direction, extra=True)


def scale_by_momentum(beta=0.9) -> optax.GradientTransformation:
    """Heavy-ball direction, EMA form: v ← β·v + (1−β)·g; d = v (state :class:`EmaState`).
    optax's ``trace`` sums instead (its trace is v/(1−β))."""
    return _transformation(_momentum(beta))


def scale_by_nesterov(beta=0.9) -> optax.GradientTransformation:
    """Nesterov direction, EMA form: v ← β·v + (1−β)·g; d = β·v + (1−β)·g (state :class:`EmaState`)."""
    return _transformation(_nesterov(beta))


def scale_by_rms(decay=0.9, eps=1e-8) -> optax.GradientTransformation:
    """RMSProp direction: s ← ρ·s + (1−ρ)·g²; d = g/(√s + ε), ε outside the square root (optax's
    ``scale_by_rms(decay, eps, eps_in_sqrt=False)``; state :class:`RMSState`)."""
    return _transformation(_rms(decay, eps))


def scale_by_adam(b1=0.9, b2=0.999, eps=1e-8) -> optax.GradientTransformation:
    """Adam direction with bias correction: d = m̂/(√v̂ + ε), ε outside the square root, t = 1 at the
    first step (optax's ``scale_by_adam``; state :class:`AdamState`)."""
    return _transformation(_adam(b1, b2, eps))


def scale_by_newton(damping=0.0) -> optax.GradientTransformationExtraArgs:
    """Newton direction: d = (H + δI)⁻¹g, H = ``jax.hessian`` of the batch loss at the params.

    Needs the loss: ``update(g, state, params, value_fn=...)`` (``run`` passes it). ``damping`` δ ≥ 0
    regularises an indefinite or singular Hessian.
    """
    return _transformation(_newton(damping))


def gd(lr) -> optax.GradientTransformation:
    """Plain gradient descent: update = −lr·g."""
    return _transformation(_gd(), lr)


def momentum(lr, beta=0.9) -> optax.GradientTransformation:
    """Heavy ball, EMA form: :func:`scale_by_momentum`, then update = −lr·v."""
    return _transformation(_momentum(beta), lr)


def nesterov(lr, beta=0.9) -> optax.GradientTransformation:
    """Nesterov momentum, EMA form: :func:`scale_by_nesterov`, then update = −lr·(β·v + (1−β)·g)."""
    return _transformation(_nesterov(beta), lr)


def rmsprop(lr, decay=0.9, eps=1e-8) -> optax.GradientTransformation:
    """RMSProp: :func:`scale_by_rms` with the learning rate on its numerator: update = (−lr·g)/(√s + ε)."""
    return _transformation(_rms(decay, eps), lr)


def adam(lr, b1=0.9, b2=0.999, eps=1e-8) -> optax.GradientTransformation:
    """Adam: :func:`scale_by_adam` with the learning rate on its numerator: update = (−lr·m̂)/(√v̂ + ε)."""
    return _transformation(_adam(b1, b2, eps), lr)


def newton(lr, damping=0.0) -> optax.GradientTransformationExtraArgs:
    """Newton's method: :func:`scale_by_newton`, then θ ← θ − lr·(H + δI)⁻¹g.

    Needs the loss: ``update(g, state, params, value_fn=...)`` (``run`` passes it). On a
    quadratic loss one step with lr 1 lands on the minimum.
    """
    return _transformation(_newton(damping), lr)


def lbfgs(lr=1.0, memory_size=10) -> optax.GradientTransformationExtraArgs:
    """optax's L-BFGS: ``chain(scale_by_lbfgs, scale_by_learning_rate(lr), scale_by_zoom_linesearch)``
    (``optax.lbfgs``); ``lr`` scales the direction before the line search, so lr = 1 is the usual choice."""
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


DEFAULT_LR = 0.05  # the learning rate of a run that names none (a built transformation has its own)


class Spec(NamedTuple):
    """A resolved optimizer: the static ``kind`` (hashable) and its traced ``hyper`` numbers."""

    kind: tuple
    hyper: dict


def _names() -> str:
    return (", ".join(map(repr, OPTIMIZERS)) + ", 'optax:NAME' (any optax optimizer, e.g. 'optax:adamw'), an optax "
            "GradientTransformation, or a factory f(learning_rate, **hyperparameters) -> GradientTransformation")


def is_custom(optimizer) -> bool:
    """True for a user's optimizer: a built ``optax.GradientTransformation`` or a factory (any callable)."""
    return isinstance(optimizer, optax.GradientTransformation) or (callable(optimizer) and not isinstance(optimizer, str))


def _built_lr_error() -> ArgumentError:
    return ArgumentError("lr", "must not be given with a built optax GradientTransformation (its learning rate is "
                               "inside it): pass its factory instead (e.g. optimizer=optax.lion, lr=...)")


def resolve(optimizer, lr, hyper: dict) -> Spec:
    """Check an optimizer and its hyperparameters, before anything is traced.

    ``optimizer`` is one of:

    - a built-in name: the keyword hyperparameters listed in :data:`BUILTIN`, each a finite number in its range;
    - ``"optax:NAME"``: the factory ``optax.NAME``, as below;
    - a factory ``f(learning_rate, **hyperparameters) -> optax.GradientTransformation`` (an optax alias
      such as ``optax.lion``, or a function returning an ``optax.chain``): called as
      ``f(learning_rate=lr, **hyper)``, ``hyper`` by the factory's own argument names (checked against
      its signature). Numeric hyperparameters are traced (each a finite number: a string where the
      default is a number is refused), others (bools, strings, None, functions such as a ``mask``)
      are static, part of ``kind`` with the factory itself (hashable, so the same factory compiles once);
    - a built ``optax.GradientTransformation``: run as it is (no ``lr``, no hyperparameters).

    ``lr``: a number, None (:data:`DEFAULT_LR`; for a built transformation it must be None), or a
    schedule (a function of the step count, as optax's): then static, part of ``kind`` (see :func:`with_lr`).

    ``kind`` is ``(name or factory or transformation, static keyword items, schedule or None)``.
    """
    if isinstance(optimizer, optax.GradientTransformation):
        if lr is not None:
            raise _built_lr_error()
        if hyper:
            raise ArgumentTypeError(min(hyper), "cannot be set on a built optax GradientTransformation (its "
                                                      "hyperparameters are inside it): pass its factory instead")
        return Spec((optimizer, (), None), {})
    lr = DEFAULT_LR if lr is None else lr
    if is_custom(optimizer):
        name = getattr(optimizer, "__qualname__", type(optimizer).__name__)
        name = f"optax.{name}" if getattr(optax, name, None) is optimizer else name
        return _resolve_factory(optimizer, optimizer, f"factory {name}", name, lr, hyper)
    if not isinstance(optimizer, str):
        raise ArgumentTypeError("optimizer", f"must be a string, one of {_names()}; got {optimizer!r}")
    if optimizer in BUILTIN:
        _, table = BUILTIN[optimizer]
        unknown = sorted(set(hyper) - set(table))
        if unknown:
            allowed = ", ".join(table) or "none"
            raise ArgumentTypeError(unknown[0], f"is not a hyperparameter of optimizer {optimizer!r} "
                                                f"(its hyperparameters: {allowed})")
        values = {"lr": 1.0}  # its place; with_lr puts lr there (or in kind)
        for name, (default, low, low_open, high, high_open) in table.items():
            values[name] = check_number(name, hyper.get(name, default), low=low, low_open=low_open,
                                        high=high, high_open=high_open)
        return with_lr(Spec((optimizer, (), None), values), lr)
    if optimizer.startswith(OPTAX_PREFIX):
        name = optimizer[len(OPTAX_PREFIX):]
        fn = getattr(optax, name, None) if name.isidentifier() and not name.startswith("_") else None
        if not callable(fn):
            raise ArgumentError("optimizer", f"{optimizer!r}: optax has no optimizer named {name!r}")
        return _resolve_factory(fn, optimizer, repr(optimizer), f"optax.{name}", lr, hyper)
    raise ArgumentError("optimizer", f"must be one of {_names()}; got {optimizer!r}")


def factory_arguments(fn) -> set | None:
    """The hyperparameter names a factory takes (its arguments but ``learning_rate``); None when it
    takes any (``**kwargs``) or its signature cannot be read."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    return set(params) - {"learning_rate"}


def _resolve_factory(fn, key, label: str, owner: str, lr, hyper: dict) -> Spec:
    """``fn(learning_rate=lr, **hyper)``'s :class:`Spec`, ``kind[0]`` being ``key`` (the "optax:NAME"
    string, or the factory): the names checked against ``fn``'s signature, numbers traced, the
    rest static; ``fn`` called once on traced numbers (``jax.eval_shape``) to check that it builds
    a transformation from them. ``label`` starts the errors, ``owner`` names ``fn`` in them."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        params = {}
    takes = factory_arguments(fn)
    if "learning_rate" not in params and not (params and takes is None):
        raise ArgumentError("optimizer", f"{label} is not an optimizer taking learning_rate "
                                         f"(a factory f(learning_rate, **hyperparameters))")
    for k in hyper:
        if k == "learning_rate":
            raise ArgumentTypeError(k, f"is {owner}'s learning rate: pass it as lr")
        if takes is not None and k not in takes:
            raise ArgumentTypeError("optimizer", f"{label} rejected its arguments: it takes no argument {k!r} "
                                                 f"(its hyperparameters: {', '.join(sorted(takes)) or 'none'})")
    traced = {"lr": 1.0}
    static = {}
    for k, v in hyper.items():
        default = params[k].default if k in params else inspect.Parameter.empty
        numeric_default = isinstance(default, (int, float)) and not isinstance(default, bool)
        if isinstance(v, str) and numeric_default:
            raise ArgumentTypeError(k, f"must be a number ({owner}'s default is {default!r}), got {v!r}")
        if isinstance(v, (bool, str)) or v is None or callable(v):  # static: flags, names, masks, schedules
            static[k] = v
        else:
            traced[k] = check_number(k, v)
    kind = (key, tuple(sorted(static.items())), None)
    try:
        hash(kind)
    except TypeError:
        raise ArgumentTypeError("optimizer", f"{label} and its non-numeric arguments must be hashable "
                                             f"(functions, flags, strings), so a run compiles once") from None
    built = []

    def make(h):
        h = dict(h)
        built.append(fn(learning_rate=h.pop("lr") if not callable(lr) else lr, **h, **static))
        return jnp.zeros(())

    try:
        jax.eval_shape(make, {k: v for k, v in traced.items() if not (k == "lr" and callable(lr))})
    except jax.errors.ConcretizationTypeError as e:
        raise ArgumentTypeError("optimizer", f"{label} used a traced hyperparameter as a Python number "
                                             f"({error_line(e)}): bind that argument with functools.partial "
                                             f"to keep it a number") from None
    except TypeError as e:
        raise ArgumentTypeError("optimizer", f"{label} rejected its arguments: {error_line(e)}") from None
    except Exception as e:  # the factory's own error
        raise ArgumentError("optimizer", f"{label} raised {error_line(e)}") from None
    if not isinstance(built[0], optax.GradientTransformation):
        raise ArgumentError("optimizer", f"{label} returned {type(built[0]).__name__}, "
                                         f"not an optax GradientTransformation")
    return with_lr(Spec(kind, traced), lr)


def with_lr(spec: Spec, lr) -> Spec:
    """``spec`` at another learning rate: a number or array is traced (``hyper["lr"]``), a schedule
    is static (``kind[2]``, as it cannot be traced). :func:`build` hands either to the rule as is.
    A built transformation takes none (``lr`` None)."""
    if isinstance(spec.kind[0], optax.GradientTransformation):
        if lr is not None:
            raise _built_lr_error()
        return spec
    if callable(lr):
        return Spec((*spec.kind[:2], lr), {k: v for k, v in spec.hyper.items() if k != "lr"})
    return Spec((*spec.kind[:2], None), {**spec.hyper, "lr": lr})


def build(kind: tuple, hyper: dict) -> optax.GradientTransformation:
    """The transformation for a resolved ``kind`` with (possibly traced) ``hyper``: the rule's
    constructor (a built-in's, optax's, or the user's factory) called with the learning rate —
    the traced ``hyper["lr"]``, or the schedule in ``kind`` — which ``optax.scale_by_learning_rate``
    applies after the rule (step 0 first); a built transformation as it is."""
    name, static, schedule = kind
    if isinstance(name, optax.GradientTransformation):
        return name
    hyper = dict(hyper)
    lr = hyper.pop("lr") if schedule is None else schedule
    if isinstance(name, str) and name in BUILTIN:
        return BUILTIN[name][0](lr, **hyper)
    fn = getattr(optax, name[len(OPTAX_PREFIX):]) if isinstance(name, str) else name
    return fn(learning_rate=lr, **hyper, **dict(static))


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
    if isinstance(state, EmaState):
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
