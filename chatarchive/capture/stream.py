"""Live capture from the platforms' streams: sources that read, one engine that writes.

Each :class:`StreamSource` (``jetstream``, ``mastodon_stream``, ``x_stream``)
runs in a thread of its own: it connects, reads events, reconnects with
backoff and jitter when the connection drops, fills the gap after every
(re)connect from the platform's search or timeline (streams have no memory
of what a client missed, except Jetstream's cursor), and hands what it found
to the :class:`StreamEngine` as :class:`StreamItem` objects on one bounded
queue.

The engine runs in the calling thread, the only one that touches the
database.  It takes items off the queue and commits them in small batches
(every ``commit_interval``, a quarter second by default, so a post is in the
archive a moment after it was posted): the posts (through
``archive.writer.PostWriter``), the tombstones of deleted posts
(``archive.deletion``), the events and pages as received
(``capture_pages``) and each source's new position (``captures.state``), all
in one transaction.  A process killed at any moment has stored exactly the
batches it committed; the same command run again starts each source from
its stored position (Jetstream a few seconds before its cursor, X and
Mastodon by searching from the newest post it holds), so nothing is lost,
and since delivery is at least once everywhere, posts merge by id: nothing
is stored twice.

Every source gets its own ``captures`` row (resume key: platform, query,
endpoint and ``"stream"``, no window: a rerun after a crash resumes whatever
window it is given).  A run resumes an earlier one that did not end cleanly
(killed, failed, interrupted) when its position is recent
(``resume_within``); a chat captured to its end last week is not resumed.
"""

from __future__ import annotations

import json
import queue
import random
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import IO, Any, Protocol

import orjson
import sqlite_utils

from ..archive.deletion import delete_posts, purge, tombstoned, without_posts
from ..archive.schema import now_iso
from ..archive.writer import PostWriter, SaveStats, resolve_local_replies, resolve_page_replies, transaction
from ..errors import CaptureError
from ..models import Post
from ..timeutil import iso_utc, parse_iso
from .base import Window, utc_from_epoch
from .http import Clock, HttpClient
from .runner import MAX_PROBLEMS_KEPT, CaptureResult, end_wal, use_wal

# --------------------------------------------------------------------------
# Policy and backoff


@dataclass
class StreamPolicy:
    """How streams behave; tests shrink the times to run a chat in seconds."""

    commit_interval: float = 0.25  # the longest a received post waits for its commit
    max_batch: int = 2000  # posts: commit at once beyond this
    backoff_base: float = 1.0  # dropped connections: 1, 2, 4 … seconds
    backoff_max: float = 60.0
    http_backoff_base: float = 5.0  # a server answering 5xx to a stream (X documents 5 s, doubling)
    rate_backoff_base: float = 60.0  # a 429 on connect (X: one connection at a time)
    backoff_cap_rate: float = 960.0
    jitter: float = 0.3  # ± this fraction, so many clients do not reconnect in step
    rewind: float = 5.0  # Jetstream: reconnect this many seconds before the cursor
    overlap: float = 60.0  # X/Mastodon: gap fills start this far before the newest post held
    keepalive: float = 25.0  # X sends a blank line every 20 s: longer silence means a dead connection
    idle_timeout: float = 90.0  # Jetstream/Mastodon: no event nor heartbeat this long: reconnect
    connect_timeout: float = 15.0
    resume_within: float = 6 * 3600.0  # resume a run that died at most this long ago
    purge_interval: float = 600.0  # make deletions final at least this often
    poll_interval: float = 30.0  # Mastodon servers that cannot stream to us: poll their timeline
    queue_size: int = 20000
    status_every: float = 10.0  # log lines: at most one progress line per source this often
    grace: float = 1.0  # Jetstream: after --until, wait for a second of quiet (late events of the window)


class Backoff:
    """Exponential backoff with jitter; :meth:`reset` once a connection works."""

    def __init__(self, base: float, cap: float, jitter: float, rng: random.Random | None = None):
        self.base, self.cap, self.jitter = base, cap, jitter
        self.attempt = 0
        self.rng = rng or random.Random()

    def next(self) -> float:
        delay = min(self.cap, self.base * (2 ** self.attempt))
        self.attempt += 1
        return max(0.0, delay * self.rng.uniform(1 - self.jitter, 1 + self.jitter))

    def reset(self) -> None:
        self.attempt = 0


