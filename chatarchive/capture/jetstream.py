"""Bluesky live, without a login: Jetstream (sources.md §10.1).

Jetstream serves the whole network's repository events as JSON over a
WebSocket.  This source subscribes to ``app.bsky.feed.post`` commits only
and keeps a post when its record carries the chat's tag (a
``app.bsky.richtext.facet#tag`` facet or ``record.tags``, case-insensitive)
or, untagged, when its ``reply.root`` or ``reply.parent`` is a post of the
chat (kept as context, ``matched = 0``): the untagged replies of the hour,
caught as they are posted.  ``delete`` commits of stored posts become
tombstones (``archive.deletion``); likes, follows, identity and account
events are ignored.

Two protocols, both spoken (``--jetstream`` takes either endpoint, or a
bare host to let this module choose):

* the classic ``/subscribe`` (``wantedCollections``; events
  ``{did, time_us, kind, commit: {operation, collection, rkey, record, cid}}``;
  ``cursor`` = ``time_us`` microseconds);
* the 2026 ``/xrpc/network.bsky.jetstream.subscribeEvents`` (subprotocol
  ``xrpc.v1.json``; ``kinds``/``collections``; frames ``{"$type":
  "message", "payload": {…, seq, time}}`` and ``{"$type": "error"}``;
  ``cursor`` = the instance's sequence number, inclusive, or a
  microsecond time; a too-old sequence is refused with HTTP 400
  ``CursorTooOld``).  A bare host is tried with this one first; a server
  that does not know it (404) is read through ``/subscribe``.

Resuming: the position (``time_us``, and with the 2026 protocol ``seq`` and
the host it belongs to: sequences do not carry across instances) is
committed with the posts.  A reconnect (after a dropped connection, or a
restart after ``kill -9``) asks for the same host's ``seq`` where it has
one, else for ``time_us`` minus ``rewind`` seconds; delivery is at least
once, so replayed events merge by uri.

Posts are stored through the same ``normalize`` as files
(:func:`chatarchive.sources.bluesky.normalize`): each event becomes the
PostView the AppView would have served (uri ``at://did/collection/rkey``;
images and videos from the record's blobs on Bluesky's CDN), with the
author's handle and name from ``app.bsky.actor.getProfiles``
(:mod:`.profiles`, 25 a request, cached).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import orjson
import sqlite_utils

from ..errors import CaptureError
from ..sources.bluesky import FORMAT as BLUESKY_FORMAT
from ..sources.bluesky import BlueskyFile, normalize
from ..sources.registry import state_of
from ..timeutil import iso_utc, parse_iso
from .http import BLUESKY_RATE_LIMITS, USER_AGENT, Clock, HttpClient, RetryPolicy, public_url, redact_urls
from .profiles import ProfileResolver
from .stream import DeleteRef, StreamEngine, StreamItem, StreamPolicy, StreamSource, StreamStopped, iso_from_us

DEFAULT_JETSTREAM = "wss://jetstream2.us-east.bsky.network"
POST = "app.bsky.feed.post"
TAG_FEATURE = "app.bsky.richtext.facet#tag"
CLASSIC_PATH = "/subscribe"
EVENTS_PATH = "/xrpc/network.bsky.jetstream.subscribeEvents"
SUBPROTOCOL = "xrpc.v1.json"
CDN = "https://cdn.bsky.app/img"
MAX_MESSAGE = 4 * 1024 * 1024  # a post event is a few KB; refuse absurd frames
PROGRESS_EVERY = 0.5  # seconds between position-only items while nothing matches
SEED_DAYS = 2  # chat posts of the last days whose replies count (a restart reads them back)


class JetstreamRefused(CaptureError):
    """The server refused the WebSocket handshake (an HTTP status)."""

    def __init__(self, status: int, body: str):
        super().__init__(f"HTTP {status}")
        self.status = status
        self.body = body


class JetstreamError(CaptureError):
    """An error frame of the 2026 protocol (``ConsumerTooSlow``, …)."""


def jetstream_endpoint(value: str | None) -> tuple[str, str]:
    """(base URL, protocol) of ``--jetstream``: ``"v1"`` (``/subscribe``),
    ``"v2"`` (``…subscribeEvents``) or ``"auto"`` (a bare host)."""
    v = (value or DEFAULT_JETSTREAM).strip().rstrip("/")
    if "://" not in v:
        v = "wss://" + v
    parts = urlsplit(v)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    if scheme not in ("ws", "wss") or not parts.netloc:
        raise CaptureError(f"--jetstream {redact_urls(value or '')!r} is not a WebSocket URL "
                           f"(e.g. {DEFAULT_JETSTREAM})")
    path = parts.path
    if path.endswith(EVENTS_PATH):
        proto, path = "v2", path[: -len(EVENTS_PATH)]
    elif path.endswith(CLASSIC_PATH):
        proto, path = "v1", path[: -len(CLASSIC_PATH)]
    elif path in ("", "/"):
        proto, path = "auto", ""
    else:
        raise CaptureError(f"--jetstream {redact_urls(value or '')!r}: give the server "
                           f"(e.g. {DEFAULT_JETSTREAM}) or its {CLASSIC_PATH} or {EVENTS_PATH} endpoint")
    return urlunsplit((scheme, parts.netloc, path, "", "")), proto


# --------------------------------------------------------------------------
# The filter: frames in, chat events out (pure; the bench drives it too)


@dataclass
class Event:
    kind: str  # post | delete
    did: str
    rkey: str
    uri: str
    record: dict | None
    cid: str | None
    time_us: int
    matched: bool
    raw: Any  # the frame as received


def _us_of(value: Any) -> int | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return int(parse_iso(value).timestamp() * 1_000_000)
    except ValueError:
        return None


class JetstreamReader:
    """Reads frames of either protocol; keeps the position (``time_us``,
    ``seq``) and the set of the chat's post uris (for untagged replies)."""

    def __init__(self, tag: str, protocol: str = "v1", chat: set[str] | None = None):
        self.fold = tag.lstrip("#").casefold()
        self.protocol = protocol
        self.chat: set[str] = chat if chat is not None else set()
        self.time_us = 0
        self.seq: int | None = None
        self.frames = 0
        self.unreadable = 0
        self.notes: list[str] = []

    def match(self, record: dict) -> bool | None:
        """True: carries the tag; False: an untagged reply into the chat; None: not the chat's."""
        fold = self.fold
        facets = record.get("facets")
        if isinstance(facets, list):
            for facet in facets:
                feats = facet.get("features") if isinstance(facet, dict) else None
                if isinstance(feats, list):
                    for feat in feats:
                        if isinstance(feat, dict) and feat.get("$type") == TAG_FEATURE:
                            t = feat.get("tag")
                            if isinstance(t, str) and t.lstrip("#").casefold() == fold:
                                return True
        tags = record.get("tags")
        if isinstance(tags, list):
            for t in tags:
                if isinstance(t, str) and t.lstrip("#").casefold() == fold:
                    return True
        reply = record.get("reply")
        if isinstance(reply, dict) and self.chat:
            for k in ("parent", "root"):
                ref = reply.get(k)
                if isinstance(ref, dict) and ref.get("uri") in self.chat:
                    return False
        return None

    def feed(self, message: str | bytes) -> Event | None:
        self.frames += 1
        try:
            frame = orjson.loads(message)
        except orjson.JSONDecodeError:
            self.unreadable += 1
            return None
        if not isinstance(frame, dict):
            return None
        if self.protocol == "v2":
            kind = frame.get("$type")
            if kind == "error":
                raise JetstreamError(f"Jetstream: {frame.get('error')}: {frame.get('message') or ''}".strip())
            payload = frame.get("payload") if kind == "message" else None
            if not isinstance(payload, dict):
                return None
            ev: dict = payload
            etype = ev.get("$type") or ""
            seq = ev.get("seq")
            if isinstance(seq, int) and not isinstance(seq, bool):
                self.seq = seq
            if etype.endswith("#info"):
                self.notes.append(f"Jetstream: {ev.get('name')}: {ev.get('message') or ''}".strip())
                return None
            t = _us_of(ev.get("witnessedAt")) or _us_of(ev.get("time"))
            if t and t > self.time_us:
                self.time_us = t
            if not etype.endswith("#commit"):
                return None
            commit: dict = ev
        else:
            t = frame.get("time_us")
            if isinstance(t, int) and not isinstance(t, bool) and t > self.time_us:
                self.time_us = t
            if frame.get("kind") != "commit":
                return None  # identity and account events
            inner = frame.get("commit")
            if not isinstance(inner, dict):
                return None
            commit = inner
        if commit.get("collection") != POST:
            return None  # likes, reposts, follows…
        did = frame.get("did") if self.protocol != "v2" else commit.get("did")
        rkey = commit.get("rkey")
        if not isinstance(did, str) or not isinstance(rkey, str) or not did or not rkey:
            return None
        op = commit.get("operation")
        uri = f"at://{did}/{POST}/{rkey}"
        if op == "delete":
            return Event("delete", did, rkey, uri, None, None, self.time_us, False, frame)
        record = commit.get("record")
        if op not in ("create", "update") or not isinstance(record, dict):
            return None
        m = self.match(record)
        if m is None:
            return None
        self.chat.add(uri)
        cid = commit.get("cid")
        return Event("post", did, rkey, uri, record, cid if isinstance(cid, str) else None, self.time_us, m, frame)


