"""The one HTTP client every live capture uses.

It owns everything that is the same for X, Mastodon and Bluesky and that is
easy to get wrong: timeouts (a stalled server is a timeout, not a hang),
retries with exponential backoff on 5xx, timeouts and dropped connections,
waiting out 429s by the platform's own rate-limit headers, slowing down
*before* a limit is hit, and giving up after a bounded number of attempts —
never looping forever.

Time goes through a :class:`Clock` so tests and benchmarks can run an hour of
polling in milliseconds (:class:`ManualClock`): every wait the client makes
is ``clock.sleep(seconds)``.

Secrets: tokens travel in headers only; nothing here logs headers, and every
message built from a server's answer passes through :meth:`HttpClient.redact`.
A URL given with credentials (``https://user:password@host``) is used as
given, but only :func:`public_url` (the URL without them) is ever stored or
shown, and :func:`redact_urls` takes them out of any text.
"""

from __future__ import annotations

import base64
import email.utils
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from .. import __version__
from ..errors import CaptureError
from ..timeutil import parse_iso

USER_AGENT = f"chatarchive/{__version__} (+https://github.com/chatarchive)"


# --------------------------------------------------------------------------
# URLs that carry credentials

_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/?#\s@]*@")


def redact_urls(text: str) -> str:
    """Every ``scheme://user:password@`` in ``text`` becomes ``scheme://***@``."""
    return _USERINFO.sub(r"\1***@", text)


