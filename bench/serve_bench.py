"""Benchmark `chatarchive serve` on a 1,000,000-post archive.

Builds the archive once (rows inserted with SQL for speed: realistic chat
text, sessions with numbered questions and answers, replies, several
platforms, the FTS index filled by the schema's own triggers), starts the
real server (`chatarchive serve` in a subprocess), and prints the median
latency over HTTP of the search page and the session page, among others.
Target: under 300 ms median for both.

    python bench/serve_bench.py                 # build or reuse bench/out/serve-1m.db
    python bench/serve_bench.py --posts 100000 --db /tmp/small.db
    python bench/serve_bench.py --rebuild --runs 40
"""

from __future__ import annotations

import argparse
import json
import math
import random
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chatarchive.archive.schema import open_db

TARGET_MS = 300

# --------------------------------------------------------------------------
# Realistic text: common English words with Zipf frequencies, chat topic
# words, and a long tail of rarer tokens (names, tools, jargon).

COMMON = ["the", "to", "and", "a", "of", "i", "in", "is", "for", "that", "you", "it", "on", "with", "this", "we", "be", "are", "have", "my", "our", "at", "so", "but", "not", "can", "what", "do", "how", "all", "just", "about", "more", "they", "your", "it's", "as", "from", "when", "or", "like", "one", "get", "think", "really", "great", "love", "people", "time", "make", "good", "know", "need", "so", "much", "also", "would", "there", "if", "out", "up", "them", "their", "very", "way", "help", "me", "by", "who", "some", "new", "work", "been", "was", "an", "will", "thanks", "which", "great", "here", "into", "than", "then", "only", "because", "make", "sure", "even", "still", "back", "first"]
TOPIC = ["community", "members", "engagement", "content", "metrics", "growth", "retention", "newcomers", "welcome", "onboarding", "conversation", "platform", "moderation", "events", "feedback", "trust", "culture", "volunteers", "ambassadors", "forum", "discord", "slack", "meetup", "chat", "hashtag", "question", "answer", "host", "strategy", "goals", "data", "dashboard", "survey", "tools", "spreadsheet", "analytics", "roi", "value", "impact", "story", "stories", "brand", "voice", "audience", "network", "connection", "relationships", "mentor", "learning", "lurkers", "superusers", "champions", "advocacy", "recognition", "rewards", "badges", "gamification", "newsletter", "email", "webinar", "workshop", "program", "launch", "pilot", "experiment", "budget", "team", "leaders", "support", "documentation", "product", "customers", "users", "developers", "open", "source", "contributors", "governance", "guidelines", "code", "conduct", "safety", "inclusion", "accessibility", "remote", "async", "burnout", "boundaries", "energy", "curiosity", "kindness", "listening", "empathy", "patience", "consistency", "habits", "rituals", "onboarding", "calendar", "agenda", "recap", "summary", "highlights", "takeaways"]
CHAT = ["totally", "agree", "love", "this", "great", "point", "so", "true", "yes", "exactly", "same", "here", "+1", "thanks", "for", "sharing", "good", "morning", "hello", "everyone", "hi", "all", "first", "time", "joining", "late", "sorry", "lurking", "today", "tonight", "week", "month", "year", "always", "never", "often", "sometimes", "honestly", "actually"]
SYLLABLES = ["ka", "lo", "mi", "ra", "te", "zu", "vo", "ne", "shi", "ta", "ri", "po", "la", "de", "gu", "ba", "ko", "mo", "sa", "fi", "ve", "xi", "yo", "an", "el", "or"]

HASHTAGS = ["growthchat", "cmgrchat", "edchat", "hcsm", "blogchat", "smallbizchat", "journchat",
            "pmchat", "devrelchat", "uxchat", "datachat", "ecochat", "hrchat", "mktgchat",
            "leadershipchat", "writingchat", "scichat", "libchat", "teachchat", "nonprofitchat",
            "socialmediachat", "seochat", "contentchat", "cxchat", "remotechat", "a11ychat",
            "opensourcechat", "musedchat", "careerchat", "healthchat"]
