"""Benchmark of the analysis (threads, sessions, Q&A) on a large synthetic archive.

    python bench/analysis_bench.py                 # 1,000,000 posts (builds the archive once, cached)
    python bench/analysis_bench.py --posts 100000  # smaller
    python bench/analysis_bench.py --rebuild       # regenerate the archive
    python bench/analysis_bench.py --margins       # sessions with lead-ins, tails and missing parents

What it prints:

1. full analysis of N posts (first run: threads, session detection, membership
   and Q&A for every session): seconds and peak RSS of the process that ran it;
2. incremental re-analysis after importing one more session's posts (through
   the real PostWriter, as an import does), and after ten more sessions, so
   the cost can be seen to follow the new posts, not the archive size;
3. a re-run with nothing new;
4. with ``--hash``, a SHA-256 of the analysis results in the final archive
   (the posts' conversation/question/answer columns and the sessions,
   session_posts, conversations and questions tables): a change to the
   analysis that must not change its results keeps this hash.

The archive is written directly with SQL (fast): weekly one-hour sessions of
about 500 posts (a host asking Q1..Q5 on X, answers "A1: …" replying to the
question or not, untagged replies in threads, retweets, context posts,
incidental hashtags) plus stray posts between sessions.  With ``--margins``
(a second cached archive) each session also has what real chats have
around their hour: three announcements 5, 4 and 3 hours before, a reminder
25 minutes before, a few greetings, two stragglers and a wrap-up after, and
replies whose parent is missing (4% of thread replies point at a Mastodon
placeholder parent shared by siblings, 2% at a missing X parent with the
conversation's root id).  The FTS insert
trigger is dropped while generating (the analysis never touches FTS; the
update trigger stays, so an analysis that rewrote FTS rows would show).

Each measured step runs in a fresh child process; its peak RSS comes from
getrusage(RUSAGE_CHILDREN).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import shutil
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

POSTS_PER_SESSION = 500
# Two sittings a week from 2006: 2,000 sessions end in 2025, so the sessions
# added afterwards still fall inside the times the archive stores (2006 to
# now + 1 year; a later time is stored as NULL and would form no session).
SPACING = timedelta(days=3, hours=12)
FIRST_SESSION = datetime(2006, 3, 1, 1, 0, tzinfo=timezone.utc)
TAG = "benchchat"
INCIDENTAL = ["edtech", "community", "cmgr", "remote", "ux", "devrel", "opensource", "data"]
WORDS = ["community", "members", "onboarding", "metrics", "newcomer", "welcome", "forum", "moderation", "event", "volunteer", "survey", "engagement", "retention", "growth", "feedback", "ritual", "channel", "thread", "answer", "question", "idea", "tool"]


def iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


class Generator:
    def __init__(self, seed: int = 7, authors: int = 20000, margins: bool = False):
        self.rng = random.Random(seed)
        self.n_authors = authors
        self.next_id = 10**18
        self.margins = margins

    def new_id(self) -> str:
        self.next_id += self.rng.randint(1, 5000)
        return str(self.next_id)

    def text(self, prefix: str, tags: list[str]) -> str:
        words = " ".join(self.rng.choice(WORDS) for _ in range(self.rng.randint(12, 22)))
        return f"{prefix}{words} " + " ".join("#" + t for t in tags)

    def session(self, start: datetime, n: int, out_posts: list, out_tags: list) -> None:
        rng = self.rng
        host = "u0"
        questions: list[str] = []
        recent: list[str] = []
        minute_of_q = [5, 16, 28, 39, 50]
        q_i = 0
        session_key = self.next_id
        if self.margins:
            self.around(start, -1, out_posts, out_tags)
        root = None
        for k in range(n):
            t = start + timedelta(seconds=3600 * k / n + rng.random())
            minute = (t - start).total_seconds() / 60
            pid = self.new_id()
            author = f"u{rng.randint(1, self.n_authors - 1)}"
            reply_to = None
            quote = None
            repost = 0
            matched = 1
            tags = [TAG]
            if q_i < 5 and minute >= minute_of_q[q_i]:
                q_i += 1
                author = host
                text = self.text(f"Q{q_i}: what is your take on ", tags)
                questions.append(pid)
            else:
                roll = rng.random()
                if rng.random() < 0.15:
                    tags.append(rng.choice(INCIDENTAL))
                if roll < 0.05 and recent:
                    repost = 1
                    text = "RT @someone: " + self.text("", tags)
                elif roll < 0.35 and questions:
                    reply_to = questions[-1]
                    text = self.text(f"@{host} A{len(questions)}: ", tags)
                elif roll < 0.55 and questions:
                    text = self.text(f"A{len(questions)} ", tags)
                elif roll < 0.8 and recent:
                    reply_to = rng.choice(recent[-30:])
                    if rng.random() < 0.5:
                        tags = []  # untagged reply into a thread
                        matched = 0 if rng.random() < 0.5 else 1
                    if self.margins:
                        gone = rng.random()
                        if gone < 0.04:  # siblings under a missing Mastodon parent (a placeholder)
                            reply_to = f"local:bench.example/{session_key}{rng.randint(0, 3)}"
                        elif gone < 0.06 and questions:  # a missing X parent, its root known
                            reply_to, root = f"{session_key}{rng.randint(0, 9)}", questions[-1]
                    text = self.text("@someone I agree, ", tags)
                elif roll < 0.85 and recent:
                    quote = rng.choice(recent[-30:])
                    text = self.text("This! ", tags)
                else:
                    text = self.text("", tags)
            recent.append(pid)
            out_posts.append((pid, "x", "bench", f"https://x.com/{author}/status/{pid}", author, author, author,
                              text, iso(t), reply_to, root, quote, repost, "en",
                              rng.randint(0, 20), rng.randint(0, 5), rng.randint(0, 5), 0, matched))
            root = None
            for tag in tags:
                out_tags.append((pid, tag))
        if self.margins:
            self.around(start, 1, out_posts, out_tags)

    def around(self, start: datetime, side: int, out_posts: list, out_tags: list) -> None:
        """What comes before a session (side -1: announcements, a reminder,
        greetings) or after it (1: stragglers and a wrap-up)."""
        rng = self.rng
        if side < 0:
            offsets = [-300, -240, -180, -25] + sorted(rng.uniform(-8, -1) for _ in range(4))
        else:
            offsets = [60 + 40, 60 + 62, 60 + 65]
        for minutes in offsets:
            pid = self.new_id()
            author = "u0" if minutes in (-300, -240, -180, -25, 125) else f"u{rng.randint(1, self.n_authors - 1)}"
            t = start + timedelta(minutes=minutes, seconds=rng.random())
            out_posts.append((pid, "x", "bench", f"https://x.com/{author}/status/{pid}", author, author, author,
                              self.text("", [TAG]), iso(t), None, None, None, 0, "en", 0, 0, 0, 0, 1))
            out_tags.append((pid, TAG))

    def strays(self, around: datetime, out_posts: list, out_tags: list) -> None:
        for _ in range(self.rng.randint(0, 4)):
            t = around + timedelta(hours=self.rng.uniform(-34, 34))  # between two sittings
            pid = self.new_id()
            author = f"u{self.rng.randint(1, self.n_authors - 1)}"
            out_posts.append((pid, "x", "bench", None, author, author, author, self.text("", [TAG]), iso(t),
                              None, None, None, 0, "en", 0, 0, 0, 0, 1))
            out_tags.append((pid, TAG))


INSERT_POST = """INSERT INTO posts (id, platform, source, url, author_id, author_handle, author_name, text,
    created_at, reply_to_id, root_id, quote_of_id, is_repost, lang, like_count, repost_count, reply_count,
    quote_count, matched) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"""


def build(path: Path, n_posts: int, start: datetime, margins: bool = False) -> dict:
    from chatarchive.archive.schema import open_db

    if path.exists():
        path.unlink()
    db = open_db(path, create=True)
    conn = db.conn
    trigger = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'posts_ai'").fetchone()[0]
    conn.execute("DROP TRIGGER posts_ai")
    gen = Generator(margins=margins)
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO authors (id, platform, handle, name) VALUES (?, 'x', ?, ?)",
                     ((f"u{i}", f"u{i}", f"User {i}") for i in range(gen.n_authors)))
    tag_ids = {}
    for t in [TAG] + INCIDENTAL:
        tag_ids[t] = conn.execute("INSERT INTO hashtags (tag) VALUES (?)", (t,)).lastrowid
    sessions = n_posts // POSTS_PER_SESSION
    t = start
    total = 0
    for _ in range(sessions):
        posts: list = []
        tags: list = []
        gen.session(t, POSTS_PER_SESSION, posts, tags)
        gen.strays(t + SPACING / 2, posts, tags)
        conn.executemany(INSERT_POST, posts)
        conn.executemany("INSERT OR IGNORE INTO post_hashtags (post_id, hashtag_id) VALUES (?, ?)",
                         [(p, tag_ids[tg]) for p, tg in tags])
        total += len(posts)
        t += SPACING
    conn.execute("COMMIT")
    conn.execute(trigger)
    meta = {"posts": total, "sessions": sessions, "next": iso(t), "next_id": gen.next_id, "margins": margins}
    (path.with_suffix(".json")).write_text(json.dumps(meta))
    return meta


def new_session_posts(meta: dict, k: int, sessions: int = 1):
    """Post records for ``sessions`` more sittings after the archive's last."""
    from chatarchive.models import Author, Post

    gen = Generator(seed=1000 + k, margins=bool(meta.get("margins")))
    gen.next_id = meta["next_id"] + 10**12 * (k + 1)
    start = datetime.fromisoformat(meta["next"].replace("Z", "+00:00")) + timedelta(days=7 * k)
    rows: list = []
    tags: list = []
    for s in range(sessions):
        gen.session(start + timedelta(days=7 * s), POSTS_PER_SESSION, rows, tags)
    tag_of: dict[str, list[str]] = {}
    for pid, tg in tags:
        tag_of.setdefault(pid, []).append(tg)
    for r in rows:
        yield Post(id=r[0], platform="x", source="bench", url=r[3], created_at=r[8],
                   author=Author(id=r[4], platform="x", handle=r[5], name=r[6]), text=r[7],
                   reply_to_id=r[9], root_id=r[10], quote_of_id=r[11], is_repost=bool(r[12]), lang="en",
                   like_count=r[14], repost_count=r[15], reply_count=r[16], quote_count=r[17],
                   matched=bool(r[18]), hashtags=tag_of.get(r[0], []))


