"""Jetstream capture: filtering throughput, memory and post-to-row latency.

    python bench/stream_bench.py [--events 200000] [--rate 1000] [--seconds 15]

Three measurements, printed as they finish:

1. **Filter** — ``capture.jetstream.JetstreamReader.feed`` over generated
   Jetstream frames (the classic protocol's JSON: post creates of realistic
   size with facets, replies and embeds, 10 % deletes), in this process: the
   cost of deciding, per event, whether it belongs to the chat.
2. **Follow, replay** — a Jetstream server in another process (so it does not
   share this one's core) replays ``--events`` frames as fast as the client
   reads them; the client is the real capture (``capture_live``: WebSocket,
   filter, profiles from a local AppView, commits to an archive) and stops at
   the last event.  Events per second of wall time and of this process's CPU
   time, and the peak RSS of this process.
3. **Follow, live** — the server sends ``--rate`` events a second for
   ``--seconds`` (2 % of them the chat's), each stamped with its send time
   (``time_us``); the capture's engine records, for every post it commits,
   commit time minus ``time_us``.  Median and 95th percentile.

Targets (issue 12): at least 5,000 events/s on one core under 150 MB RSS;
under 2 s from ``time_us`` to the committed row at the median.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chatarchive.archive.schema import open_db
from chatarchive.capture.config import Config
from chatarchive.capture.jetstream import JetstreamReader
from chatarchive.capture.live import capture_live
from chatarchive.capture.runner import CaptureOptions
from chatarchive.capture.stream import StreamPolicy

TAG = "benchchat"
WORDS = ["the", "of", "and", "to", "in", "is", "you", "that", "it", "for", "on", "was", "with", "as", "have", "be", "at", "one", "this", "from", "or", "had", "by", "word", "but", "what", "some", "we", "can", "out", "other", "were", "all", "there", "when", "up", "use", "your", "how", "said", "an", "each", "she", "which", "do", "their", "time", "if", "will", "way", "about", "many", "then", "them", "write", "would", "like", "so", "these", "her", "long", "make", "thing", "see", "him", "two", "has", "look", "more", "day", "could", "go", "come", "did"]


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def make_events(n: int, t0: float, rate: float, tagged: float, seed: int = 1) -> list[str]:
    """``n`` classic Jetstream frames: post creates (varied size, some with
    facets, replies, images), ~10 % deletes; ``tagged`` of the creates carry
    the chat's tag and as many again reply to a chat post."""
    rng = random.Random(seed)
    out: list[str] = []
    chat: list[str] = []
    for i in range(n):
        t = t0 + i / rate
        did = f"did:plc:bench{rng.randrange(200_000):07d}"
        rkey = f"3bench{i:09d}"
        if rng.random() < 0.10:
            ev = {"did": did, "time_us": int(t * 1e6), "kind": "commit",
                  "commit": {"rev": f"3r{i}", "operation": "delete", "collection": "app.bsky.feed.post", "rkey": rkey}}
            out.append(json.dumps(ev))
            continue
        words = [rng.choice(WORDS) for _ in range(rng.randint(5, 45))]
        record: dict = {"$type": "app.bsky.feed.post", "createdAt": iso(t), "langs": ["en"]}
        facets = []
        roll = rng.random()
        if roll < tagged:
            words.append(f"#{TAG}")
        elif roll < 0.2:
            words.append(f"#{rng.choice(WORDS)}tag")
        text = " ".join(words)
        if "#" in text:
            tag = text.rsplit("#", 1)[1]
            start = len(text.encode()) - len(tag.encode()) - 1
            facets.append({"index": {"byteStart": start, "byteEnd": start + len(tag.encode()) + 1},
                           "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": tag}]})
        if rng.random() < 0.1:
            facets.append({"index": {"byteStart": 0, "byteEnd": 3},
                           "features": [{"$type": "app.bsky.richtext.facet#link", "uri": f"https://example.org/{i}"}]})
        if facets:
            record["facets"] = facets
        record["text"] = text
        if chat and tagged < roll < 2 * tagged:
            parent = rng.choice(chat)
            record["reply"] = {"root": {"uri": parent, "cid": "bafyroot"}, "parent": {"uri": parent, "cid": "bafyp"}}
        elif rng.random() < 0.35:
            other = f"at://did:plc:other{rng.randrange(10**6)}/app.bsky.feed.post/3x{rng.randrange(10**9)}"
            record["reply"] = {"root": {"uri": other, "cid": "bafyr"}, "parent": {"uri": other, "cid": "bafyq"}}
        if rng.random() < 0.2:
            record["embed"] = {"$type": "app.bsky.embed.images", "images": [
                {"alt": " ".join(rng.choice(WORDS) for _ in range(8)),
                 "image": {"$type": "blob", "ref": {"$link": f"bafkreiimg{i}"}, "mimeType": "image/jpeg", "size": 123456},
                 "aspectRatio": {"width": 1200, "height": 800}}]}
        if roll < tagged:
            chat.append(f"at://{did}/app.bsky.feed.post/{rkey}")
        ev = {"did": did, "time_us": int(t * 1e6), "kind": "commit",
              "commit": {"rev": f"3r{i}", "operation": "create", "collection": "app.bsky.feed.post", "rkey": rkey,
                         "record": record, "cid": f"bafyrei{i:012d}"}}
        out.append(json.dumps(ev))
    return out