FIRST = ["Ann", "Bob", "Carla", "Dave", "Eve", "Frank", "Gina", "Hugo", "Ines", "Jon", "Kim", "Lea",
         "Maya", "Nils", "Omar", "Pia", "Quinn", "Rosa", "Sam", "Tess", "Uma", "Vik", "Wen", "Yara", "Zoë"]
LAST = ["Smith", "García", "Okafor", "Nguyen", "Müller", "Rossi", "Kowalski", "Tanaka", "Silva",
        "Haddad", "Larsen", "Ivanova", "Cohen", "Dubois", "O'Brien", "Patel", "Kim", "Novak"]
SERVERS = ["mastodon.social", "fosstodon.org", "hachyderm.io", "mas.to", "social.coop"]


def tail_words(rng: random.Random, n: int) -> list[str]:
    out = set()
    while len(out) < n:
        out.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))))
    return sorted(out)


class TextMaker:
    def __init__(self, rng: random.Random):
        self.rng = rng
        tail = tail_words(rng, 20000)
        self.words = COMMON + TOPIC + CHAT + tail
        # Zipf: weight 1/rank^1.07 over the whole vocabulary, topic words
        # lifted so that chat subjects are common but not stop-word common.
        weights = []
        for i in range(len(self.words)):
            rank = i + 1
            weights.append(1.0 / rank ** 1.07)
        self.cum = list(_accumulate(weights))

    def words_(self, k: int) -> list[str]:
        return self.rng.choices(self.words, cum_weights=self.cum, k=k)

    def sentence(self, lo: int = 6, hi: int = 28) -> str:
        return " ".join(self.words_(self.rng.randint(lo, hi)))


def _accumulate(xs):
    total = 0.0
    for x in xs:
        total += x
        yield total


# --------------------------------------------------------------------------
# Building the archive


def iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def make_authors(rng: random.Random, n: int) -> list[dict]:
    authors = []
    seen = set()
    for i in range(n):
        r = rng.random()
        base = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3))) + (
            str(rng.randint(1, 999)) if rng.random() < 0.4 else "")
        while base in seen:
            base += rng.choice("abcdefgh")
        seen.add(base)
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        if r < 0.7:
            platform, aid, handle = "x", str(10_000_000 + i), base
            url = f"https://x.com/{handle}"
        elif r < 0.9:
            server = rng.choice(SERVERS)
            platform, handle = "mastodon", f"{base}@{server}"
            aid = f"https://{server}/users/{base}"
            url = f"https://{server}/@{base}"
        else:
            platform, handle = "bluesky", f"{base}.bsky.social"
            aid = "did:plc:" + "".join(rng.choice("abcdefghijklmnopqrstuvwxyz234567") for _ in range(24))
            url = f"https://bsky.app/profile/{handle}"
        avatar = f"https://avatars.example.com/{base}.jpg" if rng.random() < 0.8 else None
        authors.append({"id": aid, "platform": platform, "handle": handle, "name": name,
                        "avatar_url": avatar, "url": url, "short": base})
    return authors


def post_identity(a: dict, seq: int, when: datetime) -> tuple[str, str]:
    if a["platform"] == "x":
        pid = str((int(when.timestamp() * 1000) - 1288834974657) << 22 | (seq & 0x3FFFFF))
        return pid, f"https://x.com/{a['handle']}/status/{pid}"
    if a["platform"] == "mastodon":
        server = a["id"].split("/")[2]
        return f"{a['id']}/statuses/{seq}", f"https://{server}/@{a['short']}/{seq}"
    rkey = "3k" + format(seq, "011x")  # unique per post, TID-like length
    return f"at://{a['id']}/app.bsky.feed.post/{rkey}", f"https://bsky.app/profile/{a['handle']}/post/{rkey}"


POST_SQL = """INSERT INTO posts (id, platform, source, url, author_id, author_handle, author_name, text,
    created_at, reply_to_id, reply_to_author, root_id, is_repost, lang, like_count, repost_count,
    reply_count, quote_count, conversation_id, matched, question_id, answer_to_id)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 'en', ?, ?, ?, ?, ?, 1, ?, ?)"""


