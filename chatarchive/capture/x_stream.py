"""X live: the filtered stream (sources.md §1.9, §10.3).

At the start a rule for the query is set on ``/2/tweets/search/stream/rules``
(tagged ``chatarchive:QUERY``; a rule with the same value already there is
reused), then ``/2/tweets/search/stream`` is read with the same fields and
expansions as search, so a streamed post and a searched one are the same
row (:func:`chatarchive.sources.twarc2.normalize_page` reads both).  Each
line is one post (``data``, ``includes``, ``matching_rules``: posts of the
app's other rules are left alone); blank lines are the keep-alives X sends
every 20 seconds, and a silence longer than ``keepalive`` means the
connection is dead.  Error lines (``operational-disconnect``) and dropped
connections are followed by a reconnect with backoff (longer after a 429:
X allows one stream connection per app).

Gap recovery (``backfill_minutes``) is for Enterprise only, so every
(re)connect fills the gap with recent search from ``since_id`` (the newest
post held, less a minute's overlap; on the first connect, the window
start).  At the end the rules this program created (its tag) are removed,
also those a killed run left behind.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson

from .. import __version__
from ..errors import CaptureError
from ..sources.twarc2 import FORMAT as TWARC2_FORMAT
from ..sources.twarc2 import normalize_page
from ..timeutil import iso_utc, parse_iso
from .base import Window, sort_key_id, utc_from_epoch
from .config import ENV_X_TOKEN
from .http import AuthError, body_summary, describe_transport_error, parse_json, public_url
from .stream import HttpStreamSource, StreamEngine, StreamItem, StreamPolicy, StreamStopped, lower_bound, newest_of
from .x import RECENT_DAYS, XCapture, snowflake_below

RULE_TAG = "chatarchive:"


class XStreamSource(HttpStreamSource):
    platform = "x"
    post_source = "x_stream"
    name = "x"

    def __init__(self, client: XCapture, policy: StreamPolicy | None = None):
        super().__init__(client.query, policy)
        self.client = client
        self.rules_url = f"{client.api_base}/2/tweets/search/stream/rules"
        self.stream_url = f"{client.api_base}/2/tweets/search/stream"
        self.rule_id: str | None = None
        self.rule_tag = (RULE_TAG + client.query)[:256]

    @property
    def endpoint(self) -> str:
        return public_url(self.stream_url)

    # -- rules ----------------------------------------------------------------

    def _rules_call(self, method: str, **kw: Any) -> dict:
        resp = self.http.request(method, self.rules_url, headers=self.client._headers(), **kw)
        if resp.status_code in (401, 403):
            detail = self.http.redact(body_summary(resp))
            hint = (f"set {ENV_X_TOKEN} to a valid app bearer token" if resp.status_code == 401 else
                    "the filtered stream needs an app whose access includes it; "
                    "use --follow (polling recent search) instead")
            raise AuthError(f"X refused the stream rules (HTTP {resp.status_code}: {detail}): {hint}",
                            status=resp.status_code)
        body = parse_json(resp)
        if resp.status_code not in (200, 201) or not isinstance(body, dict):
            detail = self.http.redact(body_summary(resp))
            raise CaptureError(f"X stream rules: HTTP {resp.status_code} ({detail})")
        return body

    def ensure_rule(self) -> str:
        """The id of a rule whose value is the query (set now if missing)."""
        have = self._rules_call("GET").get("data") or []
        for r in have:
            if isinstance(r, dict) and r.get("value") == self.client.query and r.get("id"):
                self.rule_id = str(r["id"])
                return self.rule_id
        body = self._rules_call("POST", json={"add": [{"value": self.client.query, "tag": self.rule_tag}]})
        for r in body.get("data") or []:
            if isinstance(r, dict) and r.get("id"):
                self.rule_id = str(r["id"])
                return self.rule_id
        for e in body.get("errors") or []:  # DuplicateRule: someone set it meanwhile
            if isinstance(e, dict) and e.get("id"):
                self.rule_id = str(e["id"])
                return self.rule_id
        detail = "; ".join(str(e.get("title") or e.get("details") or e) for e in body.get("errors") or []
                           if isinstance(e, dict))
        raise CaptureError(f"X did not accept the stream rule {self.client.query!r}: {detail or 'no rule id'}")

    def remove_rules(self) -> int:
        """Remove the rules chatarchive set for this query (its tag)."""
        ours = [str(r["id"]) for r in self._rules_call("GET").get("data") or []
                if isinstance(r, dict) and r.get("id") and r.get("tag") == self.rule_tag]
        if ours:
            self._rules_call("POST", json={"delete": {"ids": ours}})
        return len(ours)

    # -- gap fills ------------------------------------------------------------

    def _fill(self) -> Iterator[StreamItem]:
        lower = lower_bound(self.position, self.window, self.policy.overlap)
        with self.lock:
            self.position["pending_from"] = iso_utc(lower) if lower else None
        self.gap_fills += 1
        state: dict = {}
        now = utc_from_epoch(self.client.clock.time())
        window = Window(lower, self.window.until)
        if lower is not None and lower > now - timedelta(days=RECENT_DAYS) + timedelta(minutes=1):
            state = {"since_id": snowflake_below(lower)}  # ids are snowflakes of their time
            window = Window(None, self.window.until)
        pages = list(self.client.poll(state, window))
        lo = window.since_iso or (iso_utc(lower) if lower else None)
        for i, page in enumerate(pages):
            posts = [p for p in page.posts if not p.matched or lo is None or (p.created_at or "") >= lo]
            with self.lock:
                nid, nat = newest_of(posts, self.position.get("newest_id"), self.position.get("newest_at"),
                                     sort_key_id)
                self.position.update(newest_id=nid, newest_at=nat)
                if nat:
                    self.position["at"] = nat
                if i == len(pages) - 1:
                    self.position["pending_from"] = None
            yield StreamItem(self, posts=posts, state=self.snapshot(), body=page.body, kind="search", url=page.url,
                             raw_lines=[page.raw_line] if page.raw_line else [], problems=page.problems)

    # -- the thread ---------------------------------------------------------

    def preflight(self) -> None:
        self.ensure_rule()  # a refused token shows here, before anything starts

    def run(self) -> None:
        if self.rule_id is None:
            self.ensure_rule()
        backoff = self.backoff()
        while True:
            self.check()
            why = self._stream_once(backoff)
            self.check()
            self.reconnects += 1
            delay = backoff.next()
            self.say(f"{why}; reconnecting in {delay:.1f}s")
            self.sleep(delay)

    def _stream_once(self, backoff: Any) -> str:
        p = self.policy
        timeout = httpx.Timeout(p.connect_timeout, read=p.keepalive)
        try:
            with self.http.client.stream("GET", self.stream_url, params=self.client._fields(),
                                         headers=self.client._headers(), timeout=timeout) as resp:
                self._response = resp
                status = resp.status_code
                if status in (401, 403):
                    detail = self.http.redact(resp.read().decode("utf-8", "replace")[:300])
                    raise AuthError(f"X refused the filtered stream (HTTP {status}: {detail}); check {ENV_X_TOKEN} "
                                    "(the stream needs an app with access to it; --follow polls search instead)",
                                    status=status)
                if status == 429:
                    # X allows one connection per app: another capture (or a
                    # connection X has not closed yet) holds it
                    backoff.base = max(backoff.base, p.rate_backoff_base)
                    backoff.cap = max(backoff.cap, p.backoff_cap_rate)
                    return "X allows one stream connection at a time (HTTP 429)"
                if status != 200:
                    if status >= 500:
                        backoff.base = max(backoff.base, p.http_backoff_base)
                    return f"the stream answered HTTP {status}"
                self.connects += 1
                self.say("live (filtered stream)")
                for item in self._fill():
                    self.emit(item)
                backoff.reset()
                for line in resp.iter_lines():
                    self.check()
                    if not line.strip():
                        continue  # a keep-alive
                    why = self._line(line)
                    if why:
                        return why
                return "the server closed the stream"
        except httpx.ReadTimeout as e:
            if self.stopping.is_set():
                raise StreamStopped from e
            return f"no keep-alive for {p.keepalive:.0f}s"
        except (httpx.TransportError, httpx.StreamError) as e:
            if self.stopping.is_set():
                raise StreamStopped from e
            return describe_transport_error(e)
        finally:
            self._response = None

    def _line(self, line: str) -> str | None:
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError:
            self.say("an unreadable line was skipped")
            return None
        if not isinstance(obj, dict):
            return None
        if "data" not in obj:
            errors = [e for e in obj.get("errors") or [] if isinstance(e, dict)]
            text = "; ".join(str(e.get("title") or "") + (f": {e.get('detail')}" if e.get("detail") else "")
                             for e in errors) or "an error line"
            if any("disconnect" in str(e.get("title") or e.get("type") or "") for e in errors):
                return f"X disconnected the stream ({self.redact(text)})"
            self.say(self.redact(text))
            return None
        rules = [r for r in obj.get("matching_rules") or [] if isinstance(r, dict)]
        if self.rule_id and rules and not any(str(r.get("id")) == self.rule_id or r.get("tag") == self.rule_tag
                                              for r in rules):
            return None  # a post of another of the app's rules
        ctx = TWARC2_FORMAT.context(self.endpoint)
        problems: list[str] = []
        try:
            posts = list(normalize_page(obj, ctx, source=self.post_source))
        except Exception as e:
            problems.append(f"X: could not read a streamed post ({type(e).__name__}: {e})")
            posts = []
        with self.lock:
            nid, nat = newest_of(posts, self.position.get("newest_id"), self.position.get("newest_at"), sort_key_id)
            self.position.update(newest_id=nid, newest_at=nat)
            if nat:
                self.position["at"] = nat
        times = []
        for p in posts:
            if p.matched and p.created_at:
                try:
                    times.append(parse_iso(p.created_at).timestamp())
                except ValueError:
                    pass
        self.emit(StreamItem(self, posts=posts, state=self.snapshot(), body=[obj], url=self.endpoint,
                             raw_lines=[self._twarc_line(obj)], event_times=times, problems=problems))
        return None

    def _twarc_line(self, obj: dict) -> dict:
        """A stream line as ``twarc2 stream`` writes it (re-importable)."""
        line = dict(obj)
        line["__twarc"] = {"url": self.endpoint, "version": f"chatarchive-{__version__}",
                           "retrieved_at": datetime.now().astimezone().replace(microsecond=0).isoformat()}
        return line

    def finish(self, engine: StreamEngine) -> Iterator[StreamItem]:
        """A last gap fill (the stream's final seconds), then remove the rules it set."""
        self.stopping.clear()
        try:
            try:
                yield from self._fill()
            finally:
                self.remove_rules()
        finally:
            self.stopping.set()
