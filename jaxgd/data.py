"""Data and sample orders.

The order in which examples are seen is data, built before the run and fed to the scan:
an :class:`Order` holds, for each of ``T`` steps, ``B`` example indices and a mask that is
False on the padding of a ragged last minibatch. The same order can then be given to every
optimizer, and a test can feed in the notebook's own ``np.random`` stream.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

SAMPLINGS = ("shuffle", "replacement")
RNGS = ("jax", "numpy")

# Purposes folded into a seed (its JAX key, or the noise's NumPy seed), so that data noise and
# sample order never share a stream.
_NOISE, _ORDER = 0, 1


class Order(NamedTuple):
    """Which examples each step sees: ``idx`` int32 ``(T, B)``, ``mask`` bool ``(T, B)`` (NumPy or JAX arrays)."""

    idx: jax.Array
    mask: jax.Array


def notebook_data(noise: float = 0.0, seed: int = 0, dtype=None) -> tuple[jax.Array, jax.Array]:
    """The notebook's data: ``x = linspace(-5, 5, 51)``, ``y = 2x + 3``.

    With ``noise > 0``, ``y`` gets ``noise`` times i.i.d. standard normals added, drawn on the
    host by :func:`noise_normals` (NumPy, float64, then rounded to ``dtype``: reproducible, no
    compiled program, and a stream of its own). ``dtype`` defaults to JAX's default float
    (float64 under x64).
    Returns ``(x, y)``, each of shape ``(51,)``. A noise whose ``y`` overflows ``dtype`` is an
    ``ArgumentError`` named ``"noise"``.
    """
    from jaxgd._checks import check_dtype, check_nonneg_number, check_seed

    noise = check_nonneg_number("noise", noise)
    seed = check_seed(seed)
    dtype = check_dtype(dtype)
    x_np = np.linspace(-5, 5, num=51)  # NumPy's float64 points, exactly the notebook's
    x_np, y_np = x_np.astype(dtype), (2 * x_np + 3).astype(dtype)  # rounded to the dtype on the host
    if noise > 0:
        with np.errstate(over="ignore"):  # y + noise · N(0, 1): a product, then a sum
            y_np = y_np + np.asarray(noise, dtype) * noise_normals(seed, x_np.size).astype(dtype)
        if not np.all(np.isfinite(y_np)):
            from jaxgd._checks import ArgumentError

            raise ArgumentError("noise", f"{noise!r} is too large for {jnp.dtype(dtype).name}: the noisy y "
                                         "overflows; use a smaller noise")
    return jax.device_put(x_np), jax.device_put(y_np)


def noise_normals(seed: int, n: int) -> np.ndarray:
    """``n`` standard normals (float64) for the data noise of ``seed``:
    ``np.random.default_rng([0, seed]).standard_normal(n)``. The ``0`` sets this stream apart
    from the sample orders of the same seed (a JAX key, or ``np.random.RandomState(seed)``)."""
    return np.random.default_rng([_NOISE, int(seed)]).standard_normal(n)


def steps_per_epoch(m: int, batch_size: int) -> int:
    """``ceil(m / batch_size)``: the last minibatch of an epoch may be ragged."""
    return math.ceil(m / batch_size)


def order_key(seed) -> jax.Array:
    """The key a run's sample order is drawn from (``seed`` may be traced)."""
    return jax.random.fold_in(jax.random.key(seed), _ORDER)


def epoch_order(key: jax.Array, epoch, m: int, batch_size: int, sampling: str) -> Order:
    """One epoch of :func:`jax_order`: ``(ceil(m / batch_size), batch_size)``, from ``fold_in(key, epoch)``.

    ``epoch`` may be traced, so a scan can draw each epoch's order when it starts.
    """
    spe = steps_per_epoch(m, batch_size)
    k = jax.random.fold_in(key, epoch)
    if sampling == "replacement":
        idx = jax.random.randint(k, (spe, batch_size), 0, m, dtype=jnp.int32)
        return Order(idx, jnp.ones(idx.shape, bool))
    return _cut(jax.random.permutation(k, m)[None].astype(jnp.int32), spe, batch_size, jnp)


class Draw(NamedTuple):
    """How a run of a sweep whose runs differ in batch size draws its order inside the scan (one
    value per run): ``seed`` (uint32; the key is :func:`order_key` of it), ``batch`` (its batch size,
    ≤ the sweep's largest), ``epochs`` (its passes; later epochs are skipped) and ``replace``
    (sampling "replacement")."""

    seed: jax.Array
    batch: jax.Array
    epochs: jax.Array
    replace: jax.Array


