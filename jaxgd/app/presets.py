"""The notebook's three sampling modes, and default learning rates for every optimizer.

gd reproduces the notebook's cells exactly (its learning rates and budgets; epochs here count
passes, so the notebook's ``EPOCH=1`` is ``epochs=2``). The notebook left Momentum, RMSProp
and Adam empty; their learning rates and budgets below were chosen so that every path is
visible on the [-8, 8]² plot and ends near the minimum (2, 3) — see the README's table.
Within a mode every optimizer uses the same seed, so all see the same sample order (a longer
run's order extends a shorter one's).
"""

from __future__ import annotations

from typing import NamedTuple


class Mode(NamedTuple):
    """A sampling mode: how a run draws its batches."""

    name: str
    label: str
    batch_size: int | None
    sampling: str
    rng: str
    seed: int


MODES = (
    Mode("full", "full batch", None, "shuffle", "numpy", 0),
    Mode("sgd", "SGD (batch 1)", 1, "replacement", "numpy", 2),
    Mode("minibatch", "minibatch (batch 8)", 8, "shuffle", "numpy", 1),
)

# (optimizer, mode) -> (lr, epochs)
SETTINGS = {
    ("gd", "full"): (5e-2, 20),
    ("gd", "sgd"): (1e-2, 2),
    ("gd", "minibatch"): (5e-2, 2),
    ("momentum", "full"): (5e-2, 100),
    ("momentum", "sgd"): (2e-2, 5),
    ("momentum", "minibatch"): (5e-2, 15),
    ("nesterov", "full"): (5e-2, 100),
    ("nesterov", "sgd"): (2e-2, 5),
    ("nesterov", "minibatch"): (5e-2, 15),
    ("rmsprop", "full"): (2e-1, 100),
    ("rmsprop", "sgd"): (1e-1, 5),
    ("rmsprop", "minibatch"): (2e-1, 15),
    ("adam", "full"): (3e-1, 100),
    ("adam", "sgd"): (2e-1, 5),
    ("adam", "minibatch"): (3e-1, 15),
}

REPORT_OPTIMIZERS = ("gd", "momentum", "rmsprop", "adam")


# For optimizers without presets (e.g. "optax:adamw"): per mode (lr, epochs).
FALLBACK = {"full": (5e-2, 100), "sgd": (2e-2, 5), "minibatch": (5e-2, 15)}


# Landscapes (no data, one mode: an epoch is one step): (steps, {optimizer: lr}), chosen from
# lr sweeps so that each path is visible and, where the landscape allows, ends near a minimum.
LANDSCAPE_SETTINGS = {
    "rosenbrock": (1000, {"gd": 1e-3, "momentum": 1e-2, "nesterov": 1e-2, "rmsprop": 3e-2, "adam": 1e-1}),
    "beale": (500, {"gd": 3e-2, "momentum": 3e-2, "nesterov": 3e-2, "rmsprop": 1e-2, "adam": 3e-1}),
    "himmelblau": (500, {"gd": 1e-2, "momentum": 1e-2, "nesterov": 1e-2, "rmsprop": 1e-2, "adam": 3e-2}),
    "rastrigin": (500, {"gd": 3e-3, "momentum": 1e-2, "nesterov": 1e-2, "rmsprop": 1e-2, "adam": 3e-2}),
    "ill_conditioned": (500, {"gd": 3e-1, "momentum": 3e-1, "nesterov": 3e-1, "rmsprop": 1e-2, "adam": 1e-1}),
    "saddle": (500, {"gd": 1e-2, "momentum": 1e-2, "nesterov": 1e-2, "rmsprop": 1e-2, "adam": 1e-2}),
}
LANDSCAPE_MODE = Mode("full", "full batch", None, "shuffle", "jax", 0)


def settings(optimizer: str, mode_name: str, landscape: str | None = None) -> tuple[float, int]:
    """The preset ``(lr, epochs)`` of an optimizer in a mode (:data:`FALLBACK` for one without
    presets), or on the named ``landscape``, where an epoch is a step (lr 0.01 for others)."""
    if landscape is not None:
        steps, lrs = LANDSCAPE_SETTINGS[landscape]
        return lrs.get(optimizer, 1e-2), steps
    return SETTINGS.get((optimizer, mode_name), FALLBACK[mode_name])
