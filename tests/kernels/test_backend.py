"""kernels.backend: one environment variable per kernel family, the old one refused."""

import pytest
import torch

import kernels
from kernels.backend import OPTIM, SCAN, env_choice
from kernels.optim import AdamW
from kernels.scan import diag_scan


@pytest.fixture
def clean_env(monkeypatch):
    for name in ("LSB_BACKEND", SCAN.variable, OPTIM.variable):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_unset_and_empty_mean_auto(clean_env):
    assert env_choice(SCAN) == env_choice(OPTIM) == "auto"
    clean_env.setenv(SCAN.variable, " ")
    assert env_choice(SCAN) == "auto"
    clean_env.setenv(OPTIM.variable, "Triton")
    assert env_choice(OPTIM) == "triton"


@pytest.mark.parametrize("family", [SCAN, OPTIM], ids=lambda f: f.name)
def test_unknown_value_names_the_variable_and_the_valid_values(clean_env, family):
    clean_env.setenv(family.variable, "fast")
    with pytest.raises(ValueError) as err:
        env_choice(family)
    assert family.variable in str(err.value)
    assert all(choice in str(err.value) for choice in family.choices)


def test_the_old_variable_is_refused_naming_both_new_ones(clean_env):
    clean_env.setenv("LSB_BACKEND", "chunked")
    lam, b = torch.full((3,), 0.5 + 0j), torch.ones(1, 4, 3, dtype=torch.complex64)
    for call in (lambda: diag_scan(lam, b), lambda: env_choice(OPTIM)):
        with pytest.raises(ValueError, match="LSB_BACKEND no longer.*LSB_SCAN_BACKEND.*"
                                             "LSB_OPTIM_BACKEND"):
            call()
    # An explicit backend does not read the environment at all.
    assert diag_scan(lam, b, backend="chunked").shape == b.shape


def test_each_family_reads_only_its_own_variable(clean_env):
    p = torch.nn.Parameter(torch.randn(4))
    p.grad = torch.randn(4)
    clean_env.setenv(SCAN.variable, "sequential")  # must not reach the optimizer
    AdamW([p]).step()
    clean_env.setenv(OPTIM.variable, "torch")  # must not reach the scan
    clean_env.delenv(SCAN.variable)
    lam, b = torch.full((3,), 0.5 + 0j), torch.ones(1, 4, 3, dtype=torch.complex64)
    assert diag_scan(lam, b).shape == b.shape


def test_backend_settings_report_each_family(clean_env):
    clean_env.setenv(SCAN.variable, "sequential")
    clean_env.setenv(OPTIM.variable, "bogus")
    settings = kernels.backend_settings()
    assert set(settings) == {"scan", "optim"}
    scan, optim = settings["scan"], settings["optim"]
    assert scan["variable"] == "LSB_SCAN_BACKEND" and scan["value"] == "sequential"
    assert scan["valid"] == ["auto", "sequential", "chunked", "triton"]
    assert scan["auto"] == "sequential"
    assert optim["valid"] == ["auto", "torch", "triton"]
    assert optim["auto"] is None and "LSB_OPTIM_BACKEND='bogus'" in optim["error"]
    clean_env.delenv(OPTIM.variable)
    clean_env.delenv(SCAN.variable)
    expected = "triton" if torch.cuda.is_available() else None
    settings = kernels.backend_settings()
    assert settings["scan"]["auto"] == (expected or "chunked")
    assert settings["optim"]["auto"] == (expected or "torch")
