"""``chatarchive check-deleted``: ask each platform which archived posts still exist.

* X: ``GET /2/tweets?ids=`` with up to 100 ids a request (the app bearer
  token); an ``errors[]`` entry titled ``Not Found Error`` means the post is
  gone.  Other errors (a protected or suspended author) say nothing about
  the post: it stays.
* Mastodon: ``GET /api/v1/statuses/:id`` on the server the post was seen on
  (``posts.instance`` and its id there, ``posts.local_id``; else the host
  and id of the post's URL); a 404 means gone.  No token is needed for
  public posts; per-server tokens come from the config file.
* Bluesky: ``app.bsky.feed.getPosts`` with up to 25 uris a request on the
  public AppView (no login); a uri missing from the answer is gone.

Every request goes through the one capture HTTP client (rate limits, 429s,
retries, redaction).  Nothing is written until every platform has answered:
then the gone posts become tombstones through ``archive/deletion.py`` (their
content removed for good, as for stream deletes and ``forget``), so they
leave every published output.  A dry run only reports.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

import sqlite_utils

from ..archive import deletion
from ..archive.queries import resolve_session
from ..archive.writer import transaction
from ..sources.mastodon import host_of
from .bluesky import service_url
from .config import ENV_MASTODON_TOKEN, ENV_X_TOKEN, Config
from .http import (
    BLUESKY_RATE_LIMITS,
    MASTODON_RATE_LIMITS,
    X_RATE_LIMITS,
    ApiError,
    AuthError,
    Clock,
    HttpClient,
    NetworkError,
    RetryPolicy,
    body_summary,
    parse_json,
    public_url,
)
from .mastodon import instance_url
from .profiles import DEFAULT_APPVIEW
from .x import LOOKUP_BATCH as X_BATCH
from .x import X_API_BASE

BLUESKY_BATCH = 25  # app.bsky.feed.getPosts: the lexicon's maximum
PLATFORMS = ("x", "mastodon", "bluesky")
# a Mastodon post URL ends in its id on its home server: https://host/@user/123
_MASTODON_URL_ID = re.compile(r"/@[^/]+/(\d+)/?$")


class CheckProgress(Protocol):
    """What ``check_deleted`` reports while it runs (the CLI draws a bar)."""

    def start(self, platform: str, total: int) -> None: ...

    def advance(self, platform: str, checked: int) -> None: ...

    def note(self, message: str) -> None: ...


class NoProgress:
    def start(self, platform: str, total: int) -> None:
        pass

    def advance(self, platform: str, checked: int) -> None:
        pass

    def note(self, message: str) -> None:
        pass


@dataclass
class CheckOptions:
    sessions: tuple[str, ...] = ()  # ids or slugs; none: the whole archive
    dry_run: bool = False
    api_base: str | None = None  # X API host
    appview: str | None = None  # Bluesky AppView
    instances: tuple[str, ...] = ()  # Mastodon server URLs, when not https://HOST
    timeout: float = 30.0
    policy: RetryPolicy | None = None


@dataclass
class PlatformCheck:
    """One platform's answer: how many posts were asked about and what came back."""

    platform: str
    checked: int = 0
    present: int = 0
    gone: list[str] = field(default_factory=list)
    unknown: int = 0  # asked, but the answer says nothing about the post (or no way to ask)
    skipped: str | None = None  # why the platform was not asked at all
    requests: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"platform": self.platform, "checked": self.checked, "present": self.present,
                "gone": len(self.gone), "gone_ids": self.gone, "unknown": self.unknown,
                "skipped": self.skipped, "requests": self.requests}


@dataclass
class DeletedCheck:
    platforms: list[PlatformCheck]
    dry_run: bool
    marked: int = 0  # posts turned into tombstones by this run (0 on a dry run)

    @property
    def gone(self) -> list[str]:
        return [i for p in self.platforms for i in p.gone]

    def as_dict(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "gone": len(self.gone), "marked": self.marked,
                "platforms": [p.as_dict() for p in self.platforms]}


@dataclass
class _Post:
    id: str
    platform: str
    instance: str | None
    local_id: str | None
    url: str | None


