"""Run a capture: poll a platform client, commit every page as it arrives,
keep the resume state in ``captures``, follow until ``--until`` or Ctrl-C,
and tell a :class:`CaptureUI` what is happening (``capture.ui`` has the
terminal panel and the log lines).

Every page is one transaction: its posts (through :class:`archive.writer.PostWriter`),
the page itself (``capture_pages``) and the client's new state (``captures.state``)
are committed together, so a process killed at any moment has stored
exactly the pages it finished, and the next run with the same platform,
query, endpoint and window starts from that state: nothing lost, nothing
fetched twice beyond the page in flight.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Protocol

import orjson
import sqlite_utils

from ..analysis.pipeline import analyse_archive
from ..archive.deletion import without_posts
from ..archive.queries import get_session
from ..archive.schema import now_iso
from ..archive.writer import PostWriter, SaveStats, resolve_local_replies, resolve_page_replies, transaction
from ..errors import CaptureError
from ..timeutil import parse_iso
from .base import DEFAULT_LOOKBACK, CaptureClient, MissingCredentials, Window, utc_from_epoch
from .bluesky import BlueskyCapture
from .config import Config, SessionStore
from .http import Clock, NetworkError, Page, RateLimitError, RetryPolicy
from .mastodon import MastodonCapture
from .x import XCapture

MAX_PROBLEMS_KEPT = 50
MAX_FAILED_POLLS = 5  # consecutive polls that gave up (each after its own retries) end a follow


# --------------------------------------------------------------------------
# Results and progress


@dataclass
class CaptureResult:
    capture_id: int | None
    platform: str
    query: str
    endpoint: str
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    pages: int = 0
    polls: int = 0
    requests: int = 0
    status: str = "running"  # ok | interrupted | failed
    resumed: bool = False
    problems: list[str] = field(default_factory=list)
    context: dict[str, int] | None = None
    analysis: dict = field(default_factory=dict)
    participants: int = 0
    matched_seen: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "capture_id": self.capture_id, "platform": self.platform, "query": self.query,
            "endpoint": self.endpoint, "status": self.status, "resumed": self.resumed,
            "added": self.added, "updated": self.updated, "unchanged": self.unchanged,
            "pages": self.pages, "polls": self.polls, "requests": self.requests,
            "participants": self.participants, "problems": self.problems,
            "context": self.context, "analysis": self.analysis,
        }


class CaptureUI(Protocol):
    """What a capture reports while it runs (``capture.ui``: a live panel or log lines)."""

    def start(self, run: CaptureRun) -> None:
        """The run has begun (``run.result.resumed`` says whether it continues an earlier one)."""

    def page(self, run: CaptureRun, page: Page, stats: SaveStats) -> None:
        """A page is committed; ``stats`` counts what it added and updated."""

    def waiting(self, run: CaptureRun, seconds: float, reason: str) -> None:
        """The client waits ``seconds`` (``reason``: rate limit, retry, pacing…)."""

    def idle(self, run: CaptureRun, next_poll_at: float) -> None:
        """Following: the next poll starts at ``next_poll_at`` (clock time)."""

    def stop(self, run: CaptureRun) -> None:
        """The run is over (``run.result.status``)."""


class QuietUI:
    """A :class:`CaptureUI` that shows nothing: for library use, and a base
    for UIs that care about a few of the callbacks."""

    def start(self, run: CaptureRun) -> None:
        pass

    def page(self, run: CaptureRun, page: Page, stats: SaveStats) -> None:
        pass

    def waiting(self, run: CaptureRun, seconds: float, reason: str) -> None:
        pass

    def idle(self, run: CaptureRun, next_poll_at: float) -> None:
        pass

    def stop(self, run: CaptureRun) -> None:
        pass


# --------------------------------------------------------------------------
# One run


class CaptureRun:
    """State of one capture run (a ``captures`` row)."""

    def __init__(self, db: sqlite_utils.Database, client: CaptureClient, window: Window, key_window: Window,
                 *, clock: Clock, ui: CaptureUI, raw: IO[bytes] | None):
        self.db = db
        self.client = client
        self.window = window
        self.clock = clock
        self.ui = ui
        self.raw = raw
        self.resume_key = json.dumps(
            {"platform": client.platform, "query": client.query, "endpoint": client.endpoint, **key_window.key()},
            sort_keys=True,
        )
        self.result = CaptureResult(None, client.platform, client.query, client.endpoint)
        self.participants: set[str] = set()
        self.matched_ids: set[str] = set()
        self.state: dict = {}
        self.sticky: dict = {}  # kept in every stored state (the default window start)
        self.requests0 = client.http.requests  # a client may serve several runs

    @property
    def requests(self) -> int:
        return self.client.http.requests - self.requests0

    @property
    def matched_ids_count(self) -> int:
        return len(self.matched_ids)

    def begin(self) -> None:
        use_wal(self.db)
        row = self.db.conn.execute(
            "SELECT state FROM captures WHERE resume_key = ? AND state IS NOT NULL ORDER BY id DESC LIMIT 1",
            (self.resume_key,),
        ).fetchone()
        if row and row[0]:
            try:
                self.state = json.loads(row[0])
                self.result.resumed = True
            except ValueError:
                self.state = {}
        with transaction(self.db):
            cur = self.db.conn.execute(
                """INSERT INTO captures (platform, query, endpoint, started, added, updated, requests,
                                         state, status, resume_key, pages)
                   VALUES (?, ?, ?, ?, 0, 0, 0, ?, 'running', ?, 0)""",
                (self.client.platform, self.client.query, self.client.endpoint, now_iso(),
                 json.dumps(self.state), self.resume_key),
            )
        self.result.capture_id = cur.lastrowid

    def commit(self, page: Page) -> SaveStats:
        if self.raw is not None and page.raw_line is not None:
            # written before the commit: a kill in between costs a duplicate
            # line on the rerun (harmless on import), never a lost page
            self.raw.write(orjson.dumps(page.raw_line) + b"\n")
            self.raw.flush()
        for p in page.posts:
            p.source = self.client.source
        writer = PostWriter(self.db)
        r = self.result
        problems = r.problems + page.problems
        with transaction(self.db):
            writer.add(page.posts)
            stats = writer.flush()
            if page.body is not None and (stats.added or stats.updated or page.problems):
                # kept when the page brought something: a quiet poll, or a
                # Bluesky overlap of posts already stored, is not worth a row
                self.db.conn.execute(
                    """INSERT INTO capture_pages (capture_id, platform, kind, url, retrieved_at, posts, json)
                       VALUES (?, ?, ?, ?, ?, ?, ?)""",
                    (r.capture_id, self.client.platform, page.kind, page.url, page.retrieved_at,
                     len(page.posts), orjson.dumps(without_posts(page.body, writer.redacted)).decode()),
                )
            resolve_page_replies(self.db, page.posts)
            state = {**self.sticky, **page.state} if page.kind != "context" else self.state
            self.db.conn.execute(
                """UPDATE captures SET state = ?, added = added + ?, updated = updated + ?,
                       requests = ?, pages = pages + 1, problems = ? WHERE id = ?""",
                (json.dumps(state), stats.added, stats.updated, self.requests,
                 json.dumps(problems[-MAX_PROBLEMS_KEPT:]) if problems else None, r.capture_id),
            )
        if page.kind != "context":
            self.state = state
        r.added += stats.added
        r.updated += stats.updated
        r.unchanged += stats.unchanged
        r.pages += 1
        r.problems = problems[-MAX_PROBLEMS_KEPT * 4:]
        r.requests = self.requests
        for p in page.posts:
            if p.matched and page.kind != "context":
                self.matched_ids.add(p.id)
                if p.author is not None:
                    self.participants.add(p.author.id)
        r.participants = len(self.participants)
        r.matched_seen = len(self.matched_ids)
        self.ui.page(self, page, stats)
        return stats

    def finish(self, status: str) -> None:
        self.result.status = status
        self.result.requests = self.requests
        try:
            with transaction(self.db):
                if self.client.platform == "mastodon":
                    resolve_local_replies(self.db)  # anything the per-page links missed
                self.db.conn.execute(
                    "UPDATE captures SET status = ?, finished = ?, requests = ? WHERE id = ?",
                    (status, now_iso(), self.result.requests, self.result.capture_id),
                )
        except Exception:
            pass
        end_wal(self.db)


def use_wal(db: sqlite_utils.Database) -> None:
    """Capture commits every page (every few seconds while following).  In
    WAL mode a commit costs no fsync (16 ms -> 0.02 ms here) yet stays
    atomic, a killed process loses nothing it committed, and readers
    (``search``) are not blocked meanwhile.  :func:`end_wal` puts the file
    back in the rollback-journal mode the rest of chatarchive uses."""
    try:
        db.conn.execute("PRAGMA journal_mode=WAL")
    except sqlite3.OperationalError:
        pass  # e.g. another process holds a lock: keep the current mode


def end_wal(db: sqlite_utils.Database) -> None:
    """Fold the WAL into the database file and leave WAL mode, so tools
    that open the archive immutable (Datasette) see every captured post."""
    try:
        db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.conn.execute("PRAGMA journal_mode=DELETE")
    except sqlite3.OperationalError:
        pass  # another connection is still reading: the next writer folds it


def run_capture(
    db: sqlite_utils.Database,
    client: CaptureClient,
    window: Window,
    *,
    follow: bool = False,
    interval: float = 30.0,
    clock: Clock | None = None,
    ui: CaptureUI | None = None,
    raw_path: str | Path | None = None,
    context: bool = False,
    max_polls: int | None = None,
) -> CaptureResult:
    """Capture ``window`` (and, with ``follow``, keep polling every
    ``interval`` seconds until ``window.until`` or Ctrl-C)."""
    clock = clock or client.http.clock
    ui = ui or QuietUI()
    # closed in the finally below, after the run (a with block would wrap it all)
    raw = open(raw_path, "ab") if raw_path else None  # noqa: SIM115
    run = CaptureRun(db, client, window, window, clock=clock, ui=ui, raw=raw)
    previous_on_wait = client.http.on_wait

    def on_wait(seconds: float, why: str) -> None:
        ui.waiting(run, seconds, why)
        if previous_on_wait is not None:
            previous_on_wait(seconds, why)

    client.http.on_wait = on_wait
    run.begin()
    if window.since is None and client.platform != "x":
        # Mastodon and Bluesky have no server default: reach back as far as
        # X recent search does.  The bound is kept in the state so a resumed
        # run keeps the same window.
        since = run.state.get("window_since") or utc_from_epoch(clock.time() - DEFAULT_LOOKBACK)
        run.window = Window(parse_iso(since) if isinstance(since, str) else since, window.until)
        run.sticky["window_since"] = run.window.since_iso
    effective = run.window
    status = "failed"
    try:
        ui.start(run)
        catch_up = client.unfinished(run.state)
        failed_polls = 0
        while True:
            poll_started = clock.time()
            try:
                for page in client.poll(dict(run.state), effective):
                    run.commit(page)
                failed_polls = 0
            except (NetworkError, RateLimitError) as e:
                # a follow outlives an outage: what was committed stays, and
                # the next poll resumes from it; a dead server still ends it
                failed_polls += 1
                if not follow or failed_polls >= MAX_FAILED_POLLS:
                    raise
                run.result.problems.append(f"poll failed, will retry: {e}")
                ui.waiting(run, interval, "poll failed")
            run.result.polls += 1
            if catch_up:
                catch_up = False  # the killed run's walk is done: now what came since
                continue
            if not follow or (max_polls is not None and run.result.polls >= max_polls):
                break
            now = clock.time()
            if effective.until is not None and now >= effective.until.timestamp():
                break  # this poll ran after --until: the window is complete
            next_at = poll_started + interval
            ui.idle(run, next_at)
            clock.sleep(max(0.0, next_at - clock.time()))
        if context:
            run.result.context = fetch_context(run, rows_for_ids(db, sorted(run.matched_ids)))
        status = "ok"
    except KeyboardInterrupt:
        status = "interrupted"
    finally:
        run.finish(status)
        ui.stop(run)
        client.http.on_wait = previous_on_wait
        if raw is not None:
            raw.close()
    return run.result


# --------------------------------------------------------------------------
# Context


CONTEXT_COLUMNS = ("id", "platform", "root_id", "reply_to_id", "reply_to_local_id", "reply_count",
                   "created_at", "local_id", "instance", "url")


def rows_for_ids(db: sqlite_utils.Database, ids: list[str]) -> list[dict[str, Any]]:
    out = []
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        q = f"SELECT {', '.join(CONTEXT_COLUMNS)} FROM posts WHERE id IN ({', '.join('?' * len(chunk))}) ORDER BY created_at"
        out += [dict(zip(CONTEXT_COLUMNS, row)) for row in db.conn.execute(q, chunk)]
    return out


def missing_ids(db: sqlite_utils.Database, ids: list[str]) -> list[str]:
    have: set[str] = set()
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        q = f"SELECT id FROM posts WHERE id IN ({', '.join('?' * len(chunk))})"
        have.update(r[0] for r in db.conn.execute(q, chunk))
    return [i for i in ids if i not in have]


def fetch_context(run: CaptureRun, rows: list[dict[str, Any]]) -> dict[str, int]:
    """Fetch the threads around ``rows`` and store them with matched = 0."""
    before_added, before_pages = run.result.added, run.result.pages
    rows = [r for r in rows if r["platform"] == run.client.platform]
    for page in run.client.context(rows, lambda ids: missing_ids(run.db, ids)):
        run.commit(page)
    return {"posts": len(rows), "added": run.result.added - before_added, "pages": run.result.pages - before_pages}


def session_rows(db: sqlite_utils.Database, session: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The posts of a session (id or slug): its session_posts, or — before
    analysis has filled them — its hashtag's posts inside its time window."""
    found = get_session(db, session)
    info = {"id": found.id, "slug": found.slug, "hashtag": found.hashtag, "start": found.start, "end": found.end}
    cols = ", ".join(f"p.{c}" for c in CONTEXT_COLUMNS)
    rows = db.conn.execute(
        f"SELECT {cols} FROM session_posts sp JOIN posts p ON p.id = sp.post_id WHERE sp.session_id = ? ORDER BY p.created_at",
        (info["id"],),
    ).fetchall()
    if not rows and info.get("hashtag") and info.get("start") and info.get("end"):
        rows = db.conn.execute(
            f"""SELECT {cols} FROM posts p
                JOIN post_hashtags ph ON ph.post_id = p.id JOIN hashtags h ON h.id = ph.hashtag_id
                WHERE h.tag = ? AND p.created_at >= ? AND p.created_at < ? ORDER BY p.created_at""",
            (str(info["hashtag"]).lstrip("#"), info["start"], info["end"]),
        ).fetchall()
    return info, [dict(zip(CONTEXT_COLUMNS, r)) for r in rows]


