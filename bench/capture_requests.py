"""How many requests does live capture make?  Figures from the fake servers' request logs.

1. Backfill: a past window holding N posts, captured in one run, against the
   bound ceil(N / page size) + 1 requests.
2. Follow: a 1,000-post chat hour followed with --interval 10 on a simulated
   clock shared by client and server (the hour runs in seconds), against each
   platform's published rate limit (sources.md §1.8, §6.5, §7.5): the most
   requests seen in any sliding window of the limit's length, 429s, and
   whether every post was captured exactly once.

Usage:  python bench/capture_requests.py [--posts 1000] [--interval 10]
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent))

from fake_servers import FakeBluesky, FakeMastodon, FakeX, make_chat, max_in_window

from chatarchive.archive.schema import open_db
from chatarchive.capture.base import Window
from chatarchive.capture.bluesky import BlueskyCapture
from chatarchive.capture.config import Config, Secret
from chatarchive.capture.http import ManualClock
from chatarchive.capture.mastodon import MastodonCapture
from chatarchive.capture.runner import run_capture
from chatarchive.capture.x import XCapture

T0 = datetime(2026, 11, 18, 20, 0, tzinfo=timezone.utc).timestamp()
X_TOKEN = "bench-x-token"
BSKY = Config(bluesky_handle="tester.bsky.social", bluesky_app_password=Secret("abcd-efgh-ijkl-mnop"))

# platform -> (search path, page size, [(limit, window seconds, label)])
LIMITS = {
    "x": ("/2/tweets/search/recent", 100, [(450, 900, "450 / 15 min per app"), (300, 900, "300 / 15 min per user")]),
    "mastodon": ("/api/v1/timelines/tag/", 40, [(300, 300, "300 / 5 min per account/IP"),
                                                (300, 900, "300 / 15 min paging requests")]),
    "bluesky": ("/xrpc/app.bsky.feed.searchPosts", 100, [(3000, 300, "3,000 / 5 min per IP")]),
}


def server_and_client(platform: str, posts, clock):
    if platform == "x":
        srv = FakeX(posts, token=X_TOKEN, clock=clock).start()
        return srv, XCapture("#edchat", token=X_TOKEN, api_base=srv.url, clock=clock)
    if platform == "mastodon":
        srv = FakeMastodon(posts, clock=clock).start()
        return srv, MastodonCapture("#edchat", instances=[srv.url], clock=clock)
    srv = FakeBluesky(posts, clock=clock).start()
    return srv, BlueskyCapture("#edchat", config=BSKY, service=srv.url, clock=clock)


def tagged(posts) -> int:
    return sum(1 for p in posts if p.tags and T0 <= p.t < T0 + 3600)


def backfill(platform: str, n: int, tmp: Path) -> tuple[int, int, int]:
    posts = make_chat(n + 1, T0, tag="edchat")  # +1: the untagged pre-chat post
    n_tagged = tagged(posts)
    clock = ManualClock(T0 + 2 * 3600)
    srv, client = server_and_client(platform, posts, clock)
    try:
        db = open_db(tmp / f"backfill-{platform}-{n}.db", create=True)
        run_capture(db, client, Window(datetime.fromtimestamp(T0, timezone.utc),
                                       datetime.fromtimestamp(T0 + 3600, timezone.utc)))
        path = LIMITS[platform][0]
        return n_tagged, len(srv.requests_to(path)), db.execute("select count(*) from posts where matched").fetchone()[0]
    finally:
        client.close()
        srv.stop()


def follow(platform: str, n: int, interval: float, tmp: Path) -> dict:
    posts = make_chat(n + 1, T0, tag="edchat")
    clock = ManualClock(T0 - 60)
    srv, client = server_and_client(platform, posts, clock)
    try:
        db = open_db(tmp / f"follow-{platform}.db", create=True)
        t = time.perf_counter()
        result = run_capture(db, client, Window(datetime.fromtimestamp(T0, timezone.utc),
                                                datetime.fromtimestamp(T0 + 3600, timezone.utc)),
                             follow=True, interval=interval, clock=clock)
        wall = time.perf_counter() - t
        path = LIMITS[platform][0]
        times = [r.t for r in srv.requests_to(path)]
        rows = db.execute("select count(*), count(distinct id) from posts where matched").fetchone()
        return {
            "requests": len(times), "polls": result.polls, "all_requests": len(srv.log),
            "429": sum(1 for r in srv.log if r.status == 429),
            "windows": [(label, max_in_window(times, w), limit) for limit, w, label in LIMITS[platform][2]],
            "captured": rows[0], "distinct": rows[1], "expected": tagged(posts), "wall": wall,
        }
    finally:
        client.close()
        srv.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--posts", type=int, default=1000)
    ap.add_argument("--interval", type=float, default=10.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        print("Backfill of a past one-hour window (one run, no --follow)")
        print(f"{'platform':<10}{'posts':>7}{'page':>6}{'requests':>10}{'bound':>7}  ok   stored")
        for platform in LIMITS:
            page = LIMITS[platform][1]
            for n in (0, 99, 400, 1000):
                posts, reqs, stored = backfill(platform, n, tmp)
                bound = math.ceil(posts / page) + 1
                print(f"{platform:<10}{posts:>7}{page:>6}{reqs:>10}{bound:>7}  {'yes' if reqs <= bound else 'NO ':<4} {stored}")
        print()
        print(f"Follow: a {args.posts:,}-post chat hour, --interval {args.interval:g} (simulated clock)")
        for platform in LIMITS:
            f = follow(platform, args.posts, args.interval, tmp)
            print(f"{platform}: {f['requests']} search requests in {f['polls']} polls "
                  f"({f['all_requests']} requests in all), {f['429']} x 429; captured {f['captured']} of "
                  f"{f['expected']} tagged posts ({f['distinct']} distinct); {f['wall']:.1f} s wall")
            for label, seen, limit in f["windows"]:
                print(f"    busiest window: {seen:>4} requests  vs limit {label:<32} "
                      f"{'within' if seen <= limit else 'OVER'} ({100 * seen / limit:.0f}% of it)")


if __name__ == "__main__":
    main()