def _candidates(db: sqlite_utils.Database, sessions: Iterable[str]) -> list[_Post]:
    """The posts to ask about: not tombstones already, in SESSIONs when given."""
    ids = [resolve_session(db, s) for s in sessions]  # a mistyped session: an error, before any request
    sql = "SELECT id, platform, instance, local_id, url FROM posts p WHERE deleted_at IS NULL"
    if ids:
        sql += (f" AND EXISTS (SELECT 1 FROM session_posts sp WHERE sp.post_id = p.id "
                f"AND sp.session_id IN ({', '.join('?' * len(ids))}))")
    return [_Post(*r) for r in db.conn.execute(sql + " ORDER BY platform, id", ids)]


def _batches(values: list[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(values), size):
        yield values[i : i + size]


def _fail(platform: str, http: HttpClient, resp: Any, what: str) -> None:
    detail = http.redact(body_summary(resp))
    status = resp.status_code
    error = AuthError if status in (401, 403) else ApiError
    raise error(f"{platform}: HTTP {status} ({detail}) {what}", status=status)


# --------------------------------------------------------------------------
# X


def _check_x(posts: list[_Post], config: Config, opts: CheckOptions, clock: Clock,
             progress: CheckProgress) -> PlatformCheck:
    out = PlatformCheck("x")
    token = config.x_bearer_token.reveal() if config.x_bearer_token else None
    if not token:
        out.skipped = (f"{len(posts)} X post(s) not checked: set {ENV_X_TOKEN} "
                       "(or bearer_token under [x] in the config file)")
        return out
    base = service_url(opts.api_base).rstrip("/") if opts.api_base else X_API_BASE
    ids = [p.id for p in posts if p.id.isdigit()]
    out.checked = len(posts)
    out.unknown = len(posts) - len(ids)  # an id that is not a tweet id cannot be asked about
    progress.start("x", len(posts))
    progress.advance("x", out.unknown)
    with HttpClient(X_RATE_LIMITS, clock=clock, policy=opts.policy, timeout=opts.timeout, secrets=[token],
                    on_wait=lambda s, why: progress.note(f"X: {why}, waiting {s:.0f}s")) as http:
        http.add_url_credentials(opts.api_base)
        for batch in _batches(ids, X_BATCH):
            resp = http.request("GET", f"{base}/2/tweets", params={"ids": ",".join(batch), "tweet.fields": "id"},
                                headers={"Authorization": f"Bearer {token}"})
            if resp.status_code != 200:
                hint = f"(check {ENV_X_TOKEN})" if resp.status_code in (401, 403) else f"from {public_url(base)}"
                _fail("X", http, resp, hint)
            body = parse_json(resp)
            if not isinstance(body, dict):
                raise ApiError(f"X answered {public_url(base)}/2/tweets with something that is not JSON", status=200)
            present = {str(t.get("id")) for t in body.get("data") or [] if isinstance(t, dict)}
            not_found = {str(e.get("resource_id") or e.get("value")) for e in body.get("errors") or []
                         if isinstance(e, dict) and e.get("title") == "Not Found Error"}
            for i in batch:
                if i in present:
                    out.present += 1
                elif i in not_found:
                    out.gone.append(i)
                else:
                    out.unknown += 1
            progress.advance("x", len(batch))
        out.requests = http.requests
    return out


# --------------------------------------------------------------------------
# Mastodon


def _mastodon_address(p: _Post) -> tuple[str, str] | None:
    """(server host, the post's id there), or None when the archive has no way to ask."""
    if p.instance and p.local_id and p.local_id.isdigit():
        return p.instance.lower(), p.local_id
    if p.url:
        m = _MASTODON_URL_ID.search(urlsplit(p.url).path)
        host = host_of(p.url)
        if m and host:
            return host, m.group(1)
    return None


def _check_mastodon(posts: list[_Post], config: Config, opts: CheckOptions, clock: Clock,
                    progress: CheckProgress) -> PlatformCheck:
    out = PlatformCheck("mastodon")
    bases: dict[str, str] = {}
    tokens: dict[str, str] = {}
    for i, u in enumerate(opts.instances):
        url = instance_url(u)
        host = host_of(url) or ""
        bases.setdefault(host, url)
        if i == 0 and config.mastodon_token:  # as capture: MASTODON_TOKEN goes to the first --instance only
            tokens[host] = config.mastodon_token.reveal()
    for host, tok in config.mastodon_tokens.items():
        tokens[host] = tok.reveal()
    progress.start("mastodon", len(posts))
    unreachable: set[str] = set()
    with HttpClient(MASTODON_RATE_LIMITS, clock=clock, policy=opts.policy, timeout=opts.timeout,
                    secrets=config.secrets(),
                    on_wait=lambda s, why: progress.note(f"Mastodon: {why}, waiting {s:.0f}s")) as http:
        for u in opts.instances:
            http.add_url_credentials(u)
        out.checked = len(posts)
        for p in posts:
            address = _mastodon_address(p)
            if address is None or address[0] in unreachable:
                out.unknown += 1
                progress.advance("mastodon", 1)
                continue
            host, local = address
            base = bases.get(host) or f"https://{host}"
            headers = {"Authorization": f"Bearer {tokens[host]}"} if host in tokens else None
            try:
                resp = http.request("GET", f"{base}/api/v1/statuses/{quote(local, safe='')}", headers=headers)
            except NetworkError as e:
                # a server that is down says nothing about its posts: they stay
                unreachable.add(host)
                out.unknown += 1
                progress.note(f"Mastodon: {e}; its posts are not checked")
            else:
                if resp.status_code == 200:
                    out.present += 1
                elif resp.status_code in (404, 410):
                    out.gone.append(p.id)
                elif resp.status_code in (401, 403):
                    if host in tokens:
                        _fail(f"Mastodon {host}", http, resp,
                              f"(the token sent to {host} was refused: check {ENV_MASTODON_TOKEN} "
                              f"or [mastodon.tokens] \"{host}\" in the config file)")
                    out.unknown += 1  # a server that shows statuses to logged-in users only
                else:
                    out.unknown += 1
            progress.advance("mastodon", 1)
        out.requests = http.requests
    return out


# --------------------------------------------------------------------------
# Bluesky


def _check_bluesky(posts: list[_Post], config: Config, opts: CheckOptions, clock: Clock,
                   progress: CheckProgress) -> PlatformCheck:
    out = PlatformCheck("bluesky")
    base = service_url(opts.appview or DEFAULT_APPVIEW).rstrip("/")
    uris = [p.id for p in posts if p.id.startswith("at://")]
    out.checked = len(posts)
    out.unknown = len(posts) - len(uris)
    progress.start("bluesky", len(posts))
    progress.advance("bluesky", out.unknown)
    with HttpClient(BLUESKY_RATE_LIMITS, clock=clock, policy=opts.policy, timeout=opts.timeout,
                    on_wait=lambda s, why: progress.note(f"Bluesky: {why}, waiting {s:.0f}s")) as http:
        http.add_url_credentials(opts.appview)
        for batch in _batches(uris, BLUESKY_BATCH):
            resp = http.request("GET", f"{base}/xrpc/app.bsky.feed.getPosts", params=[("uris", u) for u in batch])
            if resp.status_code != 200:
                _fail("Bluesky", http, resp, f"from {public_url(base)}")
            body = parse_json(resp)
            if not isinstance(body, dict) or not isinstance(body.get("posts"), list):
                raise ApiError(f"Bluesky: {public_url(base)} answered getPosts without a list of posts", status=200)
            present = {v.get("uri") for v in body["posts"] if isinstance(v, dict)}
            for u in batch:
                if u in present:
                    out.present += 1
                else:
                    out.gone.append(u)
            progress.advance("bluesky", len(batch))
        out.requests = http.requests
    return out


_CHECKERS = {"x": _check_x, "mastodon": _check_mastodon, "bluesky": _check_bluesky}


def check_deleted(db: sqlite_utils.Database, opts: CheckOptions, config: Config, *,
                  clock: Clock | None = None, progress: CheckProgress | None = None) -> DeletedCheck:
    """Ask each platform about the archive's posts (see the module
    docstring); unless ``opts.dry_run``, turn the gone ones into tombstones
    in one transaction.  An error (a refused token, a server that keeps
    failing) raises before anything is written."""
    clock = clock or Clock()
    progress = progress or NoProgress()
    by_platform: dict[str, list[_Post]] = {}
    for p in _candidates(db, opts.sessions):
        by_platform.setdefault(p.platform, []).append(p)
    results = []
    for platform in PLATFORMS:
        posts = by_platform.get(platform)
        if not posts:
            continue
        got = _CHECKERS[platform](posts, config, opts, clock, progress)
        if got.skipped:
            progress.note(got.skipped)
        results.append(got)
    check = DeletedCheck(results, opts.dry_run)
    if check.gone and not opts.dry_run:
        with transaction(db):
            check.marked = deletion.delete_posts(db, check.gone, purge=False)
        deletion.purge(db)  # no byte of their content left in the file
    return check
