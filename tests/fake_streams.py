"""Fake streaming servers speaking the real protocols on 127.0.0.1.

* :class:`FakeJetstream`: a WebSocket server (``websockets``) with the
  classic ``/subscribe`` (``wantedCollections``, ``time_us`` cursors) and/or
  the 2026 ``/xrpc/network.bsky.jetstream.subscribeEvents`` (subprotocol
  ``xrpc.v1.json``, ``{"$type": "message", "payload"}`` frames, sequence
  cursors, ``CursorTooOld`` before the upgrade).  It keeps a log of events,
  replays it from a cursor, and sends new events live as their time comes.
  Faults: drop the connection after N events, send an event twice.
* :class:`FakeAppView`: ``app.bsky.actor.getProfiles`` (25 actors at most).
* :class:`FakeMastodonStreaming`: :class:`fake_servers.FakeMastodon` plus
  ``/api/v1/streaming/hashtag`` as server-sent events (``update``,
  ``status.update``, ``delete``, ``:thump`` heartbeats; a user token
  required) and ``/api/v2/instance`` naming the streaming URL.  A post is
  streamed to the connections open when its time comes (the stream has no
  memory: what a client misses, it must fill from the timeline).
* :class:`FakeXStream`: :class:`fake_servers.FakeX` plus the filtered
  stream: ``/2/tweets/search/stream/rules`` (add, delete, list, duplicate
  rules) and ``/2/tweets/search/stream`` (one JSON line per post with
  ``matching_rules``, ``\\r\\n`` keep-alives, one connection at a time, an
  ``operational-disconnect`` error line on request).

Posts come from :func:`fake_servers.make_chat`, so the same chat can be
searched, polled and streamed.
"""

from __future__ import annotations

import itertools
import json
import queue
import re
import socket
import threading
import time
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fake_servers import (
    DROP,
    ChatPost,
    FakeBluesky,
    FakeMastodon,
    FakeServer,
    FakeX,
    Request,
    Response,
    _Handler,
    did_of,
    rkey_of,
)

POST = "app.bsky.feed.post"
EVENTS_PATH = "/xrpc/network.bsky.jetstream.subscribeEvents"


def iso_us(t: float) -> str:
    return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def author_of_did(did: str) -> str | None:
    m = re.fullmatch(r"did:plc:(.+)fake\d+", did)
    return m.group(1) if m else None


class _Ticker:
    """Calls ``fn(now)`` every ``every`` seconds in a thread (the fakes
    announce posts whose time has come)."""

    def __init__(self, fn: Any, every: float = 0.02):
        self.fn, self.every = fn, every
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name="fake-ticker")

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        while not self.stop_event.wait(self.every):
            try:
                self.fn(time.time())
            except Exception:  # a fake's bug must not kill the ticker silently: record it
                import traceback
                traceback.print_exc()

    def stop(self) -> None:
        self.stop_event.set()


# --------------------------------------------------------------------------
# Jetstream


