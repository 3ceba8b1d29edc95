"""`chatarchive serve --live` while a writer holds the archive (issue 14):
over real HTTP, against the real server in a subprocess, with another
connection holding SQLite's write lock as an import does while it commits.
Pages wait for a short lock and then load; a lock that outlasts the wait
gives a 503 "busy" page with Retry-After — never a 500, never a traceback in
the server's log — and the site is back as soon as the writer is done."""

from __future__ import annotations

import os
import sqlite3
import threading
import time

import httpx
import pytest
from test_serve import build_archive, start_server, stop_server

WAIT = 1.0  # CHATARCHIVE_BUSY_TIMEOUT for the server: how long a page waits for the writer (default 5 s)

PAGES = [
    "/", "/chats", "/chats/posts", "/chats/posts/1850000000000000008", "/chats/-/search?q=retention",
    "/chats/-/session/growthchat-2026-10-14", "/chats/session_transcript?session=growthchat-2026-10-14",
    "/chats/posts.json",
]


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    path = build_archive(tmp_path_factory.mktemp("busy") / "chats.db")
    old = os.environ.get("CHATARCHIVE_BUSY_TIMEOUT")
    os.environ["CHATARCHIVE_BUSY_TIMEOUT"] = str(WAIT)
    try:
        proc, base = start_server(path, "--live")
    finally:
        if old is None:
            del os.environ["CHATARCHIVE_BUSY_TIMEOUT"]
        else:
            os.environ["CHATARCHIVE_BUSY_TIMEOUT"] = old
    yield path, base, proc
    if proc.poll() is None:  # (test_no_traceback_in_the_log stops it to read the log)
        code, output = stop_server(proc)
        assert code == 0, output


class Writer:
    """Another connection holding the archive's write lock (EXCLUSIVE: no reader gets in)."""

    def __init__(self, path):
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)

    def __enter__(self):
        self.conn.execute("BEGIN EXCLUSIVE")
        return self

    def release(self):
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

    def __exit__(self, *exc):
        self.release()
        self.conn.close()


def test_pages_load_while_free(live):
    _, base, _ = live
    with httpx.Client(base_url=base, timeout=30) as http:
        for page in PAGES:
            assert http.get(page).status_code == 200, page


def test_a_long_lock_gives_busy_pages_never_500(live):
    path, base, _ = live
    waited = WAIT
    with httpx.Client(base_url=base, timeout=60) as http, Writer(path):
        for page in PAGES:
            t0 = time.monotonic()
            r = http.get(page)
            assert r.status_code == 503, (page, r.status_code, r.text[:300])
            assert r.headers["retry-after"] == "5" and r.headers["x-content-type-options"] == "nosniff"
            assert time.monotonic() - t0 >= waited * 0.9  # it waited for the writer first
            if page.endswith(".json"):
                assert r.json()["title"] == "Archive busy"
            else:
                assert "is busy: an import or capture is writing to it" in r.text
                assert "content-security-policy" in r.headers
    with httpx.Client(base_url=base, timeout=30) as http:
        assert all(http.get(page).status_code == 200 for page in PAGES)  # back at once


def test_a_short_lock_is_waited_for(live):
    path, base, _ = live
    with Writer(path) as writer:
        timer = threading.Timer(WAIT * 0.4, writer.release)  # a commit that takes less than the wait
        timer.start()
        with httpx.Client(base_url=base, timeout=30) as http:
            t0 = time.monotonic()
            r = http.get("/chats/-/session/growthchat-2026-10-14")
            assert r.status_code == 200 and 'id="q1"' in r.text
            assert time.monotonic() - t0 >= WAIT * 0.3
            assert http.get("/chats/posts").status_code == 200
        timer.join()


def test_no_traceback_in_the_log(live):
    path, base, proc = live
    with Writer(path), httpx.Client(base_url=base, timeout=60) as http:
        assert http.get("/chats/posts").status_code == 503
    code, output = stop_server(proc)
    assert code == 0
    assert "Traceback" not in output and "database is locked" not in output, output
    assert '"GET /chats/posts HTTP/1.1" 503' in output
