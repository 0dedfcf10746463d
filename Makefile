# The quick start: `make demo`, `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: demo test bench clean

# Reinstall when the package's metadata changes. The test extra includes the app extra (plotly,
# matplotlib, tqdm: the `jaxgd` command's), so `make demo` and `make test` both have it.
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/jaxgd report

# Two workers (two cores); the tests that share the session's report run on one of them. A worker that
# crashes ends the run, naming its test: pytest-xdist 3.8 replacing it under --dist loadgroup can hang
# (pytest-dev/pytest-xdist#1323, #1327), and CI timed out so once, 90 min in.
test: $(VENV)/.installed
	$(PY) -m pytest -q -n 2 --dist loadgroup --max-worker-restart=0

# Side-by-side benchmarks -> BENCHMARKS.md and bench.json. PyTorch is optional (the bench extra).
bench: $(VENV)/.installed
	-$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) scripts/bench.py --append docs/benchmark-notes.md

clean:
	rm -rf $(VENV) out .pytest_cache .hypothesis