# --------------------------------------------------------------------------
# The server process: a Jetstream (replay or live) and an AppView


class _AppView(BaseHTTPRequestHandler):
    def log_message(self, *a: object) -> None:
        pass

    def do_GET(self) -> None:
        q = parse_qs(urlsplit(self.path).query)
        body = json.dumps({"profiles": [{"did": d, "handle": f"{d[8:]}.bsky.social", "displayName": d[8:]}
                                        for d in q.get("actors", [])]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def serve(mode: str, n: int, rate: float, seconds: float, ports: mp.Queue) -> None:
    from websockets.sync.server import serve as ws_serve

    t0 = time.time() - n / rate - 60 if mode == "replay" else 0.0
    frames = make_events(n, t0, rate, 0.005) if mode == "replay" else []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _AppView)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()

    def handler(ws) -> None:
        if mode == "replay":
            for f in frames:
                ws.send(f)
        else:
            rng = random.Random(5)
            start = time.time()
            i = 0
            chat: list[str] = []
            while time.time() - start < seconds:
                due = int((time.time() - start) * rate)
                while i < due:
                    t = time.time()
                    tagged = rng.random() < 0.02
                    did = f"did:plc:live{rng.randrange(5000):05d}"
                    rkey = f"3live{i:09d}"
                    record = {"$type": "app.bsky.feed.post", "createdAt": iso(t), "text": f"post {i} " + (
                        f"#{TAG}" if tagged else "no tag here at all"), "langs": ["en"]}
                    if tagged:
                        record["facets"] = [{"index": {"byteStart": len(f"post {i} "), "byteEnd": len(f"post {i} #{TAG}")},
                                             "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": TAG}]}]
                        chat.append(f"at://{did}/app.bsky.feed.post/{rkey}")
                    ws.send(json.dumps({"did": did, "time_us": int(t * 1e6), "kind": "commit", "commit": {
                        "rev": "3r", "operation": "create", "collection": "app.bsky.feed.post", "rkey": rkey,
                        "record": record, "cid": f"bafy{i}"}}))
                    i += 1
                time.sleep(0.002)
        try:
            ws.recv()  # wait for the client to go
        except Exception:
            pass

    with ws_serve(handler, "127.0.0.1", 0, compression=None) as server:
        ports.put((server.socket.getsockname()[1], httpd.server_address[1], t0))
        server.serve_forever()


