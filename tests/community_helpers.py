"""A made-up weekly #CommChat over five sessions (X API v2 pages as twarc2
writes them), written by :func:`write_commchat` into a test's folder, with
who came when (``ATTENDANCE``) known in advance so the community numbers can
be worked out by hand, and links shared with tracking parameters, mixed case,
trailing slashes and an unexpanded t.co link."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

from chatarchive.analysis.pipeline import analyse_archive
from chatarchive.archive.importer import import_files
from chatarchive.archive.schema import open_db

HOST = "commhost"
USERS = {"200": HOST, "201": "alice", "202": "bob", "203": "carol", "204": "dan", "205": "erin"}
# week -> the people (not the host, who hosts every week) who answer Q1 that week
ATTENDANCE = {
    0: ["alice", "bob"],
    1: ["alice", "bob", "carol"],
    2: ["alice", "erin"],
    3: ["alice", "carol", "erin"],
    4: ["alice", "dan", "erin"],
}
WEEKS = len(ATTENDANCE)
FIRST_START = datetime(2026, 10, 1, 23, 0, tzinfo=timezone.utc)  # 19:00 in New York
ZONE = "America/New_York"
# The same page shared three ways in week 1; a Facebook-tracked link in week 3.
GUIDE_SPELLINGS = ["https://Example.org/Guide/?utm_source=newsletter&utm_medium=email",
                   "https://example.org/Guide", "HTTPS://EXAMPLE.ORG:443/Guide#intro"]
GUIDE = "https://example.org/Guide"
GUIDE_TITLE = "The community guide"
TRACKED = "https://news.example.net/story?id=7&fbclid=abc123&gclid=zz"
SHORT = "https://t.co/unexpanded1"


def _tweet(tid: int, uid: str, at: datetime, text: str, *, reply_to: dict | None = None,
           urls: list[tuple[str, str | None]] = ()) -> dict:
    entities: dict = {"hashtags": [{"start": 0, "end": 0, "tag": "CommChat"}]}
    if urls:
        entities["urls"] = [dict({"start": 0, "end": 0, "url": f"https://t.co/x{tid}{i}", "expanded_url": u,
                                  "display_url": u.split("//", 1)[-1][:24]}, **({"title": t} if t else {}))
                            for i, (u, t) in enumerate(urls)]
    tweet = {"id": str(tid), "text": text, "author_id": uid, "created_at": at.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
             "conversation_id": str(tid), "lang": "en", "entities": entities,
             "public_metrics": {"like_count": 1, "retweet_count": 0, "reply_count": 0, "quote_count": 0}}
    if reply_to is not None:
        tweet["referenced_tweets"] = [{"type": "replied_to", "id": reply_to["id"]}]
        tweet["conversation_id"] = reply_to["conversation_id"]
        tweet["in_reply_to_user_id"] = reply_to["author_id"]
    return tweet


def commchat_pages() -> list[dict]:
    uid = {h: u for u, h in USERS.items()}
    pages = []
    tid = 1870000000000000000
    for week, people in ATTENDANCE.items():
        start = FIRST_START + timedelta(days=7 * week)
        tweets = []

        def post(minute: float, handle: str, text: str, start=start, tweets=tweets, **kw) -> dict:
            nonlocal tid
            tid += 1
            t = _tweet(tid, uid[handle], start + timedelta(minutes=minute), text + " #CommChat", **kw)
            tweets.append(t)
            return t

        post(0, HOST, f"Q1: What did you learn in week {week + 1}?")
        answers = []
        for i, handle in enumerate(people):
            urls: list[tuple[str, str | None]] = []
            if week == 1:
                urls = [(GUIDE_SPELLINGS[i], GUIDE_TITLE if i == 0 else None)]
            if week == 3 and handle == "carol":
                urls = [(TRACKED, None)]
            text = f"A1: {handle} learned something in week {week + 1}"
            if week == 2 and handle == "erin":
                text += f" {SHORT}"  # a short link the data never expanded
            answers.append(post(2 + i, handle, text, urls=urls))
        if week == 1:  # alice replies to bob's answer, twice; carol to alice once
            post(8, "alice", "@bob so true", reply_to=answers[1])
            post(9, "alice", "@bob and also this", reply_to=answers[1])
            post(10, "carol", "@alice agreed", reply_to=answers[0])
        post(20, HOST, "Q2: What will you try next?")
        post(23, "alice", f"A2: alice will try more in week {week + 1}")
        for minute in (30, 32, 34, 36):  # the host keeps the chat going (and over the 10 posts a session needs)
            post(minute, HOST, f"Reminder {minute}: answer with A1 or A2")
        post(40, HOST, "Thanks everyone, see you next week!")
        users = sorted({t["author_id"] for t in tweets})
        pages.append({"data": tweets, "includes": {"users": [
            {"id": u, "username": USERS[u], "name": USERS[u].title()} for u in users]}})
    return pages


def write_commchat(folder: Path) -> Path:
    path = folder / "commchat.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in commchat_pages()), "utf-8")
    return path


def commchat_archive(folder: Path):
    """A fresh analysed archive of #CommChat in ``folder``."""
    db = open_db(folder / "comm.db", create=True)
    results = import_files(db, [str(write_commchat(folder))])
    assert all(r.error is None for r in results), results
    analyse_archive(db, hashtags=["CommChat"], tz=ZONE, hosts=[HOST])
    return db
