"""Fake X API v2, Mastodon and Bluesky servers for the capture tests.

Each runs a real HTTP server on 127.0.0.1 (a free port, in a thread) and
speaks the platform's protocol as sources.md §1, §6, §7 and the §8
checklist describe it: real pagination (X ``next_token``; Mastodon ``Link``
headers with ``max_id``/``min_id``; Bluesky ``cursor``), time filters,
the platform's rate-limit headers (and 429s when a window is exhausted),
auth errors in each platform's own words, Bluesky's expiring access tokens.
Faults can be queued: ``server.fail("429")``, ``"503"``, ``"drop"`` (close
the connection without an answer), ``"stall"`` (answer too late),
``"401"``, ``"403"``, ``"html403"``, ``"expired"``.

Every request is logged (``server.log``) with the time on the server's
clock.  Give a server and the client the same ``ManualClock`` and a
simulated hour of polling runs in a moment while the server still decides
which posts exist "now" and counts requests per rate-limit window.

One synthetic chat (:func:`make_chat`) renders into all three shapes.
"""

from __future__ import annotations

import base64
import html
import itertools
import json
import random
import re
import secrets
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

DROP = object()


# --------------------------------------------------------------------------
# Time


class RealClock:
    def time(self) -> float:
        return time.time()


def iso_ms(t: float) -> str:
    dt = datetime.fromtimestamp(t, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def parse_time(s: str) -> float:
    s = s.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", s):
        s += "T00:00:00Z"
    if s.endswith("Z"):
        s = s[:-1] + "+00:00"
    m = re.search(r"\.(\d+)", s)
    if m:
        s = s[: m.start()] + "." + (m.group(1) + "000000")[:6] + s[m.end():]
    dt = datetime.fromisoformat(s)
    if dt.tzinfo is None:
        raise ValueError("time zone required")
    return dt.timestamp()


# --------------------------------------------------------------------------
# The synthetic chat


@dataclass
class ChatPost:
    n: int
    t: float  # created, epoch seconds
    author: str
    text: str
    tags: list[str]
    reply_to: int | None = None  # n of the parent
    index_delay: float = 0.5  # Bluesky: indexedAt - createdAt
    likes: int = 0

    def has_tag(self, tag: str) -> bool:
        return tag.lower() in {t.lower() for t in self.tags}


PEOPLE = ["alice", "bob", "carmen", "dev", "emeka", "fatima", "gus", "hana", "ivan", "jun",
          "kofi", "lena", "mateo", "nadia", "oscar", "priya", "quinn", "rosa", "sven", "tara",
          "uma", "victor", "wren", "xia", "yusuf", "zoe"]


def make_chat(n: int, start: float, *, duration: float = 3600.0, tag: str = "edchat", seed: int = 7,
              host: str = "host", questions: int = 6, first_n: int = 0) -> list[ChatPost]:
    """A plausible chat hour: a host asking Q1…Qk, tagged answers (often
    replies to the question), tagged and untagged replies between people,
    one tagged reply to an untagged post from before the chat, and one post
    with hostile text.  Deterministic for a seed."""
    rng = random.Random(seed)
    posts: list[ChatPost] = []
    counter = itertools.count(first_n)
    # an untagged post from before the chat that someone answers in it
    pre = ChatPost(next(counter), start - 1800, "oldtimer", "Anyone joining the chat tonight?", [])
    posts.append(pre)
    times = sorted(start + rng.uniform(1, duration - 1) for _ in range(max(0, n - questions)))
    q_times = [start + i * duration / max(1, questions) for i in range(questions)]
    qposts: dict[int, ChatPost] = {}
    events = sorted([(t, "q", i + 1) for i, t in enumerate(q_times)] + [(t, "p", 0) for t in times])
    current_q = 0
    for t, kind, qn in events:
        if kind == "q":
            current_q = qn
            p = ChatPost(next(counter), t, host, f"Q{qn}: What is your take on topic {qn}? #{tag}", [tag])
            qposts[qn] = p
            posts.append(p)
            continue
        who = rng.choice(PEOPLE)
        r = rng.random()
        tagged = [p for p in posts if p.tags]
        if current_q and r < 0.55:
            q = qposts[current_q]
            text = f"A{current_q}: my answer number {len(posts)} about topic {current_q} #{tag}"
            posts.append(ChatPost(next(counter), t, who, text, [tag], q.n if rng.random() < 0.6 else None))
        elif tagged and r < 0.8:
            parent = rng.choice(tagged[-20:])
            text = f"@{parent.author} great point, post {len(posts)} #{tag}"
            posts.append(ChatPost(next(counter), t, who, text, [tag], parent.n))
        elif tagged and r < 0.93:
            parent = rng.choice(tagged[-20:])
            posts.append(ChatPost(next(counter), t, who, f"@{parent.author} agreed (untagged {len(posts)})", [], parent.n))
        else:
            posts.append(ChatPost(next(counter), t, who, f"Hello from {who}, post {len(posts)} #{tag}", [tag]))
    # one tagged reply to the untagged pre-chat post, one hostile text
    if len(posts) > 3:
        posts[3].reply_to = pre.n
        posts[3].text = f"@oldtimer yes, joining now #{tag}"
        posts[3].tags = [tag]
    if len(posts) > 5:
        posts[5].text = f"<script>alert('x')</script> javascript:alert(1) & more #{tag}"
        posts[5].tags = [tag]
        posts[5].reply_to = None
    for p in posts:
        p.likes = rng.randint(0, 9)
    return posts


def thread_of(posts: list[ChatPost], p: ChatPost) -> int:
    by_n = {q.n: q for q in posts}
    seen = set()
    while p.reply_to is not None and p.reply_to in by_n and p.n not in seen:
        seen.add(p.n)
        p = by_n[p.reply_to]
    return p.n


class Index:
    """Lookups over a post list: by number, thread root, reply counts."""

    def __init__(self, posts: list[ChatPost]):
        self.by_n = {p.n: p for p in posts}
        self.root: dict[int, int] = {}
        for p in posts:
            cur, seen = p, set()
            while cur.reply_to is not None and cur.reply_to in self.by_n and cur.n not in seen:
                seen.add(cur.n)
                cur = self.by_n[cur.reply_to]
            self.root[p.n] = cur.n
        self.replies: dict[int, int] = {}
        for p in posts:
            if p.reply_to is not None:
                self.replies[p.reply_to] = self.replies.get(p.reply_to, 0) + 1


# --------------------------------------------------------------------------
# Server machinery


@dataclass
class Request:
    t: float
    method: str
    path: str
    params: dict[str, list[str]]
    status: int | None
    auth: str | None  # the Authorization header (test use only)
    body: Any = None

    def param(self, name: str) -> str | None:
        v = self.params.get(name)
        return v[0] if v else None


@dataclass
class Response:
    status: int
    body: Any = None  # dict/list -> JSON, str -> as is
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json; charset=utf-8"


@dataclass
class Fault:
    kind: str
    path: str | None
    times: int
    extra: dict


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # one write per response and no Nagle: otherwise headers and body go out
    # in two packets and delayed ACKs cost 40 ms per request
    wbufsize = 1 << 16
    disable_nagle_algorithm = True
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _serve(self, method: str) -> None:
        self.server.fake._dispatch(self, method)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    fake: FakeServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (a timeout test) resets the connection under a
        # handler thread; socketserver would print that traceback to stderr,
        # where it lands in whatever CliRunner is capturing at that moment.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class FakeServer:
    """Shared machinery: threads, request log, fault queue, rate windows."""

    name = "fake"

    def __init__(self, clock: Any = None, *, stall_seconds: float = 2.0):
        self.clock = clock or RealClock()
        self.log: list[Request] = []
        self.faults: deque[Fault] = deque()
        self.lock = threading.RLock()
        self.stall_seconds = stall_seconds
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._windows: dict[tuple[str, int], int] = {}
        self._port = 0

    # -- lifecycle
    def start(self) -> FakeServer:
        self._httpd = _HTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.fake = self
        self._port = self._httpd.server_address[1]
        # a short poll interval: stop() returns at once instead of in up to 0.5 s
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                        daemon=True, name=self.name)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def port(self) -> int:  # still known after stop(), for assertions
        if not self._port:
            raise RuntimeError(f"{self.name} is not started")
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- faults
    def fail(self, kind: str, times: int = 1, path: str | None = None, **extra: Any) -> None:
        with self.lock:
            self.faults.append(Fault(kind, path, times, extra))

    def _take_fault(self, path: str) -> Fault | None:
        with self.lock:
            for f in self.faults:
                if f.path is None or path.startswith(f.path):
                    f.times -= 1
                    if f.times <= 0:
                        self.faults.remove(f)
                    return f
        return None

    # -- rate windows (fixed windows on the server clock)
    def count(self, bucket: str, window: float) -> tuple[int, float]:
        """Count this request in ``bucket``'s current window; return the
        count so far and the window's end (epoch seconds)."""
        now = self.clock.time()
        idx = int(now // window)
        with self.lock:
            key = (bucket, idx)
            self._windows[key] = self._windows.get(key, 0) + 1
            return self._windows[key], (idx + 1) * window

    def requests_to(self, path_prefix: str) -> list[Request]:
        return [r for r in self.log if r.path.startswith(path_prefix)]

    # -- dispatch
    def _dispatch(self, h: _Handler, method: str) -> None:
        parts = urlsplit(h.path)
        params = parse_qs(parts.query, keep_blank_values=True)
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        body = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")
        req = Request(self.clock.time(), method, unquote(parts.path), params, None, h.headers.get("Authorization"), body)
        fault = self._take_fault(req.path)
        resp: Any
        if fault is not None:
            resp = self.fault_response(fault, req)
        else:
            try:
                resp = self.route(req)
            except Exception as e:  # a bug in the fake: answer 500 so tests see it
                resp = Response(500, {"error": "InternalServerError", "message": repr(e)})
        if fault is not None and fault.kind == "stall":
            time.sleep(self.stall_seconds)
        with self.lock:
            req.status = None if resp is DROP else resp.status
            self.log.append(req)
        if resp is DROP:
            h.close_connection = True
            try:
                h.connection.shutdown(2)
            except OSError:
                pass
            return
        if isinstance(resp.body, (dict, list)):
            data = json.dumps(resp.body).encode()
        elif isinstance(resp.body, str):
            data = resp.body.encode()
        else:
            data = b""
        try:
            h.send_response(resp.status)
            h.send_header("Content-Type", resp.content_type)
            h.send_header("Content-Length", str(len(data)))
            for k, v in resp.headers.items():
                h.send_header(k, v)
            h.end_headers()
            h.wfile.write(data)
            h.wfile.flush()
        except OSError:  # the client is gone (it timed out or dropped us)
            pass

    def fault_response(self, fault: Fault, req: Request) -> Any:
        k = fault.kind
        if k == "drop":
            return DROP
        if k == "stall":
            return self.route(req)
        if k == "503":
            return Response(503, "<html><body>Service Unavailable</body></html>", content_type="text/html")
        return self.platform_fault(fault, req)

    def platform_fault(self, fault: Fault, req: Request) -> Any:
        raise NotImplementedError(fault.kind)

    def route(self, req: Request) -> Any:
        raise NotImplementedError

    @staticmethod
    def bearer(req: Request) -> str | None:
        if req.auth and req.auth.startswith("Bearer "):
            return req.auth[7:]
        return None


# --------------------------------------------------------------------------
# X API v2

TWEPOCH_MS = 1288834974657


def x_id(p: ChatPost) -> str:
    return str(((int(p.t * 1000) - TWEPOCH_MS) << 22) + (p.n % 4096))


def x_user_id(handle: str) -> str:
    return str(10_000 + sum(ord(c) * 31 ** i for i, c in enumerate(handle)) % 10_000_000)


class FakeX(FakeServer):
    """``/2/tweets/search/recent``, ``/2/tweets/search/all``, ``/2/tweets``."""

    name = "fake-x"
    LIMITS = {"/2/tweets/search/recent": (450, 900.0), "/2/tweets/search/all": (300, 900.0),
              "/2/tweets": (300, 900.0)}

    def __init__(self, posts: Iterable[ChatPost] = (), *, token: str = "x-test-token", clock: Any = None,
                 archive_forbidden: bool = False, **kw: Any):
        super().__init__(clock, **kw)
        self.token = token
        self.posts: list[ChatPost] = []
        self.archive_forbidden = archive_forbidden
        self._last_all: float | None = None
        self.add(posts)

    def add(self, posts: Iterable[ChatPost]) -> None:
        with self.lock:
            self.posts.extend(posts)
            self.posts.sort(key=lambda p: int(x_id(p)))
            self.idx = Index(self.posts)
            self.by_n = self.idx.by_n
            self.by_id = {x_id(p): p for p in self.posts}
            self.int_id = {p.n: int(x_id(p)) for p in self.posts}
            self._tweets: dict[int, dict] = {}
            self.lower_tags = {p.n: {t.lower() for t in p.tags} for p in self.posts}

    def visible(self) -> list[ChatPost]:
        now = self.clock.time()
        return [p for p in self.posts if p.t <= now]

    @staticmethod
    def problem(status: int, title: str, detail: str, type_: str = "about:blank") -> dict:
        return {"title": title, "detail": detail, "type": type_, "status": status}

    def rate_headers(self, limit: int, count: int, reset: float) -> dict[str, str]:
        return {"x-rate-limit-limit": str(limit), "x-rate-limit-remaining": str(max(0, limit - count)),
                "x-rate-limit-reset": str(int(reset))}

    def platform_fault(self, fault: Fault, req: Request) -> Any:
        now = self.clock.time()
        if fault.kind == "429":
            reset = now + fault.extra.get("reset_in", 60)
            remaining = fault.extra.get("remaining", 0)
            return Response(429, self.problem(429, "Too Many Requests", "Too Many Requests"),
                            {"x-rate-limit-limit": "450", "x-rate-limit-remaining": str(remaining),
                             "x-rate-limit-reset": str(int(reset))})
        if fault.kind == "401":
            return Response(401, self.problem(401, "Unauthorized", "Unauthorized"))
        if fault.kind == "echo":  # a careless server quoting the request back
            return Response(400, self.problem(400, "Invalid Request", f"bad header: {req.auth}"))
        if fault.kind == "403":
            return Response(403, self.problem(403, "Forbidden", "You are not permitted to use this endpoint.",
                                              "https://api.twitter.com/2/problems/client-forbidden"))
        raise ValueError(fault.kind)

    def route(self, req: Request) -> Any:
        if self.bearer(req) != self.token:
            return Response(401, self.problem(401, "Unauthorized", "Unauthorized"))
        if req.path not in self.LIMITS:
            return Response(404, self.problem(404, "Not Found Error", f"no route {req.path}"))
        limit, window = self.LIMITS[req.path]
        count, reset = self.count(req.path, window)
        headers = self.rate_headers(limit, count, reset)
        if count > limit:
            return Response(429, self.problem(429, "Too Many Requests", "Too Many Requests"), headers)
        if req.path == "/2/tweets/search/all":
            if self.archive_forbidden:
                return Response(403, self.problem(403, "Client Forbidden", "This endpoint requires Pro access",
                                                  "https://api.twitter.com/2/problems/client-forbidden"), headers)
            now = self.clock.time()
            if self._last_all is not None and now - self._last_all < 1.0:
                self._last_all = now
                return Response(429, self.problem(429, "Too Many Requests", "Too Many Requests"), headers)
            self._last_all = now
        if req.path == "/2/tweets":
            return self.lookup(req, headers)
        return self.search(req, headers)

    def bad(self, detail: str, headers: dict) -> Response:
        return Response(400, {"errors": [{"parameters": {}, "message": detail}], "title": "Invalid Request",
                              "detail": "One or more parameters to your request was invalid.",
                              "type": "https://api.twitter.com/2/problems/invalid-request"}, headers)

    def _matcher(self, query: str) -> Callable[[ChatPost], bool]:
        groups = [g.split() for g in re.split(r"\s+OR\s+", query.strip())]

        def term_ok(p: ChatPost, term: str) -> bool:
            neg = term.startswith("-")
            t = term[1:] if neg else term
            if t == "is:retweet":
                ok = False
            elif t.startswith("#"):
                ok = t[1:].lower() in self.lower_tags[p.n]
            elif t.startswith("conversation_id:"):
                ok = x_id(self.by_n[self.idx.root[p.n]]) == t.split(":", 1)[1]
            else:
                ok = t.lower() in p.text.lower()
            return ok != neg

        return lambda p: any(all(term_ok(p, t) for t in g) for g in groups)

    def search(self, req: Request, headers: dict) -> Response:
        recent = req.path.endswith("/recent")
        query = req.param("query")
        if not query:
            return self.bad("query is required", headers)
        try:
            max_results = int(req.param("max_results") or 10)
        except ValueError:
            return self.bad("max_results must be a number", headers)
        if not 10 <= max_results <= (100 if recent else 500):
            return self.bad(f"max_results {max_results} out of range", headers)
        if req.param("start_time") and req.param("since_id"):
            return self.bad("start_time and since_id cannot both be given", headers)
        now = self.clock.time()
        try:
            start = parse_time(req.param("start_time")) if req.param("start_time") else None
            end = parse_time(req.param("end_time")) if req.param("end_time") else None
        except ValueError:
            return self.bad("invalid start_time/end_time", headers)
        if recent and start is not None and start < now - 7 * 86400:
            return self.bad("start_time must be within the last 7 days", headers)
        if end is not None and end > now - 10:
            return self.bad("end_time must be a minimum of 10 seconds prior to the request time", headers)
        since_id = int(req.param("since_id")) if req.param("since_id") else None
        until_id = int(req.param("until_id")) if req.param("until_id") else None
        if recent and start is None and since_id is None:
            start = now - 7 * 86400
        cursor = None
        token = req.param("next_token") or req.param("pagination_token")
        if token:
            try:
                cursor = int(base64.urlsafe_b64decode(token.encode()).decode())
            except ValueError:
                return self.bad("invalid next_token", headers)
        match = self._matcher(query)
        hits = []
        for p in self.visible():
            i = self.int_id[p.n]
            if (start is not None and p.t < start) or (end is not None and p.t >= end):
                continue
            if (since_id is not None and i <= since_id) or (until_id is not None and i >= until_id):
                continue
            if cursor is not None and i >= cursor:
                continue
            if match(p):
                hits.append(p)
        hits.sort(key=lambda p: self.int_id[p.n], reverse=True)
        page, more = hits[:max_results], len(hits) > max_results
        return Response(200, self.page(page, req, more), headers)

    def lookup(self, req: Request, headers: dict) -> Response:
        ids = (req.param("ids") or "").split(",")
        if not ids or len(ids) > 100:
            return self.bad("ids must hold 1 to 100 ids", headers)
        found = [self.by_id[i] for i in ids if i in self.by_id and self.by_id[i].t <= self.clock.time()]
        body = self.page(found, req, False, meta=False)
        missing = [i for i in ids if i not in self.by_id]
        if missing:
            body["errors"] = [{"value": i, "detail": f"Could not find tweet with ids: [{i}].",
                               "title": "Not Found Error", "resource_type": "tweet", "parameter": "ids",
                               "resource_id": i, "type": "https://api.twitter.com/2/problems/resource-not-found"}
                              for i in missing]
        return Response(200, body, headers)

    def tweet(self, p: ChatPost, fields: set[str]) -> dict:
        full = self._tweets.get(p.n)
        if full is None:
            full = self._tweets[p.n] = self._tweet(p)
        keep = fields | {"id", "text", "edit_history_tweet_ids"}
        return {k: v for k, v in full.items() if k in keep}

    def _tweet(self, p: ChatPost) -> dict:
        tid = x_id(p)
        full: dict[str, Any] = {
            "id": tid, "text": html.escape(p.text, quote=False), "edit_history_tweet_ids": [tid],
            "author_id": x_user_id(p.author),
            "conversation_id": x_id(self.by_n[self.idx.root[p.n]]),
            "created_at": iso_ms(p.t), "lang": "en",
            "public_metrics": {"retweet_count": 0, "reply_count": self.idx.replies.get(p.n, 0),
                               "like_count": p.likes, "quote_count": 0, "bookmark_count": 0, "impression_count": 10},
        }
        ents: dict[str, list] = {}
        for m in re.finditer(r"#(\w+)", p.text):
            ents.setdefault("hashtags", []).append({"start": m.start(), "end": m.end(), "tag": m.group(1)})
        for m in re.finditer(r"@(\w+)", p.text):
            ents.setdefault("mentions", []).append({"start": m.start(), "end": m.end(), "username": m.group(1),
                                                    "id": x_user_id(m.group(1))})
        if ents:
            full["entities"] = ents
        if p.reply_to is not None and p.reply_to in self.by_n:
            parent = self.by_n[p.reply_to]
            full["referenced_tweets"] = [{"type": "replied_to", "id": x_id(parent)}]
            full["in_reply_to_user_id"] = x_user_id(parent.author)
        return full

    def user(self, handle: str, fields: set[str]) -> dict:
        full = {"id": x_user_id(handle), "username": handle, "name": handle.title(),
                "profile_image_url": f"https://pbs.twimg.com/profile_images/{handle}_normal.jpg",
                "created_at": "2015-01-01T00:00:00.000Z", "verified": False,
                "public_metrics": {"followers_count": 10, "following_count": 10, "tweet_count": 100, "listed_count": 0}}
        return {k: v for k, v in full.items() if k in fields | {"id", "username", "name"}}

    def page(self, posts: list[ChatPost], req: Request, more: bool, meta: bool = True) -> dict:
        fields = set((req.param("tweet.fields") or req.param("post.fields") or "").split(","))
        expansions = set((req.param("expansions") or "").split(","))
        ufields = set((req.param("user.fields") or "").split(","))
        body: dict[str, Any] = {}
        if posts:
            body["data"] = [self.tweet(p, fields) for p in posts]
            includes: dict[str, list] = {}
            users: dict[str, str] = {}
            if "author_id" in expansions:
                for p in posts:
                    users[x_user_id(p.author)] = p.author
            refs = []
            if "referenced_tweets.id" in expansions or "referenced_posts" in expansions:
                ids = {x_id(p) for p in posts}
                for p in posts:
                    if p.reply_to is not None and p.reply_to in self.by_n:
                        parent = self.by_n[p.reply_to]
                        if x_id(parent) not in ids and parent not in refs:
                            refs.append(parent)
                if refs:
                    includes["tweets"] = [self.tweet(r, fields) for r in refs]
            if "referenced_tweets.id.author_id" in expansions:
                for r in refs:
                    users[x_user_id(r.author)] = r.author
            if "in_reply_to_user_id" in expansions:
                for p in posts:
                    if p.reply_to is not None and p.reply_to in self.by_n:
                        a = self.by_n[p.reply_to].author
                        users[x_user_id(a)] = a
            if users:
                includes["users"] = [self.user(h, ufields) for h in users.values()]
            if includes:
                body["includes"] = includes
        if meta:
            m: dict[str, Any] = {"result_count": len(posts)}
            if posts:
                m["newest_id"] = x_id(posts[0])
                m["oldest_id"] = x_id(posts[-1])
            if more and posts:
                m["next_token"] = base64.urlsafe_b64encode(x_id(posts[-1]).encode()).decode()
            body["meta"] = m
        return body


# --------------------------------------------------------------------------
# Mastodon


class FakeMastodon(FakeServer):
    """``/api/v1/timelines/tag/:tag``, ``/api/v1/statuses/:id/context``, ``/api/v2/instance``."""

    name = "fake-mastodon"
    LIMIT, WINDOW = 300, 300.0  # per IP / account
    PAGING_LIMIT, PAGING_WINDOW = 300, 900.0  # requests with max_id/min_id/since_id

    def __init__(self, posts: Iterable[ChatPost] = (), *, domain: str = "mastodon.example", clock: Any = None,
                 token: str | None = None, unknown_tag: str = "empty", salt: int = 0,
                 home: Callable[[str], str] | None = None, **kw: Any):
        super().__init__(clock, **kw)
        self.domain = domain
        self.token = token  # None: public timelines
        self.unknown_tag = unknown_tag  # "empty" (stored code) or "404" (the docs)
        self.salt = salt
        self.home = home or (lambda author: domain)
        self.posts: list[ChatPost] = []
        self.add(posts)

    def add(self, posts: Iterable[ChatPost]) -> None:
        with self.lock:
            self.posts.extend(posts)
            self.idx = Index(self.posts)
            self.by_n = self.idx.by_n
            self.by_local = {self.local_id(p): p for p in self.posts}
            # per tag: (sort key of the local id, local id, post), newest first
            self.by_tag: dict[str, list] = {}
            for i, p in self.by_local.items():
                for t in {t.lower() for t in p.tags}:
                    self.by_tag.setdefault(t, []).append(((len(i), i), i, p))
            for entries in self.by_tag.values():
                entries.sort(reverse=True)
            self._rendered: dict[int, dict] = {}

    def local_id(self, p: ChatPost) -> str:
        # vanilla Mastodon snowflake: ms << 16 | 16 low bits (differ per server)
        return str((int(p.t * 1000) << 16) + ((p.n * 7919 + self.salt * 104729) & 0xFFFF))

    def uri(self, p: ChatPost) -> str:
        return f"https://{self.home(p.author)}/users/{p.author}/statuses/{p.n}"

    def acct(self, author: str) -> str:
        h = self.home(author)
        return author if h == self.domain else f"{author}@{h}"

    def account(self, author: str) -> dict:
        h = self.home(author)
        return {"id": str(100000 + x_user_id_int(author) + self.salt), "username": author, "acct": self.acct(author),
                "display_name": author.title(), "url": f"https://{h}/@{author}", "uri": f"https://{h}/users/{author}",
                "avatar": f"https://files.{self.domain}/avatars/{author}.png",
                "avatar_static": f"https://files.{self.domain}/avatars/{author}.png", "bot": False}

    def rendered(self, p: ChatPost) -> dict:
        got = self._rendered.get(p.n)
        if got is None:
            got = self._rendered[p.n] = self.status(p)
        return got

    def status(self, p: ChatPost) -> dict:
        def linkify(text: str) -> str:
            out = html.escape(text, quote=False)
            out = re.sub(r"#(\w+)", lambda m: f'<a href="https://{self.domain}/tags/{m.group(1).lower()}" '
                         f'class="mention hashtag" rel="tag">#<span>{m.group(1)}</span></a>', out)
            out = re.sub(r"@(\w+)", lambda m: f'<span class="h-card" translate="no"><a href="https://'
                         f'{self.home(m.group(1))}/@{m.group(1)}" class="u-url mention">@<span>{m.group(1)}'
                         f'</span></a></span>', out)
            return f"<p>{out}</p>"

        parent = self.by_n.get(p.reply_to) if p.reply_to is not None else None
        mentions = [{"id": self.account(m)["id"], "username": m, "acct": self.acct(m), "url": f"https://{self.home(m)}/@{m}"}
                    for m in re.findall(r"@(\w+)", p.text)]
        return {
            "id": self.local_id(p), "uri": self.uri(p), "url": f"https://{self.home(p.author)}/@{p.author}/{p.n}",
            "created_at": iso_ms(p.t), "edited_at": None,
            "in_reply_to_id": self.local_id(parent) if parent else None,
            "in_reply_to_account_id": self.account(parent.author)["id"] if parent else None,
            "sensitive": False, "spoiler_text": "", "visibility": "public", "language": "en",
            "replies_count": self.idx.replies.get(p.n, 0), "reblogs_count": 0,
            "favourites_count": p.likes, "quotes_count": 0,
            "content": linkify(p.text), "reblog": None, "quote": None, "account": self.account(p.author),
            "media_attachments": [], "mentions": mentions,
            "tags": [{"name": t.lower(), "url": f"https://{self.domain}/tags/{t.lower()}"} for t in p.tags],
            "emojis": [], "card": None, "poll": None,
        }

    def rate(self, req: Request) -> tuple[bool, dict[str, str]]:
        c1, r1 = self.count("all", self.WINDOW)
        rem, lim, reset = self.LIMIT - c1, self.LIMIT, r1
        over = c1 > self.LIMIT
        if any(req.param(k) for k in ("max_id", "min_id", "since_id")):
            c2, r2 = self.count("paging", self.PAGING_WINDOW)
            over = over or c2 > self.PAGING_LIMIT
            if self.PAGING_LIMIT - c2 < rem:  # the limit closest to being exceeded
                rem, lim, reset = self.PAGING_LIMIT - c2, self.PAGING_LIMIT, r2
        dt = datetime.fromtimestamp(reset, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return over, {"X-RateLimit-Limit": str(lim), "X-RateLimit-Remaining": str(max(0, rem)), "X-RateLimit-Reset": dt}

    def platform_fault(self, fault: Fault, req: Request) -> Any:
        if fault.kind == "429":
            reset = datetime.fromtimestamp(self.clock.time() + fault.extra.get("reset_in", 60), tz=timezone.utc)
            return Response(429, {"error": "Too many requests"},
                            {"X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "0",
                             "X-RateLimit-Reset": reset.strftime("%Y-%m-%dT%H:%M:%S.%fZ")})
        if fault.kind == "401":
            return Response(401, {"error": "The access token is invalid"})
        if fault.kind == "403":
            return Response(403, {"error": "This action is not allowed"})
        raise ValueError(fault.kind)

    def route(self, req: Request) -> Any:
        if self.token is not None and self.bearer(req) != self.token:
            return Response(401, {"error": "The access token is invalid"})
        over, headers = self.rate(req)
        if over:
            return Response(429, {"error": "Too many requests"}, headers)
        m = re.fullmatch(r"/api/v1/timelines/tag/([^/]+)", req.path)
        if m:
            return self.tag_timeline(req, m.group(1), headers)
        m = re.fullmatch(r"/api/v1/statuses/(\d+)/context", req.path)
        if m:
            return self.context(m.group(1), headers)
        if req.path == "/api/v2/instance":
            return Response(200, {"domain": self.domain, "version": "4.4.0"}, headers)
        return Response(404, {"error": "Not Found"}, headers)

    def tag_timeline(self, req: Request, tag: str, headers: dict) -> Response:
        now = self.clock.time()
        if tag.lower() not in self.by_tag and self.unknown_tag == "404":
            return Response(404, {"error": "Record not found"}, headers)
        try:
            limit = min(40, max(1, int(req.param("limit") or 20)))
        except ValueError:
            limit = 20
        key = lambda s: (len(s), s)  # noqa: E731
        max_id, since_id, min_id = req.param("max_id"), req.param("since_id"), req.param("min_id")
        lo = max((key(v) for v in (since_id, min_id) if v), default=None)
        hi = key(max_id) if max_id else None
        statuses = [i for k, i, p in self.by_tag.get(tag.lower(), [])
                    if p.t <= now and (lo is None or k > lo) and (hi is None or k < hi)]
        if min_id:
            page = statuses[-limit:]  # the ones right after min_id (newest first)
        else:
            page = statuses[:limit]
        body = [self.rendered(self.by_local[s]) for s in page]
        if page:
            keep = {k: v[0] for k, v in req.params.items() if k in ("limit", "local", "only_media")}
            base = f"{self.public_url}/api/v1/timelines/tag/{quote(tag)}"
            nxt = urlencode({**keep, "max_id": page[-1]})
            prv = urlencode({**keep, "min_id": page[0]})
            headers = {**headers, "Link": f'<{base}?{nxt}>; rel="next", <{base}?{prv}>; rel="prev"'}
        return Response(200, body, headers)

    @property
    def public_url(self) -> str:
        return self.url

    def context(self, local: str, headers: dict) -> Response:
        p = self.by_local.get(local)
        if p is None or p.t > self.clock.time():
            return Response(404, {"error": "Record not found"}, headers)
        ancestors = []
        cur = p
        while cur.reply_to is not None and cur.reply_to in self.by_n and len(ancestors) < 40:
            cur = self.by_n[cur.reply_to]
            ancestors.append(cur)
        ancestors.reverse()
        descendants = []
        stack = [p.n]
        children: dict[int, list[ChatPost]] = {}
        for q in sorted(self.posts, key=lambda q: q.t):
            if q.reply_to is not None and q.t <= self.clock.time():
                children.setdefault(q.reply_to, []).append(q)
        while stack and len(descendants) < 60:
            n = stack.pop()
            kids = children.get(n, [])
            for k in reversed(kids):
                stack.append(k.n)
            if n != p.n:
                descendants.append(self.by_n[n])
        return Response(200, {"ancestors": [self.rendered(a) for a in ancestors],
                              "descendants": [self.rendered(d) for d in descendants]}, headers)


def x_user_id_int(handle: str) -> int:
    return int(x_user_id(handle))


# --------------------------------------------------------------------------
# Bluesky


def did_of(author: str) -> str:
    return f"did:plc:{author}fake{len(author)}"


def rkey_of(p: ChatPost) -> str:
    alphabet = "234567abcdefghijklmnopqrstuvwxyz"
    v, out = int(p.t * 1_000_000) * 1024 + p.n % 1024, ""
    while v:
        v, r = divmod(v, 32)
        out = alphabet[r] + out
    return out.rjust(13, "2")


def at_uri(p: ChatPost) -> str:
    return f"at://{did_of(p.author)}/app.bsky.feed.post/{rkey_of(p)}"


class FakeBluesky(FakeServer):
    """A PDS/entryway: createSession, refreshSession, searchPosts, getPostThread."""

    name = "fake-bluesky"
    LIMIT, WINDOW = 3000, 300.0
    SESSION_LIMIT, SESSION_WINDOW = 30, 300.0

    def __init__(self, posts: Iterable[ChatPost] = (), *, handle: str = "tester.bsky.social",
                 password: str = "abcd-efgh-ijkl-mnop", clock: Any = None, require_auth: bool = True,
                 public_html_403: bool = False, access_ttl: float | None = None, **kw: Any):
        super().__init__(clock, **kw)
        self.handle = handle
        self.password = password
        self.require_auth = require_auth
        self.public_html_403 = public_html_403
        self.access_ttl = access_ttl
        self.access: dict[str, float] = {}  # token -> expiry (inf: none)
        self.refresh: set[str] = set()
        self.expired: set[str] = set()
        self.issued: list[str] = []  # every JWT ever handed out (tests grep for them)
        self.posts: list[ChatPost] = []
        self.add(posts)

    def add(self, posts: Iterable[ChatPost]) -> None:
        with self.lock:
            self.posts.extend(posts)
            self.idx = Index(self.posts)
            self.by_n = self.idx.by_n
            self.by_uri = {at_uri(p): p for p in self.posts}
            self.uri_of = {p.n: at_uri(p) for p in self.posts}
            self._views: dict[int, dict] = {}
            self.lower_tags = {p.n: {t.lower() for t in p.tags} for p in self.posts}

    def sort_at(self, p: ChatPost) -> float:
        return min(p.t, p.t + p.index_delay)

    def indexed(self, p: ChatPost) -> bool:
        return p.t + p.index_delay <= self.clock.time()

    def expire_access_tokens(self) -> None:
        with self.lock:
            self.expired.update(self.access)
            self.access.clear()

    def _jwt(self, kind: str) -> str:
        tok = f"eyJ0eXAiOiJhdCtqd3QifQ.{kind}{secrets.token_hex(12)}.sig{secrets.token_hex(6)}"
        self.issued.append(tok)
        return tok

    def _new_session(self) -> dict:
        access, refresh = self._jwt("acc"), self._jwt("ref")
        ttl = self.access_ttl if self.access_ttl is not None else float("inf")
        self.access[access] = self.clock.time() + ttl
        self.refresh.add(refresh)
        return {"accessJwt": access, "refreshJwt": refresh, "handle": self.handle, "did": did_of("tester"),
                "active": True, "didDoc": {"id": did_of("tester"),
                                           "service": [{"id": "#atproto_pds", "type": "AtprotoPersonalDataServer",
                                                        "serviceEndpoint": self.url}]}}

    def rate_headers(self, count: int, reset: float, limit: int | None = None, window: float | None = None) -> dict:
        limit = limit or self.LIMIT
        window = window or self.WINDOW
        return {"RateLimit-Limit": str(limit), "RateLimit-Remaining": str(max(0, limit - count)),
                "RateLimit-Reset": str(int(reset)), "RateLimit-Policy": f"{limit};w={int(window)}"}

    def platform_fault(self, fault: Fault, req: Request) -> Any:
        if fault.kind == "429":
            reset = self.clock.time() + fault.extra.get("reset_in", 60)
            return Response(429, {"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"},
                            {"RateLimit-Limit": "3000", "RateLimit-Remaining": "0",
                             "RateLimit-Reset": str(int(reset)), "RateLimit-Policy": "3000;w=300"})
        if fault.kind == "expired":
            return Response(400, {"error": "ExpiredToken", "message": "Token has expired"})
        if fault.kind == "401":
            return Response(401, {"error": "AuthenticationRequired", "message": "Authentication Required"})
        if fault.kind == "403":
            return Response(403, {"error": "AuthMissing", "message": "Authentication Required"})
        if fault.kind == "html403":
            return Response(403, "<html><head><title>403 Forbidden</title></head><body>Request forbidden by "
                                 "administrative rules.</body></html>", content_type="text/html")
        raise ValueError(fault.kind)

    def _auth(self, req: Request) -> Response | None:
        tok = self.bearer(req)
        if tok is None:
            if not self.require_auth:
                return None
            if self.public_html_403:
                return Response(403, "<html><head><title>403 Forbidden</title></head><body>Request forbidden "
                                     "by administrative rules.</body></html>", content_type="text/html")
            return Response(401, {"error": "AuthenticationRequired", "message": "Authentication Required"})
        exp = self.access.get(tok)
        if tok in self.expired or (exp is not None and exp <= self.clock.time()):
            return Response(400, {"error": "ExpiredToken", "message": "Token has expired"})
        if exp is None:
            return Response(400, {"error": "InvalidToken", "message": "Token could not be verified"})
        return None

    def route(self, req: Request) -> Any:
        if req.path == "/xrpc/com.atproto.server.createSession" and req.method == "POST":
            count, reset = self.count("createSession", self.SESSION_WINDOW)
            h = self.rate_headers(count, reset, self.SESSION_LIMIT, self.SESSION_WINDOW)
            if count > self.SESSION_LIMIT:
                return Response(429, {"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"}, h)
            b = req.body if isinstance(req.body, dict) else {}
            if b.get("identifier") != self.handle or b.get("password") != self.password:
                return Response(401, {"error": "AuthenticationRequired", "message": "Invalid identifier or password"}, h)
            return Response(200, self._new_session(), h)
        count, reset = self.count("all", self.WINDOW)
        headers = self.rate_headers(count, reset)
        if count > self.LIMIT:
            return Response(429, {"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"}, headers)
        if req.path == "/xrpc/com.atproto.server.refreshSession" and req.method == "POST":
            tok = self.bearer(req)
            if tok not in self.refresh:
                return Response(400, {"error": "ExpiredToken", "message": "Token has been revoked"}, headers)
            self.refresh.discard(tok)
            return Response(200, self._new_session(), headers)
        if req.path == "/xrpc/app.bsky.feed.searchPosts":
            denied = self._auth(req)
            return denied if denied is not None else self.search(req, headers)
        if req.path == "/xrpc/app.bsky.feed.getPostThread":
            denied = self._auth(req) if self.bearer(req) else None
            return denied if denied is not None else self.thread(req, headers)
        return Response(404, {"error": "MethodNotImplemented", "message": "Method Not Implemented"}, headers)

    def view(self, p: ChatPost) -> dict:
        got = self._views.get(p.n)
        if got is None:
            got = self._views[p.n] = self._view(p)
        return got

    def _view(self, p: ChatPost) -> dict:
        record: dict[str, Any] = {"$type": "app.bsky.feed.post", "text": p.text, "createdAt": iso_ms(p.t), "langs": ["en"]}
        facets = []
        raw = p.text.encode("utf-8")
        for m in re.finditer(rb"#(\w+)", raw):
            facets.append({"index": {"byteStart": m.start(), "byteEnd": m.end()},
                           "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": m.group(1).decode()}]})
        for m in re.finditer(rb"@(\w+)", raw):
            facets.append({"index": {"byteStart": m.start(), "byteEnd": m.end()},
                           "features": [{"$type": "app.bsky.richtext.facet#mention", "did": did_of(m.group(1).decode())}]})
        if facets:
            record["facets"] = facets
        if p.reply_to is not None and p.reply_to in self.by_n:
            parent = self.by_n[p.reply_to]
            root = self.by_n[self.idx.root[p.n]]
            record["reply"] = {"root": {"uri": at_uri(root), "cid": f"bafyroot{root.n}"},
                               "parent": {"uri": at_uri(parent), "cid": f"bafyparent{parent.n}"}}
        return {
            "uri": at_uri(p), "cid": f"bafyfake{p.n}",
            "author": {"did": did_of(p.author), "handle": f"{p.author}.bsky.social", "displayName": p.author.title(),
                       "avatar": f"https://cdn.bsky.app/img/avatar/plain/{did_of(p.author)}/x@jpeg"},
            "record": record, "replyCount": self.idx.replies.get(p.n, 0),
            "repostCount": 0, "likeCount": p.likes, "quoteCount": 0,
            "indexedAt": iso_ms(p.t + p.index_delay), "labels": [],
        }

    def search(self, req: Request, headers: dict) -> Response:
        q = req.param("q")
        if not q:
            return Response(400, {"error": "InvalidRequest", "message": 'Error: Params must have the property "q"'}, headers)
        try:
            limit = int(req.param("limit") or 25)
        except ValueError:
            limit = -1
        if not 1 <= limit <= 100:
            return Response(400, {"error": "InvalidRequest", "message": "limit must be between 1 and 100"}, headers)
        try:
            since = parse_time(req.param("since")) if req.param("since") else None
            until = parse_time(req.param("until")) if req.param("until") else None
        except ValueError:
            return Response(400, {"error": "BadQueryString", "message": "invalid since/until"}, headers)
        tags = req.params.get("tag", [])
        words = [w for w in q.split() if not w.startswith("#")]
        qtags = [w[1:] for w in q.split() if w.startswith("#")]
        after = None
        if req.param("cursor"):
            try:
                s, uri = base64.urlsafe_b64decode(req.param("cursor").encode()).decode().split("|", 1)
                after = (float(s), uri)
            except ValueError:
                return Response(400, {"error": "InvalidRequest", "message": "bad cursor"}, headers)
        hits = []
        for p in self.posts:
            if not self.indexed(p):
                continue
            st = self.sort_at(p)
            if (since is not None and st < since) or (until is not None and st >= until):
                continue
            if not all(t.lower() in self.lower_tags[p.n] for t in tags + qtags):
                continue
            if not all(w.lower() in p.text.lower() for w in words):
                continue
            k = (st, self.uri_of[p.n])
            if after is not None and not k < after:
                continue
            hits.append((k, p))
        hits.sort(key=lambda kp: kp[0], reverse=True)
        page = hits[:limit]
        body: dict[str, Any] = {"posts": [self.view(p) for _, p in page], "hitsTotal": len(hits)}
        if len(hits) > limit:
            k = page[-1][0]
            body["cursor"] = base64.urlsafe_b64encode(f"{k[0]}|{k[1]}".encode()).decode()
        return Response(200, body, headers)

    def thread(self, req: Request, headers: dict) -> Response:
        uri = req.param("uri") or ""
        p = self.by_uri.get(uri)
        if p is None or not self.indexed(p):
            return Response(400, {"error": "NotFound", "message": f"Post not found: {uri}"}, headers)
        depth = int(req.param("depth") or 6)
        height = int(req.param("parentHeight") or 80)
        children: dict[int, list[ChatPost]] = {}
        for q in sorted(self.posts, key=lambda q: q.t):
            if q.reply_to is not None and self.indexed(q):
                children.setdefault(q.reply_to, []).append(q)

        def down(node: ChatPost, d: int) -> dict:
            out: dict[str, Any] = {"$type": "app.bsky.feed.defs#threadViewPost", "post": self.view(node)}
            if d < depth:
                out["replies"] = [down(c, d + 1) for c in children.get(node.n, [])]
            return out

        top = down(p, 0)
        cur, node, h = p, top, 0
        while cur.reply_to is not None and h < height:
            parent = self.by_n.get(cur.reply_to)
            if parent is None:
                node["parent"] = {"$type": "app.bsky.feed.defs#notFoundPost", "uri": "at://gone", "notFound": True}
                break
            node["parent"] = {"$type": "app.bsky.feed.defs#threadViewPost", "post": self.view(parent)}
            node, cur, h = node["parent"], parent, h + 1
        return Response(200, {"thread": top}, headers)


# --------------------------------------------------------------------------
# Request-log arithmetic (tests and bench/capture_requests.py)


def max_in_window(times: list[float], window: float) -> int:
    """The most requests in any sliding window of ``window`` seconds."""
    times = sorted(times)
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - window:
            j += 1
        best = max(best, i - j + 1)
    return best
