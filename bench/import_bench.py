"""Import benchmark: `chatarchive import` against a bare json.loads pass, interleaved.

Generates (or reuses) N synthetic twarc2 posts with bench/gen_twarc2.py, then
runs, each in a fresh child process, the floor (read the file and
``json.loads`` every line, nothing stored) and ``chatarchive import
--no-analyse`` into a new archive, one after the other: floor, import,
floor, import, … (``--pairs``).  The machine may be shared: each import is
compared with the floor run just before it, so both saw the same load; the
CPU-time ratio (user + system of every thread) is the figure to trust, wall
time is shown beside it, and the load average is printed before and after
each pair.  Then the same with a re-import of the same file (nothing new),
and the latency of ~20 representative full-text queries on the archive.
Peak RSS is each child's own VmHWM.  Targets (issue 15): CPU ratio <= 2.0
at 1,000,000 posts and at most 10% above the ratio at 100,000; re-import
<= 1.2 x; peak RSS < 300 MB.

    python bench/import_bench.py 100000
    python bench/import_bench.py --file /tmp/bench-data/1m.jsonl --pairs 2 --keep
    python bench/import_bench.py --file /tmp/bench-data/1m.jsonl --profile --reimport-pairs 0
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
from dataclasses import dataclass
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


# The child's own figures, printed as its last stderr line: CPU seconds
# (user + system, every thread) and its peak RSS from /proc/self/status
# (VmHWM).  wait4's ru_maxrss is not used: Linux carries it over fork and
# exec from the parent, so a big benchmark process would inflate it.
_REPORT = """
import atexit, json, os, resource, sys
def _report():
    hwm = 0
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('VmHWM:'):
                    hwm = int(line.split()[1]) * 1024
    except OSError:
        pass
    r = resource.getrusage(resource.RUSAGE_SELF)
    sys.stderr.write('\\n@@bench ' + json.dumps({'cpu': r.ru_utime + r.ru_stime, 'rss': hwm}) + '\\n')
    sys.stderr.flush()
atexit.register(_report)
"""

# The floor: the same bytes read (and gunzipped when the file is .gz) and
# every line parsed with the stdlib's json.loads, nothing kept or stored.
# The importer decodes with msgspec (faster than json.loads), so the floor
# is what a plain Python reader of the file pays at least.
_FLOOR = """
import gzip, json, sys
path = sys.argv[1]
n = 0
with (gzip.open(path, 'rb') if path.endswith('.gz') else open(path, 'rb')) as f:
    for line in f:
        if line.strip():
            page = json.loads(line)
            data = page.get('data') if isinstance(page, dict) else None
            n += len(data) if isinstance(data, list) else 1
print(n)
"""


@dataclass
class Run:
    wall: float
    cpu: float
    rss: int
    out: str


def _child(code: str, args: list[str]) -> Run:
    """Run ``code`` in a fresh interpreter: wall time, and the child's own CPU and peak RSS."""
    cmd = [sys.executable, "-c", _REPORT + code, *args]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True)
    wall = time.perf_counter() - t0
    err = proc.stderr.decode(errors="replace")
    if proc.returncode:
        sys.exit(f"{args[0] if args else 'child'} failed ({proc.returncode}):\n{err[-2000:]}")
    report = json.loads(err.rsplit("@@bench ", 1)[1].splitlines()[0])
    return Run(wall, report["cpu"], report["rss"], proc.stdout.decode())


def bare_json_pass(path: Path) -> Run:
    """The floor, in a child process like the import."""
    return _child(_FLOOR, [str(path)])


def run_import(db: Path, path: Path, profile: Path | None = None) -> Run:
    """``chatarchive import DB FILE --no-analyse`` in a child process."""
    code = "from chatarchive.cli import cli; cli()"
    if profile:
        code = f"import cProfile; from chatarchive.cli import cli; cProfile.run('cli()', {str(profile)!r})"
    return _child(code, ["import", str(db), str(path), "--no-analyse"])


def _fresh(db: Path) -> None:
    for p in (db, Path(str(db) + "-journal"), Path(str(db) + "-wal")):
        if p.exists():
            p.unlink()


def _load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def interleaved(label: str, path: Path, pairs: int, do_import) -> list[tuple[Run, Run]]:
    """floor, import, floor, import, …: each import is compared with the
    floor run just before it, so both saw the same load on a shared box."""
    print(f"{label}: {pairs} pairs (floor, then import), load before {_load()}", flush=True)
    out = []
    for i in range(1, pairs + 1):
        floor = bare_json_pass(path)
        run = do_import()
        out.append((floor, run))
        print(f"  pair {i}: floor {floor.wall:7.1f} s wall {floor.cpu:7.1f} s cpu | import {run.wall:7.1f} s wall "
              f"{run.cpu:7.1f} s cpu {run.rss / 2**20:6.1f} MB | ratio wall {run.wall / floor.wall:5.2f} x, "
              f"cpu {run.cpu / floor.cpu:5.2f} x | load {_load()}", flush=True)
    wall = statistics.median(r.wall / f.wall for f, r in out)
    cpu = statistics.median(r.cpu / f.cpu for f, r in out)
    print(f"  median ratio: cpu {cpu:.2f} x, wall {wall:.2f} x; peak RSS of the imports "
          f"{max(r.rss for _, r in out) / 2**20:.1f} MB (floor {max(f.rss for f, _ in out) / 2**20:.1f} MB); "
          f"load after {_load()}", flush=True)
    return out


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
    ap.add_argument("--file", help="use this twarc2 file (.jsonl or .jsonl.gz) instead of generating one")
    ap.add_argument("--keep", action="store_true", help="keep the database afterwards")
    ap.add_argument("--pairs", type=int, default=3, help="(floor, import) pairs, interleaved (median taken)")
    ap.add_argument("--reimport-pairs", type=int, default=2,
                    help="(floor, re-import of the same file) pairs afterwards; 0 skips")
    ap.add_argument("--repeat", type=int, default=3, help="runs per query (median taken)")
    ap.add_argument("--skip-queries", action="store_true", help="skip the FTS query latencies")
    ap.add_argument("--profile", action="store_true",
                    help="one import under cProfile (slower; no pairs), profile written to the workdir")
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
    print(f"file:              {path} ({human(size)}); {os.cpu_count()} cores, load {_load()}")
    print("floor:             a child process reading the file and json.loads (stdlib) of every line, "
          "nothing stored")

    db = work / f"bench-{path.stem}.db"
    if args.profile:
        _fresh(db)
        prof = work / "import.prof"
        run = run_import(db, path, prof)
        print(f"profiled import:   {run.wall:.1f} s wall, {run.cpu:.1f} s cpu; {prof} (python -m pstats {prof})")
    else:
        def fresh_import() -> Run:
            _fresh(db)
            return run_import(db, path)

        interleaved("import into a new archive", path, args.pairs, fresh_import)

    conn = sqlite3.connect(db)
    posts, matched = conn.execute("select count(*), sum(matched) from posts").fetchone()
    replies = conn.execute("select count(*) from posts where reply_to_id is not null").fetchone()[0]
    conn.close()
    print(f"archive:           {human(db.stat().st_size)}; {matched:,} matched + {posts - matched:,} context posts, "
          f"{replies:,} replies")
    if args.reimport_pairs and not args.profile:
        interleaved("re-import of the same file (nothing new)", path, args.reimport_pairs,
                    lambda: run_import(db, path))

    if not args.skip_queries:
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
        _fresh(db)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
