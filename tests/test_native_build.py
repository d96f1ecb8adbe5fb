"""The oneDNN library is built by installing jaxcnn, and loaded, wherever it can be.

On Linux x86-64 a missing or unloadable ``libjaxcnn_onednn.so`` is a failure here, not a
silent fallback to XLA's (2-3x slower) convolutions: the message says how to fix it. Elsewhere
the tests check that jaxcnn says why oneDNN is not used. The build itself
(``jaxcnn/_native/build.py``, run by ``setup.py``'s ``build_ext``) is checked without a new
environment: its command line, the RUNPATH of the installed library, the ``.why`` file.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from jaxcnn._native import build, onednn

NATIVE_PLATFORM = sys.platform.startswith("linux") and platform.machine() == "x86_64"
DISABLED = os.environ.get("JAXCNN_ONEDNN") == "0"
ENV = {"JAX_PLATFORMS": "cpu", "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
FIX = ("install a C++17 compiler (g++) and reinstall jaxcnn, which builds the library: "
       "`make install`, or `pip install -v -e .` in the checkout (the build's messages start "
       "with 'jaxcnn:'); JAXCNN_ONEDNN=0 runs the suite on XLA's convolutions instead")


def status_in_subprocess(**env: str) -> str:
    code = "from jaxcnn._native import onednn; print(onednn.status())"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**ENV, **env}, check=True).stdout.strip()


@pytest.mark.other_platform
@pytest.mark.skipif(not NATIVE_PLATFORM, reason=build.platform_problem() or "")
@pytest.mark.skipif(DISABLED, reason="JAXCNN_ONEDNN=0 is set")
def test_onednn_is_built_and_loaded_on_linux_x86_64():
    assert onednn.available(), f"oneDNN convolutions are not in use: {onednn.status()}. {FIX}"
    assert onednn.status().startswith("oneDNN 3.")


@pytest.mark.other_platform
@pytest.mark.skipif(NATIVE_PLATFORM, reason="oneDNN is built here")
def test_other_platforms_say_why():
    assert not onednn.available()
    assert "Linux x86-64 only" in onednn.status()
    assert build.platform_problem() is not None


@pytest.mark.other_platform
@pytest.mark.skipif(not NATIVE_PLATFORM or DISABLED, reason="needs the library")
def test_installed_library_needs_no_build_environment():
    """Its only search path is relative to itself: nothing of the (temporary) build env, and
    libdnnl.so.3 comes from the onednn-cpu-gomp runtime wheel, not from the -devel wheel."""
    readelf = shutil.which("readelf")
    if readelf is None:
        pytest.skip("readelf (binutils) not installed")
    dynamic = subprocess.run([readelf, "-d", str(onednn.library_path())], capture_output=True,
                             text=True, check=True).stdout
    paths = [line.split("[", 1)[1].rstrip("]") for line in dynamic.splitlines()
             if "(RUNPATH)" in line or "(RPATH)" in line]
    assert paths == [build.RPATH], dynamic
    assert "[libdnnl.so.3]" in dynamic
    maps = Path("/proc/self/maps").read_text()
    loaded = {line.split()[-1] for line in maps.splitlines() if "libdnnl.so" in line}
    import importlib.metadata

    runtime = {str(Path(f.locate()).resolve()) for f in
               importlib.metadata.distribution("onednn-cpu-gomp").files or ()
               if f.name.startswith("libdnnl.so")}
    assert loaded and {str(Path(p).resolve()) for p in loaded} <= runtime, (loaded, runtime)


def test_a_recorded_build_failure_is_reported(tmp_path):
    library = tmp_path / build.LIBRARY_NAME
    build.reason_path(library).write_text("no C++ compiler (g++, c++ or clang++) on PATH\n"
                                          "more detail\n")
    out = status_in_subprocess(JAXCNN_ONEDNN_LIBRARY=str(library))
    if NATIVE_PLATFORM:
        assert out.startswith(f"XLA ({library} was not built when jaxcnn was installed: no C++ "
                              f"compiler (g++, c++ or clang++) on PATH (details: ")
        assert "more detail" not in out and "reinstall jaxcnn" in out
    else:
        assert "Linux x86-64 only" in out


def test_a_missing_library_without_a_record_says_reinstall(tmp_path):
    out = status_in_subprocess(JAXCNN_ONEDNN_LIBRARY=str(tmp_path / "missing.so"))
    if NATIVE_PLATFORM:
        assert out.startswith(f"XLA ({tmp_path / 'missing.so'} is not built: reinstall jaxcnn")


def test_build_for_install_records_why_and_removes_stale_files(tmp_path, monkeypatch):
    (tmp_path / build.LIBRARY_NAME).write_bytes(b"stale")
    monkeypatch.setenv("JAXCNN_BUILD_ONEDNN", "0")
    written = build.build_for_install(tmp_path, log=lambda message: None)
    assert written == build.reason_path(tmp_path / build.LIBRARY_NAME)
    assert written.read_text() == "skipped (JAXCNN_BUILD_ONEDNN=0)\n"
    assert not (tmp_path / build.LIBRARY_NAME).exists()


def test_no_compiler_is_a_reason_not_an_error(monkeypatch):
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setattr(build.shutil, "which", lambda name: None)
    assert build.command(Path("/tmp/x.so")) == "no C++ compiler (g++, c++ or clang++) on PATH"


@pytest.mark.other_platform
def test_a_failed_build_fails_the_install_only_when_asked(tmp_path, monkeypatch):
    monkeypatch.setenv("CXX", "false")  # a "compiler" that always fails
    if not NATIVE_PLATFORM:
        pytest.skip(build.platform_problem())
    if isinstance(build.command(tmp_path / "x.so"), str):
        pytest.skip(build.command(tmp_path / "x.so"))
    written = build.build_for_install(tmp_path, log=lambda message: None)
    assert written.read_text().startswith("the compiler failed (exit status 1)\n")
    monkeypatch.setenv("JAXCNN_BUILD_ONEDNN", "1")
    with pytest.raises(RuntimeError, match="JAXCNN_BUILD_ONEDNN=1"):
        build.build_for_install(tmp_path, log=lambda message: None)


def test_setup_py_loads_the_builder_without_jax():
    """setup.py runs in a build environment with jaxlib but no jax: build.py imports neither."""
    source = Path(build.__file__).read_text()
    assert "import jax" not in source and "from jax" not in source
    assert "jaxcnn" not in "".join(line for line in source.splitlines()
                                   if line.startswith(("import ", "from ")))
