"""Search benchmark: `archive.search.search` on a big archive, against the exact ranking.

For each query (those of import_bench.py, the stress case ``the``, and
each filter on its own), prints the median latency of ``search`` and
whether its hits are those of the reference: the plain exact statement
(bm25 of every match, filters inside the statement, ``ORDER BY rank``),
compared as ordered lists of post ids (ties in rank may come in either
order, so a hit set equal with equal ranks counts as identical), plus the
top-20 overlap.  Also times each filtered search against the same search
unfiltered (target: never slower).

    python bench/import_bench.py --file /tmp/bench-data/1m.jsonl --pairs 1 --keep   # builds the archive
    python bench/search_bench.py /tmp/chatarchive-import-bench/bench-1m.db
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from import_bench import _SINCE, _UNTIL, QUERIES

from chatarchive.archive.queries import resolve_session
from chatarchive.archive.schema import open_db
from chatarchive.archive.search import BM25_WEIGHTS, search


def exact(db, query: str, opts: dict) -> list[tuple[str, float]]:
    """The reference: one statement, bm25 of every match, filters inside it."""
    conn = db.conn
    where, params = ["posts_fts MATCH :q"], {"q": query, "limit": opts.get("limit", 20)}
    if opts.get("hashtag"):
        where.append("EXISTS (SELECT 1 FROM post_hashtags ph JOIN hashtags h ON h.id = ph.hashtag_id "
                     "WHERE ph.post_id = p.id AND h.tag = :tag)")
        params["tag"] = opts["hashtag"].lstrip("#")
    if opts.get("session"):
        where.append("EXISTS (SELECT 1 FROM session_posts sp WHERE sp.session_id = :sid AND sp.post_id = p.id)")
        params["sid"] = resolve_session(db, opts["session"])
    if opts.get("since"):
        where.append("p.created_at >= :since")
        params["since"] = opts["since"]
    if opts.get("until"):
        where.append("p.created_at < :until")
        params["until"] = opts["until"]
    sql = (f"SELECT p.id, bm25(posts_fts, {BM25_WEIGHTS}) AS r FROM posts_fts JOIN posts p ON p.rowid = posts_fts.rowid "
           f"WHERE {' AND '.join(where)} ORDER BY r LIMIT :limit")
    return [(r[0], r[1]) for r in conn.execute(sql, params)]


def timed(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def same(hits: list[tuple[str, float]], ref: list[tuple[str, float]]) -> bool:
    """Same posts in the same order, up to the order of posts with equal rank."""
    if len(hits) != len(ref):
        return False
    if [h[0] for h in hits] == [r[0] for r in ref]:
        return True
    return sorted(round(h[1], 9) for h in hits) == sorted(round(r[1], 9) for r in ref) and \
        {h[0] for h in hits if round(h[1], 9) != round(ref[-1][1], 9)} == \
        {r[0] for r in ref if round(r[1], 9) != round(ref[-1][1], 9)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("db", type=Path)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    db = open_db(args.db)
    conn = db.conn
    posts = conn.execute("SELECT count(*) FROM posts").fetchone()[0]
    session = conn.execute("SELECT slug FROM sessions ORDER BY post_count DESC LIMIT 1").fetchone()
    print(f"archive: {args.db} ({posts:,} posts)")
    cases: list[tuple[str, dict]] = [(q, o) for q, o in QUERIES if o.get("order", "best") == "best"]
    cases += [("the", {}), ("community", {"hashtag": "cmgrchat"}), ("community", {"since": _SINCE}),
              ("community", {"until": _UNTIL}), ("the", {"hashtag": "rstats"}), ("the", {"since": _SINCE})]
    if session:
        cases += [("community", {"session": session[0]}), ("the", {"session": session[0]})]
    search(db, "hello")
    print(f"{'search':>9} {'exact':>9}  same  top-20  query")
    unfiltered: dict[str, float] = {}
    rows = []
    for q, opts in cases:
        t_new, hits = timed(lambda q=q, opts=opts: search(db, q, **opts), args.repeat)
        t_ref, ref = timed(lambda q=q, opts=opts: exact(db, q, opts), args.repeat)
        got = [(h.post.id, h.rank) for h in hits]  # type: ignore[attr-defined]
        overlap = len({g[0] for g in got} & {r[0] for r in ref}) / max(1, len(ref))
        if not opts or set(opts) == {"limit"}:
            unfiltered.setdefault(q, t_new)
        rows.append((q, opts, t_new))
        print(f"{t_new * 1000:7.1f}ms {t_ref * 1000:7.1f}ms  {'yes' if same(got, ref) else 'NO ':4}  "
              f"{overlap:5.0%}   {q} {opts or ''}", flush=True)
    print("filtered against unfiltered (target: never slower):")
    for q, opts, t in rows:
        if opts and q in unfiltered and set(opts) != {"limit"}:
            print(f"  {t * 1000:7.1f}ms vs {unfiltered[q] * 1000:7.1f}ms  {'ok' if t <= unfiltered[q] * 1.1 else 'SLOWER'}"
                  f"  {q} {opts}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
