"""Helpers shared by the test files (fixtures live in conftest.py; no test module imports another).

- Float64 references written in the notebook's style, Python loops over NumPy (``import helpers as
  ref``). These mirror the notebook's cells (``GradientDescent``, ``UpdateParams_GradientDescent``,
  ``SGDAlgo``, ``MinibatchGradientDescentAlgo``) with its known faults fixed (SGD uses its
  ``learning_rate``; ``epochs`` counts passes). The sample order is passed in, so the same order
  can be fed to jaxgd.
- A small tanh MLP for the numerics tests (``mlp_params``, ``mlp_loss_on``) and ``flat``.
- The sharpness tests' problems: ``iris_mlp_problem`` (83 parameters) and the edge-of-stability
  MLP ``digits_mse_problem``.
- The headless browser's settings (``CHROMIUM``, ``ARGS``, ``needs_chromium``) and ``open_page``.
"""

import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import jaxgd
from jaxgd.datasets import load
from jaxgd.models import mlp

# --- float64 references in the notebook's style -------------------------------------------------

X = np.linspace(-5, 5, num=51)
Y = 2 * X + 3


def loss(pred, Y):
    return 1 / len(Y) * np.sum(np.square(pred - Y))


def predict(X, w, b):
    return w * X + b


def surface_loops(W_linspace, b_linspace, X=X, Y=Y):
    """The notebook's double loop: ``loss_all[i, j]`` at ``(W_linspace[i], b_linspace[j])``."""
    loss_all = np.zeros((len(W_linspace), len(b_linspace)))
    for i in range(len(W_linspace)):
        for j in range(len(b_linspace)):
            loss_all[i, j] = loss(predict(X, W_linspace[i], b_linspace[j]), Y)
    return loss_all


def gradient(X, Y, W, b):
    """The notebook's GradientDescent(): loss and {dL/dW, dL/db} on the batch given."""
    X, Y = np.atleast_1d(X), np.atleast_1d(Y)
    m = len(Y)
    error = W * X + b - Y
    return 1 / m * np.sum(np.square(error)), (1 / m * np.sum(2 * error * X), 1 / m * np.sum(2 * error))


def gd_loop(batches, lr, W=-4.0, b=-7.0, rule="gd", hyper=None, X=X, Y=Y):
    """Run over ``batches`` (a list of index arrays) with one of the update rules, elementwise.

    Returns ``ws, bs`` (T+1 points), full-data ``losses`` (T+1) and ``batch_losses`` (T).
    """
    h = dict(beta=0.9, decay=0.9, eps=1e-8, b1=0.9, b2=0.999) | (hyper or {})
    th = np.array([W, b], dtype=np.float64)
    v = np.zeros(2)
    s = np.zeros(2)
    ws, bs, losses, batch_losses = [], [], [], []
    for t, idx in enumerate(batches, start=1):
        ws.append(th[0])
        bs.append(th[1])
        losses.append(loss(predict(X, th[0], th[1]), Y))
        bl, (gw, gb) = gradient(X[idx], Y[idx], th[0], th[1])
        batch_losses.append(bl)
        g = np.array([gw, gb])
        if rule == "gd":
            th = th - lr * g
        elif rule == "momentum":
            v = h["beta"] * v + (1 - h["beta"]) * g
            th = th - lr * v
        elif rule == "nesterov":
            v = h["beta"] * v + (1 - h["beta"]) * g
            th = th - lr * (h["beta"] * v + (1 - h["beta"]) * g)
        elif rule == "rmsprop":
            s = h["decay"] * s + (1 - h["decay"]) * g**2
            th = th - lr * g / (np.sqrt(s) + h["eps"])
        elif rule == "adam":
            v = h["b1"] * v + (1 - h["b1"]) * g
            s = h["b2"] * s + (1 - h["b2"]) * g**2
            mhat = v / (1 - h["b1"] ** t)
            shat = s / (1 - h["b2"] ** t)
            th = th - lr * mhat / (np.sqrt(shat) + h["eps"])
        else:
            raise ValueError(rule)
    ws.append(th[0])
    bs.append(th[1])
    losses.append(loss(predict(X, th[0], th[1]), Y))
    return np.array(ws), np.array(bs), np.array(losses), np.array(batch_losses)


def notebook_sgd_batches(seed, epochs, m=51):
    """The notebook's SGDAlgo order: np.random.seed(seed), one np.random.randint(0, m) per step."""
    np.random.seed(seed)
    return [np.array([np.random.randint(0, m)]) for _ in range(m * epochs)]