# --------------------------------------------------------------------------
# The whole command, as a library call


@dataclass
class CaptureOptions:
    since: datetime | None = None
    until: datetime | None = None
    follow: bool = False
    interval: float = 30.0
    instances: tuple[str, ...] = ()
    api_base: str | None = None
    archive: bool = False
    raw_path: str | None = None
    context: bool = False
    analyse: bool = True
    timeout: float = 30.0
    policy: RetryPolicy | None = None
    max_polls: int | None = None
    jetstream: str | None = None  # streams: the Jetstream server (capture.jetstream)
    appview: str | None = None  # streams: the Bluesky AppView for profiles


def make_client(platform: str, query: str, config: Config, opts: CaptureOptions, clock: Clock,
                on_wait: Callable[[float, str], None] | None = None, **extra: Any) -> CaptureClient:
    if platform == "x":
        token = config.x_bearer_token.reveal() if config.x_bearer_token else None
        return XCapture(query, token=token, api_base=opts.api_base, archive=opts.archive, clock=clock,
                        policy=opts.policy, timeout=opts.timeout, on_wait=on_wait)
    if platform == "mastodon":
        instances = list(opts.instances) or ([opts.api_base] if opts.api_base else [])
        return MastodonCapture(query, instances=instances, config=config, clock=clock, policy=opts.policy,
                               timeout=opts.timeout, on_wait=on_wait, **extra)
    if platform == "bluesky":
        return BlueskyCapture(query, config=config, service=opts.api_base, clock=clock, policy=opts.policy,
                              timeout=opts.timeout, on_wait=on_wait, sessions=SessionStore(config.dir))
    raise CaptureError(f"Unknown platform {platform!r}: choose x, mastodon or bluesky")


