"""The terminal views: `show`'s recap, search results, the sessions list and
the import progress bar (rich), and their plain one-line-per-row forms for
pipes.

Text from posts and files is never parsed as rich markup (it goes in as
``Text``) and never carries control characters (escape sequences) to the
terminal (:func:`chatarchive.safety.printable`, :func:`line`): rich itself
lets ``ESC`` through.  First-timers are shown only when they can be known,
as "first time in this archive"; a time that cannot be read shows as "time
unknown".
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group
from rich.markup import escape
from rich.panel import Panel
from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from ..errors import ChatArchiveError
from ..models import HIGHLIGHT_END, HIGHLIGHT_START, SearchHit, Session
from ..safety import printable
from ..timeutil import get_zone
from .text import TIME_UNKNOWN, archive_datetime, plural


def line(value: Any, limit: int = 10_000) -> str:
    """Any stored value as one line of terminal text: no control characters."""
    return printable(value if isinstance(value, str) else "" if value is None else str(value), limit, strip=False)

if TYPE_CHECKING:
    from ..archive.importer import FileResult


def local_time(iso: str | None, tz: str | None, fmt: str = "%a %Y-%m-%d %H:%M", *, zone: bool = False) -> str:
    """An archive time in the chat's zone (``zone``: followed by its name), or
    in UTC (followed by "UTC") when the chat has no valid zone."""
    if not iso:
        return ""
    dt = archive_datetime(iso)
    if dt is None:
        return TIME_UNKNOWN
    if tz:
        try:
            local = dt.astimezone(get_zone(tz)).strftime(fmt)
        except (ChatArchiveError, OverflowError, ValueError):
            pass
        else:
            return f"{local} {line(tz, 100)}" if zone else local
    return dt.strftime(fmt) + " UTC"


# --------------------------------------------------------------------------
# search


def highlighted(snippet: str) -> Text:
    """A snippet with its matches (between HIGHLIGHT_START/END) in bold: no
    markup parsing, and no control characters from the post."""
    text = Text()
    bold = False
    for part in snippet.replace(HIGHLIGHT_END, HIGHLIGHT_START).split(HIGHLIGHT_START):
        text.append(printable(part, 10_000, strip=False), style="bold yellow" if bold else None)
        bold = not bold
    return text


def print_search_results(console: Console, hits: list[SearchHit], order: str) -> None:
    """Search hits as a table, the matching words highlighted."""
    table = Table(show_lines=False, expand=True)
    table.add_column("When (UTC)", no_wrap=True, style="dim")
    table.add_column("Author", no_wrap=True, style="cyan")
    table.add_column("Post")
    for hit in hits:
        p = hit.post
        table.add_row(line(p.created_at or "")[:16].replace("T", " "), highlighted("@" + line(p.author_handle)),
                      highlighted(hit.snippet))
    console.print(table)
    first = "best match" if order == "best" else "newest"
    console.print(f"[dim]{len(hits)} result(s), {first} first[/dim]", highlight=False)


def search_lines(hits: Iterable[SearchHit]) -> Iterator[str]:
    """One tab-separated line per hit (time, @handle, snippet, URL); post text
    never carries control characters, tabs or newlines out."""
    for hit in hits:
        p = hit.post
        snippet = hit.snippet.replace(HIGHLIGHT_START, "").replace(HIGHLIGHT_END, "")
        yield "\t".join([line(p.created_at, 100), "@" + line(p.author_handle, 100),
                         printable(snippet, 10_000), line(p.url, 1000)])


# --------------------------------------------------------------------------
# sessions list


def print_sessions(console: Console, sessions: Iterable[Session]) -> None:
    table = Table(expand=False)
    for name, kw in (("Session", {"style": "cyan", "no_wrap": True}), ("When", {"no_wrap": True}),
                     ("Posts", {"justify": "right"}), ("People", {"justify": "right"}),
                     ("Q", {"justify": "right"}), ("Hosts", {}), ("Platforms", {}), ("Source", {"style": "dim"})):
        table.add_column(name, **kw)
    for s in sessions:
        table.add_row(Text(line(s.slug)), Text(local_time(s.start, s.timezone)), f"{s.posts:,}",
                      f"{s.participants or 0:,}", str(s.questions or 0),
                      Text(line(", ".join("@" + h for h in s.hosts))), Text(line(", ".join(s.platforms))),
                      Text(line(s.source)))
    console.print(table)


def session_lines(sessions: Iterable[Session]) -> Iterator[str]:
    """One tab-separated line per session (no tabs or control characters inside a field)."""
    for s in sessions:
        yield "\t".join(line(x, 1000) for x in (
            s.slug, s.start, "#" + (s.hashtag or ""), s.posts, s.participants, s.questions,
            s.source, ",".join(s.platforms), ",".join(s.hosts)))


# --------------------------------------------------------------------------
# show


def print_session_stats(console: Console, st: dict[str, Any]) -> None:
    """A session's statistics (``analysis.stats.session_stats``) as a panel and tables."""
    s = st["session"]
    tz = s["timezone"]
    head = Text()
    head.append(f"#{line(s['hashtag'])}", style="bold magenta")
    if s["title"]:
        head.append("  ")
        head.append(line(s["title"]), style="bold")
    head.append("\n")
    head.append(f"{local_time(s['start'], tz)} – {local_time(s['end'], tz, '%H:%M')}")
    if tz:
        head.append(f" {line(tz, 100)}", style="dim")
    head.append(f"  ·  {line(s['source'])}  ·  {line(', '.join(s['platforms'])) or 'no posts'}\n")
    head.append("Hosts: ")
    head.append(line(", ".join("@" + h for h in s["hosts"])) or "none detected", style="cyan")
    head.append("\n")
    q_answers = sum(q["answers"] for q in st["questions"])
    known = st.get("first_timers") is not None
    newcomers = (f" ({len(st['first_timers']):,} first time in this archive, {len(st.get('returning') or []):,} "
                 "returning)") if known else ""
    head.append(
        f"{plural(st['posts'], 'post')} ({st['matched_posts']:,} matched, {st['context_posts']:,} context) · "
        f"{plural(st['participants'], 'participant')}{newcomers} · {plural(st['replies'], 'reply', 'replies')} · "
        f"{plural(len(st['questions']), 'question')}, {plural(q_answers, 'answer')}"
    )
    console.print(Panel(head, title=Text(line(s["slug"])), title_align="left", expand=False))

    if st["questions"]:
        qt = Table(title="Questions", title_justify="left", expand=False)
        qt.add_column("#", justify="right", style="bold")
        qt.add_column("Question", max_width=70)
        qt.add_column("Answers", justify="right")
        qt.add_column("First answer", justify="right", style="dim")
        for q in st["questions"]:
            secs = q["first_answer_seconds"]
            first = "" if secs is None else (f"{secs / 60:.1f} min" if secs >= 60 else f"{secs:.0f} s")
            qt.add_row(f"Q{q['number']}", Text(line(" ".join((q["text"] or "").split()))), str(q["answers"]), first)
        console.print(qt)

    tables = []
    if st["top_participants"]:
        pt = Table(title="Top participants", title_justify="left", expand=False)
        pt.add_column("Handle", style="cyan")
        pt.add_column("Posts", justify="right")
        pt.add_column("Replies received", justify="right")
        if known:
            pt.add_column("First time in this archive", justify="center")
        for a in st["top_participants"]:
            cells: list[Text | str] = [Text("@" + line(a["handle"])), str(a["posts"]), str(a["replies_received"])]
            if known:
                cells.append("★" if a.get("first_timer") else "")
            pt.add_row(*cells)
        tables.append(pt)
    if st["busiest_minutes"]:
        bt = Table(title="Busiest minutes", title_justify="left", expand=False)
        bt.add_column("Minute")
        bt.add_column("Posts", justify="right")
        bt.add_column("")
        peak = max(m["posts"] for m in st["busiest_minutes"])
        for m in st["busiest_minutes"]:
            bt.add_row(local_time(m["minute"] + ":00Z", tz, "%H:%M"), str(m["posts"]),
                       Text("█" * max(1, round(20 * m["posts"] / peak)), style="green"))
        tables.append(bt)
    if tables:
        console.print(Group(*tables))
    if st["links"]:
        lt = Table(title="Links shared", title_justify="left", expand=False)
        lt.add_column("Count", justify="right")
        lt.add_column("URL", overflow="fold")
        for link in st["links"][:5]:
            lt.add_row(str(link["count"]), Text(line(link["url"])))
        console.print(lt)


