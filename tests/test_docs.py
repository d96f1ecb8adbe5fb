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

Figures: a page embeds a picture its snippets drew (``![alt](name.png)``, the file a block
wrote into the page's working directory). With ``JAXCNN_DOCS_FIGURES=DIR`` set, the child
copies every embedded image of a page it ran to ``DIR/<page's folder>/name.png``, where the
site build's hook (``docs/figures_hook.py``) picks it up. The pages run once per test
session and the site is built after them, with their figures (``tests/_site.py``, the
``docs_site`` fixture, shared with ``tests/test_browser.py``).
"""

from __future__ import annotations

import contextlib
import doctest
import importlib.util
import io
import json
import os
import re
import shutil
import sys
import tempfile
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


def _hook():
    """``docs/figures_hook.py``, the mkdocs hook (not a package module)."""
    spec = importlib.util.spec_from_file_location("figures_hook", DOCS / "figures_hook.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run_pages(out: str, pages: list[str]) -> None:
    """Child process: run each page in a fresh directory; JSON ``{page: {blocks, error}}``.

    With ``JAXCNN_DOCS_FIGURES`` set, a page's embedded images are copied there after it ran
    (those it did not write are not: the site build then reports them missing).
    """
    hook = _hook()
    figures = os.environ.get(hook.ENV)
    results = {}
    for page in pages:
        os.chdir(tempfile.mkdtemp(prefix="docs_page_"))
        try:
            results[page] = {"blocks": run_page(page), "error": None}
        except BaseException:  # noqa: BLE001 - reported per page by the test
            results[page] = {"blocks": [], "error": traceback.format_exc()}
        for image in hook.embedded_images((DOCS / page).read_text()) if figures else ():
            if Path(image).is_file():
                target = Path(figures, hook.figure_uri(page, image))
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(image, target)
    Path(out).write_text(json.dumps(results))


def test_every_page_runs_and_prints_what_it_shows(docs_site):
    # One test, not one per page: the child process runs every page once (tests/_site.py),
    # whichever xdist worker gets it, and the site is built after it, with its figures.
    # Datasets are prepared under tmp, never in the user's home.
    pages = docs_site["pages"]
    assert pages["returncode"] == 0, pages["stderr"][-5000:]
    print(f"{len(PAGES)} pages in {pages['seconds']:.1f} s")
    failures = []
    for page, result in pages["results"].items():
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


def test_site_builds_strict(docs_site):
    """``mkdocs build --strict``: no broken link or anchor, no page outside the nav, no image
    missing, every ``::: module`` resolves, no docstring warning from griffe, and every
    public name of every public module has an entry in the API reference."""
    build = docs_site["build"]
    assert build["returncode"] == 0, build["stdout"] + build["stderr"]
    assert "WARNING" not in build["stderr"], build["stderr"]
    print(f"mkdocs build --strict: {build['seconds']:.1f} s")
    anchors = set()
    for html in (docs_site["site"] / "api").rglob("index.html"):
        anchors |= set(re.findall(r'id="(jaxcnn\.[\w.]+)"', html.read_text()))
    missing = [f"{module}.{name}" for module in ["jaxcnn"] + sorted(
        f"jaxcnn.{m}" for m in _public_modules()) for name in _public_names(module)
        if not any(a.startswith(module + ".") and a.endswith("." + name) for a in anchors)]
    assert not missing, f"public names without an entry in the API reference: {missing}"


def test_every_embedded_image_is_a_png_in_the_site(docs_site):
    """Each ``![alt](name.png)`` of each page is a non-empty PNG in the built site: the figure
    its own snippets drew (none is committed: ``.gitignore``)."""
    hook = _hook()
    assert docs_site["build"]["returncode"] == 0, docs_site["build"]["stderr"]
    bad, count = [], 0
    for page in PAGES:
        for image in hook.embedded_images((DOCS / page).read_text()):
            count += 1
            path = docs_site["site"] / hook.figure_uri(page, image)
            data = path.read_bytes() if path.is_file() else b""
            if not data.startswith(b"\x89PNG\r\n\x1a\n") or len(data) < 100:
                bad.append(f"docs/{page}: {image} -> {path} "
                           f"({'missing' if not path.is_file() else f'{len(data)} bytes'})")
            assert not (DOCS / hook.figure_uri(page, image)).exists(), (
                f"docs/{page}: {image} is a file in docs/; figures are drawn by the build")
    assert count >= 8, f"only {count} embedded figures found"
    assert not bad, "embedded images that are not non-empty PNGs in the site:\n" + "\n".join(bad)


def test_figures_hook():
    hook = _hook()
    assert hook.embedded_images('![a](x.png "t") ![b](../y.png) ![c](/z.png)') == [
        "x.png", "../y.png"]
    assert hook.figure_uri("experiments/filters_demo.md", "../guide/a.png") == "guide/a.png"
    assert hook.page_digest("x") != hook.page_digest("y")


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
    # Run as a script, this file's folder (tests/, with tests/benchmarks/) would come first on
    # the path; the pages import the checkout's packages (benchmarks, experiments), as a
    # reader in the checkout would.
    sys.path[0] = str(ROOT)
    _run_pages(sys.argv[1], sys.argv[2:])
