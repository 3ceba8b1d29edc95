"""Import benchmark: `chatarchive import` against a bare json.loads pass.

Generates (or reuses) N synthetic twarc2 posts with bench/gen_twarc2.py, then
prints: the file size; the time of a bare stdlib ``json.loads`` pass over the
same file, line by line; the wall time, posts/s and peak RSS of
``chatarchive import`` run as a child process; the ratio of the two times;
and the median latency of ~20 representative full-text queries on the
resulting archive.  Targets (issue 2): ratio <= 3 at 1,000,000 posts, peak
RSS < 300 MB, FTS median < 50 ms.

    python bench/import_bench.py 100000
    python bench/import_bench.py 1000000 --workdir /tmp/chatarchive-import-bench --keep
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent

sys.path.insert(0, str(HERE))
from gen_twarc2 import EPOCH, _vocab

from chatarchive.archive.schema import open_db
from chatarchive.archive.search import search

_WORDS = _vocab(random.Random(42))  # the generator's vocabulary (same seed)
_SINCE = (EPOCH - timedelta(weeks=30)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
_UNTIL = (EPOCH - timedelta(weeks=40)).strftime("%Y-%m-%dT%H:%M:%S.000Z")

# (query, options) pairs a chat host would type: the chat's topic words
# (2-4% of posts), rarer words, stemming, phrases, boolean operators,
# prefixes, author names, hashtag/time filters, both orders.
QUERIES: list[tuple[str, dict]] = [
    ("community", {}),
    ("metrics", {}),
    ("community AND metrics", {}),
    ("community metrics", {"hashtag": "cmgrchat"}),
    ('"community metrics"', {}),
    ("measure", {}),  # stems: measure, measuring
    ("onboarding OR retention", {}),
    ("feedback NOT survey", {}),
    ("insight*", {}),
    ("moderation trust", {"order": "newest"}),
    ("welcome", {"hashtag": "edchat", "order": "newest"}),
    (_WORDS[5000], {}),  # rare words
    (_WORDS[12000], {}),
    ("café", {}),
    ("A1 strategy", {}),
    ("strategy", {"since": _SINCE}),
    ("growth", {"until": _UNTIL, "order": "newest"}),
    (_WORDS[300].capitalize(), {}),  # part of many author names
    ("NEAR(brand content, 5)", {}),
    ("remote hybrid", {"limit": 100}),
]
# Not a realistic search, shown apart: a stop word in ~30% of all posts.
STRESS = [("the", {}), ("the", {"order": "newest"})]


def human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024:
            return f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:,.1f} TB"


def bare_json_pass(path: Path) -> tuple[float, float, int]:
    """Wall and CPU seconds to read the file and json.loads (stdlib) every
    line; posts seen."""
    t0, c0 = time.perf_counter(), time.process_time()
    n = 0
    with open(path, "rb") as f:
        for line in f:
            if line.strip():
                page = json.loads(line)
                data = page.get("data")
                n += len(data) if isinstance(data, list) else 1
    return time.perf_counter() - t0, time.process_time() - c0, n


def run_import(db: Path, path: Path, profile: Path | None = None) -> tuple[float, float, int, str]:
    """Wall seconds, CPU seconds and peak RSS (bytes) of the child, and its stdout."""
    code = "from chatarchive.cli import cli; cli()"
    if profile:
        code = f"import cProfile; from chatarchive.cli import cli; cProfile.run('cli()', {str(profile)!r})"
    cmd = [sys.executable, "-c", code, "import", str(db), str(path), "--no-analyse"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.stdout.read(), proc.stderr.read()  # type: ignore[union-attr]
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        sys.exit(f"import failed ({proc.returncode}):\n{err.decode()[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024, out.decode()


def query_latencies(db_path: Path, repeat: int, queries=QUERIES) -> list[tuple[str, float, int]]:
    db = open_db(db_path, create=True)
    search(db, "hello")  # open the FTS tables once
    out = []
    for q, opts in queries:
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            hits = search(db, q, **opts)
            times.append(time.perf_counter() - t0)
        out.append((q + (" " + json.dumps(opts) if opts else ""), statistics.median(times), len(hits)))
    db.conn.close()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("posts", type=int, nargs="?", default=100_000)
    ap.add_argument("--workdir", default="/tmp/chatarchive-import-bench")
    ap.add_argument("--file", help="use this twarc2 file instead of generating one")
    ap.add_argument("--keep", action="store_true", help="keep the database afterwards")
    ap.add_argument("--repeat", type=int, default=3, help="runs per query (median taken)")
    ap.add_argument("--skip-json", action="store_true", help="skip the bare json.loads pass")
    ap.add_argument("--profile", action="store_true", help="run the import under cProfile (slower)")
    args = ap.parse_args()

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    path = Path(args.file) if args.file else work / f"twarc2-{args.posts}.jsonl"
    if not path.exists():
        print(f"generating {args.posts:,} posts into {path} …", flush=True)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, str(HERE / "gen_twarc2.py"), str(args.posts), "-o", str(path)], check=True)
        print(f"  generated in {time.perf_counter() - t0:.1f} s")
    size = path.stat().st_size
    print(f"file:              {path} ({human(size)})")

    # The machine may be shared: the yardstick runs before and after the
    # import and their mean is used; CPU seconds are shown beside wall time.
    json_runs = []
    if not args.skip_json:
        json_s, json_cpu, items = bare_json_pass(path)
        json_runs.append((json_s, json_cpu))
        print(f"bare json.loads:   {json_s:8.1f} s  (cpu {json_cpu:.1f} s; {items:,} posts in data, "
              f"{human(size / json_s)}/s; load {os.getloadavg()[0]:.1f})")

    db = work / f"bench-{path.stem}.db"
    for p in (db, Path(str(db) + "-journal"), Path(str(db) + "-wal")):
        if p.exists():
            p.unlink()
    prof = work / "import.prof" if args.profile else None
    wall, cpu, rss, _ = run_import(db, path, prof)
    load = os.getloadavg()[0]
    if not args.skip_json:
        json_s, json_cpu, items = bare_json_pass(path)
        json_runs.append((json_s, json_cpu))
        print(f"  again, after:    {json_s:8.1f} s  (cpu {json_cpu:.1f} s)")
    if prof:
        print(f"profile:           {prof} (python -m pstats {prof})")

    conn = sqlite3.connect(db)
    posts, matched = conn.execute("select count(*), sum(matched) from posts").fetchone()
    replies = conn.execute("select count(*) from posts where reply_to_id is not null").fetchone()[0]
    conn.close()
    print(f"chatarchive import:{wall:8.1f} s  (cpu {cpu:.1f} s; {matched:,} matched + {posts - matched:,} "
          f"context posts, {replies:,} replies; {matched / wall:,.0f} matched posts/s; load {load:.1f})")
    if json_runs:
        json_s = statistics.mean(w for w, _ in json_runs)
        json_cpu = statistics.mean(c for _, c in json_runs)
        print(f"ratio:             {wall / json_s:8.2f} x the bare json.loads pass (target <= 3); "
              f"cpu time {cpu / json_cpu:.2f} x")
    print(f"peak RSS:          {rss / 2**20:8.1f} MB (target < 300)")
    print(f"database:          {human(db.stat().st_size)}")

    lat = query_latencies(db, args.repeat)
    med = statistics.median(t for _, t, _ in lat)
    print(f"FTS queries:       median {med * 1000:.1f} ms over {len(lat)} queries "
          f"(max {max(t for _, t, _ in lat) * 1000:.1f} ms; target < 50)")
    for q, t, n in lat:
        print(f"  {t * 1000:8.1f} ms  {n:4} rows  {q}")
    print("stress (not in the median):")
    for q, t, n in query_latencies(db, args.repeat, STRESS):
        print(f"  {t * 1000:8.1f} ms  {n:4} rows  {q}")
    if not args.keep:
        db.unlink()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
