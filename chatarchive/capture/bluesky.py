"""Live capture from Bluesky: ``app.bsky.feed.searchPosts`` with ``tag``,
``since``, ``until`` and cursor paging (sources.md §7), normalized by
:func:`chatarchive.sources.bluesky.normalize`.

Login: an app password (``BLUESKY_HANDLE`` / ``BLUESKY_APP_PASSWORD``)
through ``com.atproto.server.createSession`` on the service (default
``https://bsky.social``; ``--service``/``--api-base`` for any PDS or a
local server).  The session is cached outside the archive (see
:class:`chatarchive.capture.config.SessionStore`) and reused; on HTTP 400
``ExpiredToken``/``InvalidToken`` it is refreshed with
``refreshSession``, and only when that fails is a new session created —
createSession is limited to 30 per 5 minutes per account.

Polling: each poll asks for posts whose sort time is at or after the
newest sort time seen minus a minute (``since`` is inclusive and compares
the server's sortAt, the earlier of createdAt and indexedAt), pages with
``cursor`` until the cursor is gone, repeats or a page is empty.  The
overlap catches posts indexed late; it costs no requests in practice (a
minute of a chat fits in one page) and re-seen posts are merged, not duplicated.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from ..sources.bluesky import FORMAT as BLUESKY_FORMAT
from ..sources.bluesky import normalize
from ..timeutil import iso_utc
from .base import (
    CaptureClient,
    MissingCredentials,
    Window,
    as_context,
    keep_in_window,
    normalize_safely,
    parse_time_or_none,
    retrieved_now,
    utc_from_epoch,
)
from .config import ENV_BLUESKY_HANDLE, ENV_BLUESKY_PASSWORD, Config, SessionStore
from .http import (
    BLUESKY_RATE_LIMITS,
    ApiError,
    AuthError,
    Clock,
    HttpClient,
    Page,
    RetryPolicy,
    body_summary,
    host_of_url,
    parse_json,
    public_url,
    redact_urls,
)

DEFAULT_SERVICE = "https://bsky.social"
PAGE_SIZE = 100
OVERLAP = timedelta(seconds=60)  # re-read this much before the newest post seen
SEARCH = "/xrpc/app.bsky.feed.searchPosts"
THREAD = "/xrpc/app.bsky.feed.getPostThread"
LOGIN_HINT = (
    f"set {ENV_BLUESKY_HANDLE} and {ENV_BLUESKY_PASSWORD} (an app password from Settings → "
    "Privacy and security → App passwords), or handle/app_password under [bluesky] in the config file"
)


def service_url(value: str) -> str:
    v = value.strip().rstrip("/")
    if "://" not in v:
        v = "https://" + v
    parts = urlsplit(v)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ApiError(f"--service {redact_urls(value)!r} is not a server URL (e.g. https://bsky.social)", status=0)
    return f"{parts.scheme}://{parts.netloc}"


def sort_at(view: dict) -> datetime | None:
    """The server's sort time for a post: the earlier of createdAt and indexedAt."""
    record = view.get("record")
    if not isinstance(record, dict):
        record = {}
    times = [t for t in (parse_time_or_none(record.get("createdAt")), parse_time_or_none(view.get("indexedAt"))) if t]
    return min(times) if times else None


