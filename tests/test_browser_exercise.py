"""Exercise mode (issue 22) in a real browser: the task cards' readouts for five views given by the
page's address (#opt=…&lr=…&beta=…&batch=…&step=…&card=…, each by ``hashchange``) against runs that
Python makes itself (not the page's numbers), to four significant figures; a page loaded with a
malformed address shows the default view; the address written when a control moves; no page or
console errors. (The page at 420 px, exercises included, is test_browser.py's overflow test.)"""

import numpy as np
import pytest

import jaxgd
from helpers import needs_chromium, settled_steps
from helpers import open_page as _open  # the name test_browser.py uses
from jaxgd.app.presets import settings
from jaxgd.curvature import theory

pytestmark = [pytest.mark.xdist_group("cli_report"), needs_chromium]

T = 100  # the report's what-if paths: 100 full-batch steps (sweep_epochs) from the default start
# the what-if's stops: 30 of the report's 100 learning rates, log-spaced over [1e-3, 10], evenly in index
LRS = np.geomspace(1e-3, 10, 100)[np.unique(np.linspace(0, 99, 30).round().astype(int))]
# (hash, optimizer, stop of LRS, β); the card's own stops, as this problem's numbers make them (see the cards' texts)
VIEWS = [("card=a&opt=gd&lr={lr}", "gd", 14, None), ("card=b&opt=gd&lr={lr}&step=0", "gd", 0, None),
         ("card=c&opt=gd&lr={lr}", "gd", 16, None), ("card=d&opt=momentum&lr={lr}&beta=0.98&step=500", "momentum", 10, 0.98),
         ("card=e&opt=momentum&lr={lr}&beta=0.5&batch=4", "momentum", 11, 0.5)]
CELLS = "(id) => Object.fromEntries([...document.querySelectorAll(`#${id} [data-k]`)].map((c) => [c.dataset.k, c.textContent]))"


def _value(text):
    """A readout as a number: "—" is None; the page writes minus as "-" in exponents and numbers alike."""
    return None if text == "—" else float(text)


def _same(text, want):
    """The page's readout is ``want`` to four significant figures (None, not finite or −1: "—")."""
    if want is None or not np.isfinite(want) or (isinstance(want, (int, np.integer)) and want < 0):
        return text == "—"
    return abs(_value(text) - want) <= 5.01e-4 * abs(want) + 1e-300


@pytest.fixture(scope="module")
def python_side(problem):
    """Each view's what-if run by jaxgd.sweep (one compiled call, an optimizer column) and readouts in NumPy;
    the batch size 4 runs of the seed cloud's two modes (seeds 0–99, NumPy orders) for the fifth."""
    opts = [v[1] for v in VIEWS]
    t = jaxgd.sweep(problem, opts, lr=[LRS[v[2]] for v in VIEWS], epochs=T, beta=[v[3] or 0.9 for v in VIEWS])
    out = []
    for i in range(len(VIEWS)):
        loss, d = np.asarray(t.loss[i], np.float64), int(t.diverged_at[i])
        final = [None] * 3 if d >= 0 else [loss[-1], float(t.params.w[i, -1]), float(t.params.b[i, -1])]  # "—" past a divergence
        out.append(dict(steps=settled_steps(loss) if d < 0 else -1, diverged=d, **dict(zip(("loss", "w", "b"), final))))
    batch = []
    for mode, sampling in [("sgd", "replacement"), ("minibatch", "shuffle")]:
        lr, epochs = settings("gd", mode)
        c = jaxgd.sweep(problem, "gd", lr=lr, epochs=epochs, batch_size=4, sampling=sampling, seed=np.arange(100),
                        rng="numpy", final_only=True)
        w, b, loss = (np.asarray(a, np.float64) for a in (c.params.w[:, -1], c.params.b[:, -1], c.loss[:, -1]))
        batch.append(dict(spread=np.sqrt(np.mean((w - w.mean()) ** 2 + (b - b.mean()) ** 2)), loss=loss.mean(), w=w.mean(),
                          b=b.mean(), diverged=int((np.asarray(c.diverged_at) >= 0).sum())))
    return out, batch


HASHES = [h.format(lr=f"{LRS[i]:.4g}") for h, _, i, _ in VIEWS]


BAD = "opt=%3Cb%3E&lr=abc&beta=7&batch=3.5&step=-4&card=z"  # every value unknown or malformed


@pytest.fixture(scope="module")
def page(browser, cli_report):
    """The report at 1400 px, loaded with a malformed address (the views come by hashchange)."""
    pg = _open(browser, cli_report / "report.html", 1400, f"#{BAD}")
    yield pg
    pg.close()


