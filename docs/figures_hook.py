"""The documentation's figures, drawn by the pages' own snippets (an mkdocs hook, ``mkdocs.yml``).

A page shows a figure with an ordinary Markdown image, ``![what it shows](name.png)``, where
``name.png`` is the file one of the page's ```python blocks writes into its working directory
(e.g. ``visualize.kernel_grid(kernel, "gabor_kernels.png")``). No figure is committed: the
files come from running the page, and this hook adds them to the site as if they were in
``docs/`` next to the page (``guide/visualization.md`` -> ``guide/gabor_kernels.png``).

Where the figures come from:

* ``JAXCNN_DOCS_FIGURES=DIR`` set (``tests/test_docs.py``, whose one execution of every page
  copies each page's embedded images there): the hook takes them from ``DIR`` and runs
  nothing. A figure missing there stays missing, and ``mkdocs build --strict`` fails on the
  page's link to it.
* otherwise (``mkdocs build``, ``mkdocs serve``): ``build/docs-figures/`` of the checkout, a
  cache. A page whose figures are missing, or whose text changed since they were drawn, is
  run first, the same way the docs test runs it (``python tests/test_docs.py``, in a fresh
  directory); ``rm -rf build/docs-figures`` draws everything again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import posixpath
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ENV = "JAXCNN_DOCS_FIGURES"
_IMAGE = re.compile(r"!\[[^\]]*\]\((?P<path>[^)\s]+)(?:\s+\"[^\"]*\")?\)")
_FENCE = re.compile(r"^```.*?^```[ \t]*$", re.M | re.S)
log = logging.getLogger("mkdocs.hooks.figures")


def embedded_images(markdown: str) -> list[str]:
    """The relative image paths a page embeds (``![alt](path)``), outside code blocks.

    Absolute URLs and paths, ``data:`` URIs and images quoted inside fenced code are left out:
    they are not files a snippet writes.

    Example:
        >>> embedded_images("![a](x.png) ![b](https://e.org/y.png)\\n```\\n![c](z.png)\\n```")
        ['x.png']
    """
    text = _FENCE.sub("", markdown)
    return [m["path"] for m in _IMAGE.finditer(text)
            if "://" not in m["path"] and not m["path"].startswith(("/", "data:"))]


def figure_uri(page: str, image: str) -> str:
    """Where the image ``image`` embedded by ``page`` lives in the site (``docs/``-relative).

    Example:
        >>> figure_uri("guide/visualization.md", "gabor_kernels.png")
        'guide/gabor_kernels.png'
    """
    return posixpath.normpath(posixpath.join(posixpath.dirname(page), image))


def page_digest(markdown: str) -> str:
    """The fingerprint of a page's text under which its cached figures are valid.

    Example:
        >>> page_digest("# a") == page_digest("# a") != page_digest("# b")
        True
    """
    return hashlib.sha256(markdown.encode()).hexdigest()


def _generate(root: Path, figures: Path, pages: dict[str, str]) -> None:
    """Run ``pages`` (``{page: text}``) as the docs test does, their figures into ``figures``."""
    runner = root / "tests" / "test_docs.py"
    if not runner.is_file():
        log.warning("no %s: cannot draw the figures of %s", runner, sorted(pages))
        return
    log.info("drawing the figures of %s (cached in %s)", ", ".join(sorted(pages)), figures)
    with tempfile.TemporaryDirectory(prefix="jaxcnn_docs_") as tmp:
        out = Path(tmp) / "results.json"
        env = {**os.environ, ENV: str(figures), "JAX_PLATFORMS": os.environ.get(
                   "JAX_PLATFORMS", "cpu"),
               "PYTHONPATH": os.pathsep.join(filter(None, [str(root),
                                                           os.environ.get("PYTHONPATH")]))}
        proc = subprocess.run([sys.executable, str(runner), str(out), *sorted(pages)],
                              cwd=tmp, env=env, capture_output=True, text=True, check=False)
        results = json.loads(out.read_text()) if out.is_file() else {}
    for page, text in pages.items():
        error = results.get(page, {}).get("error") or (
            None if page in results else f"exit status {proc.returncode}: {proc.stderr[-2000:]}")
        if error:
            log.warning("docs/%s: its snippets failed, so its figures are missing:\n%s",
                        page, error)
            continue
        stamp = figures / (page + ".sha256")
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(page_digest(text))


def on_files(files: Any, config: Any) -> Any:
    """mkdocs event: add each page's embedded figures, drawn first where needed."""
    from mkdocs.structure.files import File

    root = Path(config.config_file_path).resolve().parent
    given = os.environ.get(ENV)
    figures = Path(given) if given else root / "build" / "docs-figures"
    wanted: dict[str, list[str]] = {}
    texts: dict[str, str] = {}
    for page in files.documentation_pages():
        text = Path(page.abs_src_path).read_text(encoding="utf-8")
        uris = [figure_uri(page.src_uri, image) for image in embedded_images(text)]
        uris = [uri for uri in uris if files.get_file_from_path(uri) is None]
        if uris:
            wanted[page.src_uri], texts[page.src_uri] = uris, text
    if not given:
        stale = {page: texts[page] for page, uris in wanted.items()
                 if any(not (figures / uri).is_file() for uri in uris)
                 or not (figures / (page + ".sha256")).is_file()
                 or (figures / (page + ".sha256")).read_text() != page_digest(texts[page])}
        if stale:
            _generate(root, figures, stale)
    for uris in wanted.values():
        for uri in dict.fromkeys(uris):
            if (figures / uri).is_file() and files.get_file_from_path(uri) is None:
                files.append(File(uri, str(figures), config.site_dir, config.use_directory_urls))
    return files
