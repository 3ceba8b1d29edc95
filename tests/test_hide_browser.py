"""A hidden post is nowhere in the published site (#11), checked in a real
headless Chromium (Debian's, through Playwright's executable_path): render
the site, `chatarchive hide` a post, re-render its session incrementally
(`recap DB SESSION --out site/`), and the post's text is in no page's text,
in no Pagefind search result for a word of it, and in no Atom feed."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import needs_chromium
from recap_helpers import SECOND, StaticServer, recap_archive
from test_recap_browser import Tab

from chatarchive import Archive
from chatarchive.cli import cli

pytestmark = needs_chromium



def rare_post(db: Path) -> tuple[str, str, str]:
    """(id, text, word) of a post of SECOND with a word no other post of the archive has."""
    with Archive(db) as a:
        rows = a.conn.execute(
            """SELECT p.id, p.text FROM posts p JOIN session_posts sp ON sp.post_id = p.id
               JOIN sessions s ON s.id = sp.session_id WHERE s.slug = ? AND p.is_repost = 0
               AND p.deleted_at IS NULL AND p.question_id IS NULL ORDER BY p.id""", [SECOND]).fetchall()
        for post_id, text in rows:
            for word in sorted(set(re.findall(r"[A-Za-z]{7,}", text or "")), key=str.lower):
                n = a.conn.execute("SELECT count(*) FROM posts WHERE text LIKE ?", [f"%{word}%"]).fetchone()[0]
                if n == 1:
                    return post_id, text, word
    raise AssertionError("no post with a word of its own")


def search(tab: Tab, base: str, word: str) -> list[str]:
    """The texts of Pagefind's results for ``word`` (waits for the answer, results or none)."""
    page = tab.goto(f"{base}/search.html?q={word}")
    page.wait_for_function(
        "() => document.querySelector('.pagefind-ui__result') || "
        "/no results/i.test(document.querySelector('.pagefind-ui__message')?.textContent || '')",
        timeout=15_000)
    page.wait_for_timeout(300)  # results render in batches
    return [r.inner_text() for r in page.locator(".pagefind-ui__result").all()]


def page_texts(tab: Tab, site: Path) -> dict[str, str]:
    out = {}
    for path in sorted(site.rglob("*.html")):
        if "pagefind" in path.parts:
            continue
        out[str(path.relative_to(site))] = tab.goto(path.as_uri()).inner_text("body")
    return out


def test_a_hidden_post_is_in_no_page_no_search_result_and_no_feed(browser, runner, tmp_path):
    db = tmp_path / "chats.db"
    recap_archive(db)
    site = tmp_path / "site"
    post_id, text, word = rare_post(db)
    snippet = " ".join(text.split()[:6])
    res = runner.invoke(cli, ["recap", str(db), "--out", str(site)])
    assert res.exit_code == 0, res.output
    with StaticServer(site) as server:
        tab = Tab(browser, allow=(server.base, "file://"))
        try:
            # before: the post is on its pages and search finds it (so the checks below can fail)
            assert any(word in t for t in page_texts(tab, site).values())
            assert any(word.lower() in r.lower() for r in search(tab, server.base, word))

            res = runner.invoke(cli, ["hide", str(db), post_id, "--reason", "spam"])
            assert res.exit_code == 0, res.output
            res = runner.invoke(cli, ["recap", str(db), SECOND, "--out", str(site)])
            assert res.exit_code == 0, res.output

            texts = page_texts(tab, site)
            assert len(texts) > 5
            assert [name for name, t in texts.items() if word in t or snippet in t] == []
            assert [r for r in search(tab, server.base, word) if word.lower() in r.lower()] == []
            assert tab.errors == []
        finally:
            tab.close()
    feeds = [site / "feed.xml", *sorted((site / "feeds").glob("*.xml"))]
    for feed in (f for f in feeds if f.exists()):
        body = feed.read_text("utf-8")
        assert word not in body and snippet not in body, feed
