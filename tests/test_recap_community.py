"""Issue #13: the community page of a hashtag, the resources digest (one
canonical URL rule) and no tracking link anywhere in the site.

The expected numbers are worked out here from who came to which #CommChat
(``community_helpers.ATTENDANCE``), not read back from the code."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
from community_helpers import ATTENDANCE, GUIDE, HOST, SHORT, TRACKED, WEEKS, commchat_archive

from chatarchive.recap.site import build_site
from chatarchive.urls import canonical_url, is_tracking_param, link_href


class Hrefs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        for k, v in attrs:
            if k in ("href", "src") and v:
                self.hrefs.append(v)


def hrefs_of(path: Path) -> list[str]:
    p = Hrefs()
    p.feed(path.read_text("utf-8"))
    return p.hrefs


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("community")
    db = commchat_archive(tmp)
    result = build_site(db, tmp / "site", search=False)
    return tmp / "site", result, db


def text_of(path: Path) -> str:
    s = re.sub(r"<style>.*?</style>", "", path.read_text("utf-8"), flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", s))


def rows_of(html: str, caption: str) -> list[list[str]]:
    """The body rows of the table with this caption, as cell texts."""
    table = html.split(caption, 1)[1].split("</table>", 1)[0]
    out = []
    for tr in re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>", 1)[1], flags=re.S):
        out.append([re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", td)).strip()
                    for td in re.findall(r"<td[^>]*>(.*?)</td>", tr, flags=re.S)])
    return out


# --------------------------------------------------------------------------
# canonical_url: one rule


@pytest.mark.parametrize("a, b", [
    ("HTTPS://Example.org:443/a/?utm_source=x#top", "https://example.org/a"),
    ("http://example.org:80/", "http://example.org"),
    ("https://example.org/p?id=1&fbclid=9&gclid=8&mc_cid=1&mc_eid=2&igshid=3&ref_src=tw&si=abc", "https://example.org/p?id=1"),
    ("https://x.com/u/status/1?s=20&t=abc", "https://x.com/u/status/1"),
])
def test_same_page_same_canonical_url(a, b):
    assert canonical_url(a) == canonical_url(b)


@pytest.mark.parametrize("a, b", [
    ("https://example.org/a", "https://example.org/b"),
    ("https://example.org/p?id=1", "https://example.org/p?id=2"),
    ("https://example.org/?s=20", "https://example.org/"),  # "s" is X's share parameter only on X
    ("http://example.org:8080/", "http://example.org/"),
])
def test_different_pages_differ(a, b):
    assert canonical_url(a) != canonical_url(b)


def test_link_href_drops_tracking_and_short_links():
    assert link_href("https://t.co/abc") is None
    assert link_href("javascript:alert(1)") is None
    href = link_href("https://Example.org/a?utm_campaign=z&q=1#frag")
    assert href == "https://example.org/a?q=1#frag"


# --------------------------------------------------------------------------
# The community page


def expected_timeline():
    """Per week: participants, newcomers (None the first week), returning,
    retained in the next 4 weeks (None the last)."""
    members = [set(ATTENDANCE[w]) | {HOST} for w in range(WEEKS)]
    out = []
    seen: set[str] = set()
    for w in range(WEEKS):
        later = set().union(*members[w + 1:w + 5]) if w + 1 < WEEKS else None
        out.append((len(members[w]), None if w == 0 else len(members[w] - seen - {HOST}),
                    len(members[w] & seen), None if later is None else len(members[w] & later)))
        seen |= members[w]
    return out


def test_community_page_numbers(site):
    out, _, _ = site
    page = out / "community" / "commchat.html"
    html = page.read_text("utf-8")
    rows = rows_of(html, "Every chat: people")
    assert len(rows) == WEEKS
    for (_date, _posts, people, new, returning, seen_again), (n, newcomers, back, retained) in zip(
            reversed(rows), expected_timeline()):
        assert int(people) == n
        assert new == ("unknown" if newcomers is None else str(newcomers))
        assert int(returning) == back
        if retained is None:
            assert seen_again == "—"
        else:
            assert seen_again.startswith(f"{retained} ({round(100 * retained / n)}%)")
    # regulars: at least half of the five chats (3)
    counts = {h: sum(h in ATTENDANCE[w] for w in range(WEEKS)) for h in {h for v in ATTENDANCE.values() for h in v}}
    regulars = {h for h, c in counts.items() if c >= 3} | {HOST}
    section = html.split('id="regulars"', 1)[1].split("</section>", 1)[0]
    shown = set(re.findall(r"<small>@(\w+) ·", section))
    assert shown == regulars


def test_every_question_sorted_by_answers_with_time_to_first_answer(site):
    out, _, _ = site
    html = (out / "community" / "commchat.html").read_text("utf-8")
    by_answers = rows_of(html, "By answers, most first")
    by_date = rows_of(html, "By date, oldest first")
    assert len(by_answers) == len(by_date) == 2 * WEEKS  # Q1 and Q2 every week
    answers = [int(r[3]) for r in by_answers]
    assert answers == sorted(answers, reverse=True)
    assert answers[0] == max(len(v) for v in ATTENDANCE.values())
    # Q1 answers come 2 minutes after it, Q2's 3 minutes after
    assert {r[4] for r in by_answers if " Q1: " in f" {r[1]} "} == {"2 min"}
    assert {r[4] for r in by_answers if "Q2:" in r[1]} == {"3 min"}
    # the top of the page: the questions that drew the most answers, linking to their anchors
    top = html.split('id="top-q-h"', 1)[1].split("</section>", 1)[0]
    first = re.search(r'<a href="\.\./sessions/([^"#]+)\.html#(q\d+)"', top)
    assert first and first.group(2) == "q1"
    assert (out / "sessions" / f"{first.group(1)}.html").read_text("utf-8").count(f'id="{first.group(2)}"') == 1


def test_community_page_is_linked_from_hashtag_page_and_index(site):
    out, _, _ = site
    assert "../community/commchat.html" in hrefs_of(out / "hashtags" / "commchat.html")
    assert "community/commchat.html" in hrefs_of(out / "index.html")


def test_no_script_on_community_page(site):
    out, _, _ = site
    html = (out / "community" / "commchat.html").read_text("utf-8")
    assert "<script" not in html and "script-src 'none'" in html


# --------------------------------------------------------------------------
# Resources


def test_links_deduped_with_sharers_per_session_and_question(site):
    out, _, _ = site
    week2 = next(p for p in (out / "sessions").glob("*.html") if "2026-10-08" in p.name)
    html = week2.read_text("utf-8")
    side = html.split('id="links-h"', 1)[1].split("</section>", 1)[0]
    guide = [h for h in re.findall(r'href="([^"]+)"', side) if canonical_url(h) == canonical_url(GUIDE)]
    assert len(guide) == 1  # three spellings, one link
    assert re.search(r"shared by @alice, @bob, @carol", side)
    qa = html.split('id="q1"', 1)[1].split('id="q2"', 1)[0]
    assert "link shared in this question" in qa and "@alice, @bob, @carol" in qa
    community = (out / "community" / "commchat.html").read_text("utf-8")
    res = community.split('id="resources"', 1)[1]
    assert sum(canonical_url(h) == canonical_url(GUIDE) for h in re.findall(r'href="([^"]+)"', res)) == 1
    assert sum(canonical_url(h) == canonical_url(TRACKED) for h in re.findall(r'href="([^"]+)"', res)) == 1


def test_no_href_to_tco_or_with_tracking_anywhere(site):
    out, _, _ = site
    checked = 0
    for page in out.rglob("*.html"):
        for href in hrefs_of(page):
            parts = urlsplit(href)
            assert parts.hostname != "t.co", (page, href)
            assert not any(is_tracking_param(k, parts.hostname or "") for k, _ in parse_qsl(parts.query)), (page, href)
            checked += 1
    assert checked > 100
    # the unexpanded short link is still shown, as text
    week3 = next(p for p in (out / "sessions").glob("*.html") if "2026-10-15" in p.name)
    assert SHORT.split("//", 1)[1] in week3.read_text("utf-8")


def test_incremental_run_keeps_community_of_every_session(site, tmp_path):
    out, _, db = site
    import shutil

    copy = tmp_path / "site"
    shutil.copytree(out, copy)
    before = (copy / "community" / "commchat.html").read_bytes()
    result = build_site(db, copy, ["commchat-2026-10-29"], search=False)
    assert result.sessions == 1
    assert (copy / "community" / "commchat.html").read_bytes() == before


# --------------------------------------------------------------------------
# Reply network


def test_reply_network_svg_and_pairs(site):
    out, _, _ = site
    html = next(p for p in (out / "sessions").glob("*.html") if "2026-10-08" in p.name).read_text("utf-8")
    net = html.split('id="network"', 1)[1].split("</section>", 1)[0]
    svg = net.split("<svg", 1)[1].split("</svg>", 1)[0]
    assert "<script" not in svg and "on" not in re.findall(r"<\w+ (\w+)=", svg)
    # alice replied to bob twice (each reply also @mentions him: counted once), carol to alice once
    pairs = [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", li)).strip()
             for li in re.findall(r"<li>(.*?)</li>", net.split('class="pairs"', 1)[1])]
    assert pairs[0].startswith("@alice ↔ @bob 2 ")
    assert pairs[1].startswith("@alice ↔ @carol 1 ")
    assert len(pairs) == 2
    assert svg.count("<circle") == 3 and svg.count("<line") == 2
    # a week without replies or mentions has no network section
    week1 = next(p for p in (out / "sessions").glob("*.html") if "2026-10-01" in p.name).read_text("utf-8")
    assert 'id="network"' not in week1


# --------------------------------------------------------------------------
# Link previews and feeds

ATOM = "{http://www.w3.org/2005/Atom}"


def meta(html: str, prop: str) -> str | None:
    m = re.search(rf'<meta (?:property|name)="{re.escape(prop)}" content="([^"]*)"', html)
    return m.group(1) if m else None


def check_atom(path: Path) -> list:
    """Parse an Atom feed and check what RFC 4287 requires of it; its entries."""
    import xml.etree.ElementTree as ET

    root = ET.parse(path).getroot()
    assert root.tag == f"{ATOM}feed"
    for required in ("id", "title", "updated"):
        assert (root.findtext(f"{ATOM}{required}") or "").strip(), required
    assert root.find(f"{ATOM}author/{ATOM}name") is not None
    entries = root.findall(f"{ATOM}entry")
    for e in entries:
        for required in ("id", "title", "updated", "summary"):
            assert (e.findtext(f"{ATOM}{required}") or "").strip(), required
        assert e.find(f"{ATOM}link[@rel='alternate']") is not None
    ids = [e.findtext(f"{ATOM}id") for e in entries]
    assert len(set(ids)) == len(ids)
    return entries


def test_feeds_without_base_url_are_relative_and_valid(site):
    out, _, _ = site
    for feed in (out / "feed.xml", out / "feeds" / "commchat.xml"):
        entries = check_atom(feed)
        assert len(entries) == WEEKS
        updated = [e.findtext(f"{ATOM}updated") for e in entries]
        assert updated == sorted(updated, reverse=True)  # newest first
        for e in entries:
            href = e.find(f"{ATOM}link[@rel='alternate']").get("href")
            assert "://" not in href and (feed.parent / href).resolve().is_file(), href
    # pages announce the feeds
    assert 'type="application/atom+xml"' in (out / "index.html").read_text("utf-8")


def test_session_pages_have_preview_tags_and_cards(site):
    from PIL import Image

    out, _, _ = site
    for page in (out / "sessions").glob("*.html"):
        html = page.read_text("utf-8")
        assert meta(html, "og:title") and meta(html, "og:description") and meta(html, "twitter:card")
        assert meta(html, "og:url") is None  # no --base-url: no address to give
        image = meta(html, "og:image")
        card = (page.parent / image).resolve()
        with Image.open(card) as img:
            assert img.size == (1200, 630) and img.format == "PNG"


def test_base_url_makes_feeds_cards_and_og_url_absolute(site, tmp_path):
    _, _, db = site
    base = "https://chats.example.org/comm"
    out = tmp_path / "site"
    build_site(db, out, search=False, base_url=base)
    html = next((out / "sessions").glob("*.html"))
    text = html.read_text("utf-8")
    assert meta(text, "og:url") == f"{base}/sessions/{html.name}"
    assert meta(text, "og:image") == f"{base}/cards/{html.stem}.png"
    for e in check_atom(out / "feeds" / "commchat.xml"):
        assert e.find(f"{ATOM}link[@rel='alternate']").get("href").startswith(base + "/sessions/")


def test_bad_base_url_is_one_clear_error(site, tmp_path):
    from chatarchive.errors import ChatArchiveError

    _, _, db = site
    with pytest.raises(ChatArchiveError, match="--base-url"):
        build_site(db, tmp_path / "site", search=False, base_url="javascript:alert(1)")
    assert not (tmp_path / "site").exists()


def test_unchanged_cards_and_feeds_are_not_rewritten(site, tmp_path):
    import shutil

    out, _, db = site
    copy = tmp_path / "site"
    shutil.copytree(out, copy)
    stamps = {p: p.stat().st_mtime_ns for p in [*copy.glob("cards/*.png"), copy / "feed.xml"]}
    result = build_site(db, copy, search=False)
    assert result.sessions == WEEKS
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert result.written <= 1  # (the manifest at most)
