"""Your own data: --data FILE.csv for the regression, with clear errors for bad files."""

import io
import json
import os
import re
import sys
import threading

import numpy as np
import pytest

from jaxgd import _checks
from jaxgd._checks import ArgumentError
from jaxgd.datasets import load_csv, read_xy


def _write(tmp_path, text, name="d.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_load_with_and_without_header(tmp_path):
    x, y = load_csv(_write(tmp_path, "x,y\n0,1\n1,3\n2,5\n"))
    np.testing.assert_array_equal(x, [0, 1, 2]) and np.testing.assert_array_equal(y, [1, 3, 5])
    x2, y2 = load_csv(_write(tmp_path, "0,1\n1,3\n\n2,5\n", "e.csv"))
    np.testing.assert_array_equal(x2, x) and np.testing.assert_array_equal(y2, y)


@pytest.mark.parametrize("text,message", [
    (None, "does not exist"),
    ("", "is empty"),
    ("x,y\n", "has a header but no data rows"),
    ("1,2\na,b\n", "row 2 is not two numbers: 'a,b'"),
    ("1\n2\n", "row 1 has 1 column(s); it needs two"),
    ("1,2,3\n", "row 1 has 3 column(s)"),
    ("1,2\n3,nan\n", "row 2 has a value that is not finite"),
    ("1,inf\n", "row 1 has a value that is not finite"),
])
def test_bad_files(tmp_path, text, message):
    path = tmp_path / "missing.csv" if text is None else _write(tmp_path, text)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_csv(path)


def test_cli_run_and_report_on_a_data_file(tmp_path, cli):
    rng = np.random.default_rng(1)
    x = np.linspace(-2, 3, 20)
    y = -0.5 * x + 1.5 + rng.normal(0, 0.05, 20)
    path = tmp_path / "mine.csv"
    path.write_text("x,y\n" + "".join(f"{float(a)!r},{float(b)!r}\n" for a, b in zip(x, y)))
    code, out, err = cli(["run", "--data", str(path), "--lr", "0.1", "--epochs", "500", "--json", "-"])
    assert code == 0, err
    w_star, b_star = np.polyfit(x, y, 1)
    doc = json.loads(out)
    np.testing.assert_allclose([doc["final"]["w"], doc["final"]["b"]], [w_star, b_star], rtol=1e-8)
    outdir = tmp_path / "rep"
    code, out, err = cli(["report", "--data", str(path), "--optimizers", "gd,adam", "--grid", "21", "--no-png",
                           "--no-sweep", "--out", str(outdir)])
    assert code == 0, err
    res = json.loads((outdir / "results.json").read_text())
    assert res["config"]["data"] == str(path) and res["problem"]["name"] == "data"
    np.testing.assert_allclose(res["problem"]["minimum"], [w_star, b_star], rtol=1e-10)
    assert "least-squares line" in (outdir / "report.html").read_text()


SAME = "x,y\n0,1\n1,3\n2,5\n"  # what each of these files holds


@pytest.mark.parametrize("text", [
    "x\ty\n0\t1\n1\t3\n2\t5\n",  # tab-separated
    "x;y\n0;1\n1;3\n2;5\n",  # semicolon-separated
    "x,y,\n0,1,\n1,3,\n2,5,\n",  # a comma at the end of every line
    "\ufeffx,y\r\n0,1\r\n1,3\r\n2,5\r\n",  # a UTF-8 byte-order mark and CRLF
])
def test_separators_trailing_commas_and_a_bom(tmp_path, text):
    f = read_xy(_write(tmp_path, text))
    np.testing.assert_array_equal(f.x, [0, 1, 2]) and np.testing.assert_array_equal(f.y, [1, 3, 5])
    assert f.header == ("x", "y")


def test_a_numeric_first_row_is_never_taken_for_a_header(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf7,8\n0,1\n")
    f = read_xy(path)
    assert f.header is None and f.x.tolist() == [7, 0] and f.y.tolist() == [8, 1]


def test_the_cli_says_when_it_read_a_header(tmp_path, cli):
    code, out, err = cli(["run", "--data", _write(tmp_path, SAME), "--epochs", "1"])
    assert code == 0
    assert err == f"jaxgd: --data {str(tmp_path / 'd.csv')!r}: row 1 (x, y) read as a header; 3 rows of data, " \
                  "comma-separated\n"
    code, out, err = cli(["run", "--data", _write(tmp_path, "0,1\n1,3\n", "n.csv"), "--epochs", "1"])
    assert code == 0 and err == ""


@pytest.mark.parametrize("text,limit,message", [
    (b"\xff\xfe1,2\n", None, "is not UTF-8 text (byte 1)"),
    (b"1,2\n" * 10, 20, "has 40 bytes; the limit is 20"),
])
def test_undecodable_and_oversized_files(tmp_path, monkeypatch, text, limit, message):
    if limit:
        monkeypatch.setattr(_checks, "MAX_DATA_BYTES", limit)
    path = tmp_path / "d.csv"
    path.write_bytes(text)
    with pytest.raises(ArgumentError, match=re.escape(message)):
        load_csv(path)


def test_an_oversized_config_file(tmp_path, monkeypatch, cli):
    monkeypatch.setattr(_checks, "MAX_CONFIG_BYTES", 10)
    path = _write(tmp_path, "grid = 11\n# and a comment\n", "c.toml")
    code, out, err = cli(["report", "--config", path])
    assert code == 2 and "--config file" in err and "has 26 bytes; the limit is 10" in err


def test_stdin_is_read_once(tmp_path, monkeypatch, cli):
    monkeypatch.setattr(_checks, "_READ_ONCE", {})
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(SAME.encode())))
    assert load_csv("-")[0].tolist() == [0, 1, 2]
    assert load_csv("-")[1].tolist() == [1, 3, 5]  # the same bytes again, not an empty stream
    code, out, err = cli(["run", "--data", "-", "--epochs", "1", "--json", "-"])
    assert code == 0 and json.loads(out)["config"]["steps"] == 1
    assert err == "jaxgd: --data '-': row 1 (x, y) read as a header; 3 rows of data, comma-separated\n"
    monkeypatch.setattr(_checks, "_READ_ONCE", {})
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(SAME.encode())))
    code, out, err = cli(["report", "--data", "-", "--optimizers", "gd", "--epochs", "1", "--batch-size", "2",
                          "--grid", "5", "--no-sweep", "--out", tmp_path / "rep"])  # the report reads it twice
    assert code == 0, err
    np.testing.assert_allclose(json.loads((tmp_path / "rep" / "results.json").read_text())["problem"]["minimum"], [2, 1])


