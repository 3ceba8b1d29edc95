"""Fuzz the importer: seeded mutations of our own fixtures of every format.

Each case takes one fixture file (twarc2 pages, flattened and stream lines,
an X API v2 page, v1.1 JSONL/array/search response, tweets.js, TAGS,
Twitter Archiver and twarc-csv sheets, Mastodon pages/contexts/boosts,
Bluesky searchPosts/thread/feed), mutates it — values replaced by values of
other types and odd values (huge and negative counts, impossible times,
lone surrogates, control characters, deep nesting, empty and long text),
keys dropped, list items duplicated, CSV cells rewritten, bytes cut,
flipped, gzipped or given a byte order mark — and imports it in process
with ``import_files`` (detection or ``--format``, sometimes ``--strict``).

A case *fails* when anything but a ``ChatArchiveError`` escapes the
importer, or when the archive afterwards holds a value outside its
contract (a time not in the fixed-width format and range, a count that is
not an integer in range, a non-text id).  Separately counted: messages that
read like a Python error rather than plain words.

    python bench/fuzz.py                 # 10,000 cases, seed 1
    python bench/fuzz.py 20000 --seed 7
    python bench/fuzz.py 500 --show      # print each failure's traceback

Prints the number of cases, failures (uncaught exceptions and contract
violations) with their first tracebacks, and timing.  Same seed, same cases.
"""

from __future__ import annotations

import argparse
import copy
import csv
import gzip
import io
import json
import os
import random
import sys
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
FIXTURES = HERE.parent / "tests" / "fixtures"

# (path relative to tests/fixtures, format to force or None, --tz)
CORPUS: list[tuple[str, str | None, str | None]] = [
    ("twarc2/chat.jsonl", None, None),
    ("twarc2/flat.jsonl", None, None),
    ("twarc2/stream.jsonl", None, None),
    ("twarc2/api-page.json", None, None),
    ("twarc2/renamed-2167.jsonl", None, None),
    ("x/v1.jsonl", None, None),
    ("x/v1-array.json", None, None),
    ("x/v1-search.json", None, None),
    ("x/archive/data/tweets.js", None, None),
    ("x/archive-old/tweet.js", None, None),
    ("x/tags.csv", None, None),
    ("x/twarc.csv", None, None),
    ("x/archiver.csv", None, "America/New_York"),
    ("mastodon/tag-edchat-mastodon-example.json", None, None),
    ("mastodon/tag-edchat-example-social.json", None, None),
    ("mastodon/context-a1.json", None, None),
    ("mastodon/boost-quote.jsonl", None, None),
    ("bluesky/searchPosts-edchat.json", None, None),
    ("bluesky/getPostThread-edchat.json", None, None),
    ("bluesky/feed-edchat.json", None, None),
]

# Odd values the fuzzer puts where a field was (every kind a real file or a
# hostile one has shown): other types, impossible times, extreme numbers.
ODD_VALUES: list[Any] = [
    None, True, False, 0, -1, 1, 2**31, 2**63, 2**64 + 1, 10**20, -(10**20), 1e20, -0.5, 3.7, 1e308,
    "", " ", "0", "-5", "1e20", "NaN", "inf", "NA", "null", "abc", "12x",
    "0000-01-01T00:00:00Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "1-01-01T00:00:00Z",
    "2024-13-45T99:99:99Z", "2026-11-18T20:00:00+14:00", "2026-11-18T20:00:00-14:00",
    "Mon Jan 01 00:00:00 +0000 0001", "Fri Dec 31 23:59:59 +1400 9999", "yesterday",
    "\x00", "\x1b]0;owned\x07\x1b[2J", "\ud800", "\u202eevil", "é" * 3, "x" * 5000,
    "javascript:alert(1)", "https://user:secret@example.org/x", "https://t.co/abc123", "at://",
    "at://did:plc:x/app.bsky.feed.post/3lpk2u6qo222m", "did:plc:x", "@", "#", "RT @",
    [], [1, 2], ["a", None], [[[[[[]]]]]], {}, {"a": 1}, {"id": {"id": {}}}, {"$type": 5},
]

CSV_ODD = ["", "NA", "1.79E+18", "1790000000000000000", "-3", "1e20", "inf", "0000-01-01", "9999-12-31 23:59:59",
           "13/45/2024 99:99", "\x00", "\x1b[2J", "=cmd|' /C calc'!A0", '"', "\n", "x" * 200_000,
           '{"urls": [{"url": 5}]}', "[1, {}]", "https://t.co/zz", "#chatRT @u: hi"]