class BlueskyCapture(CaptureClient):
    platform = "bluesky"
    source = "bluesky_api"

    def __init__(
        self,
        query: str,
        *,
        config: Config | None = None,
        service: str | None = None,
        clock: Clock | None = None,
        policy: RetryPolicy | None = None,
        timeout: float = 30.0,
        on_wait: Callable[[float, str], None] | None = None,
        sessions: SessionStore | None = None,
        page_size: int = PAGE_SIZE,
    ):
        config = config or Config()
        self.query = query.strip()
        if not self.query:
            raise ApiError("Bluesky search query is empty", status=0)
        self.tags = [w[1:] for w in self.query.split() if w.startswith("#") and len(w) > 1]
        self.service = service_url(service or config.bluesky_service or DEFAULT_SERVICE)
        self.handle = config.bluesky_handle
        self._password = config.bluesky_app_password.reveal() if config.bluesky_app_password else None
        if not self.handle or not self._password:
            # searchPosts has needed a login since 2025: say so before any request
            raise MissingCredentials(
                f"Bluesky search needs a login: {LOGIN_HINT}. To follow a chat live without one, "
                "add --stream (Bluesky's Jetstream needs no login)")
        self.sessions = sessions or SessionStore(None)
        self.clock = clock or Clock()
        self.page_size = page_size
        self.http = HttpClient(BLUESKY_RATE_LIMITS, clock=self.clock, policy=policy, timeout=timeout,
                               secrets=config.secrets(), on_wait=on_wait)
        self.http.add_url_credentials(self.service)
        self._ctx = BLUESKY_FORMAT.context(self.service)  # one across pages: it learns handles
        self._session_key = SessionStore.key(public_url(self.service), self.handle or "")
        self.logins = 0  # createSession calls this run
        self.refreshes = 0

    @property
    def endpoint(self) -> str:
        return public_url(self.service + SEARCH)

    # -- session ----------------------------------------------------------

    def _remember(self, session: dict) -> dict:
        for k in ("accessJwt", "refreshJwt"):
            self.http.add_secret(session.get(k))
        return session

    def _session(self, fresh: bool = False) -> dict | None:
        if not self.handle or not self._password:
            return None
        if not fresh:
            cached = self.sessions.get(self._session_key)
            if cached and cached.get("accessJwt"):
                return self._remember(cached)
        self.logins += 1
        resp = self.http.request(
            "POST", self.service + "/xrpc/com.atproto.server.createSession",
            json={"identifier": self.handle, "password": self._password},
        )
        if resp.status_code == 200:
            body = parse_json(resp) or {}
            session = {k: body.get(k) for k in ("accessJwt", "refreshJwt", "did", "handle")}
            if not session["accessJwt"]:
                raise ApiError("Bluesky createSession answered without an access token", status=200)
            self.sessions.put(self._session_key, session)
            return self._remember(session)
        detail = self.http.redact(body_summary(resp))
        if resp.status_code in (400, 401, 403):
            raise AuthError(
                f"Bluesky refused the login for {self.handle} at {self.service} (HTTP {resp.status_code}: {detail}); "
                f"check {ENV_BLUESKY_HANDLE} and {ENV_BLUESKY_PASSWORD}",
                status=resp.status_code,
            )
        raise ApiError(f"Bluesky createSession failed (HTTP {resp.status_code}: {detail})", status=resp.status_code)

    def _refresh(self, session: dict) -> dict | None:
        refresh = session.get("refreshJwt")
        if refresh:
            self.refreshes += 1
            resp = self.http.request(
                "POST", self.service + "/xrpc/com.atproto.server.refreshSession",
                headers={"Authorization": f"Bearer {refresh}"},
            )
            if resp.status_code == 200:
                body = parse_json(resp) or {}
                new = {**session, **{k: body.get(k) for k in ("accessJwt", "refreshJwt", "did", "handle") if body.get(k)}}
                self.sessions.put(self._session_key, new)
                return self._remember(new)
        self.sessions.put(self._session_key, None)
        return self._session(fresh=True)  # the refresh token has expired too

    def _call(self, path: str, params: dict[str, Any]) -> Any:
        session = self._session()
        relogged = False
        refreshed = False
        while True:
            headers = {"Authorization": f"Bearer {session['accessJwt']}"} if session else None
            resp = self.http.request("GET", self.service + path, params=params, headers=headers)
            status = resp.status_code
            error = (parse_json(resp) or {}).get("error") if status in (400, 401) else None
            if session and status == 400 and error in ("ExpiredToken", "InvalidToken") and not refreshed:
                refreshed = True
                session = self._refresh(session)
                continue
            if session and status == 401 and not relogged:
                relogged = True  # a cached session the server no longer knows
                self.sessions.put(self._session_key, None)
                session = self._session(fresh=True)
                continue
            if status in (401, 403):
                detail = self.http.redact(body_summary(resp))
                if session:
                    raise AuthError(
                        f"Bluesky {host_of_url(self.service)} refused {path.rsplit('/', 1)[-1]} for "
                        f"{self.handle} (HTTP {status}: {detail}); check {ENV_BLUESKY_HANDLE} and "
                        f"{ENV_BLUESKY_PASSWORD}", status=status)
                raise AuthError(
                    f"Bluesky {host_of_url(self.service)} needs a login for {path.rsplit('/', 1)[-1]} "
                    f"(HTTP {status}: {detail}): {LOGIN_HINT}", status=status)
            return resp

    # -- polling ----------------------------------------------------------

    def initial_params(self, state: dict, window: Window) -> dict[str, Any]:
        params: dict[str, Any] = {"q": self.query, "sort": "latest", "limit": str(self.page_size)}
        if self.tags:
            params["tag"] = list(self.tags)
        lower = window.since
        seen = parse_time_or_none(state.get("since"))
        if seen is not None:
            candidate = seen - OVERLAP
            lower = candidate if lower is None or candidate > lower else lower
        if lower is not None:
            params["since"] = iso_utc(lower)
        now = utc_from_epoch(self.clock.time())
        if window.until is not None and window.until <= now:
            params["until"] = window.until_iso
        return params

    def poll(self, state: dict, window: Window) -> Iterator[Page]:
        seen_since = state.get("since")
        pending = state.get("poll")
        if pending:
            params, cursor, hwm = dict(pending["params"]), pending.get("cursor"), pending.get("hwm")
        else:
            params, cursor, hwm = self.initial_params(state, window), None, None
        cursors: set[str] = set()
        while True:
            req = dict(params)
            if cursor:
                req["cursor"] = cursor
            resp = self._call(SEARCH, req)
            url = public_url(str(resp.request.url))
            if resp.status_code != 200:
                detail = self.http.redact(body_summary(resp))
                raise ApiError(f"Bluesky search failed (HTTP {resp.status_code}: {detail})", status=resp.status_code,
                               body=parse_json(resp))
            body = parse_json(resp)
            if not isinstance(body, dict) or not isinstance(body.get("posts"), list):
                raise ApiError(f"Bluesky answered {url} with something that is not a searchPosts result", status=200)
            views = [v for v in body["posts"] if isinstance(v, dict)]
            for v in views:
                t = sort_at(v)
                if t is not None and (hwm is None or iso_utc(t) > hwm):
                    hwm = iso_utc(t)
            nxt = body.get("cursor")
            done = not nxt or not views or nxt == cursor or nxt in cursors
            if done or not isinstance(nxt, str):
                done = True
                newest = max([x for x in (hwm, seen_since) if x], default=None)
                new_state = {"since": newest, "poll": None}
            else:
                cursors.add(nxt)
                new_state = {"since": seen_since, "poll": {"params": params, "cursor": nxt, "hwm": hwm}}
            problems: list[str] = []
            posts = normalize_safely(problems, url, normalize, body, self._ctx) if views else []
            yield Page(keep_in_window(posts, window), body, url, new_state, retrieved_now(self.clock),
                       raw_line=body if views else None, problems=problems)
            if done:
                return
            cursor = nxt

    # -- context ----------------------------------------------------------

    def context(self, rows: list[dict[str, Any]], missing: Callable[[list[str]], list[str]]) -> Iterator[Page]:
        """``getPostThread`` once per thread root (the whole tree below it),
        falling back to the post itself when the root is gone."""
        roots: dict[str, str] = {}
        for r in rows:
            if not r.get("reply_to_id") and r.get("reply_count") == 0:
                continue
            roots.setdefault(r.get("root_id") or r["id"], r["id"])
        for root, anchor in roots.items():
            for uri in dict.fromkeys([root, anchor]):
                resp = self._call(THREAD, {"uri": uri, "depth": "100", "parentHeight": "80"})
                url = public_url(str(resp.request.url))
                body = parse_json(resp)
                if resp.status_code == 200 and isinstance(body, dict) and "thread" in body:
                    problems: list[str] = []
                    posts = normalize_safely(problems, url, normalize, body, self._ctx)
                    yield Page(as_context(posts), body, url, {}, retrieved_now(self.clock),
                               problems=problems, kind="context")
                    break
                detail = self.http.redact(body_summary(resp))
                yield Page([], None, url, {}, retrieved_now(self.clock),
                           problems=[f"thread {uri}: HTTP {resp.status_code} ({detail})"], kind="context")