def varied_epoch_order(key: jax.Array, epoch, m: int, width: int, steps: int, batch, replace) -> Order:
    """:func:`epoch_order` for a traced ``batch`` (≤ ``width``) and sampling, as ``(steps, width)``
    with ``steps ≥ ceil(m / batch)``: lanes ``< batch`` of the first ``ceil(m / batch)`` steps hold
    exactly the indices and mask of ``epoch_order(key, epoch, m, batch, sampling)``; every other
    entry is masked (index 0). (``jax.random``'s draws for a shape are a prefix of those for a
    longer one, so the ``m + width`` draws here begin with ``epoch_order``'s.)
    """
    k = jax.random.fold_in(key, epoch)
    j, lane = jnp.arange(steps)[:, None], jnp.arange(width)[None, :]
    pos = j * batch + lane
    on = lane < batch
    spe = (m + batch - 1) // batch
    draws = jax.random.randint(k, (m + width,), 0, m, dtype=jnp.int32)
    perm = jax.random.permutation(k, m).astype(jnp.int32)
    shuffle_mask = on & (pos < m)
    repl_mask = on & (j < spe)
    idx = jnp.where(replace, jnp.where(repl_mask, draws[jnp.minimum(pos, m + width - 1)], 0),
                    jnp.where(shuffle_mask, perm[jnp.minimum(pos, m - 1)], 0))
    return Order(idx, jnp.where(replace, repl_mask, shuffle_mask))


def jax_order(key: jax.Array, m: int, batch_size: int, epochs: int, sampling: str) -> Order:
    """A sample order from ``jax.random``; pure, so it can be vmapped over keys.

    ``shuffle``: each epoch a fresh permutation of ``range(m)`` cut into
    ``ceil(m / batch_size)`` consecutive batches, the last one padded and masked.
    ``replacement``: every step draws ``batch_size`` indices independently and uniformly.
    Epoch ``e`` draws from ``fold_in(key, e)`` (:func:`epoch_order`), so a longer run extends
    a shorter one's order.
    """
    per_epoch = jax.vmap(lambda e: epoch_order(key, e, m, batch_size, sampling))(jnp.arange(epochs))
    return Order(*(a.reshape(-1, batch_size) for a in per_epoch))


def numpy_order(seed: int, m: int, batch_size: int, epochs: int, sampling: str) -> Order:
    """The notebook's own stream: ``np.random.seed(seed)``, then per epoch
    ``np.random.permutation(m)`` (shuffle) or per draw ``np.random.randint(0, m)``
    (replacement, one call per index, as the notebook's SGD loop does).

    Uses a private ``RandomState(seed)`` (the same stream) and leaves NumPy's global one alone.
    """
    rs = np.random.RandomState(seed)
    spe = steps_per_epoch(m, batch_size)
    if sampling == "replacement":
        n = epochs * spe * batch_size
        # one call for n draws: the same stream as n calls (tests/test_run.py checks it against the notebook's loop)
        idx = rs.randint(0, m, size=n).astype(np.int32).reshape(-1, batch_size)
        return Order(idx, np.ones(idx.shape, bool))
    perms = np.stack([rs.permutation(m) for _ in range(epochs)]).astype(np.int32)
    return _cut(perms, spe, batch_size, np)


def _cut(perms, spe: int, batch_size: int, xp) -> Order:
    """``(epochs, m)`` permutations → an Order of ``(epochs * spe, batch_size)``, padding masked."""
    epochs, m = perms.shape
    pad = spe * batch_size - m
    idx = xp.concatenate([perms, xp.zeros((epochs, pad), perms.dtype)], axis=1)
    mask = xp.concatenate([xp.ones((epochs, m), bool), xp.zeros((epochs, pad), bool)], axis=1)
    return Order(idx.reshape(-1, batch_size), mask.reshape(-1, batch_size))


def sample_order(m: int, batch_size: int, epochs: int, sampling: str, rng: str, seed: int) -> Order:
    """The order of a minibatch run: from ``jax.random`` (rng="jax") or NumPy (rng="numpy")."""
    if rng == "numpy":
        return numpy_order(seed, m, batch_size, epochs, sampling)
    return jax_order(order_key(seed), m, batch_size, epochs, sampling)


SEPARATORS = {",": "comma", "\t": "tab", ";": "semicolon"}


class CSVRows(NamedTuple):
    """A CSV file's non-blank rows as ``(line number, stripped cells)``, and the separator found."""

    rows: list
    separator: str