def public_url(url: str) -> str:
    """``url`` without its user and password (what may be stored or shown)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def url_secrets(url: str | None) -> list[str]:
    """The password (and user) inside a URL, for :meth:`HttpClient.add_secret`."""
    if not url:
        return []
    parts = urlsplit(url)
    out = [v for v in (parts.password, parts.username) if v and len(v) >= 4]
    if parts.password:
        # what an echoing server would quote back: the Basic header value
        out.append(base64.b64encode(f"{parts.username or ''}:{parts.password}".encode()).decode())
    return out


def host_of_url(url: str) -> str:
    """``host[:port]`` of a URL, never its credentials (for messages)."""
    netloc = urlsplit(url).netloc
    return netloc.rsplit("@", 1)[-1] or url


# --------------------------------------------------------------------------
# Time


class Clock:
    """Wall-clock time and sleeping; the real thing."""

    def time(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class ManualClock(Clock):
    """A clock that only moves when someone sleeps: tests and benchmarks run
    a simulated hour instantly, and fake servers share it to decide which
    posts exist "now" and how many requests fall in a rate-limit window."""

    def __init__(self, start: float):
        self._now = float(start)
        self._lock = threading.Lock()
        self.sleeps: list[float] = []

    def time(self) -> float:
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            if seconds > 0:
                self._now += seconds

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds


# --------------------------------------------------------------------------
# Rate limits


@dataclass
class RateLimit:
    limit: int | None = None
    remaining: int | None = None
    reset: float | None = None  # epoch seconds
    window: float | None = None  # seconds, when the server says (Bluesky policy)

    def describe(self, now: float) -> str:
        parts = []
        if self.remaining is not None and self.limit is not None:
            parts.append(f"{self.remaining}/{self.limit} left")
        elif self.remaining is not None:
            parts.append(f"{self.remaining} left")
        if self.reset is not None:
            parts.append(f"resets in {format_seconds(max(0.0, self.reset - now))}")
        return ", ".join(parts) or "no rate-limit headers"


def format_seconds(s: float) -> str:
    s = round(s)
    if s < 60:
        return f"{s}s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m}m{s:02d}s"
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m"


def _int_header(headers: httpx.Headers, name: str) -> int | None:
    v = headers.get(name)
    if v is None:
        return None
    try:
        return int(float(v.strip()))
    except ValueError:
        return None


def _epoch_header(headers: httpx.Headers, name: str) -> float | None:
    v = headers.get(name)
    if v is None:
        return None
    try:
        return float(v.strip())
    except ValueError:
        return None


def _retry_after(headers: httpx.Headers, now: float) -> float | None:
    """Retry-After as seconds from now (delta-seconds or an HTTP date)."""
    v = headers.get("retry-after")
    if not v:
        return None
    v = v.strip()
    if re.fullmatch(r"\d+(\.\d+)?", v):
        return float(v)
    try:
        dt = email.utils.parsedate_to_datetime(v)
    except (TypeError, ValueError):
        return None
    return max(0.0, dt.timestamp() - now)


@dataclass
class RateLimitScheme:
    """How one platform announces its limits (sources.md §1.8, §6.5, §7.5)."""

    name: str
    parse: Callable[[httpx.Headers], RateLimit | None]
    # Which requests share a limit: X counts per endpoint, Mastodon and
    # Bluesky per account/IP (the whole host).
    per_path: bool = False
    # X: a 429 while requests remain means the 1 request/second limit of
    # full-archive search, not the 15-minute window.
    short_limit_wait: float = 1.0

    def bucket(self, url: str) -> str:
        parts = urlsplit(url)
        return host_of_url(url) + (parts.path if self.per_path else "")


def _parse_x(h: httpx.Headers) -> RateLimit | None:
    if "x-rate-limit-remaining" not in h and "x-rate-limit-reset" not in h:
        return None
    return RateLimit(
        limit=_int_header(h, "x-rate-limit-limit"),
        remaining=_int_header(h, "x-rate-limit-remaining"),
        reset=_epoch_header(h, "x-rate-limit-reset"),
    )


def _parse_mastodon(h: httpx.Headers) -> RateLimit | None:
    if "x-ratelimit-remaining" not in h and "x-ratelimit-reset" not in h:
        return None
    reset = None
    raw = h.get("x-ratelimit-reset")
    if raw:
        try:
            reset = parse_iso(raw).timestamp()  # ISO-8601 with 6 fractional digits
        except ValueError:
            reset = None
    return RateLimit(
        limit=_int_header(h, "x-ratelimit-limit"),
        remaining=_int_header(h, "x-ratelimit-remaining"),
        reset=reset,
    )


def _parse_bluesky(h: httpx.Headers) -> RateLimit | None:
    if "ratelimit-remaining" not in h and "ratelimit-reset" not in h:
        return None
    window = None
    policy = h.get("ratelimit-policy")  # "3000;w=300"
    if policy:
        m = re.search(r"w=(\d+)", policy)
        if m:
            window = float(m.group(1))
    return RateLimit(
        limit=_int_header(h, "ratelimit-limit"),
        remaining=_int_header(h, "ratelimit-remaining"),
        reset=_epoch_header(h, "ratelimit-reset"),
        window=window,
    )


X_RATE_LIMITS = RateLimitScheme("x", _parse_x, per_path=True)
MASTODON_RATE_LIMITS = RateLimitScheme("mastodon", _parse_mastodon)
BLUESKY_RATE_LIMITS = RateLimitScheme("bluesky", _parse_bluesky)


# --------------------------------------------------------------------------
# Errors


class ApiError(CaptureError):
    """A server answered with a status retrying cannot fix."""

    def __init__(self, message: str, *, status: int, error: str | None = None, body: Any = None):
        super().__init__(message)
        self.status = status
        self.error = error  # Bluesky/Mastodon "error" name, X problem type suffix
        self.body = body


class AuthError(ApiError):
    """401/403: the message names the variable (or config key) to set."""


class RateLimitError(CaptureError):
    """Still rate limited after the allowed waits, or the reset is too far off."""


class NetworkError(CaptureError):
    """The server could not be reached, or kept failing, after every retry."""


@dataclass
class RetryPolicy:
    max_retries: int = 6  # 5xx, timeouts and dropped connections, per request
    backoff_base: float = 1.0  # seconds: 1, 2, 4, 8 … capped at backoff_max
    backoff_max: float = 30.0
    max_rate_waits: int = 5  # consecutive 429s for one request before giving up
    max_wait: float = 960.0  # the longest single rate-limit wait (X windows are 15 min)
    rate_margin: float = 1.0  # seconds added to a reset time (clock skew)


@dataclass
class RequestRecord:
    """What the client remembers of a request: never headers or bodies."""

    method: str
    url: str
    status: int | None  # None: no response (timeout, dropped connection)
    at: float


# --------------------------------------------------------------------------
# The client


class HttpClient:
    def __init__(
        self,
        scheme: RateLimitScheme,
        *,
        clock: Clock | None = None,
        policy: RetryPolicy | None = None,
        timeout: float | httpx.Timeout = 30.0,
        secrets: Iterable[str] = (),
        on_wait: Callable[[float, str], None] | None = None,
        min_interval: dict[str, float] | None = None,
        transport: httpx.BaseTransport | None = None,
    ):
        self.scheme = scheme
        self.clock = clock or Clock()
        self.policy = policy or RetryPolicy()
        if not isinstance(timeout, httpx.Timeout):
            timeout = httpx.Timeout(timeout, connect=min(10.0, timeout))
        self._client = httpx.Client(
            timeout=timeout,
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            follow_redirects=False,  # never carry an Authorization header elsewhere
            transport=transport,
        )
        self.secrets: set[str] = {s for s in secrets if s}
        self.on_wait = on_wait
        # bucket -> minimum seconds between requests (X full-archive: 1/s)
        self.min_interval = dict(min_interval or {})
        self.limits: dict[str, RateLimit] = {}
        self._last_request: dict[str, float] = {}
        self.log: deque[RequestRecord] = deque(maxlen=1000)  # the latest requests only
        self.requests = 0

    # -- secrets ----------------------------------------------------------

    def add_secret(self, value: str | None) -> None:
        if value:
            self.secrets.add(value)

    def add_url_credentials(self, url: str | None) -> None:
        """Never show the user and password of a URL given with them."""
        for s in url_secrets(url):
            self.secrets.add(s)

    def redact(self, text: str) -> str:
        text = redact_urls(text)
        for s in sorted(self.secrets, key=len, reverse=True):
            if s and s in text:
                text = text.replace(s, "***")
        return text

    @property
    def client(self) -> httpx.Client:
        """The underlying httpx client (streams read responses themselves)."""
        return self._client

    # -- state for the live panel ----------------------------------------

    def latest_limit(self) -> RateLimit | None:
        if not self.limits:
            return None
        # the bucket closest to running out is the one worth showing
        return min(
            self.limits.values(),
            key=lambda r: r.remaining if r.remaining is not None else 1 << 30,
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- requests -----------------------------------------------------------

    def _wait(self, seconds: float, reason: str) -> None:
        if seconds <= 0:
            return
        if self.on_wait is not None:
            self.on_wait(seconds, reason)
        self.clock.sleep(seconds)

    def _pace(self, bucket: str) -> None:
        """Wait before sending when the server already said we are out of
        requests (so a follow never even sees a 429), and keep per-endpoint
        minimum intervals (X full-archive search: 1 request/second)."""
        now = self.clock.time()
        gap = self.min_interval.get(bucket)
        last = self._last_request.get(bucket)
        if gap and last is not None and now - last < gap:
            self._wait(gap - (now - last), "pacing")
            now = self.clock.time()
        rl = self.limits.get(bucket)
        if rl and rl.remaining is not None and rl.remaining <= 0 and rl.reset is not None:
            wait = rl.reset - now + self.policy.rate_margin
            if wait > 0:
                self._check_wait(wait)
                self._wait(wait, "rate limit reached")
                rl.remaining = None  # unknown until the next answer

    def _check_wait(self, wait: float) -> None:
        if wait > self.policy.max_wait:
            raise RateLimitError(
                f"{self.scheme.name}: rate limited for another {format_seconds(wait)} "
                f"(more than the {format_seconds(self.policy.max_wait)} chatarchive waits); try again later"
            )

    def _backoff(self, attempt: int) -> float:
        return min(self.policy.backoff_max, self.policy.backoff_base * (2 ** (attempt - 1)))

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Any = None,
        headers: dict[str, str] | None = None,
        json: Any = None,
    ) -> httpx.Response:
        """Send a request; return the response once it is neither a 429 nor
        a 5xx.  2xx and the other 4xx are returned for the caller to judge
        (each platform words its auth errors differently)."""
        bucket = self.scheme.bucket(url)
        failures = 0
        rate_waits = 0
        while True:
            self._pace(bucket)
            self._last_request[bucket] = self.clock.time()
            self.requests += 1
            try:
                resp = self._client.request(method, url, params=params, headers=headers, json=json)
            except (httpx.TimeoutException, httpx.TransportError) as e:
                self.log.append(RequestRecord(method, public_url(_full_url(url, params)), None, self.clock.time()))
                failures += 1
                what = describe_transport_error(e)
                if failures > self.policy.max_retries:
                    raise NetworkError(
                        self.redact(f"{host_of_url(url)}: {what}; gave up after {failures} attempts")
                    ) from None
                self._wait(self._backoff(failures), f"{what}, retrying")
                continue
            self.log.append(RequestRecord(method, public_url(str(resp.request.url)), resp.status_code, self.clock.time()))
            rl = self.scheme.parse(resp.headers)
            if rl is not None:
                self.limits[bucket] = rl
            status = resp.status_code
            if status == 429:
                rate_waits += 1
                if rate_waits > self.policy.max_rate_waits:
                    raise RateLimitError(
                        f"{self.scheme.name}: still rate limited (HTTP 429) after {rate_waits - 1} waits; try again later"
                    )
                wait = self._wait_for_429(resp, rl, rate_waits)
                self._check_wait(wait)
                self._wait(wait, "rate limited (429)")
                continue
            if status >= 500 and status != 501:
                failures += 1
                if failures > self.policy.max_retries:
                    raise NetworkError(
                        f"{host_of_url(url)}: server error {status} {resp.reason_phrase}; "
                        f"gave up after {failures} attempts"
                    )
                after = _retry_after(resp.headers, self.clock.time())
                wait = max(self._backoff(failures), min(after or 0.0, self.policy.backoff_max))
                self._wait(wait, f"server error {status}, retrying")
                continue
            return resp

    def _wait_for_429(self, resp: httpx.Response, rl: RateLimit | None, attempt: int) -> float:
        now = self.clock.time()
        after = _retry_after(resp.headers, now)
        if after is not None:
            return after
        if rl is not None and rl.remaining is not None and rl.remaining > 0:
            # requests are left in the window: a per-second limit (X /all)
            return self.scheme.short_limit_wait * attempt
        if rl is not None and rl.reset is not None:
            return max(1.0, rl.reset - now + self.policy.rate_margin)
        return min(self.policy.backoff_max * 2, 15.0 * attempt)  # no headers: a modest pause

    def get_json(self, url: str, **kw: Any) -> tuple[httpx.Response, Any]:
        resp = self.request("GET", url, **kw)
        return resp, parse_json(resp)


def _full_url(url: str, params: Any) -> str:
    try:
        return str(httpx.URL(url, params=params))
    except Exception:
        return url


def describe_transport_error(e: BaseException) -> str:
    """A network failure in plain words, for polling and streams alike."""
    if isinstance(e, httpx.ConnectTimeout):
        return "connection timed out"
    if isinstance(e, httpx.TimeoutException):
        return "no answer in time (stalled)"
    if isinstance(e, httpx.ConnectError):
        return "cannot connect"
    if isinstance(e, (httpx.RemoteProtocolError, httpx.ReadError)):
        return "connection dropped"
    return f"network error ({type(e).__name__})"


def parse_json(resp: httpx.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        return None


_TAG = re.compile(r"<[^>]+>")


def body_summary(resp: httpx.Response, limit: int = 160) -> str:
    """A short, plain-text description of an error body (JSON or an HTML page)."""
    data = parse_json(resp)
    if isinstance(data, dict):
        for keys in (("error", "message"), ("title", "detail"), ("error_description",), ("errors",)):
            vals = [data.get(k) for k in keys if data.get(k)]
            if vals:
                text = ": ".join(
                    v if isinstance(v, str) else (v[0].get("message") or v[0].get("detail") or str(v[0]))
                    if isinstance(v, list) and v and isinstance(v[0], dict) else str(v)
                    for v in vals
                )
                return text[:limit]
    text = resp.text or ""
    if "<" in text:
        m = re.search(r"<title>(.*?)</title>", text, re.S | re.I)
        text = m.group(1) if m else _TAG.sub(" ", text)
    text = " ".join(text.split())
    return (text[:limit] + "…") if len(text) > limit else text or resp.reason_phrase


@dataclass
class Page:
    """One API response, ready to store: what the runner commits together."""

    posts: list  # list[Post]
    body: Any  # the response body exactly as parsed (kept in capture_pages)
    url: str  # the request URL (never carries a secret: tokens go in headers)
    state: dict  # the capture state to store once this page is committed
    retrieved_at: str = ""
    raw_line: Any = None  # what --raw writes for this page (None: nothing)
    problems: list[str] = field(default_factory=list)
    kind: str = "search"  # search | context
    instance: str | None = None