def build(path: Path, n_posts: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    text = TextMaker(rng)
    if path.exists():
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    db = open_db(path, create=True)  # the real schema, FTS triggers included
    conn = db.conn
    conn.execute("PRAGMA journal_mode = OFF")
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA cache_size = -400000")
    t0 = time.monotonic()
    authors = make_authors(rng, max(2000, n_posts // 16))
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO authors (id, platform, handle, name, avatar_url, url) VALUES (?, ?, ?, ?, ?, ?)",
        [(a["id"], a["platform"], a["handle"], a["name"], a["avatar_url"], a["url"]) for a in authors],
    )
    tag_ids = {}
    for tag in HASHTAGS:
        tag_ids[tag] = conn.execute("INSERT INTO hashtags (tag) VALUES (?)", (tag,)).lastrowid
    # Each chat: a weekday and hour, a community of regulars, one or two hosts.
    chats = []
    for i, tag in enumerate(HASHTAGS):
        members = rng.sample(authors, k=min(len(authors), rng.randint(800, 4000)))
        chats.append({"tag": tag, "weekday": i % 7, "hour": 14 + i % 9, "members": members,
                      "hosts": members[:rng.choice([1, 1, 2])], "size": rng.uniform(0.5, 1.6)})
    # Sessions in time order across chats, weekly from 2016 until the posts run out.
    start_day = datetime(2016, 1, 4, tzinfo=timezone.utc)
    plan = []
    total = 0
    week = 0
    while total < n_posts:
        for chat in chats:
            size = int(min(4000, max(20, rng.lognormvariate(math.log(220 * chat["size"]), 0.7))))
            if rng.random() < 0.15:
                continue  # a week off
            start = start_day + timedelta(weeks=week, days=chat["weekday"], hours=chat["hour"])
            plan.append((start, chat, min(size, n_posts - total)))
            total += plan[-1][2]
            if total >= n_posts:
                break
        week += 1
    plan.sort(key=lambda p: p[0])
    seq = 0
    session_id = 0
    question_id = 0
    posts, session_posts, post_tags, questions, sessions = [], [], [], [], []

    def flush():
        conn.executemany(POST_SQL, posts)
        conn.executemany("INSERT INTO session_posts (session_id, post_id, via) VALUES (?, ?, 'tag')", session_posts)
        conn.executemany("INSERT INTO post_hashtags (post_id, hashtag_id) VALUES (?, ?)", post_tags)
        conn.executemany("INSERT INTO questions (id, session_id, number, post_id, text) VALUES (?, ?, ?, ?, ?)", questions)
        conn.executemany(
            """INSERT INTO sessions (id, slug, hashtag, title, start, "end", hosts, source, timezone, platforms, post_count)
               VALUES (?, ?, ?, ?, ?, ?, ?, 'detected', NULL, ?, ?)""", sessions)
        for lst in (posts, session_posts, post_tags, questions, sessions):
            lst.clear()

    slugs_seen: set[str] = set()
    for start, chat, size in plan:
        session_id += 1
        tag = chat["tag"]
        slug = f"{tag}-{start:%Y-%m-%d}"
        while slug in slugs_seen:
            slug += "-2"
        slugs_seen.add(slug)
        n_questions = rng.randint(4, 8)
        q_times = [start + timedelta(minutes=5 + k * 50 // n_questions) for k in range(n_questions)]
        people = rng.sample(chat["members"], k=min(len(chat["members"]), max(5, size // 4)))
        current_q = None  # (id, number)
        asked: list[tuple[int, int]] = []
        session_ids: list[tuple[str, str, str]] = []  # (post id, handle, conversation)
        times = sorted(start + timedelta(seconds=rng.uniform(0, 3600)) for _ in range(size))
        qi = 0
        platforms = set()
        for t in times:
            seq += 1
            while qi < n_questions and q_times[qi] <= t:
                # the host asks the next question
                host = rng.choice(chat["hosts"])
                question_id += 1
                qi += 1
                pid, url = post_identity(host, seq, q_times[qi - 1])
                seq += 1
                qtext = f"Q{qi}: {text.sentence(6, 16).capitalize()}? #{tag}"
                posts.append((pid, host["platform"], "bench", url, host["id"], host["handle"], host["name"],
                              qtext, iso(q_times[qi - 1]), None, None, pid,
                              rng.randint(0, 40), rng.randint(0, 15), rng.randint(0, 30), 0, pid,
                              question_id, None))
                questions.append((question_id, session_id, qi, pid, qtext))
                session_posts.append((session_id, pid))
                post_tags.append((pid, tag_ids[tag]))
                session_ids.append((pid, host["handle"], pid))
                platforms.add(host["platform"])
                current_q = (question_id, qi)
                asked.append(current_q)
            a = rng.choice(people)
            pid, url = post_identity(a, seq, t)
            roll = rng.random()
            reply_to = reply_author = None
            conv = pid
            answer = None
            body = text.sentence()
            if current_q and roll < 0.45:
                q = current_q if rng.random() < 0.9 else rng.choice(asked)
                answer = q[0]
                body = f"A{q[1]}: {body}"
            elif session_ids and roll < 0.8:
                parent, parent_handle, conv = rng.choice(session_ids[-60:])
                reply_to, reply_author = parent, parent_handle
                body = f"@{parent_handle.split('@')[0]} {body}"
            if rng.random() < 0.08:
                body += f" https://example.org/{rng.choice(TOPIC)}/{rng.randint(1, 9999)}"
            if rng.random() < 0.05:
                body += f" #{rng.choice(TOPIC)}"
            body += f" #{tag}"
            posts.append((pid, a["platform"], "bench", url, a["id"], a["handle"], a["name"], body, iso(t),
                          reply_to, reply_author, conv, rng.randint(0, 12), rng.randint(0, 4),
                          rng.randint(0, 3), 0, conv, None, answer))
            session_posts.append((session_id, pid))
            post_tags.append((pid, tag_ids[tag]))
            session_ids.append((pid, a["handle"], conv))
            platforms.add(a["platform"])
        sessions.append((session_id, slug, tag, None, iso(start), iso(start + timedelta(hours=1)),
                         json.dumps([h["handle"] for h in chat["hosts"]]), json.dumps(sorted(platforms)),
                         len(session_ids)))
        if len(posts) >= 20000:
            flush()
            done = seq
            print(f"\r  {done:,} posts, {time.monotonic() - t0:.0f} s", end="", file=sys.stderr, flush=True)
    flush()
    conn.execute("COMMIT")
    print(file=sys.stderr)
    count = conn.execute("select count(*) from posts").fetchone()[0]
    print(f"Built {path}: {count:,} posts, {session_id:,} sessions, {len(authors):,} authors "
          f"in {time.monotonic() - t0:.0f} s ({path.stat().st_size / 1e9:.2f} GB)")
    conn.close()


# --------------------------------------------------------------------------
# Measuring


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pick_words(path: Path) -> dict[str, tuple[str, int]]:
    """Search terms by how many posts they match: common, typical, rare."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    total = conn.execute("select count(*) from posts").fetchone()[0]
    out: dict[str, tuple[str, int]] = {}
    wanted = {"common (~5%)": 0.05, "typical (~0.5%)": 0.005, "rare (~0.02%)": 0.0002}
    candidates = COMMON[20:] + TOPIC + CHAT + tail_words(random.Random(7), 20000)[:4000:40]
    counts = []
    for w in candidates:
        n = conn.execute("select count(*) from posts_fts where posts_fts match ?", (f'"{w}"',)).fetchone()[0]
        counts.append((n, w))
    for label, share in wanted.items():
        n, w = min(counts, key=lambda c: abs(c[0] - share * total))
        out[label] = (w, n)
    return out


def measure(base: str, path: str, runs: int) -> dict:
    times = []
    size = 0
    with httpx.Client(base_url=base, timeout=60) as http:
        t = time.perf_counter()
        r = http.get(path)
        cold = (time.perf_counter() - t) * 1000
        if r.status_code != 200:
            raise SystemExit(f"{path}: HTTP {r.status_code}: {r.text[:300]}")
        for _ in range(2):
            http.get(path)
        for _ in range(runs):
            t = time.perf_counter()
            r = http.get(path)
            times.append((time.perf_counter() - t) * 1000)
            size = len(r.content)
    times.sort()
    return {"median": statistics.median(times), "p90": times[int(len(times) * 0.9) - 1],
            "min": times[0], "max": times[-1], "first": cold, "bytes": size}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", type=Path, default=ROOT / "bench" / "out" / "serve-1m.db")
    ap.add_argument("--posts", type=int, default=1_000_000)
    ap.add_argument("--rebuild", action="store_true")
    ap.add_argument("--runs", type=int, default=25)
    ap.add_argument("--json", action="store_true", help="Print the figures as JSON too.")
    args = ap.parse_args()

    if args.rebuild or not args.db.exists():
        print(f"Building {args.posts:,}-post archive at {args.db} …", file=sys.stderr)
        build(args.db, args.posts)
    conn = sqlite3.connect(f"file:{args.db}?mode=ro", uri=True)
    posts = conn.execute("select count(*) from posts").fetchone()[0]
    typical_session = conn.execute(
        "select slug, post_count from sessions order by post_count limit 1 offset (select count(*) / 2 from sessions)"
    ).fetchone()
    big_session = conn.execute("select slug, post_count from sessions order by post_count desc limit 1").fetchone()
    conn.close()
    words = pick_words(args.db)
    name = args.db.stem

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", "from chatarchive.cli import cli; cli()", "serve", str(args.db),
         "--port", str(port), "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
    )
    base = f"http://127.0.0.1:{port}"
    t0 = time.monotonic()
    while True:
        try:
            if httpx.get(f"{base}/-/versions.json", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() - t0 > 120:
            raise SystemExit(f"server did not start: {proc.stdout.read() if proc.stdout else ''}")
        time.sleep(0.2)
    startup = time.monotonic() - t0

    typical_word = words["typical (~0.5%)"][0]
    cases = [
        ("search page, typical word", f"/{name}/-/search?q={typical_word}", True),
        ("session page, median session", f"/{name}/-/session/{typical_session[0]}", True),
    ]
    for label, (word, _n) in words.items():
        if "typical" not in label:
            cases.append((f"search page, {label.split(' ')[0]} word", f"/{name}/-/search?q={word}", False))
    cases += [
        ("search page, typical, newest first", f"/{name}/-/search?q={typical_word}&order=newest", False),
        ("search page, two words", f"/{name}/-/search?q={typical_word}+{words['common (~5%)'][0]}", False),
        ("session page, largest session", f"/{name}/-/session/{big_session[0]}", False),
        ("posts table ?_search= (typical)", f"/{name}/posts?_search={typical_word}", False),
        ("canned search_posts (typical)", f"/{name}/search_posts?q={typical_word}", False),
        ("session_transcript (median)", f"/{name}/session_transcript?session={typical_session[0]}", False),
        ("posts table, no filter", f"/{name}/posts", False),
    ]
    results = []
    try:
        for label, path, gated in cases:
            r = measure(base, path, args.runs)
            results.append((label, path, gated, r))
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()

    print(f"\nchatarchive serve on {args.db} ({posts:,} posts), server ready in {startup:.1f} s, "
          f"{args.runs} timed requests per page over HTTP (keep-alive), after 3 warm-up requests")
    print("search words: " + ", ".join(f"{label}: {w!r} matches {n:,}" for label, (w, n) in words.items()))
    print(f"median session {typical_session[0]} ({typical_session[1]} posts); largest {big_session[0]} "
          f"({big_session[1]} posts)\n")
    print(f"{'page':40} {'median':>8} {'p90':>8} {'max':>8} {'first':>8} {'KB':>7}")
    ok = True
    for label, _path, gated, r in results:
        mark = ""
        if gated:
            passed = r["median"] < TARGET_MS
            ok = ok and passed
            mark = "  PASS" if passed else f"  FAIL (target < {TARGET_MS} ms)"
        print(f"{label:40} {r['median']:7.0f}ms {r['p90']:7.0f}ms {r['max']:7.0f}ms {r['first']:7.0f}ms "
              f"{r['bytes'] / 1024:7.0f}{mark}")
    if args.json:
        print(json.dumps([{"page": label, "path": path, **r} for label, path, _, r in results], indent=2))
    print("\nTarget met." if ok else "\nTarget NOT met.")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
