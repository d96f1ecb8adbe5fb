"""The documentation site: it builds with ``mkdocs build --strict`` and its snippets run.

Every ```python block of every page in ``docs/`` is executed, the blocks of a page in order in
one namespace (as a reader would paste them); where a ```text block follows a python block
(with only blank lines between), the block's standard output must match it (doctest rules
with ``ELLIPSIS``: ``...`` matches anything). A python block written in doctest form
(``>>>`` lines) is run by ``doctest`` instead. Commands that must not run here (multi-host
launches, long trainings) use ```bash fences.

The pages run in one child process (``python tests/test_docs.py OUT.json PAGE...``): it pays
the imports once, keeps this process's modules and working directory clean, and compiles
with XLA's CPU backend optimisations off. The snippets are dominated by compiling many small
programs, which that makes about 3x cheaper; what they print does not depend on it (the
``text`` blocks are generated at the default level and checked at this one).
"""

from __future__ import annotations

import contextlib
import doctest
import importlib.util
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import traceback
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))
FENCE = re.compile(r"^```(?P<lang>[\w-]*)[ \t]*\n(?P<body>.*?)^```[ \t]*$", re.M | re.S)
_CHECKER = doctest.OutputChecker()


def _blocks(text: str) -> list[tuple[int, str, str, str | None]]:
    """``(line, lang, code, expected_output)`` for every python block of a page."""
    fences = list(FENCE.finditer(text))
    out = []
    for i, m in enumerate(fences):
        if m["lang"] != "python":
            continue
        expected = None
        if i + 1 < len(fences) and fences[i + 1]["lang"] == "text" \
                and not text[m.end():fences[i + 1].start()].strip():
            expected = fences[i + 1]["body"]
        out.append((text.count("\n", 0, m.start()) + 2, m["lang"], m["body"], expected))
    return out


def _run_doctest(code: str, namespace: dict, name: str) -> None:
    test = doctest.DocTestParser().get_doctest(code, namespace, name, name, 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report = io.StringIO()
    runner.run(test, out=report.write, clear_globs=False)
    namespace.update(test.globs)  # doctest runs in a copy; later blocks see its names
    assert not runner.failures, report.getvalue()


def run_page(page: str) -> list[tuple[str, str, str | None]]:
    """Execute the python blocks of ``docs/<page>``; ``(where, printed, expected)`` per block.

    The blocks run in the namespace of a fresh module registered in ``sys.modules`` (classes
    defined on a page, e.g. Flax modules, are dataclasses that look their module up), compiled
    without this file's ``__future__`` imports, as a reader's script would be.
    """
    module = types.ModuleType("docs_page")
    sys.modules[module.__name__] = module
    results = []
    try:
        for line, _, code, expected in _blocks((DOCS / page).read_text()):
            where = f"docs/{page}:{line}"
            if code.lstrip().startswith(">>>"):
                _run_doctest(code, module.__dict__, where)
                continue
            printed = io.StringIO()
            with contextlib.redirect_stdout(printed):
                exec(compile(code, where, "exec", dont_inherit=True), module.__dict__)
            results.append((where, printed.getvalue(), expected))
    finally:
        del sys.modules[module.__name__]
    return results


def _run_pages(out: str, pages: list[str]) -> None:
    """Child process: run each page in a fresh directory; JSON ``{page: {blocks, error}}``."""
    results = {}
    for page in pages:
        os.chdir(tempfile.mkdtemp(prefix="docs_page_"))
        try:
            results[page] = {"blocks": run_page(page), "error": None}
        except BaseException:  # noqa: BLE001 - reported per page by the test
            results[page] = {"blocks": [], "error": traceback.format_exc()}
    Path(out).write_text(json.dumps(results))


def test_every_page_runs_and_prints_what_it_shows(tmp_path):
    # One test, not one per page: the child process runs every page once, whichever xdist
    # worker gets it. Datasets are prepared under tmp, never in the user's home.
    env = {**os.environ, "TMPDIR": str(tmp_path), "JAXCNN_DATA_DIR": str(tmp_path / "data"),
           "TFDS_DATA_DIR": str(tmp_path / "tfds"), "JAX_PLATFORMS": "cpu",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "XLA_FLAGS": " ".join([os.environ.get("XLA_FLAGS", ""),
                                  "--xla_backend_optimization_level=0",
                                  "--xla_llvm_disable_expensive_passes=true"]).strip()}
    out = tmp_path / "results.json"
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, str(out), *PAGES], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-5000:]
    print(f"{len(PAGES)} pages in {time.perf_counter() - start:.1f} s")
    failures = []
    for page, result in json.loads(out.read_text()).items():
        if result["error"]:
            failures.append(f"docs/{page} raised:\n{result['error']}")
        for where, printed, expected in result["blocks"]:
            if expected is None:
                continue
            got = "\n".join(line.rstrip() for line in printed.splitlines()) + "\n"
            want = "\n".join(line.rstrip() for line in expected.splitlines()) + "\n"
            if not _CHECKER.check_output(want, got, doctest.ELLIPSIS):
                failures.append(f"{where}: the block printed\n{got}but the page shows\n{want}")
    assert not failures, "\n\n".join(failures)