# --------------------------------------------------------------------------
# import progress (archive.importer.Progress: start_file, advance, problem, end_file)


class PlainProblems:
    """Without a terminal: each problem as a plain line (through ``echo``), no bar."""

    def __init__(self, echo: Callable[[str], None]) -> None:
        self.echo = echo

    def __enter__(self) -> PlainProblems:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def start_file(self, path: str, total_bytes: int | None) -> None:
        pass

    def advance(self, bytes_read: int, posts: int) -> None:
        pass

    def problem(self, message: str) -> None:
        self.echo(printable(message, 400))

    def end_file(self, result: FileResult) -> None:
        pass


class ImportProgressBar:
    """A rich progress bar per file with bytes, posts and posts/s; problems
    are printed above it.  Shown while used as a context manager."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TextColumn("{task.fields[posts]:,} posts"),
            TextColumn("{task.fields[rate]:,.0f} posts/s"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self.task: TaskID | None = None
        self.t0 = 0.0

    def __enter__(self) -> ImportProgressBar:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def start_file(self, path: str, total_bytes: int | None) -> None:
        self.t0 = time.monotonic()
        name = path if len(path) <= 40 else "…" + path[-39:]
        self.task = self.bar.add_task(escape(printable(name, 40)), total=total_bytes, posts=0, rate=0.0)

    def advance(self, bytes_read: int, posts: int) -> None:
        if self.task is None:
            return
        rate = posts / max(time.monotonic() - self.t0, 1e-6)
        self.bar.update(self.task, completed=bytes_read, posts=posts, rate=rate)

    def problem(self, message: str) -> None:
        self.console.print(printable(message, 400), style="yellow", highlight=False, markup=False)

    def end_file(self, result: FileResult) -> None:
        if self.task is not None:
            self.bar.remove_task(self.task)
            self.task = None
