"""`pip install jaxcnn` is enough for the models; each extra's module names its extra when
missing.

A fresh process hides the optional dependencies (``sys.modules[name] = None``, which is what
an uninstalled module looks like to ``import`` and ``importlib.util.find_spec``) and then
imports jaxcnn: the core modules and a forward pass work, and each module that needs an extra
raises an ImportError naming it. ``jaxcnn._extras.EXTRAS`` is checked against pyproject.toml.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from jaxcnn import _extras

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
# Every module an extra provides (not jax, flax, optax's own dependencies: absl, orbax).
OPTIONAL = sorted({m.split(".")[0] for extra in _extras.EXTRAS.values() for m in extra}
                  - {"optax", "orbax", "absl"} | {"ml_collections", "h5py", "safetensors"})

HIDE = """
import json, sys
for name in {hidden!r}:
    sys.modules[name] = None
"""

CORE = HIDE + """
import jax, jax.numpy as jnp
import jaxcnn, jaxcnn.blocks, jaxcnn.filters, jaxcnn.functional, jaxcnn.inspect, jaxcnn.layers
import jaxcnn.augment, jaxcnn.models
model = jaxcnn.models.create("lenet5", num_classes=10)
variables = model.init(jax.random.key(0), jnp.ones((1, 32, 32, 1)), train=False)
shape = model.apply(variables, jnp.ones((2, 32, 32, 1)), train=False).shape
errors = {{}}
for module in ("jaxcnn.weights", "jaxcnn.data", "jaxcnn.training", "jaxcnn.visualize",
               "jaxcnn.ensemble", "jaxcnn.transfer"):
    try:
        __import__(module)
    except ImportError as e:
        errors[module] = [type(e).__name__, str(e), e.name]
try:
    jaxcnn.weights
except ImportError as e:
    errors["attribute"] = [type(e).__name__, str(e), e.name]
print(json.dumps({{"shape": list(shape), "errors": errors}}))
"""


def run(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, env={"JAX_PLATFORMS": "cpu", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_core_modules_work_without_any_extra():
    result = run(CORE.format(hidden=OPTIONAL))
    assert result["shape"] == [2, 10]
    errors = result["errors"]
    assert errors["jaxcnn.weights"] == [
        "ModuleNotFoundError",
        "jaxcnn.weights needs h5py, safetensors: pip install 'jaxcnn[weights]' (or "
        "'jaxcnn[all]')", "h5py"]
    assert errors["attribute"] == errors["jaxcnn.weights"]
    assert "jaxcnn.data needs tensorflow-datasets" in errors["jaxcnn.data"][1]
    assert "pip install 'jaxcnn[data]'" in errors["jaxcnn.data"][1]
    for module in ("jaxcnn.training", "jaxcnn.ensemble", "jaxcnn.transfer"):
        assert errors[module][1].startswith("jaxcnn.training needs tqdm, matplotlib: "
                                            "pip install 'jaxcnn[train]'")
    assert errors["jaxcnn.visualize"][1].startswith(
        "jaxcnn.visualize needs matplotlib: pip install 'jaxcnn[viz]'")


FEATURES = {"data": "jaxcnn.data", "train": "jaxcnn.training", "weights": "jaxcnn.weights",
            "viz": "jaxcnn.visualize"}

ONE_AT_A_TIME = """
import importlib, json, sys
out = {}
for extra, (feature, module) in %r.items():
    sys.modules[module] = None
    try:
        importlib.import_module(feature)
        out[extra] = None
    except ImportError as e:
        out[extra] = [str(e), e.name]
    del sys.modules[module]
print(json.dumps(out))
"""


def test_one_missing_module_names_its_extra():
    cases = {extra: (FEATURES[extra], next(iter(modules)))
             for extra, modules in _extras.EXTRAS.items()}
    result = run(ONE_AT_A_TIME % cases)
    for extra, (feature, module) in cases.items():
        dist = _extras.EXTRAS[extra][module]
        assert result[extra] == [f"{feature} needs {dist}: pip install 'jaxcnn[{extra}]' "
                                 f"(or 'jaxcnn[all]')", module]


def test_installed_extras_import():
    for extra in _extras.EXTRAS:
        assert _extras.missing(extra) == [], f"the test environment lacks jaxcnn[{extra}]"
    _extras.require("weights", "jaxcnn.weights")


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0].lower().replace("_", "-")
            for r in requirements}


def _extra(name: str) -> set[str]:
    """The distributions of an extra, extras it includes (jaxcnn[...]) resolved."""
    names = set()
    for requirement in PYPROJECT["project"]["optional-dependencies"][name]:
        if requirement.startswith("jaxcnn["):
            for inner in requirement[len("jaxcnn["):requirement.index("]")].split(","):
                names |= _extra(inner.strip())
        else:
            names |= _names([requirement])
    return names


def test_extras_table_matches_pyproject():
    core = _names(PYPROJECT["project"]["dependencies"])
    for extra, modules in _extras.EXTRAS.items():
        wanted = {dist.lower().replace("_", "-") for dist in modules.values()}
        assert wanted <= _extra(extra), (extra, wanted - _extra(extra))
        assert not wanted & core, f"{wanted & core} are core dependencies, not jaxcnn[{extra}]"
    assert _extra("train") >= _extra("data")
    assert _extra("all") == _extra("data") | _extra("train") | _extra("weights") | _extra("viz")
    assert _extra("test") >= _extra("all")
    assert not any(name.startswith("onednn-devel") for name in core), \
        "the headers-only -devel wheel is a build requirement, not a runtime dependency"
    build = _names(PYPROJECT["build-system"]["requires"])
    assert {"setuptools", "jaxlib", "onednn-devel-cpu-gomp"} <= build