def odd(rng: random.Random) -> Any:
    v = rng.choice(ODD_VALUES)
    if rng.random() < 0.05:  # deep nesting, beyond what recursive code survives
        depth = rng.choice([300, 1100, 3000])
        for _ in range(depth):
            v = [v]
    return copy.deepcopy(v) if isinstance(v, (list, dict)) else v


# --------------------------------------------------------------------------
# Mutating JSON values


def _nodes(value: Any, limit: int = 4000) -> list[tuple[Any, Any]]:
    """(container, key) of every value inside ``value`` (iteratively)."""
    out: list[tuple[Any, Any]] = []
    todo = [value]
    while todo and len(out) < limit:
        v = todo.pop()
        if isinstance(v, dict):
            for k in list(v):
                out.append((v, k))
                todo.append(v[k])
        elif isinstance(v, list):
            for i in range(len(v)):
                out.append((v, i))
                todo.append(v[i])
    return out


def mutate_value(value: Any, rng: random.Random, rounds: int) -> Any:
    for _ in range(rounds):
        nodes = _nodes(value)
        if not nodes:
            return odd(rng)
        container, key = rng.choice(nodes)
        roll = rng.random()
        if roll < 0.55:
            container[key] = odd(rng)
        elif roll < 0.7 and isinstance(container, dict):
            del container[key]
        elif roll < 0.8 and isinstance(container, list):
            container.insert(rng.randrange(len(container) + 1), copy.deepcopy(container[key]))
        elif roll < 0.9:
            other_c, other_k = rng.choice(nodes)
            try:
                container[key] = copy.deepcopy(other_c[other_k])
            except (KeyError, IndexError, RecursionError):
                pass
        elif isinstance(container[key], str) and container[key]:
            s = container[key]
            i = rng.randrange(len(s))
            container[key] = s[:i] + rng.choice(["\x00", "\ud83d", "…", "\u200b", '"', "\\"]) + s[i + 1:]
        else:
            container[key] = odd(rng)
    return value


def _dumps(value: Any, pretty: bool) -> str:
    # deep nesting (a few thousand levels) needs more than the default
    # recursion limit in json's encoder
    return json.dumps(value, indent=2 if pretty else None, ensure_ascii=False)


def mutate_json_document(text: str, rng: random.Random) -> str:
    value = json.loads(text)
    value = mutate_value(value, rng, rng.randint(1, 6))
    return _dumps(value, pretty=rng.random() < 0.7)


def mutate_jsonl(text: str, rng: random.Random) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    out = []
    for line in lines:
        if rng.random() < 0.5:
            try:
                value = mutate_value(json.loads(line), rng, rng.randint(1, 4))
                line = _dumps(value, pretty=False).replace("\n", " ")
            except ValueError:
                pass
        out.append(line)
    if rng.random() < 0.2 and out:
        out.insert(rng.randrange(len(out) + 1), rng.choice(["{", "[1,", "not json", "{}", "[]", "null", "5"]))
    return "\n".join(out) + "\n"


def mutate_csv(text: str, rng: random.Random) -> str:
    rows = list(csv.reader(io.StringIO(text)))
    for _ in range(rng.randint(1, 8)):
        if not rows:
            break
        r = rng.randrange(len(rows))
        if not rows[r]:
            continue
        c = rng.randrange(len(rows[r]))
        roll = rng.random()
        if roll < 0.8:
            rows[r][c] = rng.choice(CSV_ODD)
        elif roll < 0.9:
            del rows[r][c]
        else:
            rows.insert(r, list(rows[r]))
    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    return buf.getvalue()


def mutate_js(text: str, rng: random.Random) -> str:
    eq = text.index("=") + 1
    return text[:eq] + " " + mutate_json_document(text[eq:].strip().rstrip(";"), rng)


