"""Fixtures of ``tests/``: the documentation site built once per session (``tests/_site.py``)."""

from __future__ import annotations

import os

import pytest

from tests import _site


@pytest.fixture(scope="session")
def docs_site(tmp_path_factory):
    """The pages' results and the built site (:func:`tests._site.build`), one build per run:
    xdist workers share it through the run's base temporary directory."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    return _site.build_once(shared)


def pytest_collection_modifyitems(config, items):
    """The test that builds the site first, the other tests that use it last: under xdist
    the build then runs while the other worker works through the suite, and nobody waits."""
    def rank(item):
        if "docs_site" not in getattr(item, "fixturenames", ()):
            return 1
        return 0 if item.nodeid == _site.BUILDER else 2
    items.sort(key=rank)  # stable: the order within each group is kept
