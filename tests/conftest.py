"""Shared pytest fixtures: a fresh archive, a CLI runner, paths to fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from chatarchive.archive.schema import open_db

HERE = Path(__file__).parent
FIXTURES = HERE / "fixtures"
# Real files from the real services (not committed): ../shared/fixtures from
# the project root, present on developer machines and in CI, or wherever this
# variable points (README.md, "Set up", names it).
SHARED_FIXTURES_ENV = "CHATARCHIVE_SHARED_FIXTURES"
SHARED_FIXTURES = Path(os.environ.get(SHARED_FIXTURES_ENV, HERE.parent.parent / "shared" / "fixtures"))


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "chats.db"


@pytest.fixture
def db(db_path: Path):
    return open_db(db_path, create=True)


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


# Browser tests: Debian's chromium driven by Playwright (never a downloaded
# browser).  CI installs chromium, so these skip only on a machine without it.
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
needs_chromium = [pytest.mark.browser,
                  pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian chromium at /usr/bin/chromium")]


# Unbreakable names for the "long names wrap on a phone" checks (recap and Datasette).
LONG_NAME = "Wolfeschlegelsteinhausenbergerdorffvoralternwarengewissenhaftschaferswessenschafewarenwohlgepflegt"
LONG_HANDLE = "averyveryveryverylonghandlewithoutanybreakopportunitiesatall_1234567"
LONG_URL = "https://example.org/" + "a" * 140 + "?q=" + "b" * 60
LONG_TAG = "Supercalifragilisticexpialidociousandthensomemorewordsglued"
# Elements that reach past the right edge of the window, other than those a
# scrolling or clipping box holds (the section bar scrolls; link cards end in "…").
STICKS_OUT = """[...document.querySelectorAll('%s')].filter(e => {
    const r = e.getBoundingClientRect();
    if (!r.width || r.right <= window.innerWidth + 1) return false;
    for (let a = e.parentElement; a && a !== document.body; a = a.parentElement)
        if (getComputedStyle(a).overflowX !== 'visible') return false;
    return true;
}).map(e => e.tagName + '.' + e.className).slice(0, 5)"""


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium per test module."""
    if not CHROMIUM.exists():
        pytest.skip("needs Debian chromium at /usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    """Where screenshots go: $CHATARCHIVE_SCREENSHOTS to keep them, else a temp folder."""
    where = os.environ.get("CHATARCHIVE_SCREENSHOTS")
    path = Path(where) if where else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


def needs_shared_fixtures():
    return pytest.mark.skipif(not SHARED_FIXTURES.exists(), reason="../shared/fixtures not present")
