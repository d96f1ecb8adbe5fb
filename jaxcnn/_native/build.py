"""Build the oneDNN convolution library: ``python -m jaxcnn._native.build [--out PATH]``.

Compiles ``onednn_conv.cc`` against XLA's FFI headers (shipped with jaxlib) and the oneDNN
headers and library of the ``onednn-devel-cpu-gomp`` wheel (installed in this environment's
prefix), into ``libjaxcnn_onednn.so`` next to this file. ``make install`` runs it. Without a
C++17 compiler or oneDNN it prints why and exits 0: jaxcnn then uses XLA's convolutions
(``jaxcnn._native.onednn.status()`` says which is in use).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

SOURCE = Path(__file__).with_name("onednn_conv.cc")


def _onednn_prefix() -> Path | None:
    """The prefix holding include/oneapi/dnnl/dnnl.hpp and lib/libdnnl.so.3, if any."""
    for prefix in dict.fromkeys((Path(sys.prefix), Path(sys.base_prefix), Path("/usr/local"),
                                 Path("/usr"))):
        if (prefix / "include" / "oneapi" / "dnnl" / "dnnl.hpp").exists() and \
                (prefix / "lib" / "libdnnl.so.3").exists():
            return prefix
    return None


def command(out: Path) -> list[str] | str:
    """The compiler command line for ``out``, or a string saying what is missing.

    Example:
        >>> isinstance(command(Path("/tmp/libjaxcnn_onednn.so")), list | str)
        True
    """
    compiler = shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")
    if compiler is None:
        return "no C++ compiler (g++, c++ or clang++) on PATH"
    prefix = _onednn_prefix()
    if prefix is None:
        return ("oneDNN headers and library not found: pip install onednn-cpu-gomp==2023.2.0 "
                "onednn-devel-cpu-gomp==2023.2.0 (jaxcnn's Linux x86-64 dependencies)")
    import jax.ffi

    lib = prefix / "lib"
    # rpath: the library finds libdnnl.so.3 in this environment without LD_LIBRARY_PATH.
    return [compiler, "-O2", "-std=c++17", "-shared", "-fPIC", "-fopenmp", "-w",
            f"-I{jax.ffi.include_dir()}", f"-I{prefix / 'include'}", str(SOURCE),
            f"-L{lib}", f"-Wl,-rpath,{lib}", "-l:libdnnl.so.3", "-o", str(out)]


def build(out: Path | None = None, *, quiet: bool = False) -> Path | None:
    """Compile the library to ``out`` (default: next to this file); return it, or None.

    Example:
        >>> build(Path("/nonexistent-dir/lib.so"), quiet=True) is None
        True
    """
    from jaxcnn._native.onednn import library_path

    out = Path(out) if out is not None else library_path()
    cmd = command(out)
    if isinstance(cmd, str) or not out.parent.is_dir():
        why = cmd if isinstance(cmd, str) else f"{out.parent} is not a directory"
        if not quiet:
            print(f"jaxcnn: oneDNN convolutions not built ({why}); XLA's are used.")
        return None
    tmp = out.with_name(out.name + ".tmp")
    result = subprocess.run(cmd[:-1] + [str(tmp)], capture_output=True, text=True)
    if result.returncode != 0:
        if not quiet:
            print(f"jaxcnn: building oneDNN convolutions failed; XLA's are used.\n"
                  f"{' '.join(cmd)}\n{result.stderr[-4000:]}")
        return None
    tmp.replace(out)  # atomic: a process loading the old library never sees half a file
    if not quiet:
        print(f"jaxcnn: built {out}")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jaxcnn._native.build",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None,
                        help="where to write the library (default: next to this module)")
    args = parser.parse_args(argv)
    build(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
