"""Datasette made readable (issue 13, step 7), measured in a real headless
Chromium (Debian's) against `chatarchive serve` on a real port: the
transcript's text column takes at least 40% of the table at 1280 px and
nothing scrolls sideways at 1280 or 390 px, tab titles are the canned
queries' titles, avatars are initials (with the picture over them when it
loads), times carry their zone, column descriptions are folded below the
table's controls, and dark mode follows the system.  Screenshots are kept
where CHATARCHIVE_SCREENSHOTS=DIR says."""

from __future__ import annotations

import re

import pytest
from conftest import needs_chromium
from test_serve import build_archive, start_server, stop_server

from chatarchive.archive.schema import open_db
from chatarchive.present.text import initials, local_datetime
from chatarchive.present.views import session_zone

pytestmark = needs_chromium
SLUG = "growthchat-2026-10-14"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    path = build_archive(tmp_path_factory.mktemp("readable") / "chats.db")
    proc, base = start_server(path, "--quiet")
    try:
        yield base, path
    finally:
        stop_server(proc)




def open_page(browser, url: str, width: int, scheme: str = "light"):
    # pictures are hotlinked from the web: refused here, so the initials must show
    context = browser.new_context(viewport={"width": width, "height": 900}, color_scheme=scheme)
    context.route(re.compile(r"^https?://(?!127\.0\.0\.1)"), lambda r: r.abort())
    page = context.new_page()
    page.goto(url, wait_until="networkidle")
    return context, page


@pytest.mark.parametrize("width", [1280, 390])
def test_transcript_geometry(served, browser, shots, width):
    base, _ = served
    context, page = open_page(browser, f"{base}/chats/session_transcript?session={SLUG}", width)
    try:
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, overflow
        if width == 1280:
            table, text = page.evaluate(
                "[document.querySelector('table.rows-and-columns').getBoundingClientRect().width,"
                " document.querySelector('th.col-text').getBoundingClientRect().width]")
            assert text >= 0.4 * table, (text, table)
        assert page.title() == "Session transcript · chats"
        target = shots / f"datasette-transcript-{width}.png"
        page.screenshot(path=str(target))
        assert target.stat().st_size > 10_000
    finally:
        context.close()


def test_avatars_are_initials_and_times_carry_the_chat_zone(served, browser):
    base, path = served
    db = open_db(path)
    zone_name, first = db.execute(
        "SELECT s.timezone, min(p.created_at) FROM sessions s JOIN session_posts sp ON sp.session_id = s.id "
        "JOIN posts p ON p.id = sp.post_id WHERE s.slug = ?", [SLUG]).fetchone()
    db.conn.close()
    local = local_datetime(first, session_zone(zone_name))
    context, page = open_page(browser, f"{base}/chats/session_transcript?session={SLUG}", 1280)
    try:
        # the pictures were refused: each broken one shows the recap's initials over it, opaque
        handle = page.locator("td.col-author_handle").first.inner_text().strip().lstrip("@")
        img = page.locator("td.col-avatar_url img.ca-avatar").first
        assert img.evaluate("i => i.complete && i.naturalWidth") == 0
        after = img.evaluate("i => { const s = getComputedStyle(i, '::after');"
                             " return [s.content, s.position, s.backgroundColor, i.getBoundingClientRect().width] }")
        assert after[0] == f'"{initials(None, handle)}"' and after[1] == "absolute", after
        assert after[2] == "rgb(217, 226, 236)" and after[3] >= 24, after
        when = page.locator("td.col-created_at").first.inner_text()
        assert when.split() == [local.strftime("%Y-%m-%d"), local.strftime("%H:%M:%S"), local.strftime("%Z")]
    finally:
        context.close()


def test_header_contrast_column_notes_folded_and_dark_mode(served, browser, shots):
    base, _ = served
    for scheme in ("light", "dark"):
        context, page = open_page(browser, f"{base}/chats/sessions", 1280, scheme)
        try:
            colour = page.evaluate("getComputedStyle(document.querySelector('header a')).color")
            assert colour == "rgb(255, 255, 255)"
            assert not page.locator("dl.column-descriptions").is_visible()
            notes = page.locator("details.ca-columns")
            assert notes.count() == 1 and notes.get_attribute("open") is None
            top = page.evaluate("document.querySelector('table.rows-and-columns').getBoundingClientRect().top")
            assert top < 900, top  # the table starts on the first screen
            bg = page.evaluate("getComputedStyle(document.body).backgroundColor")
            assert (bg == "rgb(17, 17, 22)") == (scheme == "dark"), bg
            page.screenshot(path=str(shots / f"datasette-sessions-1280-{scheme}.png"))
        finally:
            context.close()
