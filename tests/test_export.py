"""`chatarchive export`: Markdown (rendered with markdown-it to prove it is
safe and grouped), JSON, JSONL and CSV, to a file or standard output."""

from __future__ import annotations

import csv
import io
import json

import pytest
from bs4 import BeautifulSoup
from markdown_it import MarkdownIt
from recap_helpers import CHAT, HOSTILE, HOSTILE_SLUG, SECOND, recap_archive

from chatarchive.archive.schema import open_db
from chatarchive.cli import cli
from chatarchive.export import export_session, md_escape, md_text
from chatarchive.present.views import load_session


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    path = tmp_path_factory.mktemp("export") / "chats.db"
    recap_archive(path, (CHAT, HOSTILE))
    return path


def export(archive, slug, fmt) -> str:
    buf = io.StringIO()
    export_session(open_db(archive, create=True), slug, fmt, buf)
    return buf.getvalue()


def md_html(text: str) -> BeautifulSoup:
    # CommonMark with raw HTML allowed, as blog engines render it
    return BeautifulSoup(MarkdownIt("commonmark", {"html": True}).render(text), "html.parser")


def session_rows(archive, slug):
    return open_db(archive, create=True).execute(
        """SELECT p.id FROM session_posts sp JOIN posts p ON p.id = sp.post_id JOIN sessions s
           ON s.id = sp.session_id WHERE s.slug = ? ORDER BY p.created_at, p.id""", [slug]).fetchall()


def test_markdown_groups_qa(archive):
    md = export(archive, SECOND, "md")
    doc = md_html(md)
    assert doc.h1.get_text() == "#RecapChat · 18 November 2026"
    assert [h.get_text() for h in doc.find_all("h2")] == [
        "Q1: How do you measure whether your community is healthy?",
        "Q2: Which metric did you stop tracking, and why?",
        "Q3: Share one resource that changed how you think about metrics",
        "The rest of the chat", "Links shared", "People"]
    assert "Wednesday, 18 November 2026 · 20:00–20:56 EST (56 min)" in doc.p.get_text()
    # Q1's answers: a list, most engaged first, with the replies nested under Alice's answer
    data = load_session(open_db(archive, create=True), SECOND)
    q1_list = doc.find_all("h2")[0].find_next("ul")
    answers = q1_list.find_all("li", recursive=False)
    assert len(answers) == len(data.questions[0].answers) == 5
    for li, a in zip(answers, data.questions[0].answers):
        assert li.find("a")["href"] == a.post.post.url
    alice = answers[0]
    assert "Returning members beat new sign-ups" in alice.get_text()
    nested = alice.find("ul")
    assert nested is not None and "Do you track that per cohort?" in nested.li.get_text()
    assert nested.li.find("ul").li.find("ul") is not None  # three levels deep
    # The side conversation is kept, as a thread, after the Q&A
    rest = doc.find("h2", string="The rest of the chat").find_next("ul")
    side = next(li for li in rest.find_all("li", recursive=False) if "does anyone archive" in li.get_text())
    assert len(side.find("ul").find_all("li")) == 2
    # Every post of the session appears once, by its permalink (reposts left out)
    linked = [a["href"].rsplit("/", 1)[-1] for a in doc.find_all("a") if "/status/" in a["href"]]
    expected = [r[0] for r in open_db(archive, create=True).execute(
        "SELECT p.id FROM posts p JOIN session_posts sp ON sp.post_id = p.id JOIN sessions s "
        "ON s.id = sp.session_id WHERE s.slug = ? AND p.is_repost = 0", [SECOND])]
    assert sorted(linked) == sorted(expected) and len(expected) == 31
    assert doc.find("a", href="https://example.org/guide")
    # first-timers and host are marked in People
    people = doc.find("h2", string="People").find_next("p").get_text()
    assert "@chathost (host)" in people and "@dan_writes (first time in this archive)" in people
    assert "@alice_cm (first" not in people and "@chathost (host) (first" not in people


def test_markdown_of_hostile_posts_renders_inert(archive):
    md = export(archive, HOSTILE_SLUG, "md")
    doc = md_html(md)
    assert doc.find_all(["script", "img", "iframe", "svg", "b", "div", "style"]) == []
    for a in doc.find_all("a"):
        assert a["href"].startswith(("https://", "http://")), a
    text = doc.get_text()
    assert "<script>window.__pwned=1</script> What do you <b>think</b>?" in text
    assert '<img src=x onerror="window.__pwned=1;alert(1)"> hello' in text
    assert "click javascript:alert(1)" in text
    assert "with <escaped> & text" in text


