"""Build the oneDNN convolution library ``libjaxcnn_onednn.so`` from ``onednn_conv.cc``.

Installing jaxcnn builds it: ``pip install .``, ``pip install -e .`` and building a wheel run
:func:`build_for_install` from ``setup.py``'s ``build_ext``, in the PEP 517 build environment,
whose ``[build-system].requires`` bring the headers: XLA's FFI headers (``jaxlib/include``) and
oneDNN's (the ``onednn-devel-cpu-gomp`` wheel, with the ``libdnnl.so.3`` it links against).
At run time the library needs only ``libdnnl.so.3`` of the ``onednn-cpu-gomp`` wheel (a jaxcnn
dependency on Linux x86-64): its RUNPATH, ``$ORIGIN/../../../..``, is ``<prefix>/lib`` of an
installed package, where that wheel puts it, and :mod:`jaxcnn._native.onednn` loads it from
the wheel's own file list first (editable installs, other layouts).

Where it cannot be built (another OS or CPU, no C++17 compiler, no headers) the installation
still succeeds, without the library, and a ``libjaxcnn_onednn.why`` file says why:
``jaxcnn._native.onednn.status()`` reports it, and jaxcnn uses XLA's convolutions.
``JAXCNN_BUILD_ONEDNN=0`` skips the build; ``JAXCNN_BUILD_ONEDNN=1`` makes a failed build fail
the installation.

A developer tool too: ``python -m jaxcnn._native.build [--out PATH]`` rebuilds the library in
place (it needs ``onednn-devel-cpu-gomp`` in this environment; the ``test`` extra has it).
This module imports neither jax nor jaxcnn: ``setup.py`` loads it by its path.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

SOURCE = Path(__file__).with_name("onednn_conv.cc")
LIBRARY_NAME = "libjaxcnn_onednn.so"
# <prefix>/lib/pythonX.Y/site-packages/jaxcnn/_native -> <prefix>/lib: where the onednn-cpu-gomp
# wheel installs libdnnl.so.3 (its files are `../../libdnnl.so.3` relative to site-packages).
RPATH = "$ORIGIN/../../../.."
ONEDNN_HINT = ("the onednn-devel-cpu-gomp wheel (a build requirement of jaxcnn on Linux x86-64; "
               "for `python -m jaxcnn._native.build`: pip install "
               "onednn-devel-cpu-gomp==2023.2.0)")


def reason_path(library: Path) -> Path:
    """The file that says why ``library`` was not built (``libjaxcnn_onednn.why``).

    Example:
        >>> reason_path(Path("/x/libjaxcnn_onednn.so")).name
        'libjaxcnn_onednn.why'
    """
    return Path(library).with_suffix(".why")


def platform_problem() -> str | None:
    """None on Linux x86-64, where the library can be built; otherwise why it cannot.

    Example:
        >>> platform_problem() is None or "Linux x86-64" in platform_problem()
        True
    """
    if sys.platform.startswith("linux") and platform.machine() == "x86_64":
        return None
    return (f"oneDNN convolutions are built for Linux x86-64 only, not {sys.platform} "
            f"{platform.machine()}")


def ffi_include_dir() -> Path | None:
    """jaxlib's ``include`` directory (XLA's FFI headers), found without importing jax."""
    try:
        spec = importlib.util.find_spec("jaxlib")
    except (ImportError, ValueError):
        return None
    for location in (spec.submodule_search_locations or []) if spec else []:
        include = Path(location) / "include"
        if (include / "xla" / "ffi" / "api" / "ffi.h").exists():
            return include
    return None


def _wheel_file(distribution: str, suffix: str) -> Path | None:
    """The installed file of ``distribution`` whose path ends with ``suffix``, if any."""
    try:
        files = importlib.metadata.distribution(distribution).files or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in files:
        if file.as_posix().endswith(suffix):
            path = Path(file.locate()).resolve()
            if path.exists():
                return path
    return None


def onednn_dirs() -> tuple[Path, Path] | None:
    """(include dir, lib dir) of oneDNN: the devel and runtime wheels first, then prefixes."""
    header = _wheel_file("onednn-devel-cpu-gomp", "include/oneapi/dnnl/dnnl.hpp")
    library = _wheel_file("onednn-cpu-gomp", "libdnnl.so.3")
    if header is not None and library is not None:
        return header.parents[2], library.parent
    for prefix in dict.fromkeys((Path(sys.prefix), Path(sys.base_prefix), Path("/usr/local"),
                                 Path("/usr"))):
        if (prefix / "include" / "oneapi" / "dnnl" / "dnnl.hpp").exists() and \
                (prefix / "lib" / "libdnnl.so.3").exists():
            return prefix / "include", prefix / "lib"
    return None


def command(out: Path) -> list[str] | str:
    """The compiler command line for ``out``, or a string saying what is missing.

    Example:
        >>> isinstance(command(Path("/tmp/libjaxcnn_onednn.so")), list | str)
        True
    """
    compiler = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++") or \
        shutil.which("clang++")
    if compiler is None:
        return "no C++ compiler (g++, c++ or clang++) on PATH"
    ffi = ffi_include_dir()
    if ffi is None:
        return "XLA's FFI headers not found (jaxlib/include: jaxlib is a build requirement)"
    dirs = onednn_dirs()
    if dirs is None:
        return f"oneDNN headers and library not found: they come from {ONEDNN_HINT}"
    include, lib = dirs
    return [compiler, "-O2", "-std=c++17", "-shared", "-fPIC", "-fopenmp", "-w",
            f"-I{ffi}", f"-I{include}", str(SOURCE), f"-L{lib}", f"-Wl,-rpath,{RPATH}",
            "-l:libdnnl.so.3", "-o", str(out)]


def compile_library(out: Path) -> tuple[Path | None, str]:
    """Compile to ``out`` (atomically); return (out, "") or (None, why not, compiler output)."""
    out = Path(out)
    cmd = command(out)
    if isinstance(cmd, str):
        return None, cmd
    if not out.parent.is_dir():
        return None, f"{out.parent} is not a directory"
    tmp = out.with_name(out.name + ".tmp")
    try:
        result = subprocess.run(cmd[:-1] + [str(tmp)], capture_output=True, text=True)
    except OSError as e:
        return None, f"{cmd[0]} could not be run ({e})"
    if result.returncode != 0:
        tmp.unlink(missing_ok=True)
        return None, (f"the compiler failed (exit status {result.returncode})\n"
                      f"{' '.join(cmd)}\n{result.stderr[-4000:]}")
    tmp.replace(out)  # atomic: a process loading the old library never sees half a file
    return out, ""


def build(out: Path | None = None, *, quiet: bool = False) -> Path | None:
    """Compile the library to ``out`` (default: next to this file); return it, or None.

    Example:
        >>> build(Path("/nonexistent-dir/lib.so"), quiet=True) is None
        True
    """
    out = Path(out) if out is not None else SOURCE.with_name(LIBRARY_NAME)
    built, why = compile_library(out)
    if not quiet:
        print(f"jaxcnn: built {built}" if built is not None else
              f"jaxcnn: oneDNN convolutions not built ({why}); XLA's are used.")
    return built


def build_for_install(out_dir: Path, log: Callable[[str], object] = print) -> Path:
    """What installing jaxcnn runs: the library in ``out_dir``, or a file saying why not.

    Returns the file written (the library or its ``.why`` file). Any stale one of the two is
    removed, so that what is installed always matches this build.
    """
    out = Path(out_dir) / LIBRARY_NAME
    why_file = reason_path(out)
    why_file.unlink(missing_ok=True)
    mode = os.environ.get("JAXCNN_BUILD_ONEDNN", "auto")
    why = "skipped (JAXCNN_BUILD_ONEDNN=0)" if mode == "0" else platform_problem()
    if why is None:
        built, why = compile_library(out)
        if built is not None:
            log(f"jaxcnn: built {built}")
            return built
    out.unlink(missing_ok=True)
    why_file.write_text(why + "\n")
    log(f"jaxcnn: oneDNN convolutions not built ({why}); XLA's convolutions will be used")
    if mode == "1":
        raise RuntimeError(f"JAXCNN_BUILD_ONEDNN=1 and oneDNN convolutions not built: {why}")
    return why_file


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jaxcnn._native.build",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None,
                        help="where to write the library (default: next to this module)")
    args = parser.parse_args(argv)
    built = build(args.out)
    if built is not None and args.out is None:
        reason_path(built).unlink(missing_ok=True)  # a stale "not built" note
    return 0


if __name__ == "__main__":
    sys.exit(main())
