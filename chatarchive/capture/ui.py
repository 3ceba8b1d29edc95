"""What a running capture shows: :class:`LiveUI`, a rich live panel for a
terminal (posts so far, participants, the latest posts, the current
question, rate limits, what the capture is doing), and :class:`LogUI`, plain
lines for logs.  Both implement :class:`runner.CaptureUI`."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ..analysis.qa import looks_like_question
from ..archive.writer import SaveStats
from ..safety import printable
from .http import Page, format_seconds
from .runner import CaptureRun, QuietUI


class LogUI(QuietUI):
    """Plain lines (no terminal): one per page with new posts, one per wait."""

    def __init__(self, echo: Callable[[str], None]):
        self.echo = echo

    def page(self, run: CaptureRun, page: Page, stats: SaveStats) -> None:
        if stats.added or stats.updated or page.problems:
            what = "context" if page.kind == "context" else "page"
            self.echo(
                f"{run.client.platform}: {what} {run.result.pages}: {len(page.posts)} posts "
                f"({stats.added} new, {stats.updated} updated); {run.result.added} new in all"
            )
        for p in page.problems:
            self.echo(f"{run.client.platform}: {printable(p, 300)}")

    def waiting(self, run: CaptureRun, seconds: float, reason: str) -> None:
        if reason != "pacing" and seconds >= 1:
            self.echo(f"{run.client.platform}: {reason}: waiting {format_seconds(seconds)}")


class LiveUI:
    """A rich live panel: posts so far, participants, latest posts, the
    current question, rate-limit state and what the capture is doing."""

    def __init__(self, console: Any, latest: int = 6):
        self.console = console
        self.latest: deque[tuple[str, str, str]] = deque(maxlen=latest)
        self.question: tuple[str, str, str] | None = None
        self.activity = "starting"
        self.wait_until: float | None = None
        self.live: Any = None
        self.run: CaptureRun | None = None

    def start(self, run: CaptureRun) -> None:
        self.run = run
        self.live = Live(self, console=self.console, refresh_per_second=4, transient=False)
        self.live.start()

    def stop(self, run: CaptureRun) -> None:
        if self.live is not None:
            self.activity = run.result.status
            self.wait_until = None
            self.live.refresh()
            self.live.stop()
            self.live = None

    def page(self, run: CaptureRun, page: Page, stats: SaveStats) -> None:
        self.activity = "polling"
        self.wait_until = None
        newest = sorted((p for p in page.posts if p.matched), key=lambda p: p.created_at)
        for p in newest:
            # What a post says reaches a terminal: no escape sequence, one line.
            handle = printable((p.author.handle or p.author.id) if p.author else "?", 60)
            item = (p.created_at, handle, printable(p.text or "", 300))
            if not self.latest or item[0] >= self.latest[-1][0]:
                self.latest.append(item)
            if looks_like_question(p.text) and (self.question is None or p.created_at >= self.question[0]):
                self.question = item

    def waiting(self, run: CaptureRun, seconds: float, reason: str) -> None:
        self.activity = reason
        self.wait_until = run.clock.time() + seconds

    def idle(self, run: CaptureRun, next_poll_at: float) -> None:
        self.activity = "next poll"
        self.wait_until = next_poll_at

    def __rich__(self) -> Any:
        run = self.run
        if run is None:
            return Text("")
        r = run.result
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold", no_wrap=True)
        grid.add_column(overflow="fold")
        grid.add_row("Posts", f"{run.matched_ids_count:,} matching this run ({r.added:,} new rows, {r.updated:,} updated)")
        grid.add_row("Participants", f"{len(run.participants):,}")
        grid.add_row("Requests", f"{run.requests:,} ({r.pages:,} pages, {r.polls:,} polls done)")
        rl = run.client.http.latest_limit()
        now = run.clock.time()
        grid.add_row("Rate limit", rl.describe(now) if rl else "not reported yet")
        status = self.activity
        if self.wait_until is not None:
            status += f" in {format_seconds(max(0.0, self.wait_until - now))}"
        grid.add_row("Status", status)
        if self.question:
            grid.add_row("Question", Text(f"@{self.question[1]}: {self.question[2][:160]}"))
        if r.problems:
            grid.add_row("Problems", Text(printable(r.problems[-1], 160), style="yellow"))
        latest = Table.grid(padding=(0, 1))
        latest.add_column(style="dim", no_wrap=True)
        latest.add_column(style="cyan", no_wrap=True)
        latest.add_column(overflow="ellipsis", no_wrap=True)
        for when, handle, text in reversed(self.latest):
            latest.add_row(when[11:19], Text(f"@{handle}"), Text(text))
        body = Table.grid()
        body.add_row(grid)
        if self.latest:
            body.add_row(Text(""))
            body.add_row(latest)
        title = f"chatarchive capture · {run.client.platform} · {run.client.query}"
        return Panel(body, title=title, title_align="left", border_style="blue")


# --------------------------------------------------------------------------
# Streams (capture.stream): one panel for every platform at once


def _source_label(src: Any) -> str:
    return src.name if src.platform == "mastodon" else src.platform


class StreamLogUI:
    """Plain lines for a stream capture (no terminal): what each stream is
    doing when it changes, and at most one progress line per stream every
    ``every`` seconds while posts arrive."""

    def __init__(self, echo: Callable[[str], None], every: float = 10.0):
        self.echo = echo
        self.every = every
        self.last: dict[Any, float] = {}
        self.reported: dict[Any, tuple[int, int, int]] = {}

    def start(self, engine: Any) -> None:
        for src in engine.sources:
            r = engine.results[src]
            self.echo(f"{_source_label(src)}: following {src.query} ({src.endpoint})"
                      + (", resuming the last run" if r.resumed else ""))

    def status(self, engine: Any, source: Any, text: str) -> None:
        self.echo(f"{_source_label(source)}: {printable(text, 300)}")

    def committed(self, engine: Any, items: list, stats: dict) -> None:
        self.tick(engine)

    def tick(self, engine: Any, force: bool = False) -> None:
        import time as _time

        now = _time.monotonic()
        for src in engine.sources:
            r = engine.results[src]
            key = (r.added, r.updated, r.deleted)
            if key == self.reported.get(src, (0, 0, 0)):
                continue
            if not force and now - self.last.get(src, -1e9) < self.every:
                continue
            self.last[src] = now
            self.reported[src] = key
            self.echo(f"{_source_label(src)}: {r.matched_seen:,} posts of the chat so far "
                      f"({r.added:,} new rows, {r.updated:,} updated, {r.deleted:,} deleted); "
                      f"{engine.rate(src.platform):,} a minute")

    def stop(self, engine: Any) -> None:
        self.tick(engine, force=True)


class StreamPanel:
    """A rich live panel for a stream capture: per platform (and Mastodon
    server) its state, the posts so far and per minute; the current
    question; the newest posts of every platform."""

    def __init__(self, console: Any, latest: int = 8):
        self.console = console
        self.latest = latest
        self.engine: Any = None
        self.live: Any = None

    def start(self, engine: Any) -> None:
        self.engine = engine
        self.live = Live(self, console=self.console, refresh_per_second=4, transient=False)
        self.live.start()

    def status(self, engine: Any, source: Any, text: str) -> None:
        pass  # the panel reads source.status

    def committed(self, engine: Any, items: list, stats: dict) -> None:
        pass

    def tick(self, engine: Any) -> None:
        pass

    def stop(self, engine: Any) -> None:
        if self.live is not None:
            self.live.refresh()
            self.live.stop()
            self.live = None

    def __rich__(self) -> Any:
        engine = self.engine
        if engine is None:
            return Text("")
        table = Table(box=None, padding=(0, 2), show_edge=False)
        for col, kw in (("Platform", {"style": "bold", "no_wrap": True}), ("Status", {"overflow": "fold"}),
                        ("Posts", {"justify": "right"}), ("/min", {"justify": "right"}),
                        ("Deleted", {"justify": "right"})):
            table.add_column(col, **kw)
        for src in engine.sources:
            r = engine.results[src]
            table.add_row(_source_label(src), Text(printable(src.status, 70)), f"{r.matched_seen:,}",
                          f"{engine.rate(src.platform):,}", f"{r.deleted:,}")
        body = Table.grid()
        body.add_row(table)
        q = engine.question
        if q:
            body.add_row(Text(""))
            body.add_row(Text(f"Question  {q[1]} @{printable(q[2], 60)}: {printable(q[3], 150)}"))
        if engine.latest:
            latest = Table.grid(padding=(0, 1))
            latest.add_column(style="dim", no_wrap=True)
            latest.add_column(style="magenta", no_wrap=True)
            latest.add_column(style="cyan", no_wrap=True)
            latest.add_column(overflow="ellipsis", no_wrap=True)
            for when, platform, handle, text in list(reversed(engine.latest))[: self.latest]:
                latest.add_row(when[11:19], platform, Text(f"@{printable(handle, 60)}"), Text(printable(text, 200)))
            body.add_row(Text(""))
            body.add_row(latest)
        platforms = sorted({s.platform for s in engine.sources})
        title = f"chatarchive capture · {' + '.join(platforms)} · {engine.label} · live"
        return Panel(body, title=title, title_align="left", border_style="green")
