"""Offline data sets: scikit-learn's four, standardised; the user's CSV tables, good and bad."""

from __future__ import annotations

import re
import sys

import numpy as np
import pytest

from jaxgd.datasets import DATASETS, MAX_CLASSES, Dataset, load, load_csv_table


@pytest.fixture(scope="module")
def sets() -> dict[str, Dataset]:
    return {name: load(name) for name in DATASETS}


@pytest.mark.parametrize("name,shape,task,num_classes", [
    ("digits", (1797, 64), "classification", 10),
    ("iris", (150, 4), "classification", 3),
    ("breast_cancer", (569, 30), "classification", 2),
    ("diabetes", (442, 10), "regression", None),
])
def test_sklearn_sets(sets, name, shape, task, num_classes):
    ds = sets[name]
    assert (ds.name, ds.x.shape, ds.task, ds.num_classes) == (name, shape, task, num_classes)
    assert ds.x.dtype == np.float64 and ds.y.shape == shape[:1] and len(ds.feature_names) == shape[1]
    assert ds.out_dim == (num_classes or 1)
    if task == "classification":
        assert ds.y.dtype == np.int32 and len(ds.classes) == num_classes
        np.testing.assert_array_equal(np.unique(ds.y), np.arange(num_classes))
        assert ds.y_mean is None and ds.y_std is None
    else:
        assert ds.y.dtype == np.float64 and ds.classes is None
        np.testing.assert_allclose([ds.y.mean(), ds.y.std()], [0, 1], atol=1e-12)


@pytest.mark.parametrize("name", DATASETS)
def test_standardised_and_invertible(sets, name):
    import sklearn.datasets as skd

    ds = sets[name]
    const = np.all(ds.x == 0, axis=0)
    assert const.sum() == (3 if name == "digits" else 0)  # digits: 3 pixels are always 0
    np.testing.assert_allclose(ds.x.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(ds.x.std(axis=0), np.where(const, 0.0, 1.0), atol=1e-12)
    assert np.all(ds.x_std[const] == 1)
    bunch = getattr(skd, f"load_{name}")(**({"scaled": False} if name == "diabetes" else {}))
    np.testing.assert_allclose(ds.x * ds.x_std + ds.x_mean, bunch.data, rtol=1e-12, atol=1e-12)
    if ds.task == "regression":
        np.testing.assert_allclose(ds.y * ds.y_std + ds.y_mean, bunch.target, rtol=1e-12)
    else:
        np.testing.assert_array_equal(ds.y, bunch.target)


def test_deterministic(sets):
    again = load("iris")
    for a, b in zip(again, sets["iris"]):
        assert np.array_equal(a, b) if isinstance(a, np.ndarray) else a == b


def test_bad_name_and_missing_sklearn(monkeypatch):
    with pytest.raises(ValueError, match="name must be one of 'digits', 'iris'"):
        load("mnist")
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)  # makes the import fail
    with pytest.raises(ImportError, match=re.escape("pip install 'jaxgd[data]'")):
        load("iris")


