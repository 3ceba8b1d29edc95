"""Issue 14: what a post says never reaches the terminal raw through the
capture panels either (the polling panel, the stream panel and the plain
log lines): no escape sequence, no rich markup read from a post."""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone

from fake_servers import FakeX, make_chat
from fake_streams import FakeAppView, FakeJetstream, post_events
from rich.console import Console

from chatarchive.capture.base import Window
from chatarchive.capture.config import Config
from chatarchive.capture.live import capture_live
from chatarchive.capture.runner import CaptureOptions, run_capture
from chatarchive.capture.stream import StreamPolicy
from chatarchive.capture.ui import LiveUI, LogUI, StreamPanel
from chatarchive.capture.x import XCapture

X_TOKEN = "x-panel-token-8"
# a title change, clear screen, a one-character CSI (U+009B), DEL, and rich markup
ESCAPES = "\x1b]0;pwned\x07 \x1b[2J\x1b[H \x9b31m del\x7f [bold red]markup[/]"
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def poisoned_chat(now: float, n: int, duration: float) -> list:
    posts = make_chat(n, now, duration=duration, questions=2)
    tagged = [p for p in posts if p.tags]
    newest = max(tagged, key=lambda p: p.t)
    newest.text = f"newest {ESCAPES} #edchat"
    last_q = max((p for p in posts if p.text.startswith("Q")), key=lambda p: p.t)
    last_q.text = f"Q2: what now? {ESCAPES} #edchat"
    return posts


def assert_inert(text: str) -> None:
    assert CONTROL.findall(text) == []
    assert "pwned" in text and "del" in text  # what the post said is still shown, minus the controls
    assert "[bold red]markup[/]" in text  # shown as typed, not read as markup


def test_the_polling_panel_and_its_log_lines_show_no_escape_sequence(db):
    posts = poisoned_chat(time.time() - 3000, 40, 1800)
    console = Console(record=True, force_terminal=True, width=400, color_system=None)
    lines: list[str] = []
    with FakeX(posts, token=X_TOKEN) as srv:
        run_capture(db, XCapture("#edchat", token=X_TOKEN, api_base=srv.url), Window(), ui=LiveUI(console))
        run_capture(db, XCapture("#edchat", token=X_TOKEN, api_base=srv.url), Window(), ui=LogUI(lines.append))
    text = console.export_text()
    assert "Question" in text and "newest" in text
    assert_inert(text)
    assert CONTROL.findall("\n".join(lines)) == []


def test_the_stream_panel_shows_no_escape_sequence(db):
    now = time.time()
    posts = poisoned_chat(now + 0.2, 30, 1.8)
    console = Console(record=True, force_terminal=True, width=400, color_system=None)
    with FakeJetstream() as js, FakeAppView() as av:
        js.schedule(post_events(posts))
        opts = CaptureOptions(until=datetime.fromtimestamp(now + 2.2, timezone.utc), jetstream=js.url,
                              appview=av.url, analyse=False)
        capture_live(db, ["bluesky"], "#edchat", opts, Config(), ui=StreamPanel(console),
                     policy=StreamPolicy(commit_interval=0.1, grace=0.2))
    text = console.export_text()
    assert "Question" in text and "newest" in text
    assert_inert(text)
