"""Mastodon live: the hashtag stream of each server (sources.md §10.2).

One :class:`MastodonStreamSource` per ``--instance``: server-sent events from
``GET /api/v1/streaming/hashtag?tag=NAME`` (on the streaming host the server
names in ``/api/v2/instance``, ``configuration.urls.streaming``, else the
server itself), read with ``httpx-sse``.  Events: ``update`` (a new status),
``status.update`` (an edit: stored again, the newer text wins), ``delete``
(a status id on that server: the post becomes a tombstone); ``:thump``
heartbeats keep the connection alive, and a silence longer than
``idle_timeout`` means it is dead.

The stream has no cursor.  On every (re)connect the gap is filled from the
tag timeline with ``since_id`` (the newest status held, less a minute's
overlap), paging back with ``max_id`` until it reaches what was held (or, on
the first connect, the window start).  The position (newest status id and
time, and the start of a gap fill still running) is committed with the
posts, so a restart after ``kill -9`` fills exactly the gap it left.

Since Mastodon 4.2 streams need a user token (``MASTODON_TOKEN`` for the
first ``--instance``, ``[mastodon.tokens]`` per server).  A server we have
no token for, or that refuses to stream to us, is followed by polling its
tag timeline every ``poll_interval`` seconds instead (tag timelines are
public on most servers), with one line saying so and what to set.  Servers
are merged by status uri, as in polling capture.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
import orjson

from ..errors import CaptureError
from ..sources.mastodon import host_of
from ..sources.mastodon import normalize as normalize_status
from ..timeutil import iso_utc
from .base import Window, sort_key_id
from .config import ENV_MASTODON_TOKEN, Config, Secret
from .http import ApiError, AuthError, Page, describe_transport_error, public_url
from .mastodon import MastodonCapture
from .stream import (
    DeleteRef,
    HttpStreamSource,
    StreamEngine,
    StreamItem,
    StreamPolicy,
    StreamStopped,
    lower_bound,
    newest_of,
)

PAGE = 40


def snowflake_at(dt: datetime) -> int:
    """The lowest vanilla Mastodon id at ``dt`` (ms << 16)."""
    return int(dt.timestamp() * 1000) << 16


def looks_like_snowflake(value: str | None) -> bool:
    # vanilla ids are (ms since 1970) << 16: 18 digits these years
    return value is not None and value.isdigit() and int(value) > (1 << 56)


class MastodonStreamSource(HttpStreamSource):
    platform = "mastodon"
    post_source = "mastodon_streaming"

    def __init__(self, query: str, base: str, *, token: str | None, config: Config | None = None,
                 policy: StreamPolicy | None = None, clock: Any = None, timeout: float = 30.0,
                 http_policy: Any = None):
        super().__init__(query, policy)
        self.client = MastodonCapture(
            query, instances=[base], clock=clock, policy=http_policy, timeout=timeout,
            config=Config(mastodon_tokens={host_of(base) or "": Secret(token)} if token else {}))
        self.base = self.client.urls[0]
        self.host = host_of(self.base) or self.base
        self.name = self.host
        self.tag = self.client.tag
        self.query = f"#{self.tag}"
        self.token = token
        self.streaming_base: str | None = None
        self.polling_reason: str | None = None if token else (
            f"no token for {self.host}: polling its tag timeline every {self.policy.poll_interval:.0f}s "
            f"(set {ENV_MASTODON_TOKEN}, or [mastodon.tokens] \"{self.host}\" in the config file, to stream)")

    @property
    def endpoint(self) -> str:
        return public_url(f"{self.base}/api/v1/streaming/hashtag?tag={quote(self.tag, safe='')}")

    # -- positions ------------------------------------------------------

    def _gap_since_id(self) -> str | None:
        """``since_id`` for a gap fill: the newest status held, a minute back
        where the id is a vanilla snowflake (late-federated posts)."""
        newest = self.position.get("newest_id")
        if not isinstance(newest, str):
            return None
        if looks_like_snowflake(newest):
            back = (int(self.policy.overlap * 1000)) << 16
            return str(max(0, int(newest) - back))
        return newest

    def _fill(self) -> Iterator[StreamItem]:
        """Pages of the tag timeline since the position (or the window start)."""
        lower = lower_bound(self.position, self.window, self.policy.overlap)
        since_id = None if self.position.get("pending_from") else self._gap_since_id()
        with self.lock:
            self.position["pending_from"] = iso_utc(lower) if lower else None
        self.gap_fills += 1
        window = Window(lower, self.window.until)
        pages = list(self._gap_pages(since_id, window))
        for i, page in enumerate(pages):
            last = i == len(pages) - 1
            with self.lock:
                nid, nat = newest_of(page.posts, self.position.get("newest_id"), self.position.get("newest_at"),
                                     sort_key_id)
                self.position.update(newest_id=nid, newest_at=nat)
                if nat:
                    self.position["at"] = nat
                if last:
                    self.position["pending_from"] = None
            yield StreamItem(self, posts=page.posts, state=self.snapshot(), body=page.body, kind="search",
                             url=page.url, raw_lines=[page.raw_line] if page.raw_line else [],
                             problems=page.problems)
        if not pages:
            with self.lock:
                self.position["pending_from"] = None
            yield StreamItem(self, state=self.snapshot())

    def _gap_pages(self, since_id: str | None, window: Window) -> Iterator[Page]:
        c = self.client
        path = c._timeline_path()
        max_id: str | None = None
        since = window.since_iso
        for _ in range(500):  # bounded: 20,000 statuses
            self.check()
            params = {"limit": str(PAGE)}
            if since_id:
                params["since_id"] = since_id
            if max_id:
                params["max_id"] = max_id
            resp, url, status = c._get(self.base, path, params)
            problems: list[str] = []
            statuses = c._statuses(resp, status, url, problems)
            page = c._page(self.host, statuses, url, window, {}, problems)
            yield page
            ids = [str(s["id"]) for s in statuses if isinstance(s, dict) and s.get("id") is not None]
            if not ids or len(ids) < PAGE:
                return  # reached since_id (or the timeline's end)
            oldest = min((s.get("created_at") or "" for s in statuses if isinstance(s, dict)), default="")
            if since and oldest and oldest < since:
                return
            lowest = min(ids, key=sort_key_id)
            if max_id is not None and sort_key_id(lowest) >= sort_key_id(max_id):
                return
            max_id = lowest

    # -- the thread ---------------------------------------------------------

    def preflight(self) -> None:
        """A token the server refuses is one clear line before anything starts."""
        if not self.token:
            return
        resp = self.http.request("GET", self.base + "/api/v1/accounts/verify_credentials",
                                 headers={"Authorization": f"Bearer {self.token}"})
        if resp.status_code in (401, 403):
            detail = self.http.redact(resp.text[:200])
            raise AuthError(f"Mastodon {self.host} refused the token (HTTP {resp.status_code}: {detail}): check "
                            f"{ENV_MASTODON_TOKEN} (or [mastodon.tokens] \"{self.host}\" in the config file); "
                            "streams need a user token with read:statuses", status=resp.status_code)

    def _find_streaming_base(self) -> str:
        """The streaming host (``configuration.urls.streaming``), as https."""
        try:
            resp = self.http.request("GET", self.base + "/api/v2/instance")
            body = resp.json() if resp.status_code == 200 else None
        except (CaptureError, ValueError):
            body = None
        url = None
        if isinstance(body, dict):
            urls = (body.get("configuration") or {}).get("urls") or {}
            url = urls.get("streaming") if isinstance(urls, dict) else None
        if isinstance(url, str) and url:
            parts = urlsplit(url)
            scheme = {"wss": "https", "ws": "http"}.get(parts.scheme, parts.scheme)
            if scheme in ("http", "https") and parts.netloc:
                return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/"), "", ""))
        return self.base

    def run(self) -> None:
        if self.polling_reason:
            self._poll_forever()
            return
        self.streaming_base = self._find_streaming_base()
        backoff = self.backoff()
        while True:
            self.check()
            why = self._stream_once(backoff)
            if self.polling_reason:
                self._poll_forever()
                return
            self.check()
            self.reconnects += 1
            delay = backoff.next()
            self.say(f"{why}; reconnecting in {delay:.1f}s")
            self.sleep(delay)

    def _stream_once(self, backoff: Any) -> str:
        from httpx_sse import EventSource, SSEError

        p = self.policy
        url = f"{self.streaming_base}/api/v1/streaming/hashtag"
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "text/event-stream", "Cache-Control": "no-store"}
        timeout = httpx.Timeout(p.connect_timeout, read=p.idle_timeout)
        try:
            with self.http.client.stream("GET", url, params={"tag": self.tag}, headers=headers,
                                         timeout=timeout) as resp:
                self._response = resp
                status = resp.status_code
                if status in (401, 403):
                    detail = self.http.redact(resp.read().decode("utf-8", "replace")[:200])
                    raise AuthError(f"Mastodon {self.host} refused the stream (HTTP {status}: {detail}); the token "
                                    f"sent to {self.host} needs the read:statuses scope: check {ENV_MASTODON_TOKEN} "
                                    f"(or [mastodon.tokens] \"{self.host}\" in the config file)", status=status)
                if status in (404, 410, 501):
                    self.polling_reason = (f"{self.host} has no streaming API here (HTTP {status}): polling its tag "
                                           f"timeline every {p.poll_interval:.0f}s")
                    return "no streaming API"
                if status == 429:
                    backoff.base = max(backoff.base, p.http_backoff_base)
                    return "rate limited (HTTP 429)"
                if status != 200:
                    backoff.base = max(backoff.base, p.http_backoff_base) if status >= 500 else backoff.base
                    return f"the server answered HTTP {status}"
                self.connects += 1
                self.say(f"live (streaming, {urlsplit(url).netloc.rsplit('@', 1)[-1]})")
                # the stream is open: whatever was posted before now comes from the timeline
                for item in self._fill():
                    self.emit(item)
                backoff.reset()
                for sse in EventSource(resp).iter_sse():
                    self.check()
                    self._event(sse.event, sse.data)
                return "the server closed the stream"
        except httpx.TimeoutException as e:
            if self.stopping.is_set():
                raise StreamStopped from e
            return f"nothing received for {p.idle_timeout:.0f}s" if isinstance(e, httpx.ReadTimeout) else "timed out"
        except (httpx.TransportError, httpx.StreamError, SSEError) as e:
            if self.stopping.is_set():
                raise StreamStopped from e
            return describe_transport_error(e)
        except ApiError:
            raise
        finally:
            self._response = None

    def _event(self, name: str, data: str) -> None:
        if name in ("update", "status.update"):
            try:
                status = orjson.loads(data)
            except orjson.JSONDecodeError:
                self.say("an unreadable event was skipped")
                return
            problems: list[str] = []
            ctx = self.client._context_for(self.host)
            try:
                posts = list(normalize_status(status, ctx))
            except Exception as e:
                problems.append(f"{self.host}: could not read a streamed status ({type(e).__name__}: {e})")
                posts = []
            with self.lock:
                nid, nat = newest_of(posts, self.position.get("newest_id"), self.position.get("newest_at"),
                                     sort_key_id)
                self.position.update(newest_id=nid, newest_at=nat)
                if nat:
                    self.position["at"] = nat
            times = []
            for p in posts:
                if p.matched and p.created_at:
                    try:
                        times.append(datetime.fromisoformat(p.created_at.replace("Z", "+00:00")).timestamp())
                    except ValueError:
                        pass
            self.emit(StreamItem(self, posts=posts, state=self.snapshot(), body=[status], url=self.endpoint,
                                 raw_lines=[status], event_times=times, problems=problems))
        elif name == "delete":
            local = data.strip().strip('"')
            if local:
                self.emit(StreamItem(self, deletes=[DeleteRef(instance=self.host, local_id=local)],
                                     state=self.snapshot()))

    def _poll_forever(self) -> None:
        """No stream: the tag timeline every ``poll_interval`` seconds."""
        assert self.polling_reason
        self.say(self.polling_reason)
        while True:
            self.check()
            try:
                for item in self._fill():
                    self.emit(item)
            except AuthError:
                raise
            except CaptureError as e:  # an outage: the next poll fills from the same place
                self.say(f"poll failed ({self.redact(str(e))}); next in {self.policy.poll_interval:.0f}s")
            self.sleep(self.policy.poll_interval)

    def finish(self, engine: StreamEngine) -> Iterator[StreamItem]:
        """What the stream may not have delivered before it was stopped."""
        self.stopping.clear()  # the fill checks it; the thread is gone by now
        try:
            yield from self._fill()
        finally:
            self.stopping.set()