def test_a_fifo_is_read_once_with_the_size_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(_checks, "_READ_ONCE", {})
    for i, (text, limit) in enumerate(((SAME, None), ("1,2\n" * 10, 20))):
        fifo = tmp_path / f"p{i}.csv"  # (both kept: a new FIFO could get the old one's inode)
        os.mkfifo(fifo)
        writer = threading.Thread(target=lambda: _fill(fifo, text))
        writer.start()
        if limit is None:
            assert load_csv(fifo)[0].tolist() == [0, 1, 2]
            assert load_csv(fifo)[0].tolist() == [0, 1, 2]  # the writer is gone: the bytes read the first time
        else:
            monkeypatch.setattr(_checks, "MAX_DATA_BYTES", limit)
            with pytest.raises(ArgumentError, match="has more than 20 bytes, the limit"):
                load_csv(fifo)
        writer.join(timeout=30)


def _fill(fifo, text):
    try:
        with open(fifo, "w") as f:
            f.write(text)
    except BrokenPipeError:  # the reader stopped at its limit
        pass


def test_the_fast_reader_agrees_with_the_row_by_row_one(tmp_path, monkeypatch):
    """A plain two-column file is read by np.loadtxt; anything else by the row-by-row reader. Both
    give the same numbers and the same header."""
    from jaxgd import datasets as data

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=200), rng.normal(size=200)
    for sep, header in ((",", "x,y"), ("\t", None), (";", "a;b")):
        body = "\n".join(f"{a!r}{sep}{b!r}" for a, b in zip(x.tolist(), y.tolist()))
        path = tmp_path / "f.csv"
        path.write_text(("" if header is None else header + "\n") + body + "\n")
        fast = data._read_xy_fast(str(path))
        assert fast is not None
        monkeypatch.setattr(data, "_read_xy_fast", lambda p: None)
        slow = data.read_xy(str(path))
        monkeypatch.undo()
        np.testing.assert_array_equal(fast.x, slow.x)
        np.testing.assert_array_equal(fast.y, slow.y)
        assert fast.header == slow.header and fast.separator == slow.separator == sep
    path.write_text("1,2,\n3,4,\n")  # a trailing separator: the row-by-row reader's case
    assert data._read_xy_fast(str(path)) is None and data.read_xy(str(path)).x.tolist() == [1.0, 3.0]
