#!/usr/bin/env bash
# The one script to run on a lent GPU machine: first a stress and correctness pass with a
# hard budget of 4 minutes (bench/scan_stress.py: the gpu tests, hundreds of repeated
# look-back launches over 64k-1M steps compared bitwise with each other and with the
# chunked scan, compute-sanitizer's synccheck where installed; one line per check and a
# JSON), then the kernel tests on real CUDA (no interpreter), the full benchmark cases,
# a summary table, the static report (bytes counted under the interpreter, sm_90/sm_80
# compiles) beside them, and the LRA tasks' training steps/s per scan backend.
#   bench/gpu.sh [RESULTS_DIR]      (default results, or $OUT when set; JSON into its kernels/)
# Runs from a plain checkout with the machine's own python3, torch and triton; Python
# packages missing there can travel as wheels in .whl/ and are installed first.
set -uo pipefail
cd "$(dirname "$0")/.."
root=${1:-${OUT:-results}}
out="$root/kernels"
mkdir -p "$out"
py=${PYTHON:-python3}
if compgen -G ".whl/*.whl" >/dev/null; then
    "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/lsb-site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/lsb-site
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.mem --format=csv \
    | tee "$out/gpu-info.txt"
label=$("$py" bench/cases.py label)
stamp=$(date +%Y%m%d)

unset TRITON_INTERPRET
# Correctness before any timing; the pass shares 225 s among its checks, timeout kills it
# at 240 s whatever they do.
timeout --kill-after=5 240 "$py" -m bench.scan_stress --budget 225 \
    --out "$out/$label-$stamp-stress.json"
stress_rc=$?

# Every kernel test runs on CUDA here (no interpreter), plus the gpu-only ones.
"$py" -m pytest -q -p no:cacheprovider tests/kernels 2>&1 | tee "$out/$label-$stamp-tests.log"
tests_rc=${PIPESTATUS[0]}

LSB_BENCH=full "$py" -m pytest -q -p no:cacheprovider bench --benchmark-only \
    --benchmark-columns=median,iqr,rounds --benchmark-sort=name \
    --benchmark-json="$out/$label-$stamp.json" 2>&1 | tail -n 5
bench_rc=${PIPESTATUS[0]}

"$py" -m suites.cli show --kernels --results "$root"

# The static report needs the interpreter, in its own process.
triton_version=$("$py" -c 'import triton; print(triton.__version__)')
TRITON_INTERPRET=1 "$py" -m kernels.report --out "$out/static-$triton_version.json" | tail -n 30
report_rc=${PIPESTATUS[0]}

LSB_DATA_DIR=/tmp/lsb-data "$py" -m suites.lra.throughput --steps 20 \
    --out "$root/throughput/$label-$stamp.json"
throughput_rc=$?
# asv: the same benchmarks as on the CPU, this commit, into $root/asv/<label>/ (one
# folder per machine: commit it beside the others for the site's history). Spawned
# processes: none may inherit a CUDA context from a forked parent.
asv_rc=skipped
if "$py" -c "import asv" 2>/dev/null && git rev-parse -q --verify HEAD >/dev/null; then
    "$py" -m asv machine --machine "$label" --yes >/dev/null
    "$py" -m asv run --python=same --set-commit-hash="$(git rev-parse HEAD)" \
        --machine "$label" --launch-method spawn 2>&1 | tail -n 3
    asv_rc=${PIPESTATUS[0]}
    if [ "$root" != results ]; then mkdir -p "$root/asv" && cp -r "results/asv/$label" "$root/asv/"; fi
fi
echo "asv exit $asv_rc (skipped without asv or git)"
echo "stress pass exit $stress_rc, kernel tests exit $tests_rc, benchmarks exit $bench_rc," \
    "static report exit $report_rc, throughput exit $throughput_rc; JSON: $out/$label-$stamp.json"
[ "$stress_rc" = 0 ] && [ "$tests_rc" = 0 ] && [ "$bench_rc" = 0 ] && [ "$report_rc" = 0 ] && \
    [ "$throughput_rc" = 0 ]