# --------------------------------------------------------------------------
# What sources hand the engine


@dataclass
class DeleteRef:
    """A post deleted on its platform: by post id, or (Mastodon) by the id it
    has on the server that said so."""

    post_id: str | None = None
    instance: str | None = None
    local_id: str | None = None
    when: str | None = None  # when it was deleted, if the event says


@dataclass
class StreamItem:
    source: StreamSource
    posts: list[Post] = field(default_factory=list)
    deletes: list[DeleteRef] = field(default_factory=list)
    state: dict | None = None  # the source's position once this item is committed
    body: Any = None  # what capture_pages keeps: the event(s) or page as received
    kind: str = "stream"  # stream | search (a gap fill page)
    url: str = ""
    raw_lines: list[Any] = field(default_factory=list)  # what --raw writes
    event_times: list[float] = field(default_factory=list)  # epoch seconds of the events (latency)
    pending: Any = None  # source data that prepare() turns into posts (in the engine's thread)
    problems: list[str] = field(default_factory=list)
    status: str | None = None  # news for the live panel: connected, reconnecting…


class StreamStopped(Exception):
    """Raised inside a source when the engine asked it to stop."""


class StreamSource:
    """One stream (one platform, one server).  Subclasses implement
    :meth:`run` (the thread: connect, read, reconnect) and may implement
    :meth:`seed` (read what it needs from the archive before starting),
    :meth:`prepare` (work that needs the engine's thread, before a commit)
    and :meth:`finish` (last items after the stream stopped: a final gap
    fill, removing X rules)."""

    platform = ""
    post_source = ""  # posts.source of what it stores
    name = ""  # shown in the panel (platform, or the Mastodon server)

    def __init__(self, query: str, policy: StreamPolicy | None = None):
        self.query = query
        self.policy = policy or StreamPolicy()
        self.position: dict = {}
        self.window = Window()
        self.resumed = False
        self.engine: StreamEngine | None = None
        self.thread: threading.Thread | None = None
        self.stopping = threading.Event()
        self.error: BaseException | None = None
        self.status = "starting"
        self.connects = 0
        self.reconnects = 0
        self.gap_fills = 0
        self.lock = threading.Lock()
        self.rng = random.Random()

    # -- identity ---------------------------------------------------------

    @property
    def endpoint(self) -> str:
        raise NotImplementedError

    @property
    def http_clients(self) -> list[HttpClient]:
        return []

    @property
    def requests(self) -> int:
        return sum(h.requests for h in self.http_clients)

    def resume_key(self) -> str:
        return json.dumps({"platform": self.platform, "query": self.query, "endpoint": self.endpoint,
                           "mode": "stream"}, sort_keys=True)

    # -- lifecycle (engine side) ---------------------------------------------

    def begin(self, position: dict, window: Window, resumed: bool) -> None:
        """The starting position (the engine worked out resume vs window)."""
        self.position = dict(position)
        self.window = window
        self.resumed = resumed

    def seed(self, db: sqlite_utils.Database) -> None:
        pass

    def preflight(self) -> None:
        """Checks before the run (credentials, stream rules): an error here
        is one line and nothing starts."""

    def start(self, engine: StreamEngine) -> None:
        self.engine = engine
        self.thread = threading.Thread(target=self._main, name=f"chatarchive-{self.platform}-stream", daemon=True)
        self.thread.start()

    def _main(self) -> None:
        try:
            self.run()
        except StreamStopped:
            pass
        except BaseException as e:  # a fault no retry can fix: the engine reports it
            self.error = e
            self.status = "failed"
            self.say(f"stopped: {self.redact(str(e))}")
        finally:
            if self.engine is not None:
                self.engine.wake()

    def stop(self) -> None:
        self.stopping.set()
        try:
            self.interrupt()
        except Exception:
            pass

    def interrupt(self) -> None:
        """Unblock a read in progress (close the connection)."""

    def done(self, now: float) -> bool:
        """Has the stream delivered everything up to the window's end?  (For
        X and Mastodon: the wall clock is past it; Jetstream knows the time
        of the events it reads, so a replay of a past window ends too.)"""
        until = self.window.until
        return until is not None and now >= until.timestamp()

    def join(self, timeout: float) -> None:
        if self.thread is not None:
            self.thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def prepare(self, items: list[StreamItem], engine: StreamEngine) -> None:
        pass

    def finish(self, engine: StreamEngine) -> Iterator[StreamItem]:
        return iter(())

    def close(self) -> None:
        for h in self.http_clients:
            h.close()

    # -- helpers for run() ------------------------------------------------

    def redact(self, text: str) -> str:
        for h in self.http_clients:
            text = h.redact(text)
        return text

    def check(self) -> None:
        if self.stopping.is_set():
            raise StreamStopped

    def sleep(self, seconds: float) -> None:
        """Wait (a backoff, a poll interval); raises StreamStopped on stop."""
        if self.stopping.wait(max(0.0, seconds)):
            raise StreamStopped

    def emit(self, item: StreamItem) -> None:
        engine = self.engine
        if engine is None:
            return
        while True:
            self.check()
            try:
                engine.queue.put(item, timeout=0.2)
                return
            except queue.Full:
                continue  # the engine is busy committing: wait (the server buffers meanwhile)

    def say(self, status: str) -> None:
        """Tell the panel what the stream is doing."""
        self.status = status
        engine = self.engine
        if engine is not None:
            try:
                engine.queue.put_nowait(StreamItem(self, status=status))
            except queue.Full:
                pass

    def snapshot(self) -> dict:
        with self.lock:
            return json.loads(json.dumps(self.position))

    def backoff(self, base: float | None = None, cap: float | None = None) -> Backoff:
        p = self.policy
        return Backoff(p.backoff_base if base is None else base, p.backoff_max if cap is None else cap, p.jitter,
                       self.rng)

    def run(self) -> None:
        raise NotImplementedError


