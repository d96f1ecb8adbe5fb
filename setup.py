"""The one thing pyproject.toml cannot say: build ``libjaxcnn_onednn.so`` while installing.

``build_ext`` compiles ``jaxcnn/_native/onednn_conv.cc`` with ``jaxcnn/_native/build.py``
(loaded by its path: the build environment has the build requirements, not jax): into the
wheel's ``jaxcnn/_native/``, or next to the source for ``pip install -e .``. Where it cannot be
built, the installation succeeds without it and ``libjaxcnn_onednn.why`` says why. On Linux
x86-64 the wheel is tagged ``py3-none-linux_x86_64`` (the library uses no Python C API);
elsewhere nothing is compiled and the wheel is pure Python.
"""

import importlib.util
import os
import platform
import sys
from pathlib import Path

from setuptools import Distribution, setup
from setuptools.command.bdist_wheel import bdist_wheel
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
NATIVE = Path("jaxcnn", "_native")
NATIVE_PLATFORM = sys.platform.startswith("linux") and platform.machine() == "x86_64"


def _native_build():
    path = HERE / NATIVE / "build.py"
    spec = importlib.util.spec_from_file_location("_jaxcnn_native_build", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class BinaryDistribution(Distribution):
    def has_ext_modules(self):
        return NATIVE_PLATFORM  # makes `build` run build_ext, and the wheel platform-specific


class BuildOnednn(build_ext):
    """Compile the oneDNN library (not a Python extension module)."""

    def _out_dir(self) -> Path:
        if self.inplace or getattr(self, "editable_mode", False):
            return HERE / NATIVE
        return Path(self.build_lib) / NATIVE

    def run(self):
        out_dir = self._out_dir()
        out_dir.mkdir(parents=True, exist_ok=True)
        self._output = _native_build().build_for_install(out_dir, log=self.announce_always)

    def announce_always(self, message):
        print(message, file=sys.stderr)  # shown by `pip install -v` (and on failure)

    def get_outputs(self):
        output = getattr(self, "_output", None)
        return [os.fspath(output)] if output is not None else []

    def get_output_mapping(self):
        return {}


class PlatformWheel(bdist_wheel):
    def get_tag(self):
        python, abi, plat = super().get_tag()
        return (python, abi, plat) if self.root_is_pure else ("py3", "none", plat)


setup(distclass=BinaryDistribution,
      cmdclass={"build_ext": BuildOnednn, "bdist_wheel": PlatformWheel})