def read_csv(path) -> CSVRows:
    """Read a CSV file once (``"-"``: stdin; at most :data:`jaxgd._checks.MAX_DATA_BYTES`; a
    device such as ``/dev/zero`` refused), dropping a UTF-8 byte-order mark. The separator is the
    one of comma, tab and semicolon that the first non-blank line holds most of (comma on a tie
    or none). When every row ends in an empty field (a separator at the end of each line), that
    field is dropped. Raises ``ArgumentError`` named ``"data"`` for a missing, unreadable, non-UTF-8
    or empty file, or a folder."""
    import csv
    import io

    from jaxgd._checks import MAX_DATA_BYTES, ArgumentError, read_file

    where = "stdin" if path == "-" else f"file {str(path)!r}"
    raw = read_file("data", path, MAX_DATA_BYTES)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ArgumentError("data", f"{where} cannot be read: it is not UTF-8 text (byte {e.start + 1})") from None
    first = next((line for line in text.splitlines() if line.strip()), "")
    sep = max(SEPARATORS, key=lambda c: (first.count(c), c == ",", c == "\t"))
    try:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
        rows = [(reader.line_num, [c.strip() for c in r]) for r in reader if any(c.strip() for c in r)]
    except csv.Error as e:
        raise ArgumentError("data", f"{where} cannot be read: {e}") from None
    if not rows:
        raise ArgumentError("data", f"{where} is empty")
    if all(len(r) > 1 and r[-1] == "" for _, r in rows):  # "1,2," on every line
        rows = [(n, r[:-1]) for n, r in rows]
    return CSVRows(rows, sep)


def read_csv_rows(path) -> list[tuple[int, list[str]]]:
    """The non-blank rows of a CSV file as ``(line number, stripped cells)``: :func:`read_csv`'s rows."""
    return read_csv(path).rows


class XYData(NamedTuple):
    """The two columns of a data file; ``header`` the first row when it was read as a header (else None)."""

    x: np.ndarray
    y: np.ndarray
    header: tuple | None
    separator: str


def read_xy(path) -> XYData:
    """Two numeric columns ``x, y`` from a CSV file (:func:`read_csv`; a header row is optional:
    the first row is a header when it is not two numbers, and a row of numbers is never dropped).

    Raises ``ArgumentError`` named ``"data"`` naming the file and the row for a missing, empty or
    non-numeric file, a row without exactly two columns (saying which separator was found), or a
    value that is not finite.
    """
    from jaxgd._checks import ArgumentError

    fast = _read_xy_fast(path)
    if fast is not None:
        return fast
    name = "stdin" if path == "-" else f"file {str(path)!r}"
    rows, sep = read_csv(path)
    rows = [r for _, r in rows]

    def numbers(r):
        try:
            return [float(c) for c in r]
        except ValueError:
            return None

    start = 1 if numbers(rows[0]) is None else 0  # a header row
    if start == len(rows):
        raise ArgumentError("data", f"{name} has a header but no data rows")
    xs, ys = [], []
    for i, r in enumerate(rows[start:], start=start + 1):
        if len(r) != 2:
            raise ArgumentError("data", f"{name}: row {i} has {len(r)} column(s); it needs two, x and y "
                                        f"(read as {SEPARATORS[sep]}-separated)")
        v = numbers(r)
        if v is None:
            raise ArgumentError("data", f"{name}: row {i} is not two numbers: {sep.join(r)!r}")
        if not all(np.isfinite(v)):
            raise ArgumentError("data", f"{name}: row {i} has a value that is not finite: {sep.join(r)!r}")
        xs.append(v[0])
        ys.append(v[1])
    return XYData(np.array(xs), np.array(ys), tuple(rows[0]) if start else None, sep)


def _read_xy_fast(path) -> XYData | None:
    """The common case at C speed (``np.loadtxt``: a million rows in about half a second, where
    the row-by-row reader takes five): two numeric columns, one separator, an optional header
    on the first line, every value finite. None for anything else, which :func:`read_xy`'s
    row-by-row reader then reads — or explains."""
    import io
    import warnings

    from jaxgd._checks import MAX_DATA_BYTES, read_file

    raw = read_file("data", path, MAX_DATA_BYTES)  # its errors are the row-by-row reader's too (and a FIFO
    try:                                            # read here is kept for it: it cannot be read twice)
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        return None
    first = lines[0]
    sep = max(SEPARATORS, key=lambda c: (first.count(c), c == ",", c == "\t"))
    cells = [c.strip() for c in first.split(sep)]
    try:
        [float(c) for c in cells]
        header = None
    except ValueError:
        header = tuple(cells)
    try:
        with warnings.catch_warnings():  # "input contained no data": the row-by-row reader says it better
            warnings.simplefilter("ignore")
            a = np.loadtxt(io.StringIO(text), delimiter=sep, skiprows=1 if header else 0, comments=None, ndmin=2,
                           dtype=np.float64)
    except ValueError:
        return None
    if a.ndim != 2 or a.shape[1] != 2 or a.shape[0] == 0 or not np.all(np.isfinite(a)) or len(cells) != 2:
        return None
    return XYData(np.ascontiguousarray(a[:, 0]), np.ascontiguousarray(a[:, 1]), header, sep)


def load_csv(path) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` of :func:`read_xy`."""
    f = read_xy(path)
    return f.x, f.y
