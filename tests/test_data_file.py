"""Your own data: --data FILE.csv for the regression, with clear errors for bad files."""

import json

import numpy as np
import pytest

from jaxgd.data import load_csv



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
