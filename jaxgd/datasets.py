"""Offline data sets for the models: scikit-learn's bundled sets and the user's CSV tables.

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

from jaxgd.data import read_csv_rows

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
    mean = a.mean(axis=0)
    std = a.std(axis=0)
    const = np.all(a == a[:1], axis=0)
    std = np.where(const, 1.0, std)
    z = np.where(const, 0.0, (a - mean) / std)
    return z, mean, std


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
