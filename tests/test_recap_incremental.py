"""The recap as a weekly host runs it (issue 10, item 9) and a folder that
tries to lead it astray (issue 14, item 6): `recap DB THIS-WEEK --out site/`
adds that week's page and keeps every other; the index and hashtag pages
list every session of the archive; only --prune deletes, and only what an
earlier recap wrote; nothing is written or deleted outside --out.  File
names are safe on every OS."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from recap_helpers import FIRST, SECOND, recap_archive

from chatarchive.analysis.sessions import remove_session
from chatarchive.archive.schema import open_db
from chatarchive.cli import cli
from chatarchive.recap.files import MANIFEST
from chatarchive.recap.site import build_site
from chatarchive.recap.sitemap import slugify

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    """The recap fixtures plus someone who came to the first week only."""
    from chatarchive.analysis.pipeline import analyse_archive
    from chatarchive.archive.writer import save_posts
    from chatarchive.models import Author, Post

    path = tmp_path_factory.mktemp("incremental") / "chats.db"
    db = recap_archive(path)
    start = db.execute("SELECT start FROM sessions WHERE slug = ?", [FIRST]).fetchone()[0]
    zed = Author(id="999", platform="x", handle="zed_once", name="Zed Once")
    save_posts(db, [Post(id="1860000000000000999", platform="x", source="test", author=zed,
                         created_at=start[:14] + "09:30.000Z", text="A1: just visiting #RecapChat",
                         hashtags=["RecapChat"])])
    analyse_archive(db)
    db.conn.close()
    return path


@pytest.fixture
def db(archive, tmp_path):
    copy = tmp_path / "chats.db"
    shutil.copy(archive, copy)
    return open_db(copy)


def soup(path: Path) -> BeautifulSoup:
    return BeautifulSoup(path.read_text("utf-8"), "html.parser")


def snapshot(out: Path) -> dict[str, tuple[int, bytes]]:
    return {p.relative_to(out).as_posix(): (p.stat().st_mtime_ns, p.read_bytes())
            for p in out.rglob("*") if p.is_file() and "pagefind" not in p.parts}


def people_of(db, slug: str) -> set[str]:
    return {r[0] for r in db.execute(
        """SELECT DISTINCT coalesce(a.handle, p.author_handle) FROM session_posts sp JOIN posts p ON p.id = sp.post_id
           JOIN sessions s ON s.id = sp.session_id LEFT JOIN authors a ON a.id = p.author_id WHERE s.slug = ?""",
        [slug])}


def test_this_week_adds_its_page_and_keeps_the_others(db, tmp_path):
    out = tmp_path / "site"
    first = build_site(db, out, [FIRST], search=False)
    assert first.sessions == 1 and first.listed == 2
    # the index lists every session of the archive; only the one with a page links
    rows = soup(out / "index.html").select("ol.sessions > li")
    assert len(rows) == 2
    assert [li.select_one(".si a")["href"] for li in rows if li.select_one(".si a")] == [f"sessions/{FIRST}.html"]
    assert rows[0].select_one(".si .np").get_text().startswith("#RecapChat · 18 November")
    before = snapshot(out)
    (out / "host-page.html").write_text("<p>the host's own page</p>")  # (about.html is ours since #11)
    # the next week, exactly as a weekly host runs it
    second = build_site(db, out, [SECOND], search=False)
    after = snapshot(out)
    assert second.removed == 0 and (out / "host-page.html").read_text() == "<p>the host's own page</p>"
    assert after[f"sessions/{FIRST}.html"] == before[f"sessions/{FIRST}.html"]  # not even rewritten
    assert (out / "sessions" / f"{SECOND}.html").is_file()
    links = [a["href"] for a in soup(out / "index.html").select("ol.sessions .si a")]
    assert links == [f"sessions/{SECOND}.html", f"sessions/{FIRST}.html"]
    tag_links = [a["href"] for a in soup(out / "hashtags" / "recapchat.html").select("ol.sessions .si a")]
    assert tag_links == [f"../sessions/{SECOND}.html", f"../sessions/{FIRST}.html"]
    # someone in both weeks: their page has both; someone only in the first week: page untouched
    alice = soup(out / "people" / "alice_cm.html")
    assert [s.h2.a["href"] for s in alice.select("main section")] == [f"../sessions/{SECOND}.html",
                                                                    f"../sessions/{FIRST}.html"]
    only_first = sorted(people_of(db, FIRST) - people_of(db, SECOND))
    assert only_first == ["zed_once"]
    for handle in only_first:
        assert after[f"people/{handle}.html"] == before[f"people/{handle}.html"]
    manifest = json.loads((out / MANIFEST).read_text())
    assert f"sessions/{FIRST}.html" in manifest["files"] and f"sessions/{SECOND}.html" in manifest["files"]
    assert "host-page.html" not in manifest["files"]
    # nothing changed: nothing is rewritten
    again = build_site(db, out, [SECOND], search=False)
    assert again.written == 0 and snapshot(out) == after


def test_all_sessions_then_one_renders_the_same_site(db, tmp_path):
    full, step = tmp_path / "full", tmp_path / "step"
    build_site(db, full, search=False)
    build_site(db, step, [FIRST], search=False)
    build_site(db, step, [SECOND], search=False)
    a, b = snapshot(full), snapshot(step)
    assert sorted(a) == sorted(b)
    differ = sorted(k for k in a if a[k][1] != b[k][1] and k != MANIFEST)
    assert differ == [], differ


def test_removing_a_page_needs_prune(db, tmp_path, runner):
    out = tmp_path / "site"
    build_site(db, out, search=False)
    (out / "notes.txt").write_text("mine")
    (out / "sessions" / "my-own.html").write_text("<p>mine</p>")
    only_first = sorted(people_of(db, FIRST) - people_of(db, SECOND))
    assert only_first
    remove_session(db, FIRST)
    kept = build_site(db, out, [SECOND], search=False)
    assert kept.removed == 0 and (out / "sessions" / f"{FIRST}.html").is_file()
    # the index lists the archive's sessions: the removed one no longer
    assert [a["href"] for a in soup(out / "index.html").select("ol.sessions .si a")] == [f"sessions/{SECOND}.html"]
    db.conn.close()
    r = runner.invoke(cli, ["recap", str(tmp_path / "chats.db"), SECOND, "--out", str(out), "--prune", "--no-search"])
    assert r.exit_code == 0, r.output
    # the session's page and preview card, its people's
    assert f"{2 + len(only_first)} removed" in r.output.splitlines()[0]
    assert not (out / "sessions" / f"{FIRST}.html").exists() and not (out / "cards" / f"{FIRST}.png").exists()
    for handle in only_first:
        assert not (out / "people" / f"{handle}.html").exists()
    assert (out / "sessions" / f"{SECOND}.html").is_file() and (out / "people" / "alice_cm.html").is_file()
    assert (out / "notes.txt").read_text() == "mine" and (out / "sessions" / "my-own.html").is_file()
    manifest = json.loads((out / MANIFEST).read_text())
    assert f"sessions/{FIRST}.html" not in manifest["files"]


def test_the_weekly_command_line(archive, tmp_path, runner):
    out = tmp_path / "site"
    for slug in (FIRST, SECOND):
        r = runner.invoke(cli, ["recap", str(archive), slug, "--out", str(out)])
        assert r.exit_code == 0, r.output
        assert "(1 session page(s) rendered, 2 session(s) listed)" in r.output and "removed" not in r.output
    assert sorted(p.name for p in (out / "sessions").iterdir()) == [f"{FIRST}.html", f"{SECOND}.html"]
    # a mistyped session writes nothing, not even the folder
    r = runner.invoke(cli, ["recap", str(archive), "recapchat-2099-01-01", "--out", str(tmp_path / "new")])
    assert r.exit_code == 1 and not (tmp_path / "new").exists()


# --------------------------------------------------------------------------
# A folder that leads outside --out


@pytest.fixture
def victim(tmp_path) -> Path:
    """A folder outside the site with a file that must survive."""
    folder = tmp_path / "precious"
    folder.mkdir()
    (folder / "thesis.txt").write_text("years of work")
    return folder


def one_line_error(runner, args) -> str:
    r = runner.invoke(cli, args)
    assert r.exit_code == 1, r.output
    assert "Traceback" not in r.output and len(r.output.strip().splitlines()) == 1, r.output
    return r.output


def test_a_symlinked_subfolder_and_a_poisoned_manifest_are_refused(archive, tmp_path, runner, victim):
    """The folder from issue 14: a subfolder that is a link out of --out and a
    manifest entry naming a file in it.  Nothing is deleted or written, one line says why."""
    out = tmp_path / "site"
    build_site(open_db(archive), out, search=False)
    shutil.rmtree(out / "sessions")
    os.symlink(victim, out / "sessions")
    manifest = json.loads((out / MANIFEST).read_text())
    manifest["files"].append("sessions/thesis.txt")
    (out / MANIFEST).write_text(json.dumps(manifest))
    listing = sorted(p.name for p in victim.iterdir())
    for extra in ([], ["--prune"]):
        message = one_line_error(runner, ["recap", str(archive), "--out", str(out), "--no-search", *extra])
        assert "leads outside" in message and "sessions" in message
    assert (victim / "thesis.txt").read_text() == "years of work"
    assert sorted(p.name for p in victim.iterdir()) == listing  # nothing written there either


@pytest.mark.parametrize("entry", ["../precious/thesis.txt", "/etc/hostname", "people/../../precious/thesis.txt",
                                   "sessions\\..\\..\\x", "C:/x.html"])
def test_manifest_entries_leading_outside_are_refused(archive, tmp_path, runner, victim, entry):
    out = tmp_path / "site"
    build_site(open_db(archive), out, search=False)
    manifest = json.loads((out / MANIFEST).read_text())
    manifest["files"].append(entry)
    (out / MANIFEST).write_text(json.dumps(manifest))
    before = snapshot(out)
    message = one_line_error(runner, ["recap", str(archive), "--out", str(out), "--prune", "--no-search"])
    assert "leads outside" in message and MANIFEST in message
    assert snapshot(out) == before and (victim / "thesis.txt").read_text() == "years of work"


def test_a_link_inside_a_subfolder_is_never_written_through(archive, tmp_path, runner, victim):
    out = tmp_path / "site"
    build_site(open_db(archive), out, search=False)
    page = out / "sessions" / f"{SECOND}.html"
    page.unlink()
    os.symlink(victim / "thesis.txt", page)
    os.symlink(victim, out / "people" / "sub")
    message = one_line_error(runner, ["recap", str(archive), "--out", str(out), "--no-search"])
    assert "link" in message and SECOND in message
    assert (victim / "thesis.txt").read_text() == "years of work"


def test_a_manifest_that_is_a_link_is_refused(archive, tmp_path, runner, victim):
    out = tmp_path / "site"
    build_site(open_db(archive), out, search=False)
    (out / MANIFEST).unlink()
    os.symlink(victim / "thesis.txt", out / MANIFEST)
    message = one_line_error(runner, ["recap", str(archive), "--out", str(out)])
    assert "is a link" in message and (victim / "thesis.txt").read_text() == "years of work"


def test_a_pagefind_folder_linking_out_is_refused(archive, tmp_path, runner, victim):
    out = tmp_path / "site"
    out.mkdir()
    os.symlink(victim, out / "pagefind")
    message = one_line_error(runner, ["recap", str(archive), "--out", str(out)])
    assert "pagefind" in message and "leads outside" in message
    assert sorted(p.name for p in victim.iterdir()) == ["thesis.txt"]


# --------------------------------------------------------------------------
# File names


@pytest.mark.parametrize("name,expected", [
    ("CON", "con_"), ("nul", "nul_"), ("Com1", "com1_"), ("LPT9", "lpt9_"), ("aux.html", "aux_.html"),
    ("prn.example.org", "prn_.example.org"), ("console", "console"), ("con_", "con_"), ("com10", "com10"),
    ("..", "x"), ("a/b\\c:d*e?f\"g<h>i|j", "a-b-c-d-e-f-g-h-i-j"), ("  trailing. ", "trailing"),
])
def test_file_names_are_safe_on_every_os(name, expected):
    assert slugify(name) == expected


def test_a_long_session_slug_keeps_its_date():
    slug = "averyveryverylonghashtagthatgoesonandonforeverandeverandneverstopsatall-chat-2026-11-18-2"
    got = slugify(slug)
    assert len(got) <= 80 and got.endswith("-2026-11-18-2") and got.startswith("averyvery")


def test_reserved_handles_get_safe_pages(tmp_path):
    from chatarchive.analysis.pipeline import analyse_archive
    from chatarchive.archive.writer import save_posts
    from chatarchive.models import Author, Post

    people = [Author(id=str(i), platform="x", handle=h, name=h) for i, h in enumerate(["CON", "nul", "com1", "Aux"])]
    posts = [Post(id=str(100 + i), platform="x", source="test", author=people[i % 4],
                  created_at=f"2026-03-04T20:{i:02d}:00.000Z", text=f"post {i} #namechat", hashtags=["namechat"])
             for i in range(12)]
    db = open_db(tmp_path / "names.db", create=True)
    save_posts(db, posts)
    analyse_archive(db, hashtags=["namechat"])
    out = tmp_path / "site"
    build_site(db, out, search=False)
    assert sorted(p.name for p in (out / "people").iterdir()) == ["aux_.html", "com1_.html", "con_.html", "nul_.html"]
    links = {a["href"] for a in soup(next((out / "sessions").glob("*.html"))).select("#people a")}
    assert "../people/con_.html" in links