# --------------------------------------------------------------------------
# What a run reports


class HttpStreamSource(StreamSource):
    """A stream read as one long HTTP response (Mastodon's server-sent
    events, X's filtered stream) beside the platform's search client,
    ``self.client``, whose HTTP client it shares and which fills its gaps.
    The response being read is kept so that :meth:`interrupt` can close it."""

    client: Any
    _response: Any = None  # the httpx response being read, while connected

    @property
    def http(self) -> HttpClient:
        return self.client.http

    @property
    def http_clients(self) -> list[HttpClient]:
        return [self.client.http]

    def interrupt(self) -> None:
        resp = self._response
        if resp is not None:
            resp.close()


@dataclass
class StreamResult(CaptureResult):
    name: str = ""
    deleted: int = 0
    reconnects: int = 0
    gap_fills: int = 0
    error: BaseException | None = None

    def as_dict(self) -> dict[str, Any]:
        out = super().as_dict()
        out.update({"mode": "stream", "name": self.name, "deleted": self.deleted, "reconnects": self.reconnects,
                    "gap_fills": self.gap_fills})
        return out


class StreamUI(Protocol):
    """What a stream capture shows (``capture.ui``: a live panel or log lines).
    Every call comes from the engine's thread."""

    def start(self, engine: StreamEngine) -> None: ...

    def status(self, engine: StreamEngine, source: StreamSource, text: str) -> None: ...

    def committed(self, engine: StreamEngine, items: list[StreamItem], stats: dict[StreamSource, SaveStats]) -> None: ...

    def tick(self, engine: StreamEngine) -> None: ...

    def stop(self, engine: StreamEngine) -> None: ...


class QuietStreamUI:
    def start(self, engine: StreamEngine) -> None:
        pass

    def status(self, engine: StreamEngine, source: StreamSource, text: str) -> None:
        pass

    def committed(self, engine: StreamEngine, items: list[StreamItem], stats: dict[StreamSource, SaveStats]) -> None:
        pass

    def tick(self, engine: StreamEngine) -> None:
        pass

    def stop(self, engine: StreamEngine) -> None:
        pass


# --------------------------------------------------------------------------
# The engine


class _Rate:
    """Posts per minute: committed matched posts over the last 60 seconds."""

    def __init__(self) -> None:
        self.events: deque[tuple[float, int]] = deque()

    def add(self, now: float, n: int) -> None:
        if n:
            self.events.append((now, n))

    def per_minute(self, now: float) -> int:
        while self.events and self.events[0][0] < now - 60:
            self.events.popleft()
        return sum(n for _, n in self.events)