def start_server(mode: str, n: int, rate: float, seconds: float) -> tuple[mp.Process, int, int, float]:
    q: mp.Queue = mp.Queue()
    p = mp.Process(target=serve, args=(mode, n, rate, seconds, q), daemon=True)
    p.start()
    ws_port, http_port, t0 = q.get(timeout=600)
    return p, ws_port, http_port, t0


# --------------------------------------------------------------------------


def bench_filter(n: int) -> None:
    frames = make_events(min(n, 20_000), time.time() - 3600, 1000.0, 0.005, seed=2)
    reader = JetstreamReader(TAG)
    rounds = max(1, n // len(frames))
    t = time.process_time()
    matched = 0
    for _ in range(rounds):
        for f in frames:
            if reader.feed(f) is not None:
                matched += 1
    cpu = time.process_time() - t
    total = rounds * len(frames)
    print(f"filter: {total:,} events in {cpu:.2f} s CPU: {total / cpu:,.0f} events/s on one core "
          f"({matched:,} kept: the chat's posts, its replies and deletes)", flush=True)


def bench_replay(n: int) -> None:
    proc, ws_port, http_port, t0 = start_server("replay", n, 2000.0, 0)
    last = t0 + (n - 1) / 2000.0
    with tempfile.TemporaryDirectory() as d:
        db = open_db(Path(d) / "bench.db", create=True)
        opts = CaptureOptions(since=datetime.fromtimestamp(t0 - 1, tz=timezone.utc),
                              until=datetime.fromtimestamp(last, tz=timezone.utc),
                              jetstream=f"ws://127.0.0.1:{ws_port}/subscribe", appview=f"http://127.0.0.1:{http_port}",
                              analyse=False)
        cpu0 = time.process_time()
        wall0 = time.perf_counter()
        run = capture_live(db, ["bluesky"], f"#{TAG}", opts, Config(), policy=StreamPolicy(grace=0.5))
        wall = time.perf_counter() - wall0
        cpu = time.process_time() - cpu0
        rows = db.execute("SELECT count(*) FROM posts").fetchone()[0]
        src = run.engine.sources[0] if run.engine else None
        frames = src.reader.frames if src is not None else 0
    proc.terminate()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"follow (replay): {frames:,} events in {wall:.2f} s: {frames / wall:,.0f} events/s "
          f"({frames / cpu:,.0f} per CPU-second of this process, {cpu / wall:.2f} cores); {rows:,} rows stored; "
          f"peak RSS {rss:.0f} MB", flush=True)


def bench_live(rate: float, seconds: float) -> None:
    proc, ws_port, http_port, _ = start_server("live", 0, rate, seconds)
    with tempfile.TemporaryDirectory() as d:
        db = open_db(Path(d) / "bench.db", create=True)
        opts = CaptureOptions(until=datetime.fromtimestamp(time.time() + seconds + 1, tz=timezone.utc),
                              jetstream=f"ws://127.0.0.1:{ws_port}/subscribe", appview=f"http://127.0.0.1:{http_port}",
                              analyse=False)
        run = capture_live(db, ["bluesky"], f"#{TAG}", opts, Config())
        lat = sorted(run.engine.latencies) if run.engine else []
    proc.terminate()
    if not lat:
        print("follow (live): no posts committed", flush=True)
        return
    p95 = lat[int(len(lat) * 0.95) - 1]
    print(f"follow (live, {rate:,.0f} events/s for {seconds:.0f} s): {len(lat):,} posts; time_us to committed row: "
          f"median {statistics.median(lat) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, max {lat[-1] * 1000:.0f} ms",
          flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--rate", type=float, default=1000.0)
    ap.add_argument("--seconds", type=float, default=15.0)
    args = ap.parse_args()
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"machine: {os.cpu_count()} cores; load: {load}", flush=True)
    bench_filter(args.events)
    bench_replay(args.events)
    bench_live(args.rate, args.seconds)


if __name__ == "__main__":
    main()
