"""``bench.optim_compare`` at tiny sizes: the comparison's rows, and the host-time figures
in the layout the kernels page reads."""

import json

import pytest
from markers import needs_interpreter
from optim_helpers import one_thread  # noqa: F401 (an autouse fixture)

from bench import optim_compare


def test_compare_times_every_pair():
    rows = optim_compare.compare(numel=4096, tensors=4, repeats=1)
    cases = [(row["case"], row["tensors"]) for row in rows]
    expected = ["adamw", "ngn/sgd", "norm/sgd", "ngn1/sgd", "hooks", "ngn1+hooks/sgd"]
    assert cases == [(c, n) for n in (1, 4) for c in expected]
    assert all(row["torch_ms"] > 0 for row in rows if "torch_ms" in row)


@needs_interpreter  # the host-time steps run the Triton backend on CPU tensors
def test_host_time_figures_are_a_kernels_page_table(tmp_path, monkeypatch):
    from suites.site_data import kernel_frame

    monkeypatch.setattr(optim_compare, "HOST_TIME_TENSORS", (2, 3))
    rows = optim_compare.host_time(repeats=3)
    assert len(rows) == 2 * 2 * 3 and all(row["seconds"] > 0 for row in rows)
    kernels = tmp_path / "kernels"
    kernels.mkdir()
    document = optim_compare.host_time_document(rows, repeats=3)
    (kernels / "host-time-test.json").write_text(json.dumps(document))
    frame, problems = kernel_frame(kernels)
    assert not problems
    assert set(frame["kernel"]) == {"adamw step, host", "ngn step, host"}
    assert set(frame["size"]) == {"2 tensors", "3 tensors"}
    rebuilt = frame[frame["impl"] == "plan built per step"]
    assert rebuilt["speedup"].tolist() == pytest.approx([1.0] * len(rebuilt))