class FakeJetstream:
    """See the module docstring.  ``protocols``: which endpoints exist."""

    def __init__(self, *, protocols: Iterable[str] = ("v1",), floor_seq: int = 0):
        self.protocols = set(protocols)
        self.floor_seq = floor_seq  # v2: sequence cursors below this are CursorTooOld
        self.log: list[dict] = []  # {seq, time_us, kind, did, ...}
        self.scheduled: list[tuple[float, dict]] = []  # (epoch seconds, event) not yet in the log
        self.cond = threading.Condition()
        self.connections: list[dict] = []  # what each client asked for
        self.sent: list[int] = []  # events sent per connection
        self.last_sent: list[int | None] = []  # time_us of the last event each connection got
        self.drop_after: list[int] = []  # the next connections are dropped after this many events
        self.duplicate_seqs: set[int] = set()  # events sent twice
        self.running = False
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._seq = itertools.count(1000)
        self._ticker = _Ticker(self._tick)
        self._socks: list[Any] = []

    # -- lifecycle
    def start(self) -> FakeJetstream:
        from websockets.sync.server import serve

        self.running = True
        self._server = serve(self._handler, "127.0.0.1", 0, select_subprotocol=self._subprotocol,
                             process_request=self._process_request, compression=None, ping_interval=None)
        self.port = self._server.socket.getsockname()[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name="fake-jetstream")
        self._thread.start()
        self._ticker.start()
        return self

    def stop(self) -> None:
        self.running = False
        self._ticker.stop()
        with self.cond:
            self.cond.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server = None
        for s in list(self._socks):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __enter__(self) -> FakeJetstream:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    # -- events
    def publish(self, *events: dict) -> None:
        """Into the log now (sent to live connections at once)."""
        with self.cond:
            for ev in events:
                ev = dict(ev)
                ev["seq"] = next(self._seq)
                ev.setdefault("time_us", int(time.time() * 1e6))
                self.log.append(ev)
            self.cond.notify_all()

    def schedule(self, events: Iterable[tuple[float, dict]]) -> None:
        """Events that happen at their time (epoch seconds); past ones at once."""
        with self.cond:
            self.scheduled.extend(events)
            self.scheduled.sort(key=lambda te: te[0])
        self._tick(time.time())

    def _tick(self, now: float) -> None:
        due = []
        with self.cond:
            while self.scheduled and self.scheduled[0][0] <= now:
                due.append(self.scheduled.pop(0))
        for t, ev in due:
            self.publish({**ev, "time_us": int(t * 1e6)})

    # -- protocol
    @staticmethod
    def _subprotocol(connection: Any, offered: list[str]) -> Any:
        # the 2026 endpoint speaks xrpc.v1.json; the classic one none
        return "xrpc.v1.json" if "xrpc.v1.json" in offered else None

    def _process_request(self, connection: Any, request: Any) -> Any:
        parts = urlsplit(request.path)
        params = parse_qs(parts.query)
        proto = "v2" if parts.path == EVENTS_PATH else "v1" if parts.path == "/subscribe" else None
        if proto is None or proto not in self.protocols:
            return connection.respond(404, "404 page not found\n")
        if proto == "v2":
            cursor = params.get("cursor", [None])[0]
            if cursor is not None and int(cursor) < 10**15 and int(cursor) < self.floor_seq:
                return connection.respond(400, json.dumps({"error": "CursorTooOld",
                                                           "message": f"cursor below floor {self.floor_seq}"}))
        return None

    def _start_index(self, proto: str, cursor: int | None) -> int:
        if cursor is None:
            return len(self.log)
        for i, ev in enumerate(self.log):
            if proto == "v2" and cursor < 10**15:
                if ev["seq"] >= cursor:
                    return i
            elif ev["time_us"] >= cursor:
                return i
        return len(self.log)

    def render(self, ev: dict, proto: str) -> str:
        if proto == "v1":
            out = {"did": ev["did"], "time_us": ev["time_us"], "kind": ev["kind"]}
            if ev["kind"] == "commit":
                out["commit"] = {k: ev[k] for k in ("rev", "operation", "collection", "rkey", "record", "cid") if k in ev}
            else:
                out[ev["kind"]] = ev[ev["kind"]]
            return json.dumps(out)
        payload = {"$type": f"network.bsky.jetstream.subscribeEvents#{ev['kind']}", "seq": ev["seq"],
                   "did": ev["did"], "time": iso_us(ev["time_us"] / 1e6), "witnessedAt": iso_us(ev["time_us"] / 1e6)}
        if ev["kind"] == "commit":
            payload.update({k: ev[k] for k in ("rev", "operation", "collection", "rkey", "record", "cid") if k in ev})
        else:
            payload[ev["kind"]] = ev[ev["kind"]]
        return json.dumps({"$type": "message", "payload": payload})

    def _handler(self, ws: Any) -> None:
        parts = urlsplit(ws.request.path)
        params = parse_qs(parts.query)
        proto = "v2" if parts.path == EVENTS_PATH else "v1"
        cursor = int(params["cursor"][0]) if "cursor" in params else None
        wanted = set(params.get("wantedCollections" if proto == "v1" else "collections", []))
        kinds = set(params.get("kinds", []))
        with self.cond:
            self.connections.append({"protocol": proto, "params": params, "subprotocol": ws.subprotocol,
                                     "cursor": cursor, "at": time.time()})
            drop = self.drop_after.pop(0) if self.drop_after else None
            i = self._start_index(proto, cursor)
        sock = ws.socket
        self._socks.append(sock)
        sent = 0
        last: int | None = None
        try:
            while self.running:
                with self.cond:
                    while self.running and i >= len(self.log):
                        self.cond.wait(0.1)
                    if not self.running:
                        return
                    ev = self.log[i]
                i += 1
                if ev["kind"] == "commit" and wanted and ev["collection"] not in wanted:
                    continue
                if proto == "v2" and kinds and ev["kind"] not in kinds:
                    continue
                frame = self.render(ev, proto)
                ws.send(frame)
                if ev["seq"] in self.duplicate_seqs:
                    ws.send(frame)  # at least once: the same event again
                sent += 1
                last = ev["time_us"]
                if drop is not None and sent >= drop:
                    sock.shutdown(socket.SHUT_RDWR)  # no close frame: a dropped connection
                    return
        except Exception:
            return
        finally:
            self.sent.append(sent)
            self.last_sent.append(last)
            if sock in self._socks:
                self._socks.remove(sock)


