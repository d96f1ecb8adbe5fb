"""The built documentation in a real browser: headless Chromium shows the figures, nothing
overflows the page.

The site is the one ``tests/test_docs.py`` builds (the ``docs_site`` fixture: one build per
test session, its figures drawn by the pages' own snippets), served over HTTP from a local
port as a reader's browser would get it, and opened with Playwright driving the system's
Chromium (``/usr/bin/chromium`` from Debian's ``chromium`` package, which ``.ci/run``
installs; ``JAXCNN_CHROMIUM`` names another executable). Without a Chromium the tests are
skipped, saying so (a failure in CI, ``conftest.py``).

For each page, at a desktop and a phone width: every ``<img>`` has loaded
(``complete`` and ``naturalWidth > 0``), the page has at least the figures it embeds, and no
element reaches past the right edge of the window unless it is inside a scrolling (or
clipping) container, such as the one Material puts around wide tables; the document itself
is no wider than the window.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading

import pytest

PAGES = {  # the page (site path) -> figures it embeds at least
    "": 0,
    "guide/visualization/": 5,
    "guide/performance/": 3,
    "experiments/filters_demo/": 1,
}
VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}

_IMAGES = """() => [...document.images].map(i => ({src: i.getAttribute('src'),
    complete: i.complete, naturalWidth: i.naturalWidth}))"""
_OVERFLOW = """() => {
  const width = document.documentElement.clientWidth;
  const contained = el => {
    for (let a = el.parentElement; a && a !== document.body; a = a.parentElement) {
      if (['auto', 'scroll', 'hidden', 'clip'].includes(getComputedStyle(a).overflowX)) {
        return true;
      }
    }
    return false;
  };
  const out = [];
  for (const el of document.body.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    const style = getComputedStyle(el);
    if (r.width === 0 || r.height === 0 || style.visibility === 'hidden') continue;
    if (r.right > width + 1 && !contained(el)) {
      out.push(`${el.tagName.toLowerCase()}.${el.className} right=${Math.round(r.right)}`);
    }
  }
  return {scrollWidth: document.documentElement.scrollWidth, width, overflowing: out};
}"""


def _chromium() -> str | None:
    given = os.environ.get("JAXCNN_CHROMIUM")
    if given:
        return given
    return next(filter(None, map(shutil.which, ["chromium", "chromium-browser",
                                                "google-chrome", "google-chrome-stable"])),
                None)


@pytest.fixture(scope="module")
def site_url(request):
    """The built site over HTTP on a free local port (a thread of this process)."""
    if _chromium() is None:
        pytest.skip("no Chromium: install the system's package (Debian: apt-get install "
                    "chromium) or set JAXCNN_CHROMIUM")
    pytest.importorskip("playwright", reason="playwright is in the test extra")
    site = request.getfixturevalue("docs_site")
    assert site["build"]["returncode"] == 0, site["build"]["stderr"][-3000:]
    handler = functools.partial(_QuietHandler, directory=str(site["site"]))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # no access log on stderr
        pass


@pytest.fixture(scope="module")
def browser(site_url):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium())
        yield browser
        browser.close()


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_pages_show_their_figures_and_do_not_overflow(browser, site_url, viewport):
    context = browser.new_context(viewport=VIEWPORTS[viewport])
    failures = []
    try:
        for path, figures in PAGES.items():
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
            response = page.goto(site_url + path, wait_until="load")
            assert response is not None and response.ok, f"/{path}: HTTP error"
            images = page.evaluate(_IMAGES)
            broken = [i["src"] for i in images if not i["complete"] or i["naturalWidth"] <= 0]
            if broken:
                failures.append(f"/{path}: images not shown: {broken}")
            if len(images) < figures:
                failures.append(f"/{path}: {len(images)} images, the page embeds {figures}")
            layout = page.evaluate(_OVERFLOW)
            if layout["scrollWidth"] > layout["width"] or layout["overflowing"]:
                failures.append(f"/{path} at {viewport} width {layout['width']}: document "
                                f"{layout['scrollWidth']} px wide; elements past the right "
                                f"edge: {layout['overflowing'][:8]}")
            if errors:
                failures.append(f"/{path}: JavaScript errors {errors}")
            page.close()
    finally:
        context.close()
    assert not failures, "\n".join(failures)


def test_theme_has_search_copy_buttons_dark_mode_and_scrolling_tables(browser, site_url):
    page = browser.new_page(viewport=VIEWPORTS["desktop"])
    try:
        page.goto(site_url, wait_until="load")
        assert page.locator("input.md-search__input").count() == 1
        # two palettes (default and slate), each with its toggle
        schemes = page.eval_on_selector_all(
            "input[data-md-color-scheme]", "els => els.map(e => e.dataset.mdColorScheme)")
        assert sorted(schemes) == ["default", "slate"]
        page.locator("label.md-header__button[for^='__palette']:visible").first.click()
        assert page.evaluate("document.body.dataset.mdColorScheme") == "slate"
        # the home page's layer table scrolls inside its column
        assert page.locator("table").first.evaluate(
            "t => getComputedStyle(t.closest('.md-typeset__scrollwrap') || t.parentElement)"
            ".overflowX") in ("auto", "scroll")
        page.goto(site_url + "guide/visualization/", wait_until="load")
        # material's copy button on every code block
        assert page.locator("button[data-md-type='copy'], button.md-clipboard").count() >= 5
    finally:
        page.close()
