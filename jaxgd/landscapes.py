"""Classic two-parameter test functions as :class:`jaxgd.Problem`s (no data).

The parameters are the first and second coordinates ``(a, b)`` — stored in ``Params(w, b)``
as ``w = a`` — and ``loss_surface`` lays them out as ``S[i, j] = f(a_i, b_j)``. Each has a
closed-form gradient (checked against ``jax.grad`` in the tests), its known minima, and
default plot ranges and start. Without data an epoch is one step, and ``batch_size`` does not
apply.
"""

from __future__ import annotations

import jax.numpy as jnp

from jaxgd.model import Params
from jaxgd.problems import Problem

_NAMES = ("a", "b")


def _rosenbrock(p, data, mask):
    return (1 - p.w) ** 2 + 100 * (p.b - p.w**2) ** 2


def _rosenbrock_grad(p, data, mask):
    a, b = p.w, p.b
    return Params(-2 * (1 - a) - 400 * a * (b - a**2), 200 * (b - a**2))


def _beale_terms(a, b):
    return 1.5 - a + a * b, 2.25 - a + a * b**2, 2.625 - a + a * b**3


def _beale(p, data, mask):
    t1, t2, t3 = _beale_terms(p.w, p.b)
    return t1**2 + t2**2 + t3**2


def _beale_grad(p, data, mask):
    a, b = p.w, p.b
    t1, t2, t3 = _beale_terms(a, b)
    return Params(2 * t1 * (b - 1) + 2 * t2 * (b**2 - 1) + 2 * t3 * (b**3 - 1),
                  2 * t1 * a + 4 * t2 * a * b + 6 * t3 * a * b**2)


def _himmelblau(p, data, mask):
    return (p.w**2 + p.b - 11) ** 2 + (p.w + p.b**2 - 7) ** 2


def _himmelblau_grad(p, data, mask):
    a, b = p.w, p.b
    u, v = a**2 + b - 11, a + b**2 - 7
    return Params(4 * a * u + 2 * v, 2 * u + 4 * b * v)


def _rastrigin(p, data, mask):
    a, b = p.w, p.b
    return 20 + a**2 - 10 * jnp.cos(2 * jnp.pi * a) + b**2 - 10 * jnp.cos(2 * jnp.pi * b)


def _rastrigin_grad(p, data, mask):
    a, b = p.w, p.b
    return Params(2 * a + 20 * jnp.pi * jnp.sin(2 * jnp.pi * a), 2 * b + 20 * jnp.pi * jnp.sin(2 * jnp.pi * b))


def _ill(p, data, mask):
    return 0.1 * p.w**2 + 2 * p.b**2


def _ill_grad(p, data, mask):
    return Params(0.2 * p.w, 4 * p.b)


def _saddle(p, data, mask):
    return p.w**2 - p.b**2


def _saddle_grad(p, data, mask):
    return Params(2 * p.w, -2 * p.b)


def rosenbrock() -> Problem:
    """``(1 − a)² + 100·(b − a²)²``: a curved, narrow valley; minimum 0 at (1, 1)."""
    return Problem("rosenbrock", _rosenbrock, _rosenbrock_grad, None, (-2.0, 2.0), (-1.0, 3.0),
                   Params(-1.5, 2.5), Params(1.0, 1.0), _NAMES, (Params(1.0, 1.0),))


def beale() -> Problem:
    """``(1.5 − a + ab)² + (2.25 − a + ab²)² + (2.625 − a + ab³)²``: minimum 0 at (3, 0.5)."""
    return Problem("beale", _beale, _beale_grad, None, (-4.5, 4.5), (-4.5, 4.5),
                   Params(1.0, 1.5), Params(3.0, 0.5), _NAMES, (Params(3.0, 0.5),))


HIMMELBLAU_MINIMA = (Params(3.0, 2.0), Params(-2.805118, 3.131312), Params(-3.779310, -3.283186),
                     Params(3.584428, -1.848126))


def himmelblau() -> Problem:
    """``(a² + b − 11)² + (a + b² − 7)²``: four minima of value 0."""
    return Problem("himmelblau", _himmelblau, _himmelblau_grad, None, (-5.0, 5.0), (-5.0, 5.0),
                   Params(0.0, 0.0), HIMMELBLAU_MINIMA[0], _NAMES, HIMMELBLAU_MINIMA)


def rastrigin() -> Problem:
    """``20 + a² − 10·cos(2πa) + b² − 10·cos(2πb)``: many local minima; global 0 at (0, 0)."""
    return Problem("rastrigin", _rastrigin, _rastrigin_grad, None, (-5.12, 5.12), (-5.12, 5.12),
                   Params(3.2, -2.7), Params(0.0, 0.0), _NAMES, (Params(0.0, 0.0),))


def ill_conditioned() -> Problem:
    """``0.1·a² + 2·b²``: a quadratic with condition number 20; minimum 0 at (0, 0)."""
    return Problem("ill_conditioned", _ill, _ill_grad, None, (-5.0, 5.0), (-3.0, 3.0),
                   Params(-4.5, 2.5), Params(0.0, 0.0), _NAMES, (Params(0.0, 0.0),), quadratic=True)


def saddle() -> Problem:
    """``a² − b²``: a saddle at (0, 0), unbounded below along b; no minimum."""
    return Problem("saddle", _saddle, _saddle_grad, None, (-2.0, 2.0), (-2.0, 2.0),
                   Params(-1.5, 1e-3), None, _NAMES, (), quadratic=True)


LANDSCAPES = {f.__name__: f for f in (rosenbrock, beale, himmelblau, rastrigin, ill_conditioned, saddle)}