def mutate_bytes(data: bytes, rng: random.Random) -> bytes:
    roll = rng.random()
    if roll < 0.3 and data:
        return data[: rng.randrange(len(data))]  # cut
    if roll < 0.55 and data:
        b = bytearray(data)
        for _ in range(rng.randint(1, 5)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        return bytes(b)
    if roll < 0.7:
        return b"\xef\xbb\xbf" + data
    if roll < 0.8 and data:
        i = rng.randrange(len(data))
        return data[:i] + rng.choice([b"\r\n", b"\n\n\n", b"\x00", b"\xff\xfe", b"{" * 50]) + data[i:]
    return data


@dataclass
class Case:
    n: int
    source: str
    data: bytes
    fmt: str | None
    tz: str | None
    strict: bool
    gzip: bool


def make_case(n: int, rng: random.Random) -> Case:
    rel, fmt, tz = rng.choice(CORPUS)
    path = FIXTURES / rel
    text = path.read_text(encoding="utf-8")
    try:
        if rel.endswith(".csv"):
            text = mutate_csv(text, rng)
        elif rel.endswith(".js"):
            text = mutate_js(text, rng)
        elif rel.endswith(".jsonl"):
            text = mutate_jsonl(text, rng)
        else:
            text = mutate_json_document(text, rng)
    except (ValueError, RecursionError):
        pass
    data = text.encode("utf-8", errors="surrogatepass")
    if rng.random() < 0.25:
        data = mutate_bytes(data, rng)
    if rng.random() < 0.1:
        from chatarchive.sources import FORMATS

        fmt = rng.choice(list(FORMATS))
    return Case(n=n, source=rel, data=data, fmt=fmt, tz=tz if rng.random() < 0.9 else None,
                strict=rng.random() < 0.1, gzip=rng.random() < 0.1)


# --------------------------------------------------------------------------
# Running a case and checking the archive's contract


# What the archive promises about stored values (contracts C1, C2; issue 14).
CONTRACT_SQL = [
    ("created_at outside the fixed-width format or range",
     "SELECT id, created_at FROM posts WHERE created_at IS NOT NULL AND (typeof(created_at) <> 'text' "
     "OR length(created_at) <> 24 OR created_at NOT GLOB "
     "'[0-9][0-9][0-9][0-9]-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9].[0-9][0-9][0-9]Z' "
     "OR created_at < '2006-01-01' OR created_at > :latest)"),
    ("a count that is not an integer from 0 to 2^63-1",
     "SELECT id, like_count, repost_count, reply_count, quote_count FROM posts WHERE "
     "(like_count IS NOT NULL AND (typeof(like_count) <> 'integer' OR like_count < 0)) OR "
     "(repost_count IS NOT NULL AND (typeof(repost_count) <> 'integer' OR repost_count < 0)) OR "
     "(reply_count IS NOT NULL AND (typeof(reply_count) <> 'integer' OR reply_count < 0)) OR "
     "(quote_count IS NOT NULL AND (typeof(quote_count) <> 'integer' OR quote_count < 0))"),
    ("an id, author or text column that is not text",
     "SELECT id FROM posts WHERE typeof(id) <> 'text' OR typeof(platform) <> 'text' "
     "OR (author_id IS NOT NULL AND typeof(author_id) <> 'text') OR typeof(text) <> 'text' "
     "OR (reply_to_id IS NOT NULL AND typeof(reply_to_id) <> 'text') "
     "OR (url IS NOT NULL AND typeof(url) <> 'text') OR (lang IS NOT NULL AND typeof(lang) <> 'text')"),
    ("a platform that is not x, mastodon or bluesky",
     "SELECT id, platform FROM posts WHERE platform NOT IN ('x', 'mastodon', 'bluesky')"),
    ("an author row whose columns are not text",
     "SELECT id FROM authors WHERE typeof(id) <> 'text' OR (handle IS NOT NULL AND typeof(handle) <> 'text') "
     "OR (name IS NOT NULL AND typeof(name) <> 'text')"),
    # (SQLite's json_valid stops at 1,000 levels: deeper rows are parsed in Python)
    ("a raw object that is not JSON",
     "SELECT post_id, json FROM raw WHERE json_valid(json) = 0"),
    ("an edit time outside the format",
     "SELECT id FROM posts WHERE edited_at IS NOT NULL AND (length(edited_at) <> 24 OR edited_at < '2006')"),
]

# Messages that read like a Python error instead of plain words.
PYTHON_WORDS = ("object has no attribute", "NoneType", "Traceback", "not subscriptable", "unhashable",
                "object is not iterable", "takes ", "positional argument")


@dataclass
class Stats:
    cases: int = 0
    imported: int = 0  # cases in which at least one post was stored
    refused: int = 0  # cases whose file was refused with one line
    failures: int = 0
    unclear: int = 0
    kinds: Counter = field(default_factory=Counter)
    first: list[str] = field(default_factory=list)
    unclear_examples: list[str] = field(default_factory=list)


def run_case(case: Case, workdir: Path, db: Any, stats: Stats, show: bool) -> None:
    from chatarchive.archive.importer import import_files
    from chatarchive.errors import ChatArchiveError

    latest = (datetime.now(timezone.utc) + timedelta(days=366)).strftime("%Y-%m-%dT%H:%M:%S.999Z")

    name = Path(case.source).name
    path = workdir / (name + (".gz" if case.gzip else ""))
    if case.source.endswith("tweets.js"):
        path = workdir / "data" / name
        path.parent.mkdir(exist_ok=True)
    path.write_bytes(gzip.compress(case.data) if case.gzip else case.data)
    stats.cases += 1
    try:
        results = import_files(db, [str(path)], format=case.fmt, tz=case.tz, strict=case.strict)
    except ChatArchiveError as e:
        _messages(stats, [str(e)])
        return
    except Exception:
        stats.failures += 1
        tb = traceback.format_exc()
        stats.kinds[tb.strip().splitlines()[-1][:100]] += 1
        if len(stats.first) < 5 or show:
            stats.first.append(f"case {case.n} ({case.source}, format={case.fmt}, strict={case.strict}, "
                               f"gzip={case.gzip}):\n{tb}")
        return
    r = results[0]
    problems = list(getattr(r, "problems", []))
    if r.error:
        stats.refused += 1
    elif r.posts:
        stats.imported += 1
    _messages(stats, problems + ([r.error] if r.error else []))
    for what, sql in CONTRACT_SQL:
        bad = db.conn.execute(sql, {"latest": latest} if ":latest" in sql else {}).fetchmany(3)
        if what.startswith("a raw object"):
            bad = [(pid, raw[:200]) for pid, raw in bad if not _is_json(raw)]
        if bad:
            stats.failures += 1
            stats.kinds[f"contract: {what}"] += 1
            if len(stats.first) < 5 or show:
                stats.first.append(f"case {case.n} ({case.source}): {what}: {bad!r}")
            for table in ("posts", "raw", "authors"):  # so the next case is judged on its own
                db.conn.execute(f"DELETE FROM {table}")


def _is_json(text: Any) -> bool:
    try:
        json.loads(text)
        return True
    except (TypeError, ValueError):
        return False


def _messages(stats: Stats, messages: list[str]) -> None:
    for m in messages:
        if any(w in m for w in PYTHON_WORDS):
            stats.unclear += 1
            if len(stats.unclear_examples) < 10:
                stats.unclear_examples.append(m[:300])


def fuzz(cases: int, seed: int = 1, show: bool = False, rotate: int = 200, progress: bool = False) -> Stats:
    """Run ``cases`` cases; the archive is replaced every ``rotate`` cases
    (cases also meet what earlier ones stored: conflicts, merges)."""
    from chatarchive.archive.schema import open_db

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 20_000))
    rng = random.Random(seed)
    stats = Stats()
    with tempfile.TemporaryDirectory(prefix="chatarchive-fuzz-") as tmp:
        workdir = Path(tmp)
        db = None
        for n in range(cases):
            if db is None or n % rotate == 0:
                if db is not None:
                    db.conn.close()
                for suffix in ("", "-journal"):
                    p = workdir / f"fuzz.db{suffix}"
                    if p.exists():
                        p.unlink()
                db = open_db(workdir / "fuzz.db", create=True)
            case = make_case(n, rng)
            run_case(case, workdir, db, stats, show)
            if progress and n and n % 1000 == 0:
                print(f"  {n:,} cases, {stats.failures} failures", file=sys.stderr)
        if db is not None:
            db.conn.close()
    return stats


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("cases", nargs="?", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--show", action="store_true", help="print every failure's traceback")
    args = ap.parse_args(argv)
    os.environ.setdefault("CHATARCHIVE_BUSY_TIMEOUT", "1")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    started = time.monotonic()
    stats = fuzz(args.cases, args.seed, args.show, progress=True)
    seconds = time.monotonic() - started
    print(f"cases:                 {stats.cases:,} (seed {args.seed}; {seconds:.1f} s, "
          f"{stats.cases / seconds:,.0f} cases/s; load {load:.1f})")
    print(f"  imported something:  {stats.imported:,}")
    print(f"  refused in one line: {stats.refused:,}")
    print(f"uncaught exceptions and contract violations: {stats.failures:,}")
    for kind, n in stats.kinds.most_common(15):
        print(f"  {n:6,}  {kind}")
    print(f"messages that read like a Python error: {stats.unclear:,}")
    for m in stats.unclear_examples:
        print(f"  {m}")
    for tb in stats.first:
        print("-" * 72)
        print(tb)
    return 1 if stats.failures else 0


if __name__ == "__main__":
    sys.exit(main())