@pytest.mark.parametrize("text", [
    "*bold* _em_ `code` [link](javascript:alert(1)) ![img](x.png) <b>tag</b> a|b ~~s~~ \\ &amp;",
    "# heading\n- item\n> quote\n1. one\n+ plus\n=== setext",
])
def test_md_escape_round_trips_to_the_same_text(text):
    rendered = md_html(md_text(text))
    assert rendered.find_all(["h1", "ul", "ol", "blockquote", "em", "strong", "code", "a", "img", "b", "del"]) == []
    assert " ".join(rendered.get_text().split()) == " ".join(text.split())


def test_md_text_autolinks_only_http(archive):
    out = md_text("see https://ex.example/a_(b) and javascript:alert(1), data:text/html,x")
    assert out.startswith("see [ex.example/a\\_(b)](https://ex.example/a_%28b%29) and javascript:alert(1), data:text/html,x")
    links = md_html(out).find_all("a")
    assert [(a["href"], a.get_text()) for a in links] == [("https://ex.example/a_%28b%29", "ex.example/a_(b)")]
    assert md_escape("a_b*c") == "a\\_b\\*c"


def test_md_urls_are_shortened_for_display():
    long = "https://blog.example.com/2026/11/a-very-long-path/that-goes-on-and-on?utm_source=x&utm_medium=y"
    links = md_html(md_text(f"read {long} now")).find_all("a")
    assert len(links) == 1 and links[0]["href"] == long
    shown = links[0].get_text()
    assert shown.endswith("…") and len(shown) <= 48 and long.split("://")[1].startswith(shown[:-1])


def test_json_export(archive):
    data = json.loads(export(archive, SECOND, "json"))
    assert data["session"]["slug"] == SECOND and data["session"]["timezone"] == "America/New_York"
    assert [p["id"] for p in data["posts"]] == [r[0] for r in session_rows(archive, SECOND)]
    assert [q["number"] for q in data["questions"]] == [1, 2, 3]
    by_id = {p["id"]: p for p in data["posts"]}
    for q in data["questions"]:
        assert by_id[q["post_id"]]["question"] == q["number"]
        for a in q["answers"]:
            assert by_id[a]["answers_question"] == q["number"]
    chart = next(p for p in data["posts"] if p["media"])
    assert chart["media"][0]["alt"].startswith("Bar chart")
    assert data["stats"]["participants"] == 9 and "session" not in data["stats"]
    side = next(c for c in data["conversations"] if by_id[c["posts"][0]]["text"].startswith("Side question"))
    assert side["size"] == len(side["posts"]) == 3


def test_jsonl_and_csv_exports(archive):
    lines = export(archive, HOSTILE_SLUG, "jsonl").splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["id"] for r in records] == [r[0] for r in session_rows(archive, HOSTILE_SLUG)]
    assert all(r["session"] == HOSTILE_SLUG for r in records)
    rows = list(csv.DictReader(io.StringIO(export(archive, HOSTILE_SLUG, "csv"))))
    assert [r["id"] for r in rows] == [r["id"] for r in records]
    by_id = {r["id"]: r for r in rows}
    for rec in records:
        row = by_id[rec["id"]]
        if rec["text"].startswith("="):
            # a formula in a post must not run in a spreadsheet
            assert row["text"] == "'" + rec["text"]
        else:
            assert row["text"] == rec["text"]
        assert row["links"] == " ".join(rec["links"])
    assert any(r["text"].startswith("'=HYPERLINK(") for r in rows)
    assert any("<script>" in r["text"] for r in rows)  # CSV is data: kept verbatim


def test_cli_export(archive, tmp_path, runner):
    res = runner.invoke(cli, ["export", str(archive), SECOND, "--format", "jsonl"])
    assert res.exit_code == 0 and len(res.output.splitlines()) == len(session_rows(archive, SECOND))
    out = tmp_path / "recap.md"
    res = runner.invoke(cli, ["export", str(archive), SECOND, "-o", str(out)])
    assert res.exit_code == 0 and out.read_text().startswith("# #RecapChat · 18 November 2026")
    assert res.output.strip() == f"Wrote {out}"
    res = runner.invoke(cli, ["export", str(archive), "nope"])
    assert res.exit_code == 1 and res.output.strip() == "Error: No session 'nope' (see: chatarchive sessions list DB)"
    res = runner.invoke(cli, ["export", str(archive), SECOND, "--format", "xml"])
    assert res.exit_code == 2 and "'xml' is not one of" in res.output
    res = runner.invoke(cli, ["export", str(tmp_path / "none.db"), SECOND])
    assert res.exit_code == 1 and "no such archive" in res.output
    res = runner.invoke(cli, ["export", str(archive), SECOND, "-o", str(tmp_path / "no" / "dir" / "x.md")])
    assert res.exit_code == 1 and "cannot write" in res.output