def post_events(posts: list[ChatPost], *, delay: float = 0.05) -> list[tuple[float, dict]]:
    """(time, create event) for each post, with the record a PDS would hold
    (the one FakeBluesky serves in its PostViews)."""
    fb = FakeBluesky(posts)
    out = []
    for p in posts:
        record = fb._view(p)["record"]
        out.append((p.t + delay, {"kind": "commit", "did": did_of(p.author), "rev": f"3rev{p.n}",
                                  "operation": "create", "collection": POST, "rkey": rkey_of(p),
                                  "record": record, "cid": f"bafyfake{p.n}"}))
    return out


def delete_event(p: ChatPost) -> dict:
    return {"kind": "commit", "did": did_of(p.author), "rev": f"3del{p.n}", "operation": "delete",
            "collection": POST, "rkey": rkey_of(p)}


def like_event(p: ChatPost, who: str = "liker") -> dict:
    return {"kind": "commit", "did": did_of(who), "rev": "3like", "operation": "create",
            "collection": "app.bsky.feed.like", "rkey": f"like{p.n}",
            "record": {"$type": "app.bsky.feed.like", "createdAt": iso_us(p.t),
                       "subject": {"uri": f"at://{did_of(p.author)}/{POST}/{rkey_of(p)}", "cid": f"bafyfake{p.n}"}},
            "cid": f"bafylike{p.n}"}


def identity_event(who: str) -> dict:
    return {"kind": "identity", "did": did_of(who),
            "identity": {"did": did_of(who), "handle": f"{who}-renamed.bsky.social", "seq": 1, "time": iso_us(time.time())}}


def account_event(who: str) -> dict:
    return {"kind": "account", "did": did_of(who),
            "account": {"active": False, "did": did_of(who), "seq": 2, "status": "deactivated",
                        "time": iso_us(time.time())}}


# --------------------------------------------------------------------------
# AppView


class FakeAppView(FakeServer):
    """``app.bsky.actor.getProfiles``: profiles of the fake chat's people."""

    name = "fake-appview"

    def __init__(self, *, unknown: Iterable[str] = (), **kw: Any):
        super().__init__(**kw)
        self.unknown = set(unknown)  # authors the AppView does not know (deleted accounts)

    def route(self, req: Request) -> Any:
        if req.path != "/xrpc/app.bsky.actor.getProfiles":
            return Response(404, {"error": "MethodNotImplemented", "message": "Method Not Implemented"})
        actors = req.params.get("actors", [])
        if not actors or len(actors) > 25:
            return Response(400, {"error": "InvalidRequest", "message": "actors must hold 1 to 25 items"})
        profiles = []
        for did in actors:
            who = author_of_did(did)
            if who is None or who in self.unknown:
                continue
            profiles.append({"did": did, "handle": f"{who}.bsky.social", "displayName": who.title(),
                             "avatar": f"https://cdn.bsky.app/img/avatar/plain/{did}/x@jpeg"})
        return Response(200, {"profiles": profiles},
                        {"RateLimit-Limit": "3000", "RateLimit-Remaining": "2999", "RateLimit-Reset": str(int(time.time()) + 300),
                         "RateLimit-Policy": "3000;w=300"})


