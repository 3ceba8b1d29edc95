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
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 10000), help="At most this many results.")
@click.option("--order", type=click.Choice(["best", "newest"]), default="best", show_default=True,
              help="best: by relevance (bm25); newest: latest first.")
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
# capture


@cli.command()
@db_argument
@click.argument("platform", type=click.Choice(["x", "mastodon", "bluesky", "context"]))
@click.argument("query")
@click.option("--since", help="Start of the window (ISO-8601; UTC unless an offset or --tz is given).")
@click.option("--until", help="End of the window (exclusive). With --follow: stop there.")
@click.option("--duration", help="Window length, e.g. 1h15m: from --since, or from now when --since is not given.")
@click.option("--tz", help="Time zone of --since/--until without an offset, e.g. America/New_York.")
@click.option("--follow", is_flag=True, help="Keep polling for new posts until --until or Ctrl-C.")
@click.option("--interval", type=click.FloatRange(min=0.05), default=30.0, show_default=True,
              help="Seconds between polls with --follow.")
@click.option("--instance", "instances", multiple=True, metavar="URL",
              help="Mastodon server whose tag timeline to read (repeatable; posts are merged by uri).")
@click.option("--api-base", metavar="URL", help="Talk to this server instead (X API host, Bluesky service).")
@click.option("--service", metavar="URL", help="Bluesky PDS/entryway for login and search [https://bsky.social].")
@click.option("--archive", is_flag=True, help="X: full-archive search (/2/tweets/search/all) instead of the last 7 days.")
@click.option("--raw", "raw_path", type=click.Path(dir_okay=False),
              help="Also append every API page to this JSONL file (X: twarc2-compatible; re-importable).")
@click.option("--context", "with_context", is_flag=True,
              help="Afterwards fetch the reply parents and untagged replies of the captured threads.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="Credentials file (TOML, mode 600) [~/.config/chatarchive/config.toml].")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=30.0, show_default=True,
              help="Seconds before a stalled request is retried.")
@click.option("--no-analyse", is_flag=True, help="Do not re-detect sessions, threads and Q&A afterwards.")
@click.option("-q", "--quiet", is_flag=True, help="No live panel and no summary.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def capture(db, platform, query, since, until, duration, tz, follow, interval, instances, api_base, service,
            archive, raw_path, with_context, config_path, timeout, no_analyse, quiet, as_json):
    """Capture a hashtag chat live from X, Mastodon or Bluesky into DB.

    Every page is committed as it arrives; running the same command again
    resumes where it stopped, without duplicates. Credentials come from
    X_BEARER_TOKEN, MASTODON_TOKEN (optional), BLUESKY_HANDLE and
    BLUESKY_APP_PASSWORD, or the --config file. "context SESSION" fetches
    the reply parents and untagged replies of a session's threads.

    \b
    Examples:
        chatarchive capture chats.db x '#edchat' --since 2026-11-18T19:55 --duration 1h15m
        chatarchive capture chats.db mastodon '#edchat' --instance https://mastodon.social --follow
        chatarchive capture chats.db bluesky '#edchat' --follow --until 2026-11-18T21:10
        chatarchive capture chats.db context edchat-2026-11-18
    """
    from datetime import datetime, timezone

    from rich.console import Console

    from .capture.config import load_config
    from .capture.runner import CaptureOptions, LiveUI, LogUI, capture as run, capture_context
    from .timeutil import parse_duration, parse_time

    if tz:
        from .timeutil import get_zone

        get_zone(tz)
    start = parse_time(since, tz) if since else None
    end = parse_time(until, tz) if until else None
    if duration:
        if end is not None:
            raise click.UsageError("Give --until or --duration, not both.")
        start = start or datetime.now(timezone.utc)
        end = start + parse_duration(duration)
    if platform != "mastodon" and platform != "context" and instances:
        raise click.UsageError("--instance is for Mastodon; use --api-base or --service for other platforms.")
    if platform == "mastodon" and not instances and not api_base:
        raise click.UsageError("Mastodon capture needs --instance URL (e.g. --instance https://mastodon.social).")
    if archive and platform not in ("x", "context"):
        raise click.UsageError("--archive is for X full-archive search.")
    if api_base and service:
        raise click.UsageError("Give --api-base or --service, not both.")
    config = load_config(config_path)
    archive_db = open_archive(db)
    opts = CaptureOptions(
        since=start, until=end, follow=follow, interval=interval, instances=tuple(instances),
        api_base=api_base or service, archive=archive, raw_path=raw_path, context=with_context,
        analyse=not no_analyse, timeout=timeout,
    )
    console = Console(stderr=True)
    if quiet or as_json:
        ui = None
    elif console.is_terminal:
        ui = LiveUI(console)
    else:
        ui = LogUI(lambda line: click.echo(line, err=True))
    if platform == "context":
        results = capture_context(archive_db, query, opts, config, ui=ui)
    else:
        results = [run(archive_db, platform, query, opts, config, ui=ui)]
    if as_json:
        json_out([r.as_dict() for r in results] if platform == "context" else results[0].as_dict())
    elif not quiet:
        for r in results:
            what = f"{r.platform} context" if platform == "context" else f"{r.platform} {r.query!r}"
            state = {"ok": "", "interrupted": " (stopped)"}.get(r.status, f" ({r.status})")
            resumed = ", resumed" if r.resumed else ""
            click.echo(
                f"{what}{state}: {r.added:,} posts added, {r.updated:,} updated; "
                f"{r.requests:,} requests, {r.pages:,} pages{resumed} (capture #{r.capture_id})"
            )
            if r.context:
                click.echo(f"  context: {r.context['added']:,} posts added around {r.context['posts']:,} posts")
            for p in r.problems[-5:]:
                click.echo(f"  problem: {p}", err=True)
        analysis = results[-1].analysis if results else {}
        if analysis.get("summary"):
            click.echo(analysis["summary"])
    if any(r.status == "interrupted" for r in results) and not follow:
        sys.exit(130)