def test_every_python_and_text_block_is_checked():
    """No indented ```python block (inside a list: never run) and no ```text block that
    follows no python block (never compared)."""
    for page in PAGES:
        text = (DOCS / page).read_text()
        assert not re.search(r"^[ \t]+```python", text, flags=re.M), (
            f"docs/{page}: an indented python block is not executed; un-indent it")
        fences = list(FENCE.finditer(text))
        for prev, m in zip(fences, fences[1:], strict=False):
            if m["lang"] == "text":
                assert prev["lang"] == "python" and not text[prev.end():m.start()].strip(), (
                    f"docs/{page}: the text block at offset {m.start()} does not directly "
                    f"follow a python block, so nothing checks it")


def test_site_builds_strict(tmp_path):
    """``mkdocs build --strict``: no broken link or anchor, no page outside the nav, every
    ``::: module`` resolves, no docstring warning from griffe, and every public name of every
    public module has an entry in the API reference."""
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet",
         "-f", str(ROOT / "mkdocs.yml"), "-d", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    elapsed = time.perf_counter() - start
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "WARNING" not in proc.stderr, proc.stderr
    print(f"mkdocs build --strict: {elapsed:.1f} s")
    anchors = set()
    for html in (tmp_path / "site" / "api").rglob("index.html"):
        anchors |= set(re.findall(r'id="(jaxcnn\.[\w.]+)"', html.read_text()))
    missing = [f"{module}.{name}" for module in ["jaxcnn"] + sorted(
        f"jaxcnn.{m}" for m in _public_modules()) for name in _public_names(module)
        if not any(a.startswith(module + ".") and a.endswith("." + name) for a in anchors)]
    assert not missing, f"public names without an entry in the API reference: {missing}"


def _public_modules() -> set[str]:
    pkg = ROOT / "jaxcnn"
    names = {p.stem for p in pkg.glob("*.py")} | {p.parent.name for p in pkg.glob("*/__init__.py")}
    return {n for n in names if not n.startswith("_")}


def _public_names(module: str) -> list[str]:
    """``__all__``, or the public non-module names (explicit ``import A as A`` re-exports)."""
    mod = importlib.import_module(module)
    names = getattr(mod, "__all__", None) or [n for n in vars(mod) if not n.startswith("_")]
    return [n for n in names if not isinstance(getattr(mod, n), types.ModuleType)]


def test_every_public_module_has_an_api_page():
    documented = set(re.findall(r"^::: jaxcnn\.(\w+)", "\n".join(
        p.read_text() for p in (DOCS / "api").glob("*.md")), flags=re.M))
    missing = _public_modules() - documented
    assert not missing, f"no docs/api page renders `::: jaxcnn.<name>` for {sorted(missing)}"


def test_every_experiment_script_has_a_page():
    scripts = {p.stem for p in (ROOT / "experiments").glob("*.py") if p.stem != "__init__"}
    pages = {p.stem for p in (DOCS / "experiments").glob("*.md")}
    assert scripts <= pages, f"experiments without a docs/experiments page: {scripts - pages}"


def test_experiment_pages_quote_only_measured_numbers():
    """Every percentage and accuracy on an experiment page is copied from RESULTS.md."""
    results = (ROOT / "benchmarks" / "RESULTS.md").read_text()
    for page in (DOCS / "experiments").glob("*.md"):
        for number in re.findall(r"\d+\.\d+%|0\.\d{3}(?: \+- 0\.\d{3})?", page.read_text()):
            assert number in results, f"{page.name}: {number} is not in benchmarks/RESULTS.md"


def test_griffe_extensions():
    spec = importlib.util.spec_from_file_location("griffe_extensions",
                                                  DOCS / "griffe_extensions.py")
    ext = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ext)
    assert ext.split_grouped_items("Args:\n  a, b: ends.\n    More.\nReturns:\n  x, y: z") == (
        "Args:\n  a: ends.\n    More.\n  b: ends.\n    More.\nReturns:\n  x, y: z")
    assert ext.sphinx_to_markdown("Example:\n  :class:`~a.B` and :func:`f`::") == (
        "Examples:\n  `B` and `f`:")


if __name__ == "__main__":
    _run_pages(sys.argv[1], sys.argv[2:])
