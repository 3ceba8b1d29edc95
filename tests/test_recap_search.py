"""Search that finds the answer (issue 13, step 6), and sites that never keep
what the host withheld since (the digest's editorial fingerprint).

The made-up #CommChat (community_helpers) is recapped for real; the search
records are read back from the site's digest and from Pagefind's own files,
and a headless Chromium (Debian's) runs searches on the site served over a
local http server."""

from __future__ import annotations

import gzip
import json
import re
import shutil
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from community_helpers import ATTENDANCE, FIRST_START, HOST, ZONE, commchat_archive
from recap_helpers import StaticServer

from chatarchive.archive import editorial, queries
from chatarchive.archive.schema import open_db
from chatarchive.cli import cli
from chatarchive.recap.digest import DIGEST
from chatarchive.recap.site import build_site


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("search")
    db = commchat_archive(tmp)
    result = build_site(db, tmp / "site")
    assert result.search_ok, result.search
    return tmp, db, tmp / "site"


def records_of(site: Path) -> list[dict]:
    data = json.loads((site / DIGEST).read_text("utf-8"))
    return [r for s in data["sessions"] for r in s["records"]]


def week_date(week: int) -> str:
    return (FIRST_START + timedelta(days=7 * week)).astimezone(ZoneInfo(ZONE)).strftime("%Y-%m-%d")


def test_a_record_per_question_with_its_anchor_and_filters(built):
    _, db, site = built
    records = records_of(site)
    sessions = queries.list_sessions(db)
    assert len(sessions) == len(ATTENDANCE)
    questions = [r for r in records if re.search(r"#q\d+$", r["url"])]
    assert len(questions) == 2 * len(ATTENDANCE)  # Q1 and Q2 every week
    for week, people in ATTENDANCE.items():
        date = week_date(week)
        q1 = next(r for r in questions if r["url"].endswith("#q1") and r["filters"]["date"] == [date])
        assert q1["filters"]["hashtag"] == ["#CommChat"] and q1["filters"]["platform"] == ["X"]
        assert set(q1["filters"]["author"]) == {"@" + HOST, *("@" + h for h in people)}
        for handle in people:  # every answer's text is in its question's record
            assert f"A1: {handle} learned something in week {week + 1}" in q1["content"]
        assert q1["title"].startswith(f"Q1: What did you learn in week {week + 1}?")
    # the page's badges, handles and times are not in the text a snippet is cut from
    for r in records:
        assert "(host)" not in r["content"] and not re.search(r"\b\d{1,2}:\d{2}\b", r["content"])
        assert not r["content"].startswith("@" + HOST)


def test_people_pages_are_records(built):
    _, _, site = built
    urls = {r["url"] for r in json.loads((site / DIGEST).read_text())["sessions"][0]["records"]}
    assert all(u.startswith("sessions/") for u in urls)
    people = sorted(p.relative_to(site).as_posix() for p in (site / "people").glob("*.html"))
    entry = json.loads((site / "pagefind" / "pagefind-entry.json").read_text())
    counted = sum(v["page_count"] for v in entry["languages"].values())
    # sessions x (page + Q1 + Q2) + the one conversation outside the Q&A? none here: + the people
    per_session = len(records_of(site))
    assert counted == per_session + len(people)
    assert {f"people/{h}.html" for h in ("alice", "bob", "carol", "dan", "erin", HOST)} == set(people)


def decoded(path: Path) -> bytes:
    data = path.read_bytes()
    if path.parent.name in ("fragment", "index", "filter") or path.suffix.startswith(".pf_"):
        try:
            return gzip.decompress(data)
        except OSError:
            return data
    return data


def hits(site: Path, word: str) -> dict[str, int]:
    pattern = re.compile(rb"(?i)\b" + re.escape(word.encode()) + rb"\b")
    found = {}
    for p in site.rglob("*"):
        if p.is_file():
            n = len(pattern.findall(decoded(p)))
            if n:
                found[p.relative_to(site).as_posix()] = n
    return found


