"""The test set-up itself: what keeps the suite from passing by skipping or by loose matching.

``conftest.py`` is loaded as a plugin (``-p conftest``) into a child pytest that runs a probe
file: a preset ``XLA_FLAGS`` must still give the 8 devices that the pmap, mesh and
synchronised-BatchNorm tests need, and under ``CI=true`` a skip for a missing requirement must
fail, while an ``other_platform`` skip stays a skip.
"""

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

PROBE = '''
import os

import jax
import pytest


def test_eight_devices_despite_preset_flags():
    assert jax.device_count() == 8, os.environ["XLA_FLAGS"]
    assert "--xla_cpu_enable_fast_math=false" in os.environ["XLA_FLAGS"]


def test_missing_requirement():
    pytest.skip("torch is not installed")


@pytest.mark.other_platform
def test_for_another_platform():
    pytest.skip("applies to macOS only")
'''


def _run_probe(tmp_path: Path, ci: str) -> subprocess.CompletedProcess:
    probe = tmp_path / "test_probe.py"
    probe.write_text(PROBE)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CI": ci,
           "XLA_FLAGS": "--xla_cpu_enable_fast_math=false"}  # a user's own flags, no device count
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "conftest", "-p", "no:cacheprovider", "-q", "-rs",
         "--rootdir", str(tmp_path), str(probe)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("ci", ["true", ""], ids=["ci", "user"])
def test_preset_xla_flags_keep_eight_devices_and_ci_fails_skips(tmp_path, ci):
    result = _run_probe(tmp_path, ci)
    out = result.stdout + result.stderr
    if ci:
        assert result.returncode == 1, out
        assert "1 failed, 1 passed, 1 skipped" in out, out
        assert "skipped in CI (Skipped: torch is not installed)" in out, out
    else:
        assert result.returncode == 0, out
        assert "1 passed, 2 skipped" in out, out


def test_doctests_compare_printed_numbers_exactly():
    # doctest's NUMBER flag would let "[1. 2. 2. 2.]" accept "[2. 2. 2. 1.]" and "0.0, 1.0"
    # accept "0.04, 1.04": every doctest prints what it checks, to the digits it means.
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    flags = pyproject["tool"]["pytest"]["ini_options"]["doctest_optionflags"]
    assert sorted(flags) == ["ELLIPSIS", "NORMALIZE_WHITESPACE"]