# --------------------------------------------------------------------------
# From an event to the PostView normalize reads


def _blob(value: Any) -> str | None:
    if not isinstance(value, dict):
        return None
    ref = value.get("ref")
    if isinstance(ref, dict) and isinstance(ref.get("$link"), str):
        return ref["$link"]
    cid = value.get("cid")  # the legacy blob shape
    return cid if isinstance(cid, str) else None


def _media_view(did: str, embed: Any) -> dict | None:
    """The hydrated view of a record's images or video (CDN URLs from the blob CIDs)."""
    if not isinstance(embed, dict):
        return None
    kind = embed.get("$type")
    if kind == "app.bsky.embed.images":
        images = []
        for img in embed.get("images") or []:
            cid = _blob(img.get("image")) if isinstance(img, dict) else None
            if cid:
                images.append({"thumb": f"{CDN}/feed_thumbnail/plain/{did}/{cid}@jpeg",
                               "fullsize": f"{CDN}/feed_fullsize/plain/{did}/{cid}@jpeg",
                               "alt": img.get("alt") if isinstance(img.get("alt"), str) else ""})
        return {"$type": "app.bsky.embed.images#view", "images": images} if images else None
    if kind == "app.bsky.embed.video":
        cid = _blob(embed.get("video"))
        if not cid:
            return None
        return {"$type": "app.bsky.embed.video#view", "cid": cid,
                "playlist": f"https://video.bsky.app/watch/{quote(did, safe='')}/{cid}/playlist.m3u8",
                "thumbnail": f"https://video.cdn.bsky.app/hls/{did}/{cid}/thumbnail.jpg",
                "alt": embed.get("alt") if isinstance(embed.get("alt"), str) else None}
    if kind == "app.bsky.embed.recordWithMedia":
        media = _media_view(did, embed.get("media"))
        return {"$type": "app.bsky.embed.recordWithMedia#view", "media": media} if media else None
    return None


