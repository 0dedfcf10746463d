"""Flows beside gradient descent: gradient flow, the modified flow and gd's central flow.

Full-batch gd with learning rate ``η``, ``θ_{k+1} = θ_k − η·∇L(θ_k)``, is compared with ODEs in the
time ``t = k·η`` (step ``k`` of gd sits at time ``k·η``):

- ``gradient`` flow: ``dθ/dt = −∇L(θ)``. gd follows it to O(η) over a fixed time.
- ``modified`` flow (Barrett & Dherin 2021, "Implicit Gradient Regularization", ICLR):
  ``dθ/dt = −∇L̃``, ``L̃ = L + (η/4)·‖∇L‖²``, i.e. ``−(∇L + (η/2)·H∇L)`` (one Hessian-vector
  product). gd follows it to O(η²) over a fixed time (backward error analysis).
- ``central`` flow (Cohen, Damian, Talwalkar, Kolter & Lee 2024, "Understanding Optimization in
  Deep Learning with Central Flows", arXiv:2410.24206, §3, gd): the time-average of gd at the edge
  of stability, ``dθ/dt = −[∇L + ½·∇⟨Σ, ∇²L(θ)⟩]`` (the paper's ``dw/dτ = −η[...]`` in steps
  ``τ``, here in ``t = τ·η``), where ``Σ ⪰ 0`` lives on the eigenspaces at ``2/η`` and solves a
  complementarity problem that keeps the sharpness ``S(θ) = λ₁(∇²L)`` at most ``2/η``. With
  **one critical eigenvalue** (top eigenvector ``u``), ``Σ = σ²·u uᵀ`` and
  ``∇⟨Σ, ∇²L⟩ = σ²·∇S`` with ``∇S = ∇_θ(uᵀ∇²L(θ)u)`` (u held fixed: the derivative of a simple
  eigenvalue), so the problem is one number: ``σ² ≥ 0``, ``dS/dt ≤ 0`` while ``S = 2/η``,
  ``σ²·dS/dt = 0``, i.e. ``σ² = max(0, −2⟨∇S, ∇L⟩/‖∇S‖²)`` — gradient flow with ``−∇L``
  projected off ``∇S`` whenever it would sharpen past ``2/η``. Numerically the constraint is
  held by Baumgarte stabilisation: ``dS/dt ≤ −κ·(S − 2/η)`` with ``κ = 1/η`` (one gd step), so
  ``σ² = max(0, 2(−⟨∇S, ∇L⟩ + κ(S − 2/η))/‖∇S‖²)``; it switches on a sharpening of about one gd
  step before ``S`` reaches ``2/η`` and pulls a drift back within a step or so. ``σ²`` is the
  paper's predicted variance of gd's oscillation along ``u``. Where a second eigenvalue also
  reaches ``2/η`` this single-eigenvalue flow is only an approximation (the paper's Σ then has
  rank > 1).

Integration: each gd interval ``[kη, (k+1)η]`` is ``n`` classical RK4 substeps of ``h = η/n`` with
``n = ceil(η·λ̃/c)`` (``1 ≤ n ≤`` :data:`MAX_SUBSTEPS`), so ``h·λ̃ ≤ c``: ``λ̃`` is the stiffness of
the field, estimated by warm-started Lanczos (:func:`jaxgd.spectrum.top_eigenpairs`) at the
interval's start — ``λmax(∇²L)`` for the gradient and central flows, ``λmax + (η/2)·λmax²`` for the
modified flow (the top eigenvalue of its Jacobian ``H + (η/2)H²`` on a quadratic). The default
``c = 0.5`` (:data:`C`) keeps RK4's growth factor along ``λ̃`` within 5·10⁻⁴ (relative) of ``e^{−hλ̃}``, far
inside RK4's real stability limit 2.785; for small ``η`` (``η·λ̃ ≤ c``) one substep of ``h = η``
makes the flow's own error O(η⁴), below every gap measured here. The central flow re-estimates
``u`` by Lanczos at every substep (warm: one or two Hessian-vector products) and holds it over the
substep's four stages, with ``S`` there the Rayleigh quotient ``uᵀ∇²L(θ)u``.

Each flow is an optimizer of the one engine — a factory ``f(learning_rate, c=C)`` (:func:`gradient`,
:func:`modified`, :func:`central`) whose update moves the point along the flow for time
``learning_rate`` — so ``jaxgd.run`` / ``jaxgd.sweep`` sample it at the gd step times, vmap it over
learning rates in one compiled call, measure its sharpness in the scan, and
:func:`jaxgd.landscape` draws it as a run (``runs={"gd": ..., "central flow": {"optimizer":
jaxgd.flows.central, "lr": 0.1, "epochs": 300}}``). :func:`gradient_flow`, :func:`modified_flow`
and :func:`central_flow` are the doors: a problem (its full-batch loss) or a function
``f(params) -> scalar``, a start, ``lr`` (a number: one run; a 1-D array: one sweep, leading axis
of runs) and ``steps``; they return a :class:`jaxgd.Trajectory` whose ``params`` (``T+1`` points)
are ``θ(k·η)``, ``k = 0..T``. :func:`distance` compares a flow with gd, :func:`time_average`
smooths gd's period-2 oscillation, :func:`crossing` finds where gd's sharpness reaches ``2/η``.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from jaxgd import _checks, runs as _runs
from jaxgd._checks import ArgumentError, ArgumentTypeError
from jaxgd.engine import Trajectory
from jaxgd.problems import Problem
from jaxgd.spectrum import top_eigenpairs

KINDS = ("gradient", "modified", "central")
C = 0.5  # RK4 substeps: h·λ̃ ≤ C (λ̃ the field's stiffness; see the module docstring)
MAX_SUBSTEPS = 4096  # per gd step, whatever λ̃ says (a blown-up estimate must not hang the run)
LANCZOS_ITERS = 40  # Lanczos iterations per estimate (warm-started: usually 1-5 are used)
LANCZOS_TOL = 1e-6  # Lanczos residual ≤ tol·λ


class FlowState(NamedTuple):
    """A flow's optimizer state: ``u``, the flat ``(n,)`` top Hessian eigenvector of the last
    estimate (zeros before the first), from which the next Lanczos is warm-started."""

    u: jax.Array


def _top(f: Callable, x: jax.Array, u: jax.Array):
    """``(λmax, u)`` of ``∇²f(x)`` (flat), warm-started from ``u``."""
    ep = top_eigenpairs(f, x, u, k=1, max_iter=LANCZOS_ITERS, tol=LANCZOS_TOL)
    return ep.eigenvalues[0], ep.eigenvectors[0]


def sigma2(grad: jax.Array, grad_s: jax.Array, s: jax.Array, lr) -> jax.Array:
    """The central flow's ``σ²`` with one critical eigenvalue (flat vectors ``grad`` = ∇L and
    ``grad_s`` = ∇S, sharpness ``s``): ``max(0, 2(−⟨∇S, ∇L⟩ + κ(S − 2/η))/‖∇S‖²)`` with ``κ = 1/η``;
    0 where ``∇S`` vanishes (a quadratic: the sharpness cannot be moved)."""
    nn = grad_s @ grad_s
    want = -(grad_s @ grad) + (s - 2 / lr) / lr
    return jnp.where(nn > 0, jnp.maximum(0.0, 2 * want / jnp.where(nn > 0, nn, 1)), 0.0)


def velocity(kind: str, f: Callable, x: jax.Array, lr, u: jax.Array | None = None) -> jax.Array:
    """``dθ/dt`` of flow ``kind`` at the flat point ``x`` (``f`` a loss of flat vectors, ``lr`` = η;
    ``u`` the top eigenvector for the central flow). Pure, jittable."""
    g = jax.grad(f)
    if kind == "gradient":
        return -g(x)
    if kind == "modified":
        grad = g(x)
        return -(grad + (lr / 2) * jax.jvp(g, (x,), (grad,))[1])
    grad = g(x)
    s, grad_s = jax.value_and_grad(lambda y: u @ jax.jvp(g, (y,), (u,))[1])(x)
    return -(grad + sigma2(grad, grad_s, s, lr) / 2 * grad_s)


def _rk4(field: Callable, x: jax.Array, h) -> jax.Array:
    k1 = field(x)
    k2 = field(x + h / 2 * k1)
    k3 = field(x + h / 2 * k2)
    k4 = field(x + h * k3)
    return x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)


def substeps(kind: str, lam, lr, c) -> jax.Array:
    """``n = ceil(η·λ̃/c)`` in ``[1, MAX_SUBSTEPS]`` (int32): ``λ̃ = max(λ, 0)``, and
    ``λ̃ + (η/2)·λ̃²`` for the modified flow; 1 where ``λ`` is NaN (a diverged point stays NaN)."""
    lam = jnp.maximum(lam, 0)
    if kind == "modified":
        lam = lam + lr / 2 * lam**2
    n = jnp.ceil(lr * lam / c)
    return jnp.clip(jnp.where(jnp.isnan(n), 1, n), 1, MAX_SUBSTEPS).astype(jnp.int32)


def advance(kind: str, f: Callable, x: jax.Array, lr, c, u: jax.Array):
    """Flow ``kind`` from the flat point ``x`` for time ``lr`` (one gd interval): ``n`` RK4 substeps
    (:func:`substeps`, ``λ`` by Lanczos at ``x`` from ``u``). Returns ``(x(lr), u)``, ``u`` the last
    top eigenvector. Pure, jittable, vmappable (``n`` may differ per batch member)."""
    lam, u = _top(f, x, u)
    n = substeps(kind, lam, lr, c)
    h = lr / n

    def sub(i, state):
        y, v = state
        if kind == "central":  # the eigenvector at the substep's start, held over its stages
            v = jax.lax.cond(i > 0, lambda: _top(f, y, v)[1], lambda: v)
        return _rk4(lambda z: velocity(kind, f, z, lr, v), y, h), v

    return jax.lax.fori_loop(0, n, sub, (x, u))


def _rule(kind: str, learning_rate, c) -> optax.GradientTransformationExtraArgs:
    """The optimizer whose step is flow ``kind`` over time ``learning_rate`` (needs ``value_fn``,
    the loss of the step's batch, as the engine passes it)."""

    def init(params):
        flat = ravel_pytree(params)[0]
        return FlowState(jnp.zeros_like(flat))

    def update(updates, state, params=None, *, value_fn=None, **extra):
        if value_fn is None or params is None:
            raise ValueError(f"the {kind} flow needs params and value_fn (the loss) in update")
        x, unravel = ravel_pytree(params)
        lr = jnp.asarray(learning_rate, x.dtype)
        y, u = advance(kind, lambda z: value_fn(unravel(z)), x, lr, jnp.asarray(c, x.dtype), state.u)
        return unravel(y - x), FlowState(u)

    return optax.GradientTransformationExtraArgs(init, update)


def gradient(learning_rate, c: float = C) -> optax.GradientTransformationExtraArgs:
    """Gradient flow ``dθ/dt = −∇L`` over time ``learning_rate`` per step, as an optimizer factory
    for :func:`jaxgd.run` / :func:`jaxgd.sweep` (full batch)."""
    return _rule("gradient", learning_rate, c)


def modified(learning_rate, c: float = C) -> optax.GradientTransformationExtraArgs:
    """The modified flow ``dθ/dt = −(∇L + (η/2)·H∇L)``, ``η = learning_rate``, over time η per step."""
    return _rule("modified", learning_rate, c)


def central(learning_rate, c: float = C) -> optax.GradientTransformationExtraArgs:
    """gd's central flow with one critical eigenvalue (``S ≤ 2/η``), over time η per step."""
    return _rule("central", learning_rate, c)


RULES = {"gradient": gradient, "modified": modified, "central": central}


class _FunctionLoss:
    """``loss_fn(params, data, mask) = f(params)`` for a bare function (equal when it wraps the same
    ``f``, so the run compiles once per function)."""

    def __init__(self, f: Callable):
        self.f = f

    def __call__(self, params, data=None, mask=None):
        return self.f(params)

    def __eq__(self, other):
        return isinstance(other, _FunctionLoss) and other.f is self.f

    def __hash__(self):
        return hash((_FunctionLoss, self.f))


def _problem(problem_or_f, init) -> Problem:
    if isinstance(problem_or_f, Problem):
        return problem_or_f
    if not callable(problem_or_f):
        raise ArgumentTypeError("problem_or_f", f"must be a jaxgd.Problem or a function params -> scalar, "
                                                f"got {type(problem_or_f).__name__}")
    if init is None:
        raise ArgumentError("init", "is required with a function (a Problem has a default start)")
    like = jax.tree.map(lambda a: np.zeros(np.shape(a)), init)
    start = _checks.check_params("init", init, like, _checks.check_dtype(None))
    return Problem(name=getattr(problem_or_f, "__name__", "f"), loss_fn=_FunctionLoss(problem_or_f), grad_fn=None,
                   data=None, w_range=None, b_range=None, init=start)


def flow(kind: str, problem_or_f, init=None, lr=0.05, steps: int = 100, *, c: float = C,
         sharpness_every: int = 0, go_on: bool = False) -> Trajectory:
    """Flow ``kind`` (``"gradient"``, ``"modified"``, ``"central"``) sampled at gd's step times.

    ``problem_or_f``: a :class:`jaxgd.Problem` (its full-batch loss) or ``f(params) -> scalar``
    (then ``init`` is required). ``init``: the start (default the problem's). ``lr`` = η: a number
    (one run) or a 1-D array (one compiled sweep over them: every array of the result gets a
    leading axis of runs). ``steps`` = T. ``c``: the substep bound ``h·λ̃ ≤ c``.
    ``sharpness_every``: measure ``λmax`` along the flow as :func:`jaxgd.run` does. ``go_on``:
    :func:`jaxgd.run`'s (work estimated past an hour is refused without it; the substeps not counted).

    Returns a :class:`jaxgd.Trajectory`: ``params`` ``(T+1, ...)`` are ``θ(k·η)``; ``loss`` the full
    loss there; ``update_norm`` ``‖θ((k+1)η) − θ(kη)‖``; ``grad_norm`` ``‖∇L(θ(kη))‖``; the divergence
    rule as for a run.
    """
    kind = _checks.check_choice("kind", kind, KINDS)
    problem = _problem(problem_or_f, init)
    steps = _checks.check_int("steps", steps, 1)
    c = _checks.check_number("c", c, low=0, low_open=True, high=2.5)
    if callable(lr):
        raise ArgumentTypeError("lr", "must be a number or a 1-D array of numbers (a flow's time step), not a schedule")
    lrs = _checks.check_array("lr", lr, low=0, low_open=True)
    kw = dict(epochs=steps, init=init, sharpness_every=sharpness_every, c=c, go_on=go_on)
    if lrs.ndim == 0:
        return _runs.run(problem, RULES[kind], lr=float(lrs), **kw)
    return _runs.sweep(problem, RULES[kind], lr=lrs.astype(np.float64), **kw)


def gradient_flow(problem_or_f, init=None, lr=0.05, steps: int = 100, **kw) -> Trajectory:
    """Gradient flow ``dθ/dt = −∇L`` at ``t = k·lr``, ``k = 0..steps`` (see :func:`flow`)."""
    return flow("gradient", problem_or_f, init, lr, steps, **kw)


def modified_flow(problem_or_f, init=None, lr=0.05, steps: int = 100, **kw) -> Trajectory:
    """The modified flow of L + (lr/4)‖∇L‖² at ``t = k·lr`` (see :func:`flow`)."""
    return flow("modified", problem_or_f, init, lr, steps, **kw)


def central_flow(problem_or_f, init=None, lr=0.05, steps: int = 100, **kw) -> Trajectory:
    """gd's central flow (one critical eigenvalue) at ``t = k·lr`` (see :func:`flow`)."""
    return flow("central", problem_or_f, init, lr, steps, **kw)


def distance(a: Any, b: Any, axes: int = 1) -> np.ndarray:
    """``‖a_k − b_k‖`` (Euclidean over every leaf) per point of two paths: pytrees of one structure
    whose leaves have ``axes`` leading path axes before the parameter's own shape — ``1`` for one
    run's ``params`` (``(T+1, ...)``), ``2`` for a sweep's (``(R, T+1, ...)``). Returns those axes."""
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    if len(la) != len(lb):
        raise ArgumentError("b", f"has {len(lb)} arrays, a {len(la)}: not paths of one problem")
    total = 0.0
    for x, y in zip(la, lb):
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        if x.shape != y.shape:
            raise ArgumentError("b", f"has an array of shape {y.shape} where a has {x.shape}")
        total = total + np.sum(np.square(x - y).reshape(*x.shape[:axes], -1), axis=-1)
    return np.sqrt(total)


def time_average(path: Any, window: int = 2, axes: int = 1) -> Any:
    """The moving average of ``window`` consecutive points of a path (leaves with ``axes`` leading
    path axes, the last of them the step axis), ``T+2−window`` points: with ``window = 2``,
    ``(θ_k + θ_{k+1})/2``, gd's iterate averaged over the period-2 oscillation of the edge of
    stability — the "time-averaged trajectory" that the central flow models (Cohen et al. 2024)."""
    window = _checks.check_int("window", window, 1)
    axis = _checks.check_int("axes", axes, 1) - 1

    def avg(a):
        a = np.asarray(a, np.float64)
        c = np.cumsum(a, axis=axis)
        c = np.concatenate([np.zeros_like(np.take(c, [0], axis=axis)), c], axis=axis)
        n = a.shape[axis]
        return (np.take(c, np.arange(window, n + 1), axis=axis) - np.take(c, np.arange(0, n + 1 - window), axis=axis)) / window

    return jax.tree.map(avg, path)


def crossing(sharpness, lr) -> int | None:
    """The first step whose measured sharpness (NaN: not measured) reaches ``2/lr``, or None."""
    s = np.asarray(sharpness, np.float64)
    hit = np.flatnonzero(np.isfinite(s) & (s >= 2 / float(lr)))
    return int(hit[0]) if hit.size else None

