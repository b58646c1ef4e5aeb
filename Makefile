# LandscapeBench: every target creates .venv when it is missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The pin takes the CPU build where one lies on disk and the CUDA build on a GPU machine.
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: demo test test-asv bench bench-compare kernel-report asv asv-history asv-continuous \
	lint clean browser

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

test: $(STAMP) browser
	$(PY) -m pytest -q --benchmark-disable -m "not asv"

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

lint: $(STAMP)
	$(VENV)/bin/ruff check kernels suites tests bench

clean:
	rm -rf $(VENV) site/build .pytest_cache