# --------------------------------------------------------------------------
# Measured steps (each in its own process)


def step_full(db_path: str) -> dict:
    from chatarchive.analysis.pipeline import analyse_archive
    from chatarchive.archive.schema import open_db

    db = open_db(db_path, create=True)
    t0, c0 = time.perf_counter(), time.process_time()
    result = analyse_archive(db)
    return {"seconds": time.perf_counter() - t0, "cpu": time.process_time() - c0, "result": result}


def step_add(db_path: str, meta_path: str, k: int, sessions: int) -> dict:
    from chatarchive.analysis.pipeline import analyse_archive
    from chatarchive.archive.schema import open_db
    from chatarchive.archive.writer import save_posts

    meta = json.loads(Path(meta_path).read_text())
    db = open_db(db_path, create=True)
    posts = list(new_session_posts(meta, k, sessions))
    t0 = time.perf_counter()
    save_posts(db, posts)
    t1, c1 = time.perf_counter(), time.process_time()
    result = analyse_archive(db)
    return {"posts": len(posts), "import_seconds": t1 - t0, "seconds": time.perf_counter() - t1,
            "cpu": time.process_time() - c1, "result": result}


def step_again(db_path: str) -> dict:
    from chatarchive.analysis.pipeline import analyse_archive
    from chatarchive.archive.schema import open_db

    db = open_db(db_path, create=True)
    t0 = time.perf_counter()
    result = analyse_archive(db)
    return {"seconds": time.perf_counter() - t0, "result": result}


