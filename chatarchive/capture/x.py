"""Live capture from the X API v2: recent or full-archive search
(sources.md §1), normalized by :func:`chatarchive.sources.twarc2.normalize_page`.

Polling follows the documented pattern (§1.6): the first poll pages back
through the window with ``next_token``; every later poll sends
``since_id = meta.newest_id`` *of the first page of the previous poll* and
pages with ``next_token`` while keeping the same ``since_id``.  A poll that
is cut short stores its parameters and ``next_token`` (tokens do not
expire), so the next run finishes it before moving ``since_id``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

from .. import __version__
from ..sources.twarc2 import FORMAT as TWARC2_FORMAT
from ..sources.twarc2 import normalize_page
from .base import (
    CaptureClient,
    MissingCredentials,
    Window,
    as_context,
    iso_seconds,
    keep_in_window,
    normalize_safely,
    retrieved_now,
    utc_from_epoch,
)
from .config import ENV_X_TOKEN
from .http import (
    X_RATE_LIMITS,
    ApiError,
    AuthError,
    Clock,
    HttpClient,
    Page,
    RetryPolicy,
    body_summary,
    parse_json,
    public_url,
)

X_API_BASE = "https://api.x.com"

# sources.md §1.4 (what twarc requests by default)
TWEET_FIELDS = (
    "attachments,author_id,conversation_id,created_at,entities,id,in_reply_to_user_id,lang,"
    "public_metrics,referenced_tweets,text,possibly_sensitive,reply_settings,edit_history_tweet_ids,note_tweet"
)
EXPANSIONS = (
    "author_id,in_reply_to_user_id,referenced_tweets.id,referenced_tweets.id.author_id,"
    "entities.mentions.username,attachments.media_keys"
)
USER_FIELDS = "id,name,username,profile_image_url,created_at,public_metrics,verified"
MEDIA_FIELDS = "media_key,type,url,preview_image_url,alt_text,variants,width,height"

RECENT_DAYS = 7
MAX_QUERY = {"recent": 512, "all": 1024}
PAGE_SIZE = {"recent": 100, "all": 500}
LOOKUP_BATCH = 100  # GET /2/tweets?ids=
END_TIME_MIN_AGE = 10  # end_time must be at least 10 s before the request


TWEPOCH_MS = 1288834974657  # X snowflake ids: (ms since this epoch) << 22 | worker | sequence


def snowflake_below(dt: datetime) -> str:
    """The largest id below every post created at or after ``dt``."""
    return str(max(0, ((int(dt.timestamp() * 1000) - TWEPOCH_MS) << 22) - 1))


class XCapture(CaptureClient):
    platform = "x"
    source = "x_api"

    def __init__(
        self,
        query: str,
        *,
        token: str | None,
        api_base: str | None = None,
        archive: bool = False,
        clock: Clock | None = None,
        policy: RetryPolicy | None = None,
        timeout: float = 30.0,
        on_wait: Callable[[float, str], None] | None = None,
        fields_param: str = "tweet.fields",
        page_size: int | None = None,
    ):
        if not token:
            raise MissingCredentials(
                f"X capture needs an app bearer token: set {ENV_X_TOKEN} "
                "(or bearer_token under [x] in the config file)"
            )
        self.query = query.strip()
        self.kind = "all" if archive else "recent"
        if not self.query:
            raise ApiError("X search query is empty", status=0)
        if len(self.query) > MAX_QUERY[self.kind]:
            raise ApiError(
                f"X {self.kind} search queries are limited to {MAX_QUERY[self.kind]} characters "
                f"(this one has {len(self.query)})",
                status=0,
            )
        self.api_base = (api_base or X_API_BASE).rstrip("/")
        self.clock = clock or Clock()
        self._token = token
        self.fields_param = fields_param
        self.page_size = page_size or PAGE_SIZE[self.kind]
        search_url = f"{self.api_base}/2/tweets/search/{self.kind}"
        self.http = HttpClient(
            X_RATE_LIMITS,
            clock=self.clock,
            policy=policy,
            timeout=timeout,
            secrets=[token],
            on_wait=on_wait,
            # full-archive search also allows only 1 request per second
            min_interval={X_RATE_LIMITS.bucket(search_url): 1.0} if archive else None,
        )
        self.search_url = search_url
        self.http.add_url_credentials(self.api_base)

    @property
    def endpoint(self) -> str:
        return public_url(self.search_url)

    # -- requests ---------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"}

    def _fields(self) -> dict[str, str]:
        return {
            self.fields_param: TWEET_FIELDS,
            "expansions": EXPANSIONS,
            "user.fields": USER_FIELDS,
            "media.fields": MEDIA_FIELDS,
        }

    def _get(self, url: str, params: dict[str, str]) -> tuple[dict, str]:
        resp = self.http.request("GET", url, params=params, headers=self._headers())
        shown = public_url(str(resp.request.url))
        if resp.status_code == 200:
            body = parse_json(resp)
            if not isinstance(body, dict):
                raise ApiError(f"X answered {shown} with something that is not JSON", status=200)
            return body, shown
        self._raise(resp)
        raise AssertionError("unreachable")

    def _raise(self, resp: Any) -> None:
        detail = self.http.redact(body_summary(resp))
        status = resp.status_code
        if status == 401:
            raise AuthError(
                f"X rejected the bearer token (HTTP 401: {detail}): set {ENV_X_TOKEN} to a valid "
                "app bearer token (or bearer_token under [x] in the config file)",
                status=status,
            )
        if status == 403:
            extra = (
                " Full-archive search (--archive) needs pay-per-use or Enterprise access."
                if self.kind == "all" else ""
            )
            raise AuthError(
                f"X refused access (HTTP 403: {detail}).{extra} Check that {ENV_X_TOKEN} "
                "belongs to an app with search access.",
                status=status,
            )
        data = parse_json(resp)
        err = None
        if isinstance(data, dict):
            err = str(data.get("type") or "").rsplit("/", 1)[-1] or None
        raise ApiError(f"X rejected the request (HTTP {status}: {detail})", status=status, error=err, body=data)

    # -- polling ----------------------------------------------------------

    def initial_params(self, state: dict, window: Window) -> dict[str, str]:
        params = {"query": self.query, "max_results": str(self.page_size), **self._fields()}
        now = utc_from_epoch(self.clock.time())
        since_id = state.get("since_id")
        if since_id:
            params["since_id"] = since_id
        elif window.since is not None and window.since > now - timedelta(seconds=END_TIME_MIN_AGE):
            # a window that starts now or later (--duration from now): X
            # refuses a start_time that is not in the past, but an id is a
            # snowflake of its time, so "ids above the window start" says it
            params["since_id"] = snowflake_below(window.since)
        elif window.since is not None:
            if self.kind == "recent" and window.since < now - timedelta(days=RECENT_DAYS):
                raise ApiError(
                    f"X recent search reaches back {RECENT_DAYS} days only (--since {window.since_iso}); "
                    "use --archive for full-archive search",
                    status=0,
                )
            params["start_time"] = iso_seconds(window.since)
        if window.until is not None and window.until <= now - timedelta(seconds=END_TIME_MIN_AGE):
            end = window.until
            if end.microsecond:  # exclusive bound at second granularity: round up
                end = end.replace(microsecond=0) + timedelta(seconds=1)
            params["end_time"] = iso_seconds(end)
        return params

    def poll(self, state: dict, window: Window) -> Iterator[Page]:
        since_id = state.get("since_id")
        pending = state.get("poll")
        if pending:
            params = dict(pending["params"])
            next_token = pending.get("next_token")
            newest = pending.get("newest_id")
        else:
            params = self.initial_params(state, window)
            next_token = None
            newest = None
        seen_tokens: set[str] = set()
        while True:
            req = dict(params)
            if next_token:
                req["next_token"] = next_token
            body, url = self._get(self.search_url, req)
            meta = body.get("meta") or {}
            if newest is None:
                newest = meta.get("newest_id")  # only the first page's counts (§1.6)
            token = meta.get("next_token")
            if token and token in seen_tokens:
                token = None  # a server repeating itself must not loop us forever
            problems = _errors_of(body)
            ctx = TWARC2_FORMAT.context(url)
            posts = normalize_safely(problems, url, normalize_page, body, ctx, source=self.source)
            posts = keep_in_window(posts, window)
            if token:
                seen_tokens.add(token)
                new_state = {"since_id": since_id, "poll": {"params": params, "next_token": token, "newest_id": newest}}
            else:
                new_state = {"since_id": newest or since_id, "poll": None}
            yield Page(
                posts=posts,
                body=body,
                url=url,
                state=new_state,
                retrieved_at=retrieved_now(self.clock),
                raw_line=self.twarc_line(body, url) if "data" in body else None,
                problems=problems,
            )
            if not token:
                return
            next_token = token

    def twarc_line(self, body: dict, url: str) -> dict:
        """The page as twarc2 writes it: the response plus ``__twarc``."""
        line = dict(body)
        line["__twarc"] = {
            "url": url,
            "version": f"chatarchive-{__version__}",
            "retrieved_at": utc_from_epoch(self.clock.time()).replace(microsecond=0).isoformat(),
        }
        return line

    # -- context ----------------------------------------------------------

    def context(self, rows: list[dict[str, Any]], missing: Callable[[list[str]], list[str]]) -> Iterator[Page]:
        """Whole conversations (``conversation_id:`` search, several per
        query) and then any reply parent still missing (``GET /2/tweets``)."""
        now = utc_from_epoch(self.clock.time())
        oldest_ok = (now - timedelta(days=RECENT_DAYS) + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S")
        conversations: list[str] = []
        too_old = 0
        for r in rows:
            conv = r.get("root_id") or r.get("id")
            if not r.get("reply_to_id") and r.get("reply_count") == 0:
                continue  # a post nobody replied to has no thread to fetch
            if self.kind == "recent" and (r.get("created_at") or "") < oldest_ok:
                too_old += 1
                continue
            if conv and conv.isdigit() and conv not in conversations:
                conversations.append(conv)
        notes = (
            [f"{too_old} thread(s) older than {RECENT_DAYS} days skipped: use --archive for full-archive search"]
            if too_old else []
        )
        for query in _or_queries("conversation_id:", conversations, MAX_QUERY[self.kind]):
            params = {"query": query, "max_results": str(self.page_size), **self._fields()}
            next_token = None
            while True:
                req = dict(params)
                if next_token:
                    req["next_token"] = next_token
                body, url = self._get(self.search_url, req)
                problems = notes + _errors_of(body)
                notes = []
                ctx = TWARC2_FORMAT.context(url)
                posts = normalize_safely(problems, url, normalize_page, body, ctx, source=self.source)
                yield Page(as_context(posts), body, url, {}, retrieved_now(self.clock), problems=problems, kind="context")
                next_token = (body.get("meta") or {}).get("next_token")
                if not next_token:
                    break
        # parents outside every conversation we could search
        parents = sorted({r["reply_to_id"] for r in rows if r.get("reply_to_id")})
        for batch_start in range(0, len(parents), LOOKUP_BATCH):
            ids = missing(parents[batch_start : batch_start + LOOKUP_BATCH])
            if not ids:
                continue
            params = {"ids": ",".join(ids), **self._fields()}
            body, url = self._get(f"{self.api_base}/2/tweets", params)
            problems = notes + _errors_of(body)
            notes = []
            ctx = TWARC2_FORMAT.context(url)
            posts = normalize_safely(problems, url, normalize_page, body, ctx, source=self.source)
            yield Page(as_context(posts), body, url, {}, retrieved_now(self.clock), problems=problems, kind="context")
        if notes:
            yield Page([], None, "", {}, retrieved_now(self.clock), problems=notes, kind="context")


def _errors_of(body: dict) -> list[str]:
    """Partial errors next to data in a 200 (deleted or protected posts)."""
    out = []
    for e in body.get("errors") or []:
        if isinstance(e, dict):
            out.append(f"X: {e.get('title') or 'error'}: {e.get('detail') or e.get('message') or ''}".strip())
    return out


def _or_queries(prefix: str, values: list[str], limit: int) -> Iterator[str]:
    """Pack ``prefix:value`` terms into as few OR queries as fit the limit."""
    current = ""
    for v in values:
        term = f"{prefix}{v}"
        candidate = f"{current} OR {term}" if current else term
        if len(candidate) > limit and current:
            yield current
            current = term
        else:
            current = candidate
    if current:
        yield current