def event_view(ev: Event, profile: dict | None) -> dict:
    """The PostView of a post event (what ``getPosts`` would answer, as far
    as the event tells: no counts, which the stream does not carry)."""
    author: dict[str, Any] = {"did": ev.did}
    if profile:
        for k in ("handle", "displayName", "avatar"):
            if profile.get(k):
                author[k] = profile[k]
    view: dict[str, Any] = {"uri": ev.uri, "cid": ev.cid, "author": author, "record": ev.record,
                            "indexedAt": iso_from_us(ev.time_us) if ev.time_us else None}
    media = _media_view(ev.did, (ev.record or {}).get("embed"))
    if media:
        view["embed"] = media
    return {k: v for k, v in view.items() if v is not None}


# --------------------------------------------------------------------------
# The source


class JetstreamSource(StreamSource):
    platform = "bluesky"
    post_source = "bluesky_jetstream"
    name = "bluesky"

    def __init__(self, query: str, *, jetstream: str | None = None, appview: str | None = None,
                 policy: StreamPolicy | None = None, clock: Clock | None = None, timeout: float = 30.0,
                 http_policy: RetryPolicy | None = None):
        super().__init__(query, policy)
        tags = [w.lstrip("#") for w in query.split() if w.strip("#")]
        if len(tags) != 1:
            raise CaptureError(f"A Bluesky stream follows one hashtag: {query!r} is not one (e.g. '#edchat')")
        self.tag = tags[0]
        self.query = f"#{self.tag}"
        self.base, self.protocol = jetstream_endpoint(jetstream)
        self.host = urlsplit(self.base).netloc.rsplit("@", 1)[-1]
        self.clock = clock or Clock()
        self.http = HttpClient(BLUESKY_RATE_LIMITS, clock=self.clock, timeout=timeout,
                               policy=http_policy or RetryPolicy(max_retries=2, backoff_max=10.0))
        self.http.add_url_credentials(self.base)
        self.profiles = ProfileResolver(self.http, appview)
        self.reader = JetstreamReader(self.tag, "v1")
        self.ctx = BLUESKY_FORMAT.context(public_url(self.base))
        self._ws: Any = None
        self._seq_refused = False
        self._spoken: str | None = None  # the protocol the server turned out to speak
        self.last_event_wall = 0.0
        self.waiting_handles: dict[str, list[Event]] = {}  # did -> posts stored without a handle

    @property
    def endpoint(self) -> str:
        return public_url(self.base)

    @property
    def http_clients(self) -> list[HttpClient]:
        return [self.http]

    # -- engine side --------------------------------------------------------

    def seed(self, db: sqlite_utils.Database) -> None:
        """The chat's posts already archived (the last days): replies to them
        are the chat's too, also after a restart."""
        since = self.window.since.timestamp() if self.window.since else self.clock.time()
        lo = iso_utc(datetime.fromtimestamp(since - SEED_DAYS * 86400, tz=timezone.utc))
        rows = db.conn.execute(
            """SELECT p.id FROM posts p JOIN post_hashtags ph ON ph.post_id = p.id
               JOIN hashtags h ON h.id = ph.hashtag_id
               WHERE p.platform = 'bluesky' AND h.tag = ? COLLATE NOCASE AND p.created_at >= ?""",
            (self.tag, lo)).fetchall()
        chat = {r[0] for r in rows}
        if chat:
            for (pid, root, parent) in db.conn.execute(
                    "SELECT id, root_id, reply_to_id FROM posts WHERE platform = 'bluesky' AND created_at >= ?", (lo,)):
                if root in chat or parent in chat:
                    chat.add(pid)
        self.reader.chat.update(chat)

    def done(self, now: float) -> bool:
        until = self.window.until
        if until is None:
            return False
        if self.reader.time_us >= until.timestamp() * 1e6:
            return True  # the stream has passed the end (a replay of a past window, too)
        # live and quiet: nothing left to wait for once the wall clock is past it
        return now >= until.timestamp() and time.monotonic() - self.last_event_wall > self.policy.grace

    def prepare(self, items: list[StreamItem], engine: StreamEngine) -> None:
        events = [e for it in items if isinstance(it.pending, list) for e in it.pending]
        if not events and not self.waiting_handles:
            return
        retry = [d for d in self.waiting_handles if self.profiles.known(d) is None]
        profiles = self.profiles.resolve([e.did for e in events] + retry, engine.db)
        handles = state_of(self.ctx, BlueskyFile).handles
        for did, prof in profiles.items():
            if prof.get("handle"):
                handles[did] = prof["handle"]
        # posts stored earlier without a handle: stored again now it is known
        late = [e for d in list(self.waiting_handles) if d in profiles for e in self.waiting_handles.pop(d)]
        if late and items:
            items[0].pending = late + (items[0].pending or [])
        for it in items:
            if not isinstance(it.pending, list):
                continue
            for ev in it.pending:
                who = profiles.get(ev.did)
                if who is None and len(self.waiting_handles) < 5000:
                    self.waiting_handles.setdefault(ev.did, []).append(ev)
                view = event_view(ev, who)
                try:
                    posts = list(normalize(view, self.ctx))
                except Exception as e:  # a record we cannot read: reported, the stream goes on
                    it.problems.append(f"{ev.uri}: could not read the post ({type(e).__name__}: {e})")
                    continue
                for p in posts:
                    if p.id == ev.uri:
                        p.matched = ev.matched
                    else:
                        p.matched = False
                it.posts.extend(posts)
                it.raw_lines.append(view)
            it.body = [ev.raw for ev in it.pending]
            it.pending = None
        for msg in self.profiles.problems:
            if items:
                items[0].problems.append(msg)
        self.profiles.problems.clear()

    # -- the thread ---------------------------------------------------------

    def _protocol(self) -> str:
        return self._spoken or ("v2" if self.protocol == "auto" else self.protocol)

    def _cursor(self, proto: str) -> int | None:
        pos = self.position
        if proto == "v2" and not self._seq_refused and isinstance(pos.get("seq"), int) \
                and pos.get("host") == self.host and pos.get("protocol") == "v2":
            return int(pos["seq"])  # inclusive: replays the last event, merged by uri
        t = pos.get("time_us")
        if isinstance(t, (int, float)) and t > 0:
            return int(t - self.policy.rewind * 1_000_000)
        at = pos.get("at")
        if isinstance(at, str):
            try:
                start = parse_iso(at).timestamp()
            except ValueError:
                return None
            if start < self.clock.time():
                # replay from the window start: also what came between the
                # command's start and the connection
                return int(start * 1_000_000)
        return None

    def url(self, proto: str) -> str:
        cursor = self._cursor(proto)
        if proto == "v2":
            params: list[tuple[str, Any]] = [("kinds", "commit"), ("collections", POST)]
            path = EVENTS_PATH
        else:
            params = [("wantedCollections", POST)]
            path = CLASSIC_PATH
        if cursor is not None:
            params.append(("cursor", cursor))
        return f"{self.base}{path}?{urlencode(params)}"

    def interrupt(self) -> None:
        ws = self._ws
        if ws is not None:
            ws.close()

    def run(self) -> None:
        from websockets.exceptions import InvalidStatus, WebSocketException

        backoff = self.backoff()
        while True:
            self.check()
            proto = self._protocol()
            url = self.url(proto)
            try:
                why = self._session(url, proto, backoff)
            except StreamStopped:
                raise
            except InvalidStatus as e:
                status = e.response.status_code
                body = (e.response.body or b"").decode("utf-8", "replace")[:300]
                if self.protocol == "auto" and self._spoken is None and status in (400, 404, 405, 426) \
                        and "CursorTooOld" not in body:
                    self._spoken = "v1"  # this server speaks the classic protocol only
                    continue
                if status == 400 and "CursorTooOld" in body:
                    if not self._seq_refused and proto == "v2" and self.position.get("seq") is not None:
                        self._seq_refused = True
                    else:
                        self.position.pop("time_us", None)
                        self.position["at"] = iso_utc(datetime.now(timezone.utc))
                        self.say("the stored position is older than the server keeps: reading from now")
                    continue
                if status in (401, 403):
                    raise CaptureError(f"Jetstream {self.host} refused the connection (HTTP {status}): "
                                       f"{redact_urls(body) or 'forbidden'}") from None
                why = f"the server answered HTTP {status}"
                if status == 429:
                    backoff.base = max(backoff.base, self.policy.http_backoff_base)
            except JetstreamError as e:
                why = str(e)
            except (OSError, WebSocketException, TimeoutError) as e:
                why = _describe(e)
            finally:
                self._ws = None
            self.check()
            self.reconnects += 1
            delay = backoff.next()
            self.say(f"{why}; reconnecting in {delay:.1f}s")
            self.sleep(delay)

    def _session(self, url: str, proto: str, backoff: Any) -> str:
        from websockets.sync.client import connect

        reader = self.reader
        reader.protocol = proto
        with connect(url, subprotocols=[SUBPROTOCOL] if proto == "v2" else None,  # type: ignore[list-item]
                     open_timeout=self.policy.connect_timeout, close_timeout=1.0, max_size=MAX_MESSAGE,
                     compression=None, user_agent_header=USER_AGENT, ping_interval=20, ping_timeout=20) as ws:
            self._ws = ws
            if proto == "v2" and ws.subprotocol != SUBPROTOCOL and self.protocol == "auto" and self._spoken is None:
                self._spoken = "v1"
                return "the server does not speak the 2026 protocol"
            self._spoken = proto
            self.connects += 1
            self.say(f"live ({'subscribeEvents' if proto == 'v2' else 'subscribe'}, {self.host})")
            if self.stopping.is_set():
                raise StreamStopped
            pending: list[Event] = []
            deletes: list[DeleteRef] = []
            last_emit = time.monotonic()
            moved = False
            until_us = self.window.until.timestamp() * 1e6 if self.window.until else None
            while True:
                if self.stopping.is_set():
                    raise StreamStopped
                try:
                    message = ws.recv(timeout=self.policy.idle_timeout)
                except TimeoutError:
                    return f"nothing received for {self.policy.idle_timeout:.0f}s"
                backoff.reset()
                self.last_event_wall = time.monotonic()
                ev = reader.feed(message)
                moved = True
                if reader.notes:
                    for n in reader.notes:
                        self.say(n)
                    reader.notes.clear()
                if ev is not None and until_us is not None and ev.time_us >= until_us:
                    ev = None  # past the window's end (a replay catching up)
                if ev is not None:
                    if ev.kind == "delete":
                        deletes.append(DeleteRef(post_id=ev.uri, when=iso_from_us(ev.time_us)))
                    else:
                        pending.append(ev)
                now = time.monotonic()
                if pending or (moved and now - last_emit >= PROGRESS_EVERY):
                    self._note_position(proto)
                    self.emit(StreamItem(self, deletes=deletes, state=self.snapshot(), pending=pending or None,
                                         url=self.endpoint, event_times=[e.time_us / 1e6 for e in pending]))
                    pending, deletes = [], []
                    last_emit = now
                    moved = False

    def _note_position(self, proto: str) -> None:
        r = self.reader
        pos = self.position
        if r.time_us:
            pos["time_us"] = r.time_us
            pos["at"] = iso_from_us(r.time_us)
        if proto == "v2" and r.seq is not None:
            pos.update(seq=r.seq, host=self.host, protocol="v2")
        else:
            pos.pop("seq", None)
            pos["protocol"] = proto

    def finish(self, engine: StreamEngine) -> Iterator[StreamItem]:
        if self.waiting_handles:
            # one more try for the handles the AppView could not give earlier
            yield StreamItem(self, state=None, pending=[])


def _describe(e: BaseException) -> str:
    from websockets.exceptions import ConnectionClosed

    if isinstance(e, ConnectionClosed):
        return "the connection dropped"
    if isinstance(e, TimeoutError):
        return "no answer in time"
    if isinstance(e, ConnectionRefusedError):
        return "cannot connect"
    return f"network error ({type(e).__name__})"