def test_forgetting_someone_then_one_session_leaves_nothing_of_them(built, tmp_path, runner):
    tmp, _, site = built

    out = tmp_path / "site"
    shutil.copytree(site, out)
    copy = tmp_path / "comm.db"
    shutil.copy(tmp / "comm.db", copy)
    archive = open_db(copy)
    assert hits(out, "erin") and hits(out, "erin learned")  # in pages, digest, search fragments
    assert any(k.startswith("pagefind/fragment/") for k in hits(out, "erin"))
    editorial.forget_account(archive, "@erin")
    newest = queries.session_ids(archive)[0]
    slug = queries.get_session(archive, newest).slug
    res = runner.invoke(cli, ["recap", str(copy), slug, "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert hits(out, "erin") == {}
    assert not (out / "people" / "erin.html").exists()
    # the others are still there, and found
    assert hits(out, "carol") and any(k.startswith("pagefind/fragment/") for k in hits(out, "carol"))


def test_hiding_one_answer_reaches_every_output(built, tmp_path):
    tmp, _, site = built

    out = tmp_path / "site"
    shutil.copytree(site, out)
    copy = tmp_path / "comm.db"
    shutil.copy(tmp / "comm.db", copy)
    archive = open_db(copy)
    post_id = archive.execute("SELECT id FROM posts WHERE text LIKE 'A1: dan learned%'").fetchone()[0]
    assert hits(out, "dan learned")
    editorial.hide(archive, [post_id])
    oldest = queries.session_ids(archive)[-1]  # dan posted in the newest session only
    first = build_site(archive, out, [oldest])
    assert first.sessions == 2  # the one asked for, and the one whose editorial state changed
    assert hits(out, "dan learned") == {}
    again = build_site(archive, out, [oldest])
    assert again.sessions == 1 and again.search == "search index unchanged"
    editorial.unhide(archive, [post_id])
    build_site(archive, out, [oldest])
    assert hits(out, "dan learned")


# --------------------------------------------------------------------------
# In Chromium



@pytest.fixture
def served(built, browser):
    _, _, site = built
    with StaticServer(site) as server:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page = context.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        try:
            yield server.base, page, errors
        finally:
            context.close()


def search(page, base: str, words: str):
    page.goto(f"{base}/search.html?q={words}", wait_until="load")
    page.wait_for_selector(".pagefind-ui__result", timeout=15_000)
    wait_for_count(page, lambda n: n > 0)


def wait_for_count(page, ok) -> int:
    """Poll the result count from here (the page's CSP forbids the eval a JS predicate needs)."""
    for _ in range(150):
        found = re.search(r"(\d+) result", page.locator(".pagefind-ui__message").first.text_content() or "")
        if found and ok(int(found.group(1))):
            return int(found.group(1))
        page.wait_for_timeout(100)
    raise AssertionError("the result count never came: " + str(page.locator(".pagefind-ui__message").all_text_contents()))


def result_count(page) -> int:
    return int(re.search(r"(\d+) result", page.locator(".pagefind-ui__message").inner_text()).group(1))


@pytest.mark.browser
def test_a_word_of_an_answer_lands_on_its_question(served):
    base, page, errors = served
    search(page, base, "also")  # only in alice's reply to bob's answer to Q1 of week 2
    first = page.locator(".pagefind-ui__result").first
    link = first.locator("a.pagefind-ui__result-link").first
    href = link.evaluate("a => a.href")  # relative to search.html, so the site works under any path
    assert href == f"{base}/sessions/commchat-{week_date(1)}.html#q1", href
    excerpt = first.locator(".pagefind-ui__result-excerpt").inner_text()
    assert "also" in excerpt and "(host)" not in excerpt and not re.search(r"\d{1,2}:\d{2}", excerpt)
    link.click()
    page.wait_for_url(re.compile(r"#q1$"))
    top = page.evaluate("document.getElementById('q1').getBoundingClientRect().top")
    assert 0 <= top < 120
    assert "@bob and also this" in page.locator("#q1").text_content()  # in a folded thread of an answer
    assert errors == []


@pytest.mark.browser
def test_a_filter_narrows_the_results(served):
    base, page, errors = served
    search(page, base, "learned")
    everything = result_count(page)
    assert everything >= len(ATTENDANCE)
    date = week_date(2)
    page.locator(".pagefind-ui__filter-name", has_text="date").first.click()
    page.locator(".pagefind-ui__filter-label", has_text=date).first.click()
    narrowed = wait_for_count(page, lambda n: n != everything)
    assert 0 < narrowed < everything
    hrefs = [a.evaluate("a => a.href") for a in page.locator("a.pagefind-ui__result-link").all()]
    assert hrefs and all(h.startswith(f"{base}/sessions/commchat-{date}.html") for h in hrefs), hrefs
    assert errors == []


@pytest.mark.browser
def test_a_person_is_found(served):
    base, page, errors = served
    search(page, base, "erin")
    hrefs = [a.evaluate("a => a.href") for a in page.locator("a.pagefind-ui__result-link").all()]
    assert f"{base}/people/erin.html" in hrefs, hrefs
    assert errors == []


def test_sitemap_lists_every_page_absolutely_with_base_url(built, tmp_path):
    import xml.etree.ElementTree as ET

    _, db, _ = built
    out = tmp_path / "site"
    build_site(db, out, search=False)
    assert not (out / "sitemap.xml").exists()  # a sitemap needs absolute addresses
    base = "https://chats.example.org/comm/"
    build_site(db, out, search=False, base_url=base)
    ns = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
    locs = [e.text for e in ET.parse(out / "sitemap.xml").getroot().iter(f"{ns}loc")]
    pages = {p.relative_to(out).as_posix() for p in out.rglob("*.html")} - {"search.html"}
    assert locs[0] == base + "index.html" and sorted(locs) == sorted(base + p for p in pages)