def _write(tmp_path, text: str, name: str = "t.csv"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


INTS_101 = "a,n\n" + "".join(f"{i % 7},{i}\n" for i in range(MAX_CLASSES + 1))

# text, keyword arguments, expected: task, feature names, target name, raw x, raw y (class labels for classification)
GOOD = [
    ("header, target by name", "a,y,b\n1,0,2\n2,1,3\n3,0,5\n", dict(target="y"),
     "classification", ("a", "b"), "y", [[1, 2], [2, 3], [3, 5]], [0, 1, 0]),
    ("no header: last column", "1,2,3.5\n2,3,4.25\n4,1,0.5\n", {},
     "regression", ("x1", "x2"), "y", [[1, 2], [2, 3], [4, 1]], [3.5, 4.25, 0.5]),
    ("header found without target", "f,g,label\n1,2,3\n2,3,4.5\n", {},
     "regression", ("f", "g"), "label", [[1, 2], [2, 3]], [3, 4.5]),
    ("integer labels mapped in sorted order", "x,c\n0.5,9\n1.5,2.0\n2.5,5\n3.5,2\n", {},
     "classification", ("x",), "c", [[0.5], [1.5], [2.5], [3.5]], [9, 2, 5, 2]),
    ("forced regression", "x,c\n0,1\n1,2\n2,1\n", dict(task="regression"),
     "regression", ("x",), "c", [[0], [1], [2]], [1, 2, 1]),
    ("forced classification", "x,c\n0,-1\n1,3\n", dict(task="classification"),
     "classification", ("x",), "c", [[0], [1]], [-1, 3]),
    ("BOM, spaces, blank lines, quotes", "\ufeff t ,\"u\" \n\n 1 , 2 \n,\n3,4\n", dict(target="t"),
     "classification", ("u",), "t", [[2], [4]], [1, 3]),
    ("more integer values than MAX_CLASSES", INTS_101, {},
     "regression", ("a",), "n", [[i % 7] for i in range(101)], list(range(101))),
    ("constant feature", "k,x,y\n7,1,0\n7,2,1\n7,4,1\n", {},
     "classification", ("k", "x"), "y", [[7, 1], [7, 2], [7, 4]], [0, 1, 1]),
]


@pytest.mark.parametrize("text,kwargs,task,features,target,raw_x,raw_y", [g[1:] for g in GOOD],
                         ids=[g[0] for g in GOOD])
def test_good_csv(tmp_path, text, kwargs, task, features, target, raw_x, raw_y):
    ds = load_csv_table(_write(tmp_path, text), **kwargs)
    assert (ds.task, ds.feature_names, ds.target_name, ds.name) == (task, features, target, "t.csv")
    raw_x = np.array(raw_x, np.float64)
    np.testing.assert_allclose(ds.x * ds.x_std + ds.x_mean, raw_x, rtol=1e-14, atol=1e-14)
    const = np.all(raw_x == raw_x[:1], axis=0)
    np.testing.assert_array_equal(ds.x[:, const], 0.0)
    np.testing.assert_allclose(ds.x[:, ~const].std(axis=0), 1, rtol=1e-12)
    if task == "classification":
        assert ds.y.dtype == np.int32 and ds.classes == tuple(sorted(set(raw_y)))
        assert ds.num_classes == len(ds.classes)
        np.testing.assert_array_equal(np.array(ds.classes)[ds.y], raw_y)
        np.testing.assert_array_equal(ds.y, np.searchsorted(sorted(set(raw_y)), raw_y))
    else:
        assert ds.y.dtype == np.float64 and ds.classes is None and ds.num_classes is None
        np.testing.assert_allclose(ds.y * ds.y_std + ds.y_mean, raw_y, rtol=1e-14, atol=1e-14)


# text (None: no such file), keyword arguments, exception, message fragment
BAD = [
    (None, {}, ValueError, "does not exist"),
    ("", {}, ValueError, "is empty"),
    (" \n,\n\n", {}, ValueError, "is empty"),
    (b"\xff\xfe1,2\n", {}, ValueError, "cannot be read"),
    ("a,y\n", {}, ValueError, "has 0 data row(s); it needs at least 2"),
    ("a,y\n1,2\n", {}, ValueError, "has 1 data row(s); it needs at least 2"),
    ("y\n1\n2\n", {}, ValueError, "has 1 column; it needs at least 2"),
    ("a,b,y\n1,2,0\n3,abc,1\n", {}, ValueError, "row 3, column 2 ('b'): 'abc' is not a number"),
    ("1,2,0\n3,abc,1\n", {}, ValueError, "row 2, column 2 ('x2'): 'abc' is not a number"),
    ("a,y\n1,0\n\n,1\n", {}, ValueError, "row 4, column 1 ('a') is empty"),
    ("a,y\n1,0\n2,zero\n", {}, ValueError, "row 3, column 2 ('y'): 'zero' is not a number"),
    ("a,b\n1,0\n2,1\n", dict(target="y"), ValueError, "target 'y' is not a column of data file"),
    ("a,b\n1,0\n2,1\n", dict(target="y"), ValueError, "(with target given, the first row is the header); "
                                                      "columns found: 'a', 'b'"),
    ("a,y\n1,0\nnan,1\n", {}, ValueError, "row 3, column 1 ('a'): 'nan' is not finite"),
    ("a,y\n1,0\n2,-inf\n", {}, ValueError, "row 3, column 2 ('y'): '-inf' is not finite"),
    ("a,b,y\n1,2,0\n3,1\n", {}, ValueError, "row 3 has 2 column(s), but the header has 3"),
    ("1,2\n3,4,5\n", {}, ValueError, "row 2 has 3 column(s), but the first row has 2"),
    ("a,y\n1,4\n2,4\n", dict(task="classification"), ValueError, "target column 'y' has only one class (4)"),
    ("a,y\n1,4.0\n2,4\n", {}, ValueError, "target column 'y' has only one class (4)"),
    ("a,y\n1,0.5\n2,0.5\n", {}, ValueError, "target column 'y' is constant (0.5)"),
    ("a,b,a\n1,2,3\n4,5,6\n", {}, ValueError, "the header has the duplicate column name 'a' (columns 1 and 3)"),
    ("a,,y\n1,2,3\n4,5,6\n", {}, ValueError, "header column 2 has no name"),
    ("a,y\n1,0\n2,2.5\n", dict(task="classification"), ValueError,
     "task 'classification' needs integer targets, but data file"),
    ("a,y\n1,0\n2,2.5\n", dict(task="classification"), ValueError, "has 2.5 in row 3, column 'y'"),
    ("a,y\n1,0\n2,1\n", dict(task="ordinal"), ValueError, "task must be one of 'regression', 'classification'"),
    ("a,y\n1,0\n2,1\n", dict(target=1), TypeError, "target must be a column name"),
]


@pytest.mark.parametrize("text,kwargs,exc,fragment", BAD, ids=[b[3] for b in BAD])
def test_bad_csv(tmp_path, text, kwargs, exc, fragment):
    if text is None:
        path = tmp_path / "missing.csv"
    elif isinstance(text, bytes):
        path = tmp_path / "t.csv"
        path.write_bytes(text)
    else:
        path = _write(tmp_path, text)
    with pytest.raises(exc, match=re.escape(fragment)) as info:
        load_csv_table(path, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message or "task must be" in message or "target must be" in message
    if isinstance(info.value, ValueError) and message.startswith("data "):
        assert info.value.name == "data" and message.startswith(f"data file {str(path)!r}")


def test_a_folder_is_not_a_file(tmp_path):
    with pytest.raises(ValueError, match="is a folder"):
        load_csv_table(tmp_path)


def test_a_feature_near_the_float64_limit_loads_without_warnings(tmp_path):
    """Issue 21: ±1e308 in a CSV's feature (or regression target) printed NumPy's overflow warnings and
    then failed ("item 0 must be finite"); now it is standardised in units of its largest value."""
    import warnings

    f = tmp_path / "big.csv"
    f.write_text("a,b,y\n1e308,2,1e308\n1e308,3,0\n-1e308,1,-1e308\n1,4,0.5\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any RuntimeWarning fails
        ds = load_csv_table(f, task="regression")
    assert np.isfinite(ds.x).all() and np.isfinite(ds.y).all()
    # column a is (1, 1, -1, 1e-308) × 1e308: mean 1/4, population std sqrt(11)/4 in those units
    np.testing.assert_allclose(ds.x[:, 0], (np.array([1, 1, -1, 0]) - 0.25) / (np.sqrt(11) / 4), rtol=1e-14)
    np.testing.assert_allclose([ds.x_mean[0], ds.x_std[0]], [0.25e308, np.sqrt(11) / 4 * 1e308], rtol=1e-14)
    np.testing.assert_allclose(ds.x[:, 1], (np.array([2, 3, 1, 4]) - 2.5) / np.sqrt(1.25), rtol=1e-14)
    np.testing.assert_allclose(ds.y, (np.array([1, 0, -1, 0]) - 0) / np.sqrt(0.5), atol=1e-15)


def test_an_unknown_name_lists_the_data_sets(tmp_path, monkeypatch):
    from jaxgd._checks import ArgumentError
    from jaxgd.datasets import load_data

    monkeypatch.chdir(tmp_path)
    with pytest.raises(ArgumentError, match=r"^data file 'mnist' does not exist, and no data set has that name "
                                            r"\(the data sets: digits, iris, diabetes, breast_cancer\)$"):
        load_data("mnist")
    (tmp_path / "t.csv").write_text("a,y\n1,0\n2,1\n")
    assert load_data("t.csv").x.shape == (2, 1)
    with pytest.raises(ArgumentError, match="^target applies to a CSV file"):
        load_data("iris", target="y")