def _readouts_are(got, want):
    for key in ("steps", "loss", "w", "b", "diverged"):
        assert _same(got[key], want[key]), (key, got[key], want[key])


def test_a_malformed_hash_at_load_gives_the_default_view(page, problem):
    """The default view: gd at the stop nearest a third of 2/λmax (the what-if's start), the player at its end, no
    card, the address left as given; its readouts against jaxgd.run."""
    limit = 2 / float(theory(problem).eigenvalues[-1])
    lr = LRS[np.argmin(np.abs(np.log(LRS / (limit / 3))))]
    t = jaxgd.run(problem, "gd", lr=lr, epochs=T)
    loss = np.asarray(t.loss, np.float64)
    assert page.evaluate(CELLS, "ex-path")["setting"] == f"gd, lr {lr:.4g}"
    _readouts_are(page.evaluate(CELLS, "ex-path"), dict(steps=settled_steps(loss), loss=loss[-1], w=float(t.params.w[-1]),
                                                         b=float(t.params.b[-1]), diverged=int(t.diverged_at)))
    assert page.input_value("#pos") == page.get_attribute("#pos", "max") and page.input_value("#ex-batch-size") == "1"
    assert page.evaluate("document.querySelectorAll('#exercises .card.current').length") == 0
    assert page.evaluate("location.hash") == f"#{BAD}" and page.errors == []


def test_five_hashes_give_the_readouts_python_computes(page, python_side):
    runs, batch = python_side
    for k, (h, (_, opt, i, beta)) in enumerate(zip(HASHES, VIEWS)):
        setting = f"{opt}, lr {LRS[i]:.4g}" + (f", β {beta}" if beta else "")
        page.evaluate(f"location.hash = '{h}'")
        page.wait_for_function(f"document.querySelector('#ex-path [data-k=setting]').textContent === '{setting}'", timeout=30_000)
        _readouts_are(page.evaluate(CELLS, "ex-path"), runs[k])
        card = h.split("&")[0].split("=")[1]
        assert page.evaluate("[...document.querySelectorAll('#exercises .card.current')].map((c) => c.id)") == [f"card-{card}"]
        step = dict(p.split("=") for p in h.split("&")).get("step", page.get_attribute("#pos", "max"))
        assert page.input_value("#pos") == step
    assert [r["steps"] for r in runs[:4]] == [9, -1, -1, -1] and runs[2]["diverged"] == 12  # what each card asks about
    assert page.input_value("#ex-batch-size") == "4"
    for m, want in enumerate(batch):
        got = page.evaluate(CELLS, f"ex-batch-{m}")
        for key in ("spread", "loss", "w", "b"):
            assert _same(got[key], want[key]), (m, key, got[key], want[key])
        assert got["diverged"] == f"{want['diverged']} of 100"
    assert page.errors == []


def test_controls_write_the_hash_and_a_malformed_one_is_ignored(page):
    page.evaluate(f"location.hash = '#{BAD}'")
    page.wait_for_function("document.querySelectorAll('#exercises .card.current').length === 0", timeout=30_000)
    default = page.evaluate(CELLS, "ex-path")
    assert default["setting"].startswith("gd, lr ") and page.input_value("#pos") == page.get_attribute("#pos", "max")
    page.select_option("#whatif-opt", "1")  # momentum: the address follows
    page.wait_for_function("location.hash.startsWith('#opt=momentum&')", timeout=30_000)
    q = dict(p.split("=") for p in page.evaluate("location.hash")[1:].split("&"))
    assert set(q) == {"opt", "lr", "beta", "batch", "step"} and q["beta"] == "0.9"
    assert page.get_attribute("#ex-link", "href") == page.evaluate("location.hash")
    # a card's answer button: its view, the card marked, the address complete
    page.evaluate("document.querySelector('#card-c details button').click()")
    page.wait_for_function("location.hash.includes('card=c')", timeout=30_000)
    assert page.evaluate(CELLS, "ex-path")["setting"] == f"gd, lr {LRS[16]:.4g}"
    page.evaluate("location.hash = '#card=a&opt=nothing&lr=1e9&step=1e3x'")  # every value unknown but the card
    page.wait_for_function("document.querySelector('#card-a').classList.contains('current')", timeout=30_000)
    assert page.evaluate(CELLS, "ex-path") == default and page.input_value("#pos") == page.get_attribute("#pos", "max")
    assert page.errors == []
