"""The view withheld_posts (migration m013): the rows the published filter
rule says, and a plan that reads the small tables, never every post."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from chatarchive.archive import editorial
from chatarchive.archive.published import Publication
from chatarchive.archive.schema import open_db
from chatarchive.cli import cli


@pytest.fixture(scope="module")
def editorial_db(tmp_path_factory) -> Path:
    """The demo archive with every kind of account: hidden, withdrawn,
    unlisted, unlisted but allowed, unlisted and withdrawn, forgotten, plain;
    a hidden post by a plain author and one by an author withheld anyway."""
    folder = tmp_path_factory.mktemp("withheld")
    result = CliRunner().invoke(cli, ["demo", str(folder)])
    assert result.exit_code == 0, result.output
    path = folder / "demo.db"
    db = open_db(path)
    conn = db.conn
    authors = [r[0] for r in conn.execute(
        "SELECT author_id FROM posts GROUP BY author_id HAVING count(*) >= 2 ORDER BY author_id")]
    assert len(authors) >= 8, authors
    hidden_acc, withdrawn, unlisted, allowed, unlisted_withdrawn, forgotten, plain, both = authors[:8]
    editorial.hide(db, [hidden_acc, both])
    editorial.set_consent(db, withdrawn, allow=False)
    editorial.set_consent(db, both, allow=False)
    editorial.set_consent(db, allowed, allow=True)
    editorial.set_consent(db, unlisted_withdrawn, allow=False)
    with conn:
        conn.execute("UPDATE authors SET unlisted = 1 WHERE id IN (?, ?, ?)", [unlisted, allowed, unlisted_withdrawn])
        conn.execute("UPDATE authors SET unlisted = 0 WHERE id = ?", [plain])
    editorial.forget_account(db, forgotten)
    hidden_posts = [conn.execute("SELECT id FROM posts WHERE author_id = ? ORDER BY id LIMIT 1", [a]).fetchone()[0]
                    for a in (plain, unlisted)]
    editorial.hide(db, hidden_posts)
    db.conn.close()
    return path


def _reference(conn) -> list[tuple[str, str]]:
    """Every (post, reason) pair the rule gives, worked out post by post in Python."""
    hidden_posts = {r[0] for r in conn.execute("SELECT target_id FROM hidden WHERE target_kind = 'post'")}
    hidden_accounts = {r[0] for r in conn.execute("SELECT target_id FROM hidden WHERE target_kind = 'account'")}
    consent = dict(conn.execute("SELECT author_id, allow FROM consent").fetchall())
    unlisted = {r[0] for r in conn.execute("SELECT id FROM authors WHERE unlisted = 1")}
    out = [(pid, "hidden") for pid in hidden_posts]
    for pid, author in conn.execute("SELECT id, author_id FROM posts"):
        if author in hidden_accounts:
            out.append((pid, "hidden"))
        if consent.get(author) == 0:
            out.append((pid, "withdrawn"))
        if author in unlisted and author not in consent:
            out.append((pid, "unlisted"))
    return sorted(out)


def test_the_view_gives_the_rule_s_rows(editorial_db):
    db = open_db(editorial_db)
    conn = db.conn
    got = sorted(conn.execute("SELECT post_id, reason FROM withheld_posts").fetchall())
    expected = _reference(conn)
    assert got == expected
    reasons = {r for _, r in got}
    assert reasons == {"hidden", "withdrawn", "unlisted"}  # the fixture exercises every branch
    # an account both hidden and withdrawn is listed under both reasons
    assert len(got) > len({pid for pid, _ in got})
    # the Python side agrees: the first reason of each post
    withheld = Publication.load(db).withheld
    assert set(withheld) == {pid for pid, _ in got}
    unlisted_allowed = Publication.load(db, include_unlisted=True).withheld
    assert set(unlisted_allowed) == {pid for pid, r in got if r != "unlisted"}


def test_the_view_reads_the_small_tables_not_every_post(editorial_db):
    conn = open_db(editorial_db).conn
    plan = [r[3] for r in conn.execute("EXPLAIN QUERY PLAN SELECT post_id, reason FROM withheld_posts")]
    posts_steps = [step for step in plan if step.split()[1:2] == ["p"]]
    assert posts_steps, plan
    assert all(step.startswith("SEARCH p USING INDEX idx_posts_author_id") for step in posts_steps), plan


def _word_in_shown_and_withheld_posts(conn) -> str:
    """The most common indexed word (it is in withheld posts and in shown ones)."""
    conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.vocab USING fts5vocab(main, posts_fts, row)")
    return conn.execute("SELECT term FROM temp.vocab WHERE term GLOB '[a-z]*' ORDER BY doc DESC LIMIT 1").fetchone()[0]


def test_the_datasette_search_page_finds_the_shown_posts(editorial_db):
    import asyncio
    import re

    from chatarchive.datasette import pages, server

    conn = open_db(editorial_db).conn
    word = _word_in_shown_and_withheld_posts(conn)
    matches = {r[0] for r in conn.execute(
        "SELECT p.id FROM posts_fts JOIN posts p ON p.rowid = posts_fts.rowid WHERE posts_fts MATCH ?", [word])}
    withheld = {pid for pid, _ in _reference(conn)}
    assert matches & withheld and matches - withheld, word
    # The hits' filter reaches withheld posts from the small tables: no walk over every post
    # (which took the 1M-post page past Datasette's time limit).
    plan = [r[3] for r in conn.execute(
        f"EXPLAIN QUERY PLAN SELECT count(*) FROM posts_fts WHERE posts_fts MATCH ? AND {pages._SHOWN_HIT}", [word])]
    assert not [step for step in plan if re.match(r"SCAN (p|wp|posts)\b", step)], plan

    ds = server.make_datasette(editorial_db)
    loop = asyncio.new_event_loop()
    try:
        page = loop.run_until_complete(ds.client.get(f"/{editorial_db.stem}/-/search?q={word}"))
    finally:
        loop.close()
    assert page.status_code == 200
    assert "took too long" not in page.text
    shown = re.search(r"([\d,]+) posts? match", page.text)
    assert shown, page.text[:2000]
    assert int(shown.group(1).replace(",", "")) == len(matches - withheld)
