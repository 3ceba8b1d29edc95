"""Issue 10, Q&A item 4: a "Twitter Archiver" sheet glues the chat's tag to
the retweet prefix ("… #chatRT @user: …"), and its query row ("Twitter
Query: #chat …") says what every row matched.  Sheets of our own making in
the add-on's shape (row 1 the query, row 2 the header, local times)."""

from __future__ import annotations

import csv
import io

from chatarchive.archive.schema import open_db
from chatarchive.cli import cli

HEADER = ["Date", "Screen Name", "Full Name", "Tweet Text", "Tweet ID", "Link(s)", "Media", "Location",
          "Retweets", "Favorites", "App", "Followers", "Follows", "Listed", "Verfied", "User Since",
          "Location", "Bio", "Website", "Timezone", "Profile Image"]


def sheet(query: str, rows: list[tuple[str, str, str, str]]) -> str:
    """(local date, @handle, text, id) rows under the add-on's query row and header."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["", f"Twitter Query: {query}"] + [""] * (len(HEADER) - 2))
    w.writerow(HEADER)
    for date, handle, text, pid in rows:
        w.writerow([date, handle, handle.lstrip("@").title(), text, pid, "", "", "", "0", "1", "Twitter Web App",
                    "10", "10", "0", "", "4/22/2008", "", "", "", "", "View"])
    return out.getvalue()


CHAT = [
    ("5/13/2024 15:00:00", "@host", "Q1: What got you started? #EdChat", "1790000000000000101"),
    ("5/13/2024 15:03:00", "@alice", "So true #edchatRT @host: Q1: What got you started? #EdChat",
     "1790000000000000102"),
    ("5/13/2024 15:04:00", "@bob", "A1: a teacher who asked good questions", "1790000000000000103"),
    ("5/13/2024 15:05:00", "@carol", "Also see #mathchatRT @dave: counting on it", "1790000000000000104"),
    ("5/13/2024 15:06:00", "@erin", "Keep #edchatRTs going, no space here", "1790000000000000105"),
]


def tags_of(db_path) -> dict[str, list[str]]:
    db = open_db(db_path)
    try:
        rows = db.execute("SELECT ph.post_id, h.tag FROM post_hashtags ph JOIN hashtags h ON h.id = ph.hashtag_id "
                          "ORDER BY h.tag").fetchall()
        texts = dict(db.execute("SELECT id, text FROM posts").fetchall())
    finally:
        db.conn.close()
    out: dict[str, list[str]] = {pid: [] for pid in texts}
    for pid, tag in rows:
        out[pid].append(tag.lower())
    return {pid: sorted(out[pid]) + [texts[pid]] for pid in out}


def test_a_glued_retweet_prefix_is_split_and_the_query_row_tags_every_row(runner, tmp_path):
    path = tmp_path / "edchat-archiver.csv"
    path.write_text(sheet("#edchat lang:en -filter:retweets", CHAT), encoding="utf-8")
    db_path = tmp_path / "chats.db"
    res = runner.invoke(cli, ["import", str(db_path), str(path), "--tz", "America/New_York", "--no-analyse"])
    assert res.exit_code == 0, res.output
    got = tags_of(db_path)
    # the glued tag is the chat's, and "RT @host:" reads as text again
    assert got["1790000000000000102"] == ["edchat", "So true #edchat RT @host: Q1: What got you started? #EdChat"]
    # a row without the tag matched the query: it carries the chat's tag
    assert got["1790000000000000103"][:-1] == ["edchat"]
    # any tag directly followed by "RT @user:" is split the same way (and the sheet's tag added)
    assert got["1790000000000000104"][:-1] == ["edchat", "mathchat"]
    # "#edchatRTs" is a word of its own, not a glued prefix
    assert "edchatrts" in got["1790000000000000105"]
    assert all("edchatrt" not in tags for tags in got.values())


def test_an_or_query_tags_no_row_and_a_sheet_without_a_query_row_neither(runner, tmp_path):
    either = tmp_path / "either.csv"
    either.write_text(sheet("#edchat OR #mathchat", CHAT[2:3]), encoding="utf-8")
    db_path = tmp_path / "chats.db"
    res = runner.invoke(cli, ["import", str(db_path), str(either), "--tz", "America/New_York", "--no-analyse"])
    assert res.exit_code == 0, res.output
    assert tags_of(db_path)["1790000000000000103"][:-1] == []


def test_the_glued_chat_joins_its_session(runner, tmp_path):
    path = tmp_path / "edchat-archiver.csv"
    answers = [(f"5/13/2024 15:{10 + i}:00", f"@p{i}", f"A1: answer {i}", f"17900000000000002{i:02d}")
               for i in range(20)]  # an hour's worth, none of them carrying the tag
    path.write_text(sheet("#edchat", CHAT + answers), encoding="utf-8")
    db_path = tmp_path / "chats.db"
    res = runner.invoke(cli, ["import", str(db_path), str(path), "--tz", "America/New_York"])
    assert res.exit_code == 0, res.output
    db = open_db(db_path)
    try:
        sessions = db.execute("SELECT hashtag FROM sessions").fetchall()
        members = {r[0] for r in db.execute("SELECT post_id FROM session_posts")}
    finally:
        db.conn.close()
    assert [s[0].lower() for s in sessions] == ["edchat"]
    assert {"1790000000000000102", "1790000000000000103"} <= members