class StreamEngine:
    """Runs sources until ``window.until``, Ctrl-C, or every source has
    stopped; commits what they find (see the module docstring)."""

    def __init__(self, db: sqlite_utils.Database, sources: list[StreamSource], window: Window, *,
                 policy: StreamPolicy | None = None, clock: Clock | None = None, ui: StreamUI | None = None,
                 raw_path: str | Path | None = None, label: str = ""):
        if not sources:
            raise CaptureError("nothing to stream")
        self.db = db
        self.sources = sources
        self.window = window
        self.policy = policy or StreamPolicy()
        self.clock = clock or Clock()
        self.ui: StreamUI = ui or QuietStreamUI()
        self.raw_path = raw_path
        self.label = label or sources[0].query
        self.queue: queue.Queue[StreamItem] = queue.Queue(maxsize=self.policy.queue_size)
        self.results: dict[StreamSource, StreamResult] = {}
        self.capture_ids: dict[StreamSource, int] = {}
        self.rates: dict[str, _Rate] = {}
        self.matched: dict[StreamSource, set[str]] = {}
        self.participants: dict[StreamSource, set[str]] = {}
        self.latencies: deque[float] = deque(maxlen=200_000)  # seconds from an event to its commit
        self.latest: deque[tuple[str, str, str, str]] = deque(maxlen=8)  # (time, platform, handle, text)
        self.question: tuple[str, str, str, str] | None = None
        self.deleted_ids: set[str] = set()
        self.pending_purge = False
        self.last_purge = time.monotonic()
        self.commits = 0
        self.started_at = self.clock.time()
        self._wake = threading.Event()
        self._raw: IO[bytes] | None = None

    # -- for sources -------------------------------------------------------

    def wake(self) -> None:
        self._wake.set()
        try:
            self.queue.put_nowait(StreamItem(self.sources[0], status=None))  # unblocks the get()
        except queue.Full:
            pass

    def rate(self, platform: str) -> int:
        r = self.rates.get(platform)
        return r.per_minute(time.monotonic()) if r else 0

    # -- start: resume or not ---------------------------------------------

    def _begin(self) -> None:
        db = self.db
        use_wal(db)
        # Everything this run frees is zeroed, so a post deleted later leaves
        # no trace even of the versions an update replaced.
        db.conn.execute("PRAGMA secure_delete = ON")
        now = self.clock.time()
        for src in self.sources:
            key = src.resume_key()
            row = db.conn.execute(
                "SELECT status, state FROM captures WHERE resume_key = ? AND state IS NOT NULL ORDER BY id DESC LIMIT 1",
                (key,)).fetchone()
            prior: dict = {}
            if row and row[1]:
                try:
                    prior = json.loads(row[1]) or {}
                except ValueError:
                    prior = {}
            position, resumed = self._start_position(prior, row[0] if row else None, now)
            src.begin(position, self.window, resumed)
            with transaction(db):
                cur = db.conn.execute(
                    """INSERT INTO captures (platform, query, endpoint, started, added, updated, requests,
                                             state, status, resume_key, pages)
                       VALUES (?, ?, ?, ?, 0, 0, 0, ?, 'running', ?, 0)""",
                    (src.platform, src.query, src.endpoint, now_iso(), json.dumps(position), key))
            cid = int(cur.lastrowid or 0)
            self.capture_ids[src] = cid
            self.results[src] = StreamResult(cid, src.platform, src.query, src.endpoint, resumed=resumed,
                                             name=src.name or src.platform)
            self.matched[src] = set()
            self.participants[src] = set()
            src.seed(db)

    def _start_position(self, prior: dict, status: str | None, now: float) -> tuple[dict, bool]:
        """Where a source starts: the stored position of a run that died
        recently (it covers the gap since), else the window's start.
        ``position["from"]`` is where the chain of runs began: a position
        later than the window start only counts when the chain covers it."""
        since = self.window.since or utc_from_epoch(now)
        since_iso = iso_utc(since)
        at = _position_time(prior)
        fresh = {"from": since_iso, "at": since_iso}
        if not prior or at is None or status == "ok" or at < now - self.policy.resume_within:
            return fresh, False
        covered_from = prior.get("from") or prior.get("at")
        if isinstance(covered_from, str) and covered_from > since_iso and at > since.timestamp():
            # the earlier run started later than this window: read the window whole
            return {**fresh, "from": since_iso}, False
        out = dict(prior)
        out["from"] = min(x for x in (covered_from, since_iso) if isinstance(x, str))
        return out, True

    # -- the loop -------------------------------------------------------------

    def run(self) -> list[StreamResult]:
        self._begin()
        if self.raw_path:
            self._raw = open(self.raw_path, "ab")  # noqa: SIM115 - closed in the finally below
        status = "failed"
        try:
            self.ui.start(self)
            for src in self.sources:
                src.start(self)
            self._loop()
            status = "ok"
        except KeyboardInterrupt:
            status = "interrupted"
        finally:
            try:
                self._shutdown(status)
            finally:
                if self._raw is not None:
                    self._raw.close()
                self.ui.stop(self)
        return [self.results[s] for s in self.sources]

    def _until_reached(self) -> bool:
        if self.window.until is None:
            return False
        now = self.clock.time()
        return all(s.done(now) for s in self.sources if s.alive)

    def _loop(self) -> None:
        p = self.policy
        batch: list[StreamItem] = []
        posts = 0
        deadline = 0.0
        next_tick = 0.0
        while True:
            now = time.monotonic()
            timeout = 0.1 if not batch else max(0.0, min(0.1, deadline - now))
            try:
                item = self.queue.get(timeout=timeout)
            except queue.Empty:
                item = None
            if item is not None:
                if item.status is not None:
                    self.ui.status(self, item.source, item.status)
                if item.posts or item.deletes or item.pending is not None or item.state is not None or item.problems:
                    if not batch:
                        deadline = time.monotonic() + p.commit_interval
                    batch.append(item)
                    posts += len(item.posts) + (len(item.pending) if isinstance(item.pending, list) else 0)
            now = time.monotonic()
            if batch and (now >= deadline or posts >= p.max_batch):
                self._commit(batch)
                batch, posts = [], 0
            if now >= next_tick:
                next_tick = now + 0.25
                self.ui.tick(self)
                if self.pending_purge and now - self.last_purge >= p.purge_interval:
                    self._purge()
            if self._until_reached():
                break
            if not any(s.alive for s in self.sources) and self.queue.empty():
                break  # every stream has stopped (each says why)
        if batch:
            self._commit(batch)

    def _shutdown(self, status: str) -> None:
        for src in self.sources:
            src.stop()
        for src in self.sources:
            src.join(5.0)
        leftovers = []
        while True:
            try:
                leftovers.append(self.queue.get_nowait())
            except queue.Empty:
                break
        try:
            items = [i for i in leftovers if i.posts or i.deletes or i.pending is not None or i.state is not None]
            if items and status != "failed":
                self._commit(items)
            for src in self.sources:
                if src.error is not None:
                    continue
                try:
                    # a last gap fill (what the stream may have missed at the
                    # end) and cleanup (X rules); after Ctrl-C too
                    self._commit(list(src.finish(self)))
                except KeyboardInterrupt:
                    break  # a second Ctrl-C: stop finishing
                except Exception as e:  # a last gap fill that failed is a problem, not a crash
                    self.results[src].problems.append(f"finishing: {src.redact(str(e))}")
        finally:
            if self.pending_purge:
                try:
                    self._purge()
                except Exception as e:
                    self.results[self.sources[0]].problems.append(f"could not finish removing deleted posts: {e}")
            for src in self.sources:
                r = self.results[src]
                r.status = "failed" if src.error is not None else status
                r.error = src.error
                if src.error is not None:
                    r.problems.append(src.redact(str(src.error)))
                r.requests = src.requests
                r.reconnects = src.reconnects
                r.gap_fills = src.gap_fills
                try:
                    with transaction(self.db):
                        if src.platform == "mastodon":
                            resolve_local_replies(self.db)
                        self.db.conn.execute(
                            "UPDATE captures SET status = ?, finished = ?, requests = ?, problems = ? WHERE id = ?",
                            (r.status, now_iso(), r.requests,
                             json.dumps(r.problems[-MAX_PROBLEMS_KEPT:]) if r.problems else None,
                             self.capture_ids[src]))
                except Exception:
                    pass
                src.close()
            end_wal(self.db)

    # -- committing ---------------------------------------------------------

    def _purge(self) -> None:
        purge(self.db)
        self.pending_purge = False
        self.last_purge = time.monotonic()

    def _write_raw(self, items: list[StreamItem]) -> None:
        if self._raw is None:
            return
        # written before the commit: a kill in between costs a duplicate line
        # on the rerun (harmless on import), never a lost one
        for it in items:
            for line in it.raw_lines:
                self._raw.write(orjson.dumps(line) + b"\n")
        self._raw.flush()

    def _commit(self, batch: list[StreamItem]) -> None:
        batch = [i for i in batch if i.posts or i.deletes or i.pending is not None or i.state is not None or i.problems]
        if not batch:
            return
        by_source: dict[StreamSource, list[StreamItem]] = {}
        for it in batch:
            by_source.setdefault(it.source, []).append(it)
        for src, items in by_source.items():
            try:
                src.prepare(items, self)  # may ask a server (Bluesky profiles): outside the transaction
            except Exception as e:
                items[0].problems.append(f"could not read events: {src.redact(str(e))}")
        self._write_raw(batch)
        db = self.db
        writers = {src: PostWriter(db) for src in by_source}
        stats: dict[StreamSource, SaveStats] = {}
        deleted: dict[StreamSource, int] = {}
        with transaction(db):
            for it in batch:
                src = it.source
                if it.posts:
                    dead = tombstoned(db, [p.id for p in it.posts]) | (self.deleted_ids & {p.id for p in it.posts})
                    keep = [p for p in it.posts if p.id not in dead]
                    for p in keep:
                        p.source = src.post_source
                    writers[src].add(keep)
                if it.deletes:
                    for w in writers.values():
                        w.flush()
                    ids = self._resolve_deletes(it.deletes)
                    if ids:
                        when = next((d.when for d in it.deletes if d.when), None)
                        n = delete_posts(db, ids, when=when, purge=False)
                        self.deleted_ids.update(ids)
                        if n:
                            deleted[src] = deleted.get(src, 0) + n
                            self.pending_purge = True
            for src, w in writers.items():
                stats[src] = w.flush()
                w.close()
            mastodon_posts = [p for it in batch if it.source.platform == "mastodon" for p in it.posts]
            if mastodon_posts:
                resolve_page_replies(db, mastodon_posts)
            retrieved = now_iso()
            for src, items in by_source.items():
                r = self.results[src]
                s = stats.get(src) or SaveStats()
                problems = [p for it in items for p in it.problems]
                pages = 0
                if s.added or s.updated or problems or deleted.get(src):
                    stream_events = [e for it in items if it.kind == "stream" and it.body is not None for e in it.body]
                    rows = []
                    if stream_events:
                        rows.append(("stream", src.endpoint, {"events": stream_events},
                                     sum(len(it.posts) for it in items if it.kind == "stream")))
                    rows += [(it.kind, it.url, it.body, len(it.posts)) for it in items
                             if it.kind != "stream" and it.body is not None and it.posts]
                    redacted = writers[src].redacted  # forgotten people's posts: no copy in a page
                    for kind, url, body, n in rows:
                        body = without_posts(body, redacted) if redacted else body
                        db.conn.execute(
                            """INSERT INTO capture_pages (capture_id, platform, kind, url, retrieved_at, posts, json)
                               VALUES (?, ?, ?, ?, ?, ?, ?)""",
                            (self.capture_ids[src], src.platform, kind, url, retrieved, n, orjson.dumps(body).decode()))
                        pages += 1
                state = next((it.state for it in reversed(items) if it.state is not None), None)
                r.problems = (r.problems + problems)[-MAX_PROBLEMS_KEPT * 4:]
                r.added += s.added
                r.updated += s.updated
                r.unchanged += s.unchanged
                r.pages += pages
                r.deleted += deleted.get(src, 0)
                r.requests = src.requests
                db.conn.execute(
                    f"""UPDATE captures SET {'state = ?, ' if state is not None else ''}added = added + ?,
                           updated = updated + ?, requests = ?, pages = pages + ?, problems = ? WHERE id = ?""",
                    ([json.dumps(state)] if state is not None else [])
                    + [s.added, s.updated, r.requests, pages,
                       json.dumps(r.problems[-MAX_PROBLEMS_KEPT:]) if r.problems else None, self.capture_ids[src]])
        self.commits += 1
        wall = self.clock.time()
        mono = time.monotonic()
        for it in batch:
            src = it.source
            matched = [p for p in it.posts if p.matched]
            if it.posts:
                for t in it.event_times:
                    self.latencies.append(max(0.0, wall - t))
            fresh = [p for p in matched if p.id not in self.matched[src]]
            self.rates.setdefault(src.platform, _Rate()).add(mono, len(fresh))
            for p in fresh:
                self.matched[src].add(p.id)
                if p.author is not None:
                    self.participants[src].add(p.author.id)
                self._note_latest(src, p)
        for src, r in self.results.items():
            r.matched_seen = len(self.matched[src])
            r.participants = len(self.participants[src])
        self.ui.committed(self, batch, stats)

    def _note_latest(self, src: StreamSource, p: Post) -> None:
        from ..analysis.qa import looks_like_question

        handle = (p.author.handle or p.author.id) if p.author else "?"
        item = (p.created_at or "", src.platform, handle, " ".join((p.text or "").split()))
        if not self.latest or item[0] >= self.latest[-1][0]:
            self.latest.append(item)
        if looks_like_question(p.text) and (self.question is None or item[0] >= self.question[0]):
            self.question = item

    def _resolve_deletes(self, refs: list[DeleteRef]) -> list[str]:
        ids = [r.post_id for r in refs if r.post_id]
        for r in refs:
            if r.post_id is None and r.instance and r.local_id:
                row = self.db.conn.execute("SELECT post_id FROM local_ids WHERE instance = ? AND local_id = ?",
                                           (r.instance, r.local_id)).fetchone()
                if row:
                    ids.append(row[0])
        return ids

    # -- numbers for the panel and the bench --------------------------------

    def latency_median(self) -> float | None:
        if not self.latencies:
            return None
        values = sorted(self.latencies)
        return values[len(values) // 2]

    def totals(self) -> dict[str, int]:
        out = {"added": 0, "updated": 0, "deleted": 0}
        for r in self.results.values():
            out["added"] += r.added
            out["updated"] += r.updated
            out["deleted"] += r.deleted
        return out


def _position_time(position: dict) -> float | None:
    """When a stored position is (epoch seconds): the newest event it holds."""
    if not isinstance(position, dict):
        return None
    t = position.get("time_us")
    if isinstance(t, (int, float)) and t > 0:
        return float(t) / 1e6
    at = position.get("at")
    if isinstance(at, str):
        try:
            return parse_iso(at).timestamp()
        except ValueError:
            return None
    return None


def iso_from_us(time_us: int | float) -> str:
    return iso_utc(datetime.fromtimestamp(time_us / 1e6, tz=timezone.utc))


def lower_bound(position: dict, window: Window, overlap: float) -> datetime | None:
    """Where a gap fill starts: an unfinished fill's own start, else the
    newest post held minus ``overlap``, else the window start (for X and
    Mastodon, which have no cursor)."""
    pending = position.get("pending_from")
    if isinstance(pending, str):
        try:
            return parse_iso(pending)
        except ValueError:
            pass
    newest = position.get("newest_at")
    if isinstance(newest, str):
        try:
            return parse_iso(newest) - timedelta(seconds=overlap)
        except ValueError:
            pass
    at = position.get("at")
    if isinstance(at, str):
        try:
            return parse_iso(at)
        except ValueError:
            pass
    return window.since


def newest_of(posts: Iterable[Post], newest_id: str | None, newest_at: str | None,
              key: Any) -> tuple[str | None, str | None]:
    """The newest (id, created_at) of matched ``posts`` and what was known."""
    for p in posts:
        if not p.matched:
            continue
        lid = p.local_id if p.platform == "mastodon" and p.local_id else p.id
        if newest_id is None or key(lid) > key(newest_id):
            newest_id = lid
        if p.created_at and (newest_at is None or p.created_at > newest_at):
            newest_at = p.created_at
    return newest_id, newest_at
