"""Live capture of a Mastodon hashtag timeline from one or more servers
(sources.md §6), normalized by :func:`chatarchive.sources.mastodon.normalize`.

Per server, the first poll pages *back* through the window with ``max_id``
(``Link: rel="next"``), starting from a synthetic snowflake id when
``--until`` is in the past, and stops at the first page that reaches below
``--since`` (every status's ``created_at`` is checked too: ids are only
roughly time-ordered for late-federated posts).  Later polls page
*forward* with ``min_id = newest id seen`` (``rel="prev"``) until a short
page.  Servers are merged by status ``uri``: the same post seen on two
servers is one row (``posts.id``), with the server it was read from as
``instance`` and its id there as ``local_id``.

Tokens: ``MASTODON_TOKEN`` (or ``[mastodon] token``) is sent to the first
``--instance`` only; other servers get a token only from
``[mastodon.tokens]`` in the config file — a token is never sent to a
server it was not made for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from ..sources import Context
from ..sources.mastodon import FORMAT as MASTODON_FORMAT
from ..sources.mastodon import host_of, normalize
from ..timeutil import iso_from_iso
from .base import (
    CaptureClient,
    Window,
    as_context,
    keep_in_window,
    normalize_safely,
    retrieved_now,
    sort_key_id,
    utc_from_epoch,
)
from .config import ENV_MASTODON_TOKEN, Config
from .http import (
    MASTODON_RATE_LIMITS,
    ApiError,
    AuthError,
    Clock,
    HttpClient,
    Page,
    RetryPolicy,
    body_summary,
    parse_json,
    public_url,
    redact_urls,
)

PAGE_SIZE = 40  # the server's maximum


def instance_url(value: str) -> str:
    v = value.strip().rstrip("/")
    if not v:
        raise ApiError("empty --instance", status=0)
    if "://" not in v:
        v = "https://" + v
    parts = urlsplit(v)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ApiError(f"--instance {redact_urls(value)!r} is not a server URL (e.g. https://mastodon.social)", status=0)
    return f"{parts.scheme}://{parts.netloc}"


def snowflake_upper(dt: datetime) -> str:
    """An id above every status created before ``dt`` (vanilla Mastodon:
    ``ms << 16`` plus 16 random bits)."""
    return str((int(dt.timestamp() * 1000) + 1) << 16)


class MastodonCapture(CaptureClient):
    platform = "mastodon"
    source = "mastodon_api"

    def __init__(
        self,
        query: str,
        *,
        instances: list[str],
        config: Config | None = None,
        clock: Clock | None = None,
        policy: RetryPolicy | None = None,
        timeout: float = 30.0,
        on_wait: Callable[[float, str], None] | None = None,
        known_instances: list[str] | None = None,
        page_size: int = PAGE_SIZE,
    ):
        self.tag = query.strip().lstrip("#")
        if not self.tag or any(c.isspace() for c in self.tag):
            raise ApiError(f"Mastodon capture reads one hashtag's timeline: {query!r} is not a hashtag", status=0)
        if not instances:
            raise ApiError("Mastodon capture needs at least one --instance URL", status=0)
        self.query = query.strip() if query.startswith(("#", "context:")) else f"#{self.tag}"
        urls: list[str] = []
        for u in instances:
            url = instance_url(u)
            if url not in urls:
                urls.append(url)
        # context fetches name servers by host; --instance URLs say which scheme
        self.bases = {host_of(u): u for u in urls + [instance_url(k) for k in known_instances or []]}
        self.urls = urls
        config = config or Config()
        self.tokens: dict[str, str] = {}
        for i, url in enumerate(urls):
            host = host_of(url) or ""
            tok = config.mastodon_tokens.get(host)
            if tok is None and i == 0 and config.mastodon_token:
                tok = config.mastodon_token
            if tok:
                self.tokens[host] = tok.reveal()
        self.clock = clock or Clock()
        self.page_size = page_size
        self.http = HttpClient(MASTODON_RATE_LIMITS, clock=self.clock, policy=policy, timeout=timeout,
                               secrets=config.secrets(), on_wait=on_wait)
        for u in urls:
            self.http.add_url_credentials(u)
        self._ctx: dict[str, Context] = {}

    @property
    def endpoint(self) -> str:
        return " ".join(public_url(f"{u}/api/v1/timelines/tag/{quote(self.tag, safe='')}") for u in sorted(self.urls))

    def _context_for(self, host: str) -> Context:
        # one Context per server across pages: it remembers local id -> uri
        # so replies to statuses on earlier pages link at once
        if host not in self._ctx:
            self._ctx[host] = MASTODON_FORMAT.context(host, instance=host)
        return self._ctx[host]

    def _get(self, base: str, path: str, params: dict[str, str] | None = None) -> tuple[Any, str, int]:
        host = host_of(base) or ""
        headers = {"Authorization": f"Bearer {self.tokens[host]}"} if host in self.tokens else None
        resp = self.http.request("GET", base + path, params=params, headers=headers)
        url = public_url(str(resp.request.url))
        status = resp.status_code
        if status == 200:
            return resp, url, status
        detail = self.http.redact(body_summary(resp))
        if status == 404:
            return resp, url, status
        if status in (401, 403):
            if host in self.tokens:
                hint = (f"the token sent to {host} was refused: check {ENV_MASTODON_TOKEN} "
                        f"(or [mastodon.tokens] \"{host}\" in the config file)")
            else:
                hint = (f"{host} does not show this timeline without a token: set {ENV_MASTODON_TOKEN} "
                        f"(an app token with read:statuses; or [mastodon.tokens] \"{host}\" in the config file)")
            raise AuthError(f"Mastodon {host}: HTTP {status} ({detail}); {hint}", status=status)
        raise ApiError(f"Mastodon {host}: HTTP {status} ({detail}) for {url}", status=status, body=parse_json(resp))

    def _page(self, host: str, body: Any, url: str, window: Window, state: dict, problems: list[str],
              kind: str = "search") -> Page:
        ctx = self._context_for(host)
        posts = normalize_safely(problems, url, normalize, body, ctx) if body else []
        if kind == "search":
            posts = keep_in_window(posts, window)
        else:
            posts = as_context(posts)
        return Page(posts, body, url, state, retrieved_now(self.clock),
                    raw_line=body if body else None, problems=problems, kind=kind, instance=host)

    # -- polling ----------------------------------------------------------

    def poll(self, state: dict, window: Window) -> Iterator[Page]:
        all_states: dict[str, dict] = dict(state.get("instances") or {})
        for base in self.urls:
            host = host_of(base) or base
            st = dict(all_states.get(host) or {})
            steps = self._forward(base, host, st, window) if st.get("backfilled") and st.get("newest_id") \
                else self._backward(base, host, st, window)
            for page, new_st in steps:
                all_states[host] = new_st
                page.state = {"instances": dict(all_states)}
                yield page

    def unfinished(self, state: dict) -> bool:
        return any(st.get("max_id") for st in (state.get("instances") or {}).values() if isinstance(st, dict))

    def _timeline_path(self) -> str:
        return f"/api/v1/timelines/tag/{quote(self.tag, safe='')}"

    def _statuses(self, resp: Any, status: int, url: str, problems: list[str]) -> list:
        if status == 404:
            problems.append(f"#{self.tag} is not known on {host_of(url)} (404)")
            return []
        body = parse_json(resp)
        if not isinstance(body, list):
            raise ApiError(f"Mastodon answered {url} with something that is not a status list", status=status)
        return body

    def _backward(self, base: str, host: str, st: dict, window: Window) -> Iterator[tuple[Page, dict]]:
        newest = st.get("newest_id")
        max_id = st.get("max_id")
        now = utc_from_epoch(self.clock.time())
        if max_id is None and window.until is not None and window.until < now:
            max_id = snowflake_upper(window.until)
        since = window.since_iso
        while True:
            params = {"limit": str(self.page_size)}
            if max_id:
                params["max_id"] = max_id
            resp, url, status = self._get(base, self._timeline_path(), params)
            problems: list[str] = []
            statuses = self._statuses(resp, status, url, problems)
            ids = [str(s["id"]) for s in statuses if isinstance(s, dict) and s.get("id") is not None]
            if ids:
                top = max(ids, key=sort_key_id)
                if newest is None or sort_key_id(top) > sort_key_id(newest):
                    newest = top
            next_max = _link_param(resp, "next", "max_id") or (min(ids, key=sort_key_id) if ids else None)
            oldest = min((s.get("created_at") or "" for s in statuses if isinstance(s, dict)), default="")
            reached_since = bool(since and oldest and _iso(oldest) < since)
            moved = next_max is not None and (max_id is None or sort_key_id(next_max) < sort_key_id(max_id))
            done = not ids or reached_since or not moved
            new_st = {"newest_id": newest, "max_id": None if done else next_max, "backfilled": done}
            yield self._page(host, statuses, url, window, new_st, problems), new_st
            if done:
                return
            max_id = next_max

    def _forward(self, base: str, host: str, st: dict, window: Window) -> Iterator[tuple[Page, dict]]:
        newest = st["newest_id"]
        while True:
            params = {"limit": str(self.page_size), "min_id": newest}
            resp, url, status = self._get(base, self._timeline_path(), params)
            problems: list[str] = []
            statuses = self._statuses(resp, status, url, problems)
            ids = [str(s["id"]) for s in statuses if isinstance(s, dict) and s.get("id") is not None]
            top = max(ids, key=sort_key_id) if ids else None
            advanced = top is not None and sort_key_id(top) > sort_key_id(newest)
            if advanced:
                newest = top
            new_st = {"newest_id": newest, "max_id": None, "backfilled": True}
            yield self._page(host, statuses, url, window, new_st, problems), new_st
            # a short page means nothing newer is left (one request per quiet poll)
            if not advanced or len(ids) < self.page_size:
                return

    # -- context ----------------------------------------------------------

    def _base_for(self, host: str) -> str:
        return self.bases.get(host) or f"https://{host}"

    def context(self, rows: list[dict[str, Any]], missing: Callable[[list[str]], list[str]]) -> Iterator[Page]:
        """``/api/v1/statuses/:id/context`` for each thread top we hold (a post
        whose parent we lack), and for the thread's root when that is
        further up, so untagged replies anywhere in the thread arrive."""
        have = {r["id"] for r in rows}
        done: set[tuple[str, str]] = set()
        for r in rows:
            host, local = r.get("instance"), r.get("local_id")
            if not host or not local:
                continue
            has_parent = r.get("reply_to_id") or r.get("reply_to_local_id")
            if not has_parent and r.get("reply_count") == 0:
                continue  # nobody replied: no thread
            if r.get("reply_to_id") in have:
                continue  # its thread top is fetched instead
            todo = [str(local)]
            while todo:
                lid = todo.pop()
                if (host, lid) in done:
                    continue
                done.add((host, lid))
                resp, url, status = self._get(self._base_for(host), f"/api/v1/statuses/{quote(lid, safe='')}/context")
                problems: list[str] = []
                if status == 404:
                    problems.append(f"{host}: status {lid} is private or gone (404)")
                    yield self._page(host, None, url, Window(), {}, problems, kind="context")
                    continue
                body = parse_json(resp)
                if not isinstance(body, dict):
                    problems.append(f"{url}: not a context response")
                    body = None
                yield self._page(host, body, url, Window(), {}, problems, kind="context")
                ancestors = (body or {}).get("ancestors") or []
                if ancestors and isinstance(ancestors[0], dict) and ancestors[0].get("id") is not None:
                    todo.append(str(ancestors[0]["id"]))  # the root: its descendants are the whole thread


def _iso(value: str) -> str:
    try:
        return iso_from_iso(value)
    except ValueError:
        return value


def _link_param(resp: Any, rel: str, name: str) -> str | None:
    link = resp.links.get(rel) if hasattr(resp, "links") else None
    if not link or not link.get("url"):
        return None
    vals = parse_qs(urlsplit(link["url"]).query).get(name)
    return vals[0] if vals else None