# --------------------------------------------------------------------------
# Held HTTP responses (SSE, X stream)


class _Held:
    """One open streaming response: lines queued for it by the fake."""

    def __init__(self, key: Any):
        self.key = key
        self.queue: queue.Queue = queue.Queue()


def _chunk(h: _Handler, data: bytes) -> None:
    h.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
    h.wfile.flush()


def _hold(fake: Any, h: _Handler, held: _Held, content_type: str, heartbeat: bytes, every: float,
          first: bytes = b"") -> None:
    """Write a chunked response from ``held.queue`` until DROP or the fake stops."""
    try:
        h.send_response(200)
        h.send_header("Content-Type", content_type)
        h.send_header("Transfer-Encoding", "chunked")
        h.send_header("Cache-Control", "no-store")
        h.end_headers()
        if first:
            _chunk(h, first)
        else:
            h.wfile.flush()
        while fake.streaming:
            try:
                item = held.queue.get(timeout=every)
            except queue.Empty:
                if heartbeat:
                    _chunk(h, heartbeat)
                continue
            if item is DROP:
                h.close_connection = True
                try:
                    h.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            _chunk(h, item)
    except OSError:
        return
    finally:
        with fake.lock:
            if held in fake.held:
                fake.held.remove(held)


class FakeMastodonStreaming(FakeMastodon):
    """FakeMastodon with the hashtag stream (see the module docstring)."""

    name = "fake-mastodon-streaming"

    def __init__(self, posts: Iterable[ChatPost] = (), *, stream_token: str | None = "stream-token",
                 heartbeat: float = 0.3, streaming_host: bool = True, **kw: Any):
        super().__init__(posts, **kw)
        self.stream_token = stream_token
        self.heartbeat = heartbeat
        self.streaming_host = streaming_host
        self.held: list[_Held] = []
        self.streaming = True
        self.announced: set[int] = set()
        self.stream_log: list[dict] = []  # each stream connection: when, tag, auth
        self._ticker = _Ticker(self._tick)

    def start(self) -> FakeMastodonStreaming:
        super().start()
        self._tick(time.time(), announce=False)  # what existed before the server started is history
        self._ticker.start()
        return self

    def stop(self) -> None:
        self.streaming = False
        self._ticker.stop()
        with self.lock:
            for held in list(self.held):
                held.queue.put(DROP)
        super().stop()

    def _tick(self, now: float, announce: bool = True) -> None:
        with self.lock:
            due = [p for p in self.posts if p.t <= now and p.n not in self.announced]
            for p in due:
                self.announced.add(p.n)
            if not announce:
                return
            for p in sorted(due, key=lambda q: q.t):
                self._push(p, "update", json.dumps(self.rendered(p)))

    def _push(self, p: ChatPost, event: str, data: str) -> None:
        for held in self.held:
            if held.key in {t.lower() for t in p.tags}:
                held.queue.put(f"event: {event}\ndata: {data}\n\n".encode())

    def edit(self, p: ChatPost, text: str, edited_at: float) -> None:
        with self.lock:
            p.text = text
            self._rendered.pop(p.n, None)
            status = dict(self.rendered(p))
            status["edited_at"] = datetime.fromtimestamp(edited_at, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
            self._rendered[p.n] = status
            self._push(p, "status.update", json.dumps(status))

    def delete(self, p: ChatPost) -> None:
        with self.lock:
            local = self.local_id(p)
            tags = {t.lower() for t in p.tags}
            self.posts = [q for q in self.posts if q.n != p.n]
            self.add([])
            for held in self.held:
                if held.key in tags:
                    held.queue.put(f"event: delete\ndata: {local}\n\n".encode())

    def drop_streams(self) -> None:
        with self.lock:
            for held in list(self.held):
                held.queue.put(DROP)

    def route(self, req: Request) -> Any:
        if req.path == "/api/v1/accounts/verify_credentials":
            if self.stream_token is not None and req.auth != f"Bearer {self.stream_token}":
                return Response(401, {"error": "The access token is invalid"})
            return Response(200, {"id": "1", "username": "tester", "acct": "tester"})
        if req.path == "/api/v2/instance":
            body: dict[str, Any] = {"domain": self.domain, "version": "4.4.0"}
            if self.streaming_host:
                body["configuration"] = {"urls": {"streaming": self.url.replace("http://", "ws://")}}
            return Response(200, body)
        return super().route(req)

    def _dispatch(self, h: _Handler, method: str) -> None:
        parts = urlsplit(h.path)
        if not parts.path.startswith("/api/v1/streaming/"):
            return super()._dispatch(h, method)
        params = parse_qs(parts.query)
        auth = h.headers.get("Authorization")
        with self.lock:
            self.stream_log.append({"t": time.time(), "path": parts.path, "params": params, "auth": auth})
        fault = self._take_fault(parts.path)
        if fault is not None and fault.kind == "drop":
            h.close_connection = True
            h.connection.shutdown(socket.SHUT_RDWR)
            return
        ok = self.stream_token is None or auth == f"Bearer {self.stream_token}"
        if fault is not None and fault.kind == "401":
            ok = False
        if not ok:
            data = json.dumps({"error": "Error: Missing access token" if not auth else "Error: Invalid access token"}).encode()
            h.send_response(401)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
            return
        if parts.path != "/api/v1/streaming/hashtag" or not params.get("tag"):
            data = b'{"error":"Unknown stream type"}'
            h.send_response(400)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
            return
        held = _Held(params["tag"][0].lower())
        with self.lock:
            self.held.append(held)
        _hold(self, h, held, "text/event-stream", b":thump\n", self.heartbeat, first=b":)\n")


class FakeXStream(FakeX):
    """FakeX with the filtered stream (see the module docstring)."""

    name = "fake-x-stream"

    def __init__(self, posts: Iterable[ChatPost] = (), *, keepalive: float = 0.3, **kw: Any):
        super().__init__(posts, **kw)
        self.keepalive = keepalive
        self.rules: dict[str, dict] = {}
        self.held: list[_Held] = []
        self.streaming = True
        self.announced: set[int] = set()
        self.stream_log: list[dict] = []
        self.refuse = 0  # the next stream connections get 429 TooManyConnections (another client holds it)
        self._rule_ids = itertools.count(1_700_000_000_000_000_000)
        self._ticker = _Ticker(self._tick)

    def start(self) -> FakeXStream:
        super().start()
        self._tick(time.time(), announce=False)
        self._ticker.start()
        return self

    def stop(self) -> None:
        self.streaming = False
        self._ticker.stop()
        with self.lock:
            for held in list(self.held):
                held.queue.put(DROP)
        super().stop()

    def disconnect(self) -> None:
        with self.lock:
            for held in list(self.held):
                held.queue.put(DROP)

    def operational_disconnect(self) -> None:
        line = json.dumps({"errors": [{"title": "operational-disconnect", "disconnect_type": "UpstreamOperationalDisconnect",
                                       "detail": "This stream has been disconnected upstream for operational reasons.",
                                       "type": "https://api.twitter.com/2/problems/operational-disconnect"}]})
        with self.lock:
            for held in list(self.held):
                held.queue.put(line.encode() + b"\r\n")

    def _tick(self, now: float, announce: bool = True) -> None:
        with self.lock:
            due = [p for p in self.posts if p.t <= now and p.n not in self.announced]
            for p in due:
                self.announced.add(p.n)
            if not announce or not self.held:
                return
            for p in sorted(due, key=lambda q: q.t):
                matching = [r for r in self.rules.values() if self._matcher(r["value"])(p)]
                if not matching:
                    continue
                for held in self.held:
                    req = held.key
                    page = self.page([p], req, False, meta=False)
                    line = {"data": page["data"][0], "matching_rules": [{"id": r["id"], "tag": r["tag"]} for r in matching]}
                    if "includes" in page:
                        line["includes"] = page["includes"]
                    held.queue.put(json.dumps(line).encode() + b"\r\n")

    def route(self, req: Request) -> Any:
        if req.path == "/2/tweets/search/stream/rules":
            if self.bearer(req) != self.token:
                return Response(401, self.problem(401, "Unauthorized", "Unauthorized"))
            return self.rules_call(req)
        return super().route(req)

    def rules_call(self, req: Request) -> Response:
        sent = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        with self.lock:
            if req.method == "GET":
                data = list(self.rules.values())
                body: dict[str, Any] = {"meta": {"sent": sent, "result_count": len(data)}}
                if data:
                    body["data"] = data
                return Response(200, body)
            b = req.body if isinstance(req.body, dict) else {}
            if "add" in b:
                created, errors = [], []
                for r in b["add"]:
                    dup = next((x for x in self.rules.values() if x["value"] == r.get("value")), None)
                    if dup:
                        errors.append({"value": r.get("value"), "id": dup["id"], "title": "DuplicateRule",
                                       "type": "https://api.twitter.com/2/problems/duplicate-rules"})
                        continue
                    rid = str(next(self._rule_ids))
                    rule = {"id": rid, "value": r["value"], "tag": r.get("tag")}
                    self.rules[rid] = rule
                    created.append(rule)
                body = {"meta": {"sent": sent, "summary": {"created": len(created), "not_created": len(errors),
                                                           "valid": len(created), "invalid": len(errors)}}}
                if created:
                    body["data"] = created
                if errors:
                    body["errors"] = errors
                return Response(201 if created else 200, body)
            if "delete" in b:
                ids = (b["delete"] or {}).get("ids") or []
                deleted = [i for i in ids if self.rules.pop(str(i), None)]
                return Response(200, {"meta": {"sent": sent, "summary": {"deleted": len(deleted),
                                                                         "not_deleted": len(ids) - len(deleted)}}})
        return Response(400, self.problem(400, "Invalid Request", "add or delete required"))

    def _dispatch(self, h: _Handler, method: str) -> None:
        parts = urlsplit(h.path)
        if parts.path != "/2/tweets/search/stream":
            return super()._dispatch(h, method)
        params = parse_qs(parts.query)
        auth = h.headers.get("Authorization")
        req = Request(time.time(), method, parts.path, params, None, auth)
        with self.lock:
            entry = {"t": time.time(), "params": params, "auth": auth}
            self.stream_log.append(entry)
            busy = bool(self.held) or self.refuse > 0
            if self.refuse > 0:
                self.refuse -= 1
        fault = None
        problem = None
        if auth != f"Bearer {self.token}":
            problem = (401, self.problem(401, "Unauthorized", "Unauthorized"))
        elif busy or (fault is not None and fault.kind == "429"):
            problem = (429, {"title": "ConnectionException", "connection_issue": "TooManyConnections",
                             "detail": "This stream is currently at the maximum allowed connection limit.",
                             "type": "https://api.twitter.com/2/problems/streaming-connection"})
        elif fault is not None and fault.kind == "503":
            problem = (503, {"title": "Service Unavailable", "detail": "try again", "type": "about:blank"})
        entry["status"] = problem[0] if problem is not None else 200
        if problem is not None:
            data = json.dumps(problem[1]).encode()
            h.send_response(problem[0])
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
            return
        held = _Held(req)
        with self.lock:
            self.held.append(held)
        _hold(self, h, held, "application/json; charset=utf-8", b"\r\n", self.keepalive)