# The analysis results, each in a fixed order (rowids and ids as stored).
HASHED = [
    "SELECT id, conversation_id, question_id, answer_to_id FROM posts ORDER BY id",
    "SELECT * FROM sessions ORDER BY id",
    "SELECT * FROM session_posts ORDER BY session_id, post_id",
    "SELECT * FROM conversations ORDER BY id",
    "SELECT * FROM questions ORDER BY id",
]


def analysis_hash(path: str | Path) -> str:
    """SHA-256 over the analysis results of an archive (read-only)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    h = hashlib.sha256()
    for sql in HASHED:
        h.update(sql.encode())
        for row in conn.execute(sql):
            h.update(repr(row).encode())
            h.update(b"\n")
    conn.close()
    return h.hexdigest()


def run_child(*args: str) -> tuple[dict, float]:
    """Run a step in a child process; return its JSON and its peak RSS in MB."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    out = subprocess.run([sys.executable, __file__, "--step", *args], check=True, capture_output=True, text=True)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss of RUSAGE_CHILDREN is the largest child so far: children run
    # in order of growing work here, and each step prints its own figure too.
    data = json.loads(out.stdout.strip().splitlines()[-1])
    own = data.pop("rss_mb", None)
    return data, own if own is not None else max(peak, before) / 1024


