"""Offline data sets: scikit-learn's bundled sets, the user's CSV tables, and CSV reading itself
(:func:`read_csv`, :func:`read_xy` for two columns ``x, y``, :func:`load_csv`).

Every loader returns a :class:`Dataset` of NumPy arrays with a leading axis of ``m``
examples: ``x`` float64 ``(m, d)``, standardised per feature, and ``y`` of shape ``(m,)``:
int32 labels ``0..K-1`` for classification, a standardised float64 target for regression.
Standardising uses the population std (``ddof=0``); a constant feature becomes exactly 0.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple

import numpy as np

DATASETS = ("digits", "iris", "diabetes", "breast_cancer")
TASKS = ("regression", "classification")
MAX_CLASSES = 100  # most distinct integer targets a CSV may have for its task to be inferred as classification


class Dataset(NamedTuple):
    """A data set ready for a model; ``raw = standardised * std + mean`` undoes the scaling.

    ``x``: float64 ``(m, d)``, ``(raw - x_mean) / x_std`` per feature, where ``x_std`` is the
    population std, set to 1 for a constant feature (which so becomes 0).
    ``y``: ``(m,)``; classification: int32 labels ``0..K-1``, label ``k`` standing for
    ``classes[k]``; regression: float64 ``(raw - y_mean) / y_std``.
    ``task``: ``"classification"`` or ``"regression"``. ``num_classes``: ``K``, or None for
    regression. ``classes``: the ``K`` original labels (class names for scikit-learn's sets,
    the integers of a CSV's target), or None. ``x_mean``, ``x_std``: float64 ``(d,)``;
    ``y_mean``, ``y_std``: floats for regression, None for classification.
    """

    x: np.ndarray
    y: np.ndarray
    task: str
    num_classes: int | None
    name: str
    feature_names: tuple[str, ...]
    target_name: str
    classes: tuple | None
    x_mean: np.ndarray
    x_std: np.ndarray
    y_mean: float | None
    y_std: float | None

    @property
    def out_dim(self) -> int:
        """The model's output size: ``num_classes`` logits, or 1 for regression."""
        return 1 if self.num_classes is None else self.num_classes


def standardise(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(z, mean, std)`` with ``z = (a - mean) / std`` per column of ``a`` ``(m, d)``.

    ``std`` is the population std, replaced by 1 for a constant column (all values equal),
    whose ``z`` is then exactly 0 rather than rounding noise divided by ~0.
    """
    a = np.asarray(a, dtype=np.float64)
    const = np.all(a == a[:1], axis=0)
    big = np.max(np.abs(a), axis=0, initial=0.0)
    scale = np.where(big > 1e100, big, 1.0)  # a column with values past 1e100 in units of its largest: its sums
    u = a / scale  # and squares would overflow (NumPy's warnings); every other column as it is
    mean, std = u.mean(axis=0), u.std(axis=0)
    z = np.where(const, 0.0, (u - mean) / np.where(const, 1.0, std))
    return z, mean * scale, np.where(const, 1.0, std * scale)


# (loader, target name, keyword arguments) for scikit-learn's bundled sets.
_SKLEARN = {
    "digits": ("load_digits", "digit", {}),
    "iris": ("load_iris", "species", {}),
    "breast_cancer": ("load_breast_cancer", "diagnosis", {}),
    "diabetes": ("load_diabetes", "disease progression after one year", {"scaled": False}),
}


def load(name: str) -> Dataset:
    """One of scikit-learn's offline sets (:data:`DATASETS`), standardised (see :class:`Dataset`).

    ``digits``: ``(1797, 64)``, 10 classes (3 pixels are constant, hence 0);
    ``iris``: ``(150, 4)``, 3 classes; ``breast_cancer``: ``(569, 30)``, 2 classes
    (0 = malignant); ``diabetes``: ``(442, 10)`` regression, from the raw (unscaled) features.
    Needs scikit-learn (``pip install 'jaxgd[data]'``); nothing is downloaded.
    """
    from jaxgd._checks import check_choice

    check_choice("name", name, DATASETS)
    try:
        import sklearn.datasets as skd
    except ImportError as e:
        raise ImportError(f"jaxgd.datasets.load({name!r}) needs scikit-learn: pip install 'jaxgd[data]'") from e
    loader, target_name, kwargs = _SKLEARN[name]
    bunch = getattr(skd, loader)(**kwargs)
    x, x_mean, x_std = standardise(bunch.data)
    features = tuple(str(f) for f in bunch.feature_names)
    if name == "diabetes":
        y, y_mean, y_std = standardise(np.asarray(bunch.target, np.float64)[:, None])
        return Dataset(x, y[:, 0], "regression", None, name, features, target_name, None,
                       x_mean, x_std, float(y_mean[0]), float(y_std[0]))
    classes = tuple(c.item() if isinstance(c, np.generic) else c for c in bunch.target_names)
    return Dataset(x, np.asarray(bunch.target, np.int32), "classification", len(classes), name,
                   features, target_name, classes, x_mean, x_std, None, None)


def load_data(data: str, target: str | None = None, task: str | None = None) -> Dataset:
    """A data set by name (:data:`DATASETS`, :func:`load`) or a CSV file (:func:`load_csv_table`).
    Raises ``ArgumentError`` named ``"target"`` for a target given with a named set, ``"task"`` for
    a task other than the named set's, and ``"data"`` for a path that is neither (the sets listed)."""
    import os

    from jaxgd._checks import ArgumentError

    if data in DATASETS:
        if target is not None:
            raise ArgumentError("target", f"applies to a CSV file, not to the data set {data!r}")
        ds = load(data)
        if task is not None and task != ds.task:
            raise ArgumentError("task", f"of {data!r} is {ds.task}, got {task!r}")
        return ds
    if isinstance(data, str) and data != "-" and not os.path.lexists(data):
        raise ArgumentError("data", f"file {data!r} does not exist, and no data set has that name (the data sets: "
                                    f"{', '.join(DATASETS)})")
    return load_csv_table(data, target=target, task=task)


def load_csv_table(path, target: str | None = None, task: str | None = None) -> Dataset:
    """A table of numeric features and one numeric target from a CSV file.

    With ``target`` (a column name) the first row must be a header; without it the LAST column
    is the target and the header is optional: a first row with a non-empty cell that is not a
    number is a header. Without a header the columns are named ``x1..xd`` and ``y``. Blank
    lines are skipped; a UTF-8 BOM is stripped; cells may carry spaces.

    ``task=None`` infers classification when every target value is an integer (``"2"`` and
    ``"2.0"`` alike) and there are at most :data:`MAX_CLASSES` distinct values, else regression.
    Classification maps the sorted distinct targets to labels ``0..K-1`` (kept in ``classes``).
    Both are then standardised as in :class:`Dataset`; ``name`` is the file's name.

    Raises ``ArgumentError`` (a ValueError; see ``jaxgd._checks``), one line naming the file
    and, where it applies, the row (the file's line number, header included) and column.
    Named ``"data"`` (text ``"data file 'PATH' ..."``) for: a missing, unreadable or empty
    file; a header with an empty or duplicate name; a row whose column count differs from the
    first row's; an empty, non-numeric or non-finite cell; fewer than 2 rows or columns; a
    single class; a constant regression target. Named ``"target"`` for a missing target
    column (the columns found listed), ``"task"`` for a bad task or non-integer targets with
    ``task="classification"``.
    """
    from jaxgd._checks import ArgumentError, ArgumentTypeError, check_choice

    if target is not None and not isinstance(target, str):
        raise ArgumentTypeError("target", f"must be a column name (a string) or None, got {target!r}")
    if task is not None:
        check_choice("task", task, TASKS)
    where = f"file {str(path)!r}"
    rows = read_csv_rows(path)  # read once

    first = rows[0][1]
    has_header = target is not None or any(c and _number(c) is None for c in first)
    ncol = len(first)
    if has_header:
        names = first
        for j, n in enumerate(names):
            if not n:
                raise ArgumentError("data", f"{where}: header column {j + 1} has no name")
            if names.index(n) != j:
                raise ArgumentError("data", f"{where}: the header has the duplicate column name {n!r} "
                                 f"(columns {names.index(n) + 1} and {j + 1})")
        rows = rows[1:]
    else:
        names = [f"x{j + 1}" for j in range(ncol - 1)] + ["y"]
    if ncol < 2:
        raise ArgumentError("data", f"{where} has {ncol} column; it needs at least 2: features and a target")
    if target is None:
        t = ncol - 1
    elif target in names:
        t = names.index(target)
    else:
        raise ArgumentError("target", f"{target!r} is not a column of data {where} (with target given, the "
                                      f"first row is the header); columns found: {', '.join(map(repr, names))}")

    values = np.empty((len(rows), ncol))
    for i, (line, r) in enumerate(rows):
        if len(r) != ncol:
            raise ArgumentError("data", f"{where}: row {line} has {len(r)} column(s), but the "
                             f"{'header' if has_header else 'first row'} has {ncol}")
        for j, c in enumerate(r):
            cell = f"{where}: row {line}, column {j + 1} ({names[j]!r})"
            if not c:
                raise ArgumentError("data", f"{cell} is empty")
            v = _number(c)
            if v is None:
                raise ArgumentError("data", f"{cell}: {c!r} is not a number")
            if not math.isfinite(v):
                raise ArgumentError("data", f"{cell}: {c!r} is not finite")
            values[i, j] = v
    if len(rows) < 2:
        raise ArgumentError("data", f"{where} has {len(rows)} data row(s); it needs at least 2")

    raw_y = values[:, t]
    lines = [line for line, _ in rows]
    integer = raw_y == np.round(raw_y)
    distinct = np.unique(raw_y)
    if task is None:
        task = "classification" if integer.all() and distinct.size <= MAX_CLASSES else "regression"
    elif task == "classification" and not integer.all():
        i = int(np.flatnonzero(~integer)[0])
        raise ArgumentError("task", f"'classification' needs integer targets, but data {where} has "
                                    f"{float(raw_y[i])!r} in row {lines[i]}, column {names[t]!r}")

    x, x_mean, x_std = standardise(np.delete(values, t, axis=1))
    features = tuple(n for j, n in enumerate(names) if j != t)
    name = Path(path).name
    if task == "classification":
        if distinct.size < 2:
            raise ArgumentError("data", f"{where}: target column {names[t]!r} has only one class "
                             f"({int(distinct[0])}); classification needs at least 2")
        y = np.searchsorted(distinct, raw_y).astype(np.int32)
        classes = tuple(int(c) for c in distinct)
        return Dataset(x, y, task, len(classes), name, features, names[t], classes, x_mean, x_std, None, None)
    if distinct.size < 2:
        raise ArgumentError("data", f"{where}: target column {names[t]!r} is constant ({float(raw_y[0])!r}); "
                         "regression needs at least 2 distinct values")
    y, y_mean, y_std = standardise(raw_y[:, None])
    return Dataset(x, y[:, 0], task, None, name, features, names[t], None, x_mean, x_std,
                   float(y_mean[0]), float(y_std[0]))


def _number(cell: str) -> float | None:
    """``float(cell)``, or None when the cell is not a number."""
    try:
        return float(cell)
    except ValueError:
        return None


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