def notebook_minibatches(seed, epochs, batch_size=8, m=51):
    """The notebook's MinibatchGradientDescentAlgo order: a permutation per epoch, cut in batches."""
    np.random.seed(seed)
    out = []
    for _ in range(epochs):
        p = np.random.permutation(m)
        full = m // batch_size
        out += [p[k * batch_size:(k + 1) * batch_size] for k in range(full)]
        if m % batch_size:
            out.append(p[full * batch_size:])
    return out


def settled_steps(loss, floor=0.0):
    """The exercise cards' "steps to 1 %", the naive way: the first k from which every loss[j] (j ≥ k, to the
    end) is finite with loss[j] − floor ≤ 0.01·(loss[0] − floor); −1 if the last is not."""
    for k in range(len(loss)):
        if all(np.isfinite(v) and v - floor <= 0.01 * (loss[0] - floor) for v in loss[k:]):
            return k
    return -1


# --- a small MLP for the numerics tests (data from NumPy: nothing compiles at import) -----------

def mlp_params(seed, sizes):
    """A small tanh MLP's parameters for the numerics tests, weights (out, in), from NumPy (nothing
    compiles at import): ``{"layer0": {"w", "b"}, ...}``."""
    rng = np.random.default_rng(seed)
    return {f"layer{i}": {"w": jnp.asarray(rng.standard_normal((fan_out, fan_in)) / np.sqrt(fan_in)),
                          "b": jnp.asarray(0.1 * rng.standard_normal(fan_out))}
            for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:]))}


def mlp_loss_on(x, y):
    """``params -> mean squared error`` of the MLP of :func:`mlp_params` on the data ``x (m, d)``, ``y (m, 1)``."""

    def loss(params):
        h = x
        for i in range(len(params)):
            layer = params[f"layer{i}"]
            h = h @ layer["w"].T + layer["b"][None, :]
            h = jnp.tanh(h) if i < len(params) - 1 else h
        return jnp.mean((h - y) ** 2)

    return loss


def iris_mlp_problem():
    """A 4-10-3 tanh MLP (83 parameters) on 60 iris flowers, cross-entropy."""
    d = load("iris")
    model = mlp((4, 10, 3), "tanh", "classification")
    idx = np.arange(0, 150, 150 // 60)[:60]
    return jaxgd.model_problem(model.loss_per_example, model.init(jax.random.key(3)), (d.x[idx], d.y[idx]))


def digits_mse_problem(m=500, hidden=32):
    """Cohen et al.'s set-up, small: a tanh MLP 64-32-32-10 (3,466 parameters) on 500 digits, with
    the squared error against one-hot targets (their MSE runs)."""
    d = load("digits")
    model = mlp((64, hidden, hidden, 10), "tanh", "classification", loss="mse")
    return jaxgd.model_problem(model.loss_per_example, model.init(jax.random.key(0)), (d.x[:m], d.y[:m]),
                               name="digits")


def flat(tree):
    """A pytree's leaves as one vector (``ravel_pytree``)."""
    return ravel_pytree(tree)[0]


# --- the browser: Debian's chromium, headless, driven by Playwright ------------------------------

CHROMIUM = os.environ.get("JAXGD_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--disable-background-networking"]


needs_chromium = pytest.mark.skipif(  # a browser test's skip where there is no chromium, saying how to install it
    not os.path.exists(CHROMIUM),
    reason=f"no chromium at {CHROMIUM}: install it with `apt-get update && apt-get install -y chromium` "
           "(never `playwright install`), or set JAXGD_CHROMIUM")


def open_page(browser, path, width, fragment=""):
    """A page at ``width`` px (with the address's ``fragment``, "#…"), loaded and drawn; ``pg.errors`` collects page
    errors and console errors."""
    pg = browser.new_page(viewport={"width": width, "height": 900})
    pg.errors = []
    pg.on("pageerror", lambda e: pg.errors.append(f"pageerror: {e}"))
    pg.on("console", lambda m: m.type == "error" and pg.errors.append(f"console.error: {m.text}"))
    pg.goto(Path(path).as_uri() + fragment)
    pg.wait_for_selector("body[data-ready='1']", timeout=90_000)
    return pg


def click_key(page, fig, i):
    """A click on entry ``i`` of figure ``fig``'s legends (the mouse's, where the entry is: no actionability wait)."""
    entry = page.locator(f"#{fig} .traces").nth(i)
    entry.scroll_into_view_if_needed()
    box = entry.bounding_box()
    page.mouse.click(box["x"] + 10, box["y"] + box["height"] / 2)
