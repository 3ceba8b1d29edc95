"""The command line: parses options, calls the library, turns errors into one line.

Nothing here knows SQL or file formats; see store.py, importer.py, sources/.
"""

from __future__ import annotations

import functools
import json
import sys
import time

import click

from . import __version__
from .errors import ChatArchiveError, ParseError

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class ErrorsAsMessages(click.Group):
    """Library errors become one clear line and exit 1 — never a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except ChatArchiveError as e:
            raise click.ClickException(str(e))
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            sys.exit(130)


@click.group(cls=ErrorsAsMessages, context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "--version", prog_name="chatarchive")
def cli():
    """Archive hashtag chats (X, Mastodon, Bluesky, twarc, TAGS) into SQLite,
    publish recaps and search old chats.

    \b
    Quick start:
        chatarchive demo
        chatarchive import chats.db cmgrchat-2026-11-18.jsonl
        chatarchive search chats.db "community AND metrics" --hashtag cmgrchat
    """


def db_argument(f):
    return click.argument("db", type=click.Path(dir_okay=False))(f)


def open_archive(path: str):
    from .store import open_db

    try:
        return open_db(path)
    except Exception as e:  # sqlite3.DatabaseError: not a database, locked…
        raise ChatArchiveError(f"{path}: cannot open as a chatarchive database ({e})")


def json_out(data) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


# --------------------------------------------------------------------------
# import


def format_choices() -> list[str]:
    from . import sources

    sources._load_all()
    return list(sources.FORMATS)


class RichImportProgress:
    """A rich progress bar with posts/s, on stderr, only on a terminal."""

    def __init__(self, console):
        from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn,
                                   TimeElapsedColumn)

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
        self.task = None
        self.t0 = 0.0

    def __enter__(self):
        self.bar.start()
        return self

    def __exit__(self, *exc):
        self.bar.stop()

    def start_file(self, path, total_bytes):
        self.t0 = time.monotonic()
        self.task = self.bar.add_task(path, total=total_bytes, posts=0, rate=0.0)

    def advance(self, bytes_read, posts):
        rate = posts / max(time.monotonic() - self.t0, 1e-6)
        self.bar.update(self.task, completed=bytes_read, posts=posts, rate=rate)

    def problem(self, message):
        self.console.print(message, style="yellow", highlight=False, markup=False)

    def end_file(self, result):
        if self.task is not None:
            self.bar.remove_task(self.task)
            self.task = None


class PlainProblems:
    """Without a terminal: problems as plain lines on stderr, no bar."""

    def __init__(self, quiet: bool):
        self.quiet = quiet

    def start_file(self, path, total_bytes): ...

    def advance(self, bytes_read, posts): ...

    def problem(self, message):
        click.echo(message, err=True)

    def end_file(self, result): ...


@cli.command(name="import")
@db_argument
@click.argument("files", nargs=-1, required=True, type=click.Path(allow_dash=True))
@click.option("--format", "format_", type=click.Choice(format_choices()), help="Skip detection: read every FILE as this format.")
@click.option("--tz", help="Time zone of local times in the file (Twitter Archiver CSV), e.g. America/New_York.")
@click.option("--strict", is_flag=True, help="Any malformed record aborts the import and leaves the database untouched.")
@click.option("--no-analyse", is_flag=True, help="Do not re-detect sessions, threads and Q&A afterwards.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no summary.")
@click.option("--json", "as_json", is_flag=True, help="Print the per-file summary as JSON.")
def import_(db, files, format_, tz, strict, no_analyse, quiet, as_json):
    """Import chat files into DB (created when missing).

    Formats are detected: twarc2 JSONL (raw or flattened), X API v2 pages,
    twarc-csv, Twitter v1.1 JSON/JSONL, the account archive tweets.js, TAGS
    and Twitter Archiver CSV, Mastodon statuses/contexts, Bluesky
    searchPosts/threads/feeds. Gzipped files are read as is; "-" reads stdin.
    Re-importing is safe: nothing is duplicated.

    \b
    Example:
        chatarchive import chats.db cmgrchat-2026-11-18.jsonl old-tags-export.csv
    """
    from rich.console import Console

    from .importer import import_files

    if tz:
        from .timeutil import get_zone

        get_zone(tz)
    archive = open_archive(db)
    console = Console(stderr=True)
    show_bar = console.is_terminal and not quiet and not as_json
    reporter = RichImportProgress(console) if show_bar else PlainProblems(quiet)
    try:
        if show_bar:
            with reporter:
                results = import_files(archive, list(files), format=format_, tz=tz, strict=strict, progress=reporter)
        else:
            results = import_files(archive, list(files), format=format_, tz=tz, strict=strict, progress=reporter)
    except ParseError as e:
        raise click.ClickException(f"{e} (--strict: nothing was imported)")
    analysis = {}
    if not no_analyse and any(r.posts for r in results):
        from .analyse import analyse_archive

        analysis = analyse_archive(archive)
    if as_json:
        json_out({
            "files": [
                {"path": r.path, "format": r.format, "added": r.added, "updated": r.updated,
                 "unchanged": r.unchanged, "skipped": r.skipped, "problems": r.problems,
                 "error": r.error}
                for r in results
            ],
            "analysis": analysis,
        })
    else:
        for r in results:
            if r.error:
                click.echo(f"Error: {r.error}", err=True)
            elif not quiet:
                extra = f", {r.skipped:,} skipped" if r.skipped else ""
                click.echo(
                    f"{r.path} ({r.format}): {r.added:,} added, {r.updated:,} updated, "
                    f"{r.unchanged:,} unchanged{extra}"
                )
        if not quiet and analysis.get("summary"):
            click.echo(analysis["summary"])
    if any(r.error for r in results):
        sys.exit(1)


# --------------------------------------------------------------------------
# search


@cli.command()
@db_argument
@click.argument("query")
@click.option("--hashtag", help="Only posts with this hashtag (with or without #).")
@click.option("--author", help="Only posts by this handle.")
@click.option("--session", help="Only posts of this session (id or slug).")
@click.option("--since", help="Only posts at or after this time (ISO-8601, UTC unless an offset is given).")
@click.option("--until", help="Only posts before this time.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 10000))
@click.option("--order", type=click.Choice(["best", "newest"]), default="best", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print results as JSON.")
def search(db, query, hashtag, author, session, since, until, limit, order, as_json):
    """Full-text search of the archive (SQLite FTS5, with stemming).

    QUERY uses FTS5 syntax: words, "exact phrases", AND / OR / NOT,
    prefix*, NEAR(a b). Author handles and names are searched too.

    \b
    Example:
        chatarchive search chats.db "community AND metrics" --hashtag cmgrchat
    """
    from .store import HIGHLIGHT_END, HIGHLIGHT_START
    from .store import search as run_search
    from .timeutil import iso_utc, parse_time

    archive = open_archive(db)
    rows = run_search(
        archive, query, hashtag=hashtag, author=author, session=session,
        since=iso_utc(parse_time(since)) if since else None,
        until=iso_utc(parse_time(until)) if until else None,
        limit=limit, order=order,
    )
    if as_json:
        for r in rows:
            r["snippet"] = r["snippet"].replace(HIGHLIGHT_START, "**").replace(HIGHLIGHT_END, "**")
        json_out(rows)
        return
    if not rows:
        click.echo("No matches.", err=True)
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console()
    if not console.is_terminal:
        for r in rows:
            snippet = r["snippet"].replace(HIGHLIGHT_START, "").replace(HIGHLIGHT_END, "")
            click.echo(f"{r['created_at']}\t@{r['author_handle']}\t{snippet}\t{r['url']}")
        return
    table = Table(show_lines=False, expand=True)
    table.add_column("When (UTC)", no_wrap=True, style="dim")
    table.add_column("Author", no_wrap=True, style="cyan")
    table.add_column("Post")
    for r in rows:
        table.add_row(r["created_at"][:16].replace("T", " "), f"@{r['author_handle']}", highlighted(r["snippet"]))
    console.print(table)
    console.print(f"[dim]{len(rows)} result(s)[/dim]")


def highlighted(snippet: str):
    """Turn FTS5 snippet markers into a rich Text with bold matches (no markup parsing)."""
    from rich.text import Text

    from .store import HIGHLIGHT_END, HIGHLIGHT_START

    text = Text()
    bold = False
    for part in snippet.replace(HIGHLIGHT_END, HIGHLIGHT_START).split(HIGHLIGHT_START):
        text.append(part, style="bold yellow" if bold else None)
        bold = not bold
    return text


# --------------------------------------------------------------------------
# demo


@cli.command()
@click.argument("directory", default="chatarchive-demo", type=click.Path(file_okay=False))
def demo(directory):
    """Import the bundled sample chat into DIRECTORY/demo.db and show what was found.

    \b
    Example:
        chatarchive demo
    """
    from pathlib import Path

    from .demo import run_demo

    run_demo(Path(directory), echo=click.echo)
