# LandscapeBench: every target creates .venv when it is missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The pin takes the CPU build where one lies on disk and the CUDA build on a GPU machine.
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: demo test test-all test-asv bench bench-compare kernel-report asv asv-history asv-continuous \
	lint clean browser verify-changed valgrind counts counts-compare

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/lsb demo

# The site's browser test drives Debian's Chromium; install it where apt-get can.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	    { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
	      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; } || \
	    echo "chromium/chromedriver unavailable: the browser test will be skipped"

# The fast tier: every test not marked slow (the README's test command).
test: $(STAMP) browser
	$(PY) -m pytest -q --benchmark-disable -m "not slow and not asv" -n auto --dist loadfile

# The whole suite: the slow tests (sweeps, hostile submissions, the count gate, the
# published optimizers, asv across commits) with the fast ones; what CI runs.
test-all: $(STAMP) browser valgrind
	$(PY) -m pytest -q --benchmark-disable -n auto --dist loadfile

# asv flags an injected regression across two commits of a throwaway repository (slow:
# it builds both; the first run on a machine also creates asv's environment).
test-asv: $(STAMP)
	$(PY) -m pytest -q -m asv tests/test_asv_regression.py

# The static GPU report, made without a GPU: bytes each kernel moves (counted under the
# Triton interpreter) and its sm_90/sm_80 compile, into results/kernels/static-<triton>.json.
kernel-report: $(STAMP)
	$(PY) -m kernels.report

# Kernel timings (pytest-benchmark) into results/kernels/<machine>-<date>.json, and the
# static report; the JSON records the commit (commit_info) and the machine (machine_info,
# with its label).
BENCH_ARGS := -q bench --benchmark-only --benchmark-columns=median,iqr,rounds
bench: $(STAMP) kernel-report
	$(PY) -m pytest $(BENCH_ARGS) \
	    --benchmark-json=results/kernels/$$($(PY) -m bench.cases label)-$$(date +%Y%m%d).json

# The working tree against the newest committed JSON of this machine; fails when a
# case's median is more than 10 % slower.
bench-compare: $(STAMP)
	@label=$$($(PY) -m bench.cases label); \
	base=$$(git ls-files "results/kernels/$$label-*.json" | sort | tail -n 1); \
	if [ -z "$$base" ]; then \
	    echo "no committed results/kernels/$$label-*.json to compare with: run make bench on this machine and commit the file it writes" >&2; exit 2; \
	fi; \
	echo "comparing with $$base"; \
	$(PY) -m pytest $(BENCH_ARGS) --benchmark-compare="$$base" --benchmark-compare-fail=median:10%

# A quick check that the asv suite runs on the working tree (one sample a case, nothing
# saved), then the dashboard of the committed history into site/build/asv.
asv: $(STAMP)
	label=$$($(PY) -m bench.cases label); \
	$(VENV)/bin/asv machine --machine $$label --yes >/dev/null && \
	$(VENV)/bin/asv run --python=same --quick --dry-run --machine $$label
	$(VENV)/bin/asv publish

# asv across commits (bench/asv_run.py checks the input, then calls asv; results into
# results/asv/<machine>/). First, once per machine: asv machine --machine <label> --yes
# ASV_ARGS go to asv as they are (e.g. --skip-existing-successful, -b NGNStep).
RANGE ?= HEAD~10..HEAD
BASE ?= main
ASV_ARGS ?=
asv-history: $(STAMP)
	$(PY) -m bench.asv_run run $(RANGE) $(if $(ASV_ARGS),-- $(ASV_ARGS))

asv-continuous: $(STAMP)
	$(PY) -m bench.asv_run continuous $(BASE) HEAD $(if $(ASV_ARGS),-- $(ASV_ARGS))

# What a pull request's CI runs on results that arrive by pull request: every run file
# added or changed since BASE, re-run from its recorded spec and compared value by value
# (lsb verify exits 1 on any difference and shows it).
verify-changed: $(STAMP)
	@files=$$(git diff --name-only --diff-filter=AM $(BASE) -- 'results/runs/*.json'); \
	if [ -z "$$files" ]; then echo "no run file changed since $(BASE)"; exit 0; fi; \
	$(VENV)/bin/lsb verify $$files

# The count gate (bench/counts.py): valgrind's instruction counts of the CPU paths and the
# Triton kernels' metered bytes and sm_90/sm_80 compile, per commit. valgrind is installed
# where apt-get can; without it the instruction counts are skipped, with a message.
valgrind:
	@command -v valgrind >/dev/null || \
	    { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
	      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind; } || \
	    echo "valgrind unavailable: the instruction counts will be skipped"

# results/counts/<commit>.json (<commit>-dirty.json for a working tree with changes).
counts: $(STAMP) valgrind
	$(PY) -m bench.counts measure

# The working tree against BASE (default main): exit 1 when a count moved by more than 2 %.
counts-compare: $(STAMP) valgrind
	$(PY) -m bench.counts compare --base $(BASE)

lint: $(STAMP)
	$(VENV)/bin/ruff check kernels suites tests bench

clean:
	rm -rf $(VENV) site/build .pytest_cache