def capture(
    db: sqlite_utils.Database,
    platform: str,
    query: str,
    opts: CaptureOptions,
    config: Config,
    *,
    clock: Clock | None = None,
    ui: CaptureUI | None = None,
) -> CaptureResult:
    """``chatarchive capture DB PLATFORM QUERY``: capture, then analyse."""
    clock = clock or Clock()
    if opts.since and opts.until and opts.until <= opts.since:
        raise CaptureError("--until must be later than --since")
    client = make_client(platform, query, config, opts, clock)
    try:
        result = run_capture(
            db, client, Window(opts.since, opts.until), follow=opts.follow, interval=opts.interval,
            clock=clock, ui=ui, raw_path=opts.raw_path, context=opts.context, max_polls=opts.max_polls,
        )
    finally:
        client.close()
    if opts.analyse and (result.added or result.updated):
        result.analysis = analyse_archive(db) or {}
    return result


def capture_context(
    db: sqlite_utils.Database,
    session: str,
    opts: CaptureOptions,
    config: Config,
    *,
    clock: Clock | None = None,
    ui: CaptureUI | None = None,
) -> list[CaptureResult]:
    """``chatarchive capture DB context SESSION``: fetch the reply parents
    and untagged replies of a session's threads on every platform it spans."""
    clock = clock or Clock()
    info, rows = session_rows(db, session)
    if not rows:
        raise CaptureError(f"Session {session!r} has no posts to fetch context for")
    results = []
    label = str(info.get("slug") or session)
    for platform in ("x", "mastodon", "bluesky"):
        mine = [r for r in rows if r["platform"] == platform]
        if not mine:
            continue
        extra: dict[str, Any] = {}
        o = opts
        if platform == "mastodon":
            hosts = sorted({r["instance"] for r in mine if r.get("instance")})
            extra["known_instances"] = list(opts.instances)
            o = CaptureOptions(**{**opts.__dict__, "instances": tuple(hosts)})
            if not hosts:
                continue
        try:
            # the query only labels the run; "context:" keeps it apart from searches
            client = make_client(platform, f"context:{label}", config, o, clock, **extra)
        except MissingCredentials as e:
            # one platform without credentials must not block the others
            results.append(CaptureResult(None, platform, f"context:{label}", "", status="skipped", problems=[str(e)]))
            continue
        try:
            run = CaptureRun(db, client, Window(), Window(), clock=clock, ui=ui or QuietUI(), raw=None)
            run.begin()
            run.ui.start(run)
            status = "failed"
            try:
                run.result.context = fetch_context(run, mine)
                status = "ok"
            except KeyboardInterrupt:
                status = "interrupted"
            finally:
                run.finish(status)
                run.ui.stop(run)
            results.append(run.result)
            if status == "interrupted":
                break
        finally:
            client.close()
    if results and all(r.status == "skipped" for r in results):
        raise MissingCredentials("; ".join(p for r in results for p in r.problems))
    if opts.analyse and any(r.added or r.updated for r in results):
        analysis = analyse_archive(db) or {}
        for r in results:
            r.analysis = analysis
    return results
