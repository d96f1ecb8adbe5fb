"""The documentation site, built once per test session: its pages run, then ``mkdocs build``.

``tests/test_docs.py`` checks the pages' output and the build, ``tests/test_browser.py``
opens the built pages in Chromium; both take :func:`build_once`'s result through the
session fixture ``docs_site`` (``tests/conftest.py``). The pages run first, their figures
going to ``<dir>/figures`` (``JAXCNN_DOCS_FIGURES``), and the site is built after them, so
the build shows what the one execution of the snippets drew.

Under pytest-xdist each worker has its own session: the first worker to ask builds under a
file lock in the directory all workers share, the others wait for it and read its result
(the recipe of pytest-xdist's documentation). ``tests/conftest.py`` runs the test that
builds first and the other users of the site last, so that nobody waits in ``make test``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))
BUILDER = "tests/test_docs.py::test_every_page_runs_and_prints_what_it_shows"
"""The test that builds the site in ``make test`` (ordered first)."""


def _env(tmp: Path, figures: Path) -> dict[str, str]:
    return {**os.environ, "TMPDIR": str(tmp), "JAXCNN_DATA_DIR": str(tmp / "data"),
            "TFDS_DATA_DIR": str(tmp / "tfds"), "JAX_PLATFORMS": "cpu",
            "JAXCNN_DOCS_FIGURES": str(figures), "NO_MKDOCS_2_WARNING": "1",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT),
                                                        os.environ.get("PYTHONPATH")])),
            "XLA_FLAGS": " ".join([os.environ.get("XLA_FLAGS", ""),
                                   "--xla_backend_optimization_level=0",
                                   "--xla_llvm_disable_expensive_passes=true"]).strip()}


def build(dest: Path) -> dict[str, Any]:
    """Run every page's snippets, then ``mkdocs build --strict`` into ``dest / "site"``.

    Returns ``{"pages": {returncode, stderr, seconds, results}, "build": {returncode,
    stdout, stderr, seconds}, "site": path}`` (``results``: ``tests/test_docs.py``'s
    per-page ``{blocks, error}``); JSON-serialisable but for ``site``.
    """
    dest.mkdir(parents=True, exist_ok=True)
    figures, out = dest / "figures", dest / "results.json"
    env = _env(dest, figures)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, str(ROOT / "tests" / "test_docs.py"), str(out),
                           *PAGES], cwd=dest, env=env, capture_output=True, text=True,
                          timeout=900)
    pages = {"returncode": proc.returncode, "stderr": proc.stderr[-20000:],
             "seconds": time.perf_counter() - start,
             "results": json.loads(out.read_text()) if out.is_file() else {}}
    start = time.perf_counter()
    # Not --quiet: it drops warnings before --strict counts them (a missing image would pass).
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict",
         "-f", str(ROOT / "mkdocs.yml"), "-d", str(dest / "site")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    site = {"returncode": proc.returncode, "stdout": proc.stdout[-20000:],
            "stderr": proc.stderr[-20000:], "seconds": time.perf_counter() - start}
    return {"pages": pages, "build": site, "site": dest / "site"}


def build_once(shared: Path) -> dict[str, Any]:
    """:func:`build` into ``shared / "docs_site"`` unless a process already did (file lock)."""
    from filelock import FileLock

    dest = shared / "docs_site"
    record = shared / "docs_site.json"
    with FileLock(str(record) + ".lock"):
        if record.is_file():
            result = json.loads(record.read_text())
        else:
            result = build(dest)
            record.write_text(json.dumps({**result, "site": str(result["site"])}))
    return {**result, "site": Path(result["site"])}