def machine_note() -> str:
    """How fast this machine is right now, to read the figures by: a fixed
    pure-Python loop (about 0.4 s on an idle 2023 desktop core) and the load."""
    t0 = time.process_time()
    x = 0
    for i in range(10_000_000):
        x += i
    loop = time.process_time() - t0
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"machine: 10M-step Python loop {loop:.2f} s CPU; load average {load:.1f} on "
            f"{os.cpu_count()} CPUs (wall times below stretch when the load exceeds the CPUs)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--posts", type=int, default=1_000_000)
    ap.add_argument("--dir", default="/tmp/chatarchive-bench")
    ap.add_argument("--rebuild", action="store_true")
    ap.add_argument("--margins", action="store_true",
                    help="an archive whose sessions have lead-ins, tails and replies to missing parents")
    ap.add_argument("--hash", action="store_true", help="print a SHA-256 of the analysis results at the end")
    ap.add_argument("--step", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.step:
        name, *rest = args.step
        fn = {"full": step_full, "add": step_add, "again": step_again}[name]
        res = fn(*[int(x) if x.isdigit() else x for x in rest])
        res["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(res, default=str))
        return 0

    print(machine_note())
    work = Path(args.dir)
    work.mkdir(parents=True, exist_ok=True)
    base = work / f"base-{args.posts}{'-margins' if args.margins else ''}-from2006.db"
    meta_path = base.with_suffix(".json")
    if args.rebuild or not base.exists() or not meta_path.exists():
        t0 = time.perf_counter()
        meta = build(base, args.posts, FIRST_SESSION, margins=args.margins)
        print(f"built {base}: {meta['posts']:,} posts in {meta['sessions']:,} sessions "
              f"({time.perf_counter() - t0:.0f} s, {base.stat().st_size / 2**20:,.0f} MB)")
    meta = json.loads(meta_path.read_text())
    db = work / "run.db"
    shutil.copy(base, db)

    full, rss = run_child("full", str(db))
    r = full["result"]
    print(f"full analysis of {meta['posts']:,} posts: {full['seconds']:.1f} s ({full['cpu']:.1f} s CPU), "
          f"peak RSS {rss:.0f} MB "
          f"({r['sessions']:,} sessions, {r['threads']:,} threads, {r['questions']:,} questions, "
          f"{r['answers']:,} answers)")
    for k, n in ((0, 1), (1, 10)):
        add, rss = run_child("add", str(db), str(meta_path), str(k), str(n))
        r = add["result"]
        print(f"+{add['posts']:,} new posts ({n} session{'s' if n > 1 else ''}): import {add['import_seconds']:.2f} s, "
              f"re-analysis {add['seconds']:.2f} s ({add['cpu']:.2f} s CPU), peak RSS {rss:.0f} MB "
              f"(full={r['full']}, sessions analysed {r['sessions_analysed']}, created {r['sessions_created']})")
    again, rss = run_child("again", str(db))
    print(f"re-analysis with nothing new: {again['seconds']:.3f} s")
    if args.hash:
        print(f"analysis results SHA-256: {analysis_hash(db)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