# --------------------------------------------------------------------------
# serve


@cli.command()
@click.argument("db", type=click.Path(dir_okay=False))
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to listen on. Anything but loopback exposes the archive to your network.")
@click.option("-p", "--port", default=8001, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0: any free port).")
@click.option("-o", "--open", "open_browser", is_flag=True, help="Open the site in a web browser.")
@click.option("--no-sql", is_flag=True,
              help="Turn off arbitrary SQL (tables, search, canned queries and pages still work).")
@click.option("--title", help="Title of the site [Chat archive: #hashtags].")
@click.option("--live", is_flag=True,
              help="Open read-only but not immutable, so posts a running capture adds show up.")
@click.option("--setting", "settings", nargs=2, multiple=True, metavar="NAME VALUE",
              help="A Datasette setting, e.g. --setting default_page_size 100.")
@click.option("--metadata-out", type=click.Path(dir_okay=False, allow_dash=True), metavar="FILE",
              help="Write the Datasette metadata JSON to FILE ('-': stdout), print the matching "
              "datasette command and exit.")
@click.option("-q", "--quiet", is_flag=True, help="No request log.")
def serve(db, host, port, open_browser, no_sql, title, live, settings, metadata_out, quiet):
    """Browse and search DB in Datasette: facets, full-text search, canned
    queries, a search page and a page per session.

    Read-only and on 127.0.0.1 unless told otherwise. Ctrl-C stops it.
    With --metadata-out, write the configuration for `datasette` itself
    (the chatarchive plugin is installed with chatarchive).

    \b
    Examples:
        chatarchive serve chats.db --open
        chatarchive serve chats.db --no-sql --metadata-out metadata.json
        datasette serve -i chats.db -m metadata.json
    """
    from . import serve as serving

    extra = serving.parse_settings(settings)
    if metadata_out:
        serving.prepare_archive(db)
        metadata = serving.build_metadata(db, title=title, allow_sql=not no_sql)
        text = json.dumps(metadata, indent=2, ensure_ascii=False) + "\n"
        if metadata_out == "-":
            click.echo(text, nl=False)
        else:
            with open(metadata_out, "w", encoding="utf-8") as f:
                f.write(text)
            click.echo(f"Wrote {metadata_out}. Serve the same site with:", err=True)
        shown = "metadata.json" if metadata_out == "-" else metadata_out
        click.echo(serving.datasette_command(db, shown, extra), err=True)
        return
    serving.serve(
        db, host=host, port=port, open_browser=open_browser, allow_sql=not no_sql, title=title,
        immutable=not live, settings=extra, quiet=quiet, echo=click.echo,
    )


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
