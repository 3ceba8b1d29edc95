"""The command line: parses options, calls the library, turns errors into one line.

Nothing here knows SQL or file formats; see store.py, importer.py, sources/.
"""

from __future__ import annotations

import functools
import json
import sys
import time

import click

from .. import __version__
from ..errors import ChatArchiveError, ParseError

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
    from ..archive.schema import open_db

    try:
        return open_db(path)
    except Exception as e:  # sqlite3.DatabaseError: not a database, locked…
        raise ChatArchiveError(f"{path}: cannot open as a chatarchive database ({e})")


def json_out(data) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


# --------------------------------------------------------------------------
# import


def format_choices() -> list[str]:
    from .. import sources

    sources._load_all()
    return list(sources.FORMATS)


class RichImportProgress:
    """A rich progress bar with posts/s, on stderr, only on a terminal."""

    def __init__(self, console):
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn

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
        from rich.markup import escape

        self.t0 = time.monotonic()
        name = path if len(path) <= 40 else "…" + path[-39:]
        self.task = self.bar.add_task(escape(name), total=total_bytes, posts=0, rate=0.0)

    def advance(self, bytes_read, posts):
        rate = posts / max(time.monotonic() - self.t0, 1e-6)
        self.bar.update(self.task, completed=bytes_read, posts=posts, rate=rate)

    def problem(self, message):
        from ..safety import printable

        self.console.print(printable(message, 400), style="yellow", highlight=False, markup=False)

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
        from ..safety import printable

        click.echo(printable(message, 400), err=True)

    def end_file(self, result): ...


@cli.command(name="import")
@db_argument
@click.argument("files", nargs=-1, required=True, type=click.Path(allow_dash=True))
@click.option("--format", "format_", type=click.Choice(format_choices()), help="Skip detection: read every FILE as this format.")
@click.option("--tz", help="Time zone of local times in the file (Twitter Archiver CSV), e.g. America/New_York.")
@click.option("--strict", is_flag=True, help="Any malformed record aborts the import and leaves the database untouched.")
@click.option("--instance", metavar="URL", help="Mastodon server that served the files (host or URL, e.g. "
              "https://mastodon.social), for files that carry no evidence of it.")
@click.option("--no-analyse", is_flag=True, help="Do not re-detect sessions, threads and Q&A afterwards.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no summary.")
@click.option("--json", "as_json", is_flag=True, help="Print the per-file summary as JSON.")
def import_(db, files, format_, tz, strict, instance, no_analyse, quiet, as_json):
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
    import contextlib
    import os
    import sqlite3

    from rich.console import Console

    from ..archive.importer import import_files
    from ..safety import printable

    if tz:
        from ..timeutil import get_zone

        get_zone(tz)
    options = {}
    if instance:
        from ..sources.mastodon import host_of

        host = host_of(instance)
        if not host or "/" in host or " " in host:
            raise click.BadParameter(f"{instance!r} is not a server URL or host", param_hint="--instance")
        options["instance"] = host
    created = not os.path.exists(db)
    archive = open_archive(db)
    console = Console(stderr=True)
    show_bar = console.is_terminal and not quiet and not as_json
    reporter = RichImportProgress(console) if show_bar else PlainProblems(quiet)
    started = time.monotonic()
    try:
        with reporter if show_bar else contextlib.nullcontext():
            results = import_files(archive, list(files), format=format_, tz=tz, strict=strict, progress=reporter,
                                   options=options)
    except ParseError as e:
        discard_new_archive(archive, db, created)
        raise click.ClickException(f"{printable(str(e), 400)} (--strict: nothing was imported)")
    except sqlite3.OperationalError as e:  # locked by another writer, disk full, I/O error
        discard_new_archive(archive, db, created)
        raise click.ClickException(f"{db}: {e}; nothing was imported")
    except BaseException:
        discard_new_archive(archive, db, created)
        raise
    elapsed = time.monotonic() - started
    if created and not any(r.posts for r in results):
        discard_new_archive(archive, db, created)  # every file refused: leave no empty archive
    analysis = {}
    if not no_analyse and any(r.posts for r in results):
        from ..analysis.pipeline import analyse_archive

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
                click.echo(f"Error: {printable(r.error, 400)}", err=True)
            elif not quiet:
                extra = f", {r.skipped:,} skipped" if r.skipped else ""
                click.echo(
                    f"{r.path} ({r.format}): {r.added:,} added, {r.updated:,} updated, "
                    f"{r.unchanged:,} unchanged{extra}"
                )
        done = [r for r in results if not r.error]
        if not quiet and len(done) > 1:
            total = {k: sum(getattr(r, k) for r in done) for k in ("added", "updated", "unchanged", "skipped")}
            click.echo(
                f"Total ({len(done)} files, {elapsed:.1f} s): {total['added']:,} added, "
                f"{total['updated']:,} updated, {total['unchanged']:,} unchanged, {total['skipped']:,} skipped"
            )
        if not quiet and analysis.get("summary"):
            click.echo(analysis["summary"])
    if any(r.error for r in results):
        sys.exit(1)


def discard_new_archive(archive, path: str, created: bool) -> None:
    """Remove an archive this command created when nothing was imported into
    it (the import transaction was rolled back, so it holds only the schema)."""
    import os

    archive.conn.close()
    if created:
        for name in (path, path + "-journal"):
            if os.path.exists(name):
                os.remove(name)


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
    from ..archive.search import HIGHLIGHT_END, HIGHLIGHT_START
    from ..archive.search import search as run_search
    from ..timeutil import iso_utc, parse_time

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

    from ..safety import printable

    console = Console()
    if not console.is_terminal:
        # One line per post, tab separated; text from posts never carries
        # control characters (escape sequences) or tabs/newlines out.
        for r in rows:
            snippet = r["snippet"].replace(HIGHLIGHT_START, "").replace(HIGHLIGHT_END, "")
            click.echo("\t".join([r["created_at"], "@" + printable(r["author_handle"] or "", 100),
                                  printable(snippet, 10_000), printable(r["url"] or "", 1000)]))
        return
    table = Table(show_lines=False, expand=True)
    table.add_column("When (UTC)", no_wrap=True, style="dim")
    table.add_column("Author", no_wrap=True, style="cyan")
    table.add_column("Post")
    for r in rows:
        table.add_row(r["created_at"][:16].replace("T", " "), highlighted("@" + (r["author_handle"] or "")),
                      highlighted(r["snippet"]))
    console.print(table)
    first = "best match" if order == "best" else "newest"
    console.print(f"[dim]{len(rows)} result(s), {first} first[/dim]", highlight=False)


def highlighted(snippet: str):
    """Turn FTS5 snippet markers into a rich Text with bold matches: no markup
    parsing, and no control characters from the post reach the terminal."""
    from rich.text import Text

    from ..archive.search import HIGHLIGHT_END, HIGHLIGHT_START
    from ..safety import printable

    text = Text()
    bold = False
    for part in snippet.replace(HIGHLIGHT_END, HIGHLIGHT_START).split(HIGHLIGHT_START):
        text.append(printable(part, 10_000, strip=False), style="bold yellow" if bold else None)
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
    import os
    from datetime import datetime, timezone

    from rich.console import Console

    from ..capture.config import load_config
    from ..capture.runner import CaptureOptions, LiveUI, LogUI, capture_context
    from ..capture.runner import capture as run
    from ..timeutil import parse_duration, parse_time

    if tz:
        from ..timeutil import get_zone

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
    created = not os.path.exists(db)
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
    try:
        if platform == "context":
            results = capture_context(archive_db, query, opts, config, ui=ui)
        else:
            results = [run(archive_db, platform, query, opts, config, ui=ui)]
    except BaseException:
        # a first capture that failed before storing anything (no token, a
        # refused login) leaves no empty archive behind
        if created and not archive_db.execute("SELECT EXISTS (SELECT 1 FROM posts)").fetchone()[0]:
            discard_new_archive(archive_db, db, created)
        raise
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
    from ..datasette import metadata as ds_metadata
    from ..datasette import server as ds_server

    extra = ds_metadata.parse_settings(settings)
    if metadata_out:
        ds_server.prepare_archive(db)
        metadata = ds_metadata.build_metadata(db, title=title, allow_sql=not no_sql)
        text = json.dumps(metadata, indent=2, ensure_ascii=False) + "\n"
        if metadata_out == "-":
            click.echo(text, nl=False)
        else:
            with open(metadata_out, "w", encoding="utf-8") as f:
                f.write(text)
            click.echo(f"Wrote {metadata_out}. Serve the same site with:", err=True)
        shown = "metadata.json" if metadata_out == "-" else metadata_out
        click.echo(ds_metadata.datasette_command(db, shown, extra), err=True)
        return
    ds_server.serve(
        db, host=host, port=port, open_browser=open_browser, allow_sql=not no_sql, title=title,
        immutable=not live, settings=extra, quiet=quiet, echo=click.echo,
    )


# --------------------------------------------------------------------------
# sessions and show (analysis: sessions.py, threads.py, qa.py, stats.py)


def parse_duration_option(value, name):
    from ..timeutil import parse_duration

    if value is None:
        return None
    try:
        return parse_duration(value)
    except ChatArchiveError as e:
        raise click.BadParameter(str(e), param_hint=name)


def qa_options(f):
    f = click.option("--answer-pattern", metavar="REGEX",
                     help="Answer marker: a regex with a group n for the number (default A1 / A 1 / a1) / A1a).")(f)
    f = click.option("--question-pattern", metavar="REGEX",
                     help="Question marker: a regex with a group n, e.g. 'T(?P<n>\\d+):' for T1/T2 chats.")(f)
    f = click.option("--host", "hosts", multiple=True, metavar="HANDLE",
                     help="A host of the chat (repeatable); only hosts' posts are questions. Default: detected.")(f)
    return f


@cli.group()
def sessions():
    """Find, add and list the sessions (sittings) of a chat hashtag.

    Sessions are detected automatically after every import; these commands
    tune detection, add explicit windows and weekly schedules.

    \b
    Example:
        chatarchive sessions detect chats.db --hashtag cmgrchat --gap 45m
        chatarchive sessions list chats.db
    """


@sessions.command("detect")
@db_argument
@click.option("--hashtag", "hashtags", multiple=True, metavar="TAG",
              help="Chat hashtag (repeatable). Named hashtags are remembered; without any, every hashtag is tried.")
@click.option("--gap", metavar="DURATION", help="Silence that splits two sessions [45m].")
@click.option("--min-posts", type=click.IntRange(min=1), help="Fewer posts than this are strays, not a session [10].")
@click.option("--tz", metavar="ZONE", help="The chat's time zone, for slugs and display, e.g. America/New_York.")
@qa_options
@click.option("--json", "as_json", is_flag=True, help="Print the analysis summary and sessions as JSON.")
def sessions_detect(db, hashtags, gap, min_posts, tz, hosts, question_pattern, answer_pattern, as_json):
    """Detect sessions from gaps in a hashtag's activity, then threads and Q&A.

    Re-running is safe: sessions keep their ids and slugs, manual and
    scheduled sessions are left alone. Options are remembered per hashtag
    and applied again after later imports.

    \b
    Example:
        chatarchive sessions detect chats.db --hashtag cmgrchat --gap 45m --min-posts 10
        chatarchive sessions detect chats.db --hashtag tchat --question-pattern 'T(?P<n>\\d+):'
    """
    from ..analysis.pipeline import analyse_archive
    from ..archive.queries import list_sessions

    archive = open_archive(db)
    result = analyse_archive(
        archive, hashtags=list(hashtags), gap=parse_duration_option(gap, "--gap"), min_posts=min_posts,
        tz=tz, hosts=list(hosts), question_pattern=question_pattern, answer_pattern=answer_pattern,
        redetect=True,
    )
    rows = [s for s in list_sessions(archive)
            if not hashtags or any((s.hashtag or "").lower() == h.lstrip("#").lower() for h in hashtags)]
    from ..analysis.sessions import hashtag_id

    for h in hashtags:
        if hashtag_id(archive, h.lstrip("#")) is None:
            click.echo(f"Warning: no post carries #{h.lstrip('#')} (check the spelling); "
                       "it is remembered as a chat hashtag.", err=True)
    if as_json:
        json_out({"analysis": result, "sessions": [s.as_dict() for s in rows]})
        return
    click.echo(result["summary"])
    print_sessions(rows)


@sessions.command("add")
@db_argument
@click.option("--hashtag", required=True, metavar="TAG", help="The chat hashtag.")
@click.option("--start", required=True, metavar="TIME", help="Start (ISO-8601; UTC unless an offset or --tz is given).")
@click.option("--end", metavar="TIME", help="End (ISO-8601).")
@click.option("--duration", metavar="DURATION", help="Length instead of --end, e.g. 1h.")
@click.option("--tz", metavar="ZONE", help="Time zone of --start/--end without an offset, and of the slug's date.")
@click.option("--host", "hosts", multiple=True, metavar="HANDLE", help="A host of this session (repeatable).")
@click.option("--title", help="A title for the recap.")
@click.option("--json", "as_json", is_flag=True, help="Print the session as JSON.")
def sessions_add(db, hashtag, start, end, duration, tz, hosts, title, as_json):
    """Add a session with an explicit window (or update the one overlapping it).

    \b
    Example:
        chatarchive sessions add chats.db --hashtag cmgrchat --start 2026-11-18T20:00 \\
            --duration 1h --tz America/New_York --host cmgrhost --title "Onboarding"
    """
    from ..analysis.pipeline import analyse_archive
    from ..analysis.sessions import add_session
    from ..archive.queries import get_session
    from ..archive.writer import transaction
    from ..timeutil import get_zone, iso_utc, parse_time

    if (end is None) == (duration is None):
        raise click.UsageError("Give exactly one of --end and --duration.")
    if tz:
        get_zone(tz)
    t0 = parse_time(start, tz)
    t1 = parse_time(end, tz) if end else t0 + parse_duration_option(duration, "--duration")
    archive = open_archive(db)
    with transaction(archive):
        sid = add_session(archive, hashtag, iso_utc(t0), iso_utc(t1), hosts=hosts, title=title, tz=tz)
        analyse_archive(archive, refresh_sessions=[sid])
    show_session_line(get_session(archive, sid), as_json)


@sessions.command("schedule")
@db_argument
@click.option("--hashtag", required=True, metavar="TAG", help="The chat hashtag.")
@click.option("--every", required=True, metavar='"WEEKDAY HH:MM"', help='When the chat meets, e.g. "wed 20:00".')
@click.option("--tz", required=True, metavar="ZONE", help="The chat's time zone, e.g. America/New_York.")
@click.option("--duration", required=True, metavar="DURATION", help="Length of the chat, e.g. 1h.")
@click.option("--before", default="0m", show_default=True, metavar="DURATION", help="Posts this early belong to it too.")
@click.option("--after", default="0m", show_default=True, metavar="DURATION", help="Posts this late belong to it too.")
@click.option("--host", "hosts", multiple=True, metavar="HANDLE", help="A host of the chat (repeatable).")
@click.option("--title", help="A title for every occurrence.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary and sessions as JSON.")
def sessions_schedule(db, hashtag, every, tz, duration, before, after, hosts, title, as_json):
    """Make one session per weekly occurrence that has posts (DST-safe).

    The schedule is remembered: later imports get their sessions from it.

    \b
    Example:
        chatarchive sessions schedule chats.db --hashtag cmgrchat --every "wed 20:00" \\
            --tz America/New_York --duration 1h --before 15m --after 30m
    """
    from ..analysis.pipeline import analyse_archive
    from ..analysis.sessions import set_schedule
    from ..archive.queries import list_sessions
    from ..archive.writer import transaction

    archive = open_archive(db)
    with transaction(archive):
        chat = set_schedule(
            archive, hashtag, every, tz, parse_duration_option(duration, "--duration"),
            parse_duration_option(before, "--before"), parse_duration_option(after, "--after"),
            hosts=hosts, title=title,
        )
        result = analyse_archive(archive, hashtags=[chat.hashtag])
    rows = [s for s in list_sessions(archive, chat.hashtag) if s.source == "scheduled"]
    if as_json:
        json_out({"analysis": result, "sessions": [s.as_dict() for s in rows]})
        return
    click.echo(f"{len(rows)} scheduled session(s) of #{chat.hashtag}. {result['summary']}")
    print_sessions(rows)


@sessions.command("list")
@db_argument
@click.option("--hashtag", metavar="TAG", help="Only sessions of this hashtag.")
@click.option("--json", "as_json", is_flag=True, help="Print sessions as JSON.")
def sessions_list(db, hashtag, as_json):
    """List sessions with their posts, participants and questions.

    \b
    Example:
        chatarchive sessions list chats.db --hashtag cmgrchat
    """
    from ..archive.queries import list_sessions

    rows = list_sessions(open_archive(db), hashtag)
    if as_json:
        json_out([s.as_dict() for s in rows])
        return
    if not rows:
        click.echo("No sessions. Import a chat, or: chatarchive sessions detect DB --hashtag TAG", err=True)
        return
    print_sessions(rows)


@sessions.command("remove")
@db_argument
@click.argument("session")
def sessions_remove(db, session):
    """Delete a session (its posts stay in the archive).

    A detected session comes back on the next detection unless its
    hashtag's settings change; use it for manual sessions added by mistake.

    \b
    Example:
        chatarchive sessions remove chats.db cmgrchat-2026-11-18
    """
    from ..analysis.sessions import remove_session
    from ..archive.writer import transaction

    archive = open_archive(db)
    with transaction(archive):
        s = remove_session(archive, session)
    click.echo(f"Removed session {s.slug}.")


def _local(iso: str | None, tz: str | None, fmt: str = "%a %Y-%m-%d %H:%M") -> str:
    from ..timeutil import get_zone, parse_iso

    if not iso:
        return ""
    dt = parse_iso(iso)
    if tz:
        try:
            return dt.astimezone(get_zone(tz)).strftime(fmt)
        except ChatArchiveError:
            pass
    return dt.strftime(fmt) + " UTC"


def print_sessions(rows) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console()
    if not console.is_terminal:
        for s in rows:
            click.echo("\t".join(str(x) for x in (
                s.slug, s.start, "#" + (s.hashtag or ""), s.posts, s.participants, s.questions,
                s.source, ",".join(s.platforms), ",".join(s.hosts))))
        return
    table = Table(expand=False)
    for name, kw in (("Session", {"style": "cyan", "no_wrap": True}), ("When", {"no_wrap": True}),
                     ("Posts", {"justify": "right"}), ("People", {"justify": "right"}),
                     ("Q", {"justify": "right"}), ("Hosts", {}), ("Platforms", {}), ("Source", {"style": "dim"})):
        table.add_column(name, **kw)
    for s in rows:
        table.add_row(Text(s.slug), Text(_local(s.start, s.timezone)), f"{s.posts:,}",
                      f"{s.participants or 0:,}", str(s.questions or 0),
                      Text(", ".join("@" + h for h in s.hosts)), Text(", ".join(s.platforms)), s.source or "")
    console.print(table)


def show_session_line(s, as_json: bool) -> None:
    if as_json:
        json_out(s.as_dict())
        return
    click.echo(f"Session {s.slug} (#{s.hashtag}, {s.source}): {s.start} .. {s.end}, {s.posts:,} posts")


@cli.command()
@db_argument
@click.argument("session")
@click.option("--top", default=10, show_default=True, type=click.IntRange(1, 1000), help="How many participants and posts.")
@click.option("--json", "as_json", is_flag=True, help="Print the full statistics (stats.session_stats) as JSON.")
def show(db, session, top, as_json):
    """A terminal recap of one session: counts, hosts, questions with answer
    counts, top participants and the busiest minutes.

    SESSION is a session id or slug (see: chatarchive sessions list DB).

    \b
    Example:
        chatarchive show chats.db cmgrchat-2026-11-18
        chatarchive show chats.db cmgrchat-2026-11-18 --json
    """
    from ..analysis.stats import session_stats

    st = session_stats(open_archive(db), session, top=top)
    if as_json:
        json_out(st)
        return
    render_recap(st)


sessions.add_command(show, "show")


def _n(count: int, one: str, many: str | None = None) -> str:
    return f"{count:,} {one if count == 1 else (many or one + 's')}"


def render_recap(st) -> None:
    """Rich tables for a session's statistics; every user text is a Text (never markup)."""
    from rich.console import Console, Group
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    console = Console(highlight=False)
    s = st["session"]
    tz = s["timezone"]
    head = Text()
    head.append(f"#{s['hashtag']}", style="bold magenta")
    if s["title"]:
        head.append("  ")
        head.append(s["title"], style="bold")
    head.append("\n")
    head.append(f"{_local(s['start'], tz)} – {_local(s['end'], tz, '%H:%M')}")
    if tz:
        head.append(f" {tz}", style="dim")
    head.append(f"  ·  {s['source']}  ·  {', '.join(s['platforms']) or 'no posts'}\n")
    head.append("Hosts: ")
    head.append(", ".join("@" + h for h in s["hosts"]) or "none detected", style="cyan")
    head.append("\n")
    q_answers = sum(q["answers"] for q in st["questions"])
    head.append(
        f"{st['posts']:,} posts ({st['matched_posts']:,} matched, {st['context_posts']:,} context) · "
        f"{st['participants']:,} participants ({len(st['first_timers']):,} first-timers, "
        f"{len(st['returning']):,} returning) · {_n(st['replies'], 'reply', 'replies')} · "
        f"{_n(len(st['questions']), 'question')}, {_n(q_answers, 'answer')}"
    )
    console.print(Panel(head, title=Text(s["slug"]), title_align="left", expand=False))

    if st["questions"]:
        qt = Table(title="Questions", title_justify="left", expand=False)
        qt.add_column("#", justify="right", style="bold")
        qt.add_column("Question", max_width=70)
        qt.add_column("Answers", justify="right")
        qt.add_column("First answer", justify="right", style="dim")
        for q in st["questions"]:
            secs = q["first_answer_seconds"]
            first = "" if secs is None else (f"{secs / 60:.1f} min" if secs >= 60 else f"{secs:.0f} s")
            qt.add_row(f"Q{q['number']}", Text(" ".join((q["text"] or "").split())), str(q["answers"]), first)
        console.print(qt)

    tables = []
    if st["top_participants"]:
        pt = Table(title="Top participants", title_justify="left", expand=False)
        pt.add_column("Handle", style="cyan")
        pt.add_column("Posts", justify="right")
        pt.add_column("Replies received", justify="right")
        pt.add_column("First time", justify="center")
        for a in st["top_participants"]:
            pt.add_row(Text("@" + a["handle"]), str(a["posts"]), str(a["replies_received"]),
                       "★" if a["first_timer"] else "")
        tables.append(pt)
    if st["busiest_minutes"]:
        bt = Table(title="Busiest minutes", title_justify="left", expand=False)
        bt.add_column("Minute")
        bt.add_column("Posts", justify="right")
        bt.add_column("")
        peak = max(m["posts"] for m in st["busiest_minutes"])
        for m in st["busiest_minutes"]:
            bt.add_row(_local(m["minute"] + ":00Z", tz, "%H:%M"), str(m["posts"]),
                       Text("█" * max(1, round(20 * m["posts"] / peak)), style="green"))
        tables.append(bt)
    if tables:
        console.print(Group(*tables))
    if st["links"]:
        lt = Table(title="Links shared", title_justify="left", expand=False)
        lt.add_column("Count", justify="right")
        lt.add_column("URL", overflow="fold")
        for link in st["links"][:5]:
            lt.add_row(str(link["count"]), Text(link["url"]))
        console.print(lt)


# --------------------------------------------------------------------------
# recap and export (render.py, export.py)


def existing_archive(path: str):
    """Open an archive that must already exist (recap/export never create one)."""
    from pathlib import Path

    if path != ":memory:" and not Path(path).is_file():
        raise ChatArchiveError(f"{path}: no such archive (create one with: chatarchive import {path} FILE...)")
    return open_archive(path)


@cli.command()
@db_argument
@click.argument("sessions", nargs=-1, metavar="[SESSION]...")
@click.option("-o", "--out", required=True, type=click.Path(file_okay=False), help="Folder to write the site into.")
@click.option("--templates", type=click.Path(file_okay=False, exists=True),
              help="Folder of Jinja2 templates overriding ours, one file at a time (e.g. just base.html).")
@click.option("--download-media", is_flag=True,
              help="Copy avatars and media into OUT/media instead of hotlinking them.")
@click.option("--no-search", is_flag=True, help="Do not build the Pagefind search index.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors.")
def recap(db, sessions, out, templates, download_media, no_search, quiet):
    """Write a static recap site of SESSIONs (all when none is given) into OUT.

    index.html lists every hashtag and chat; each session gets a page (Q&A,
    conversations, transcript, timeline, people, links, media), each hashtag
    and each participant one too. Pages are self-contained (inline CSS,
    no scripts, no fonts) and work from file://; Pagefind adds search (it
    needs the site served over http: python3 -m http.server). Re-running
    rewrites only the files that changed.

    \b
    Example:
        chatarchive recap chats.db --out site/
        chatarchive recap chats.db cmgrchat-2026-11-18 --out site/ --download-media
    """
    from pathlib import Path

    from ..recap.site import build_site

    archive = existing_archive(db)
    progress = None if quiet else (lambda msg: click.echo(msg, err=True))
    result = build_site(archive, Path(out), list(sessions) or None, templates=templates,
                        download_media=download_media, search=not no_search, progress=progress)
    if quiet:
        return
    for message in result.messages:
        click.echo(message, err=True)
    click.echo(f"Wrote {result.out}: {result.pages} pages for {result.sessions} session(s); "
               f"{result.written} file(s) changed, {result.unchanged} unchanged, {result.removed} removed "
               f"({result.seconds:.1f} s)")
    if download_media:
        click.echo(f"Media: {result.media_downloaded} file(s) in the site, {result.media_failed} could not be copied")
    click.echo(("Search: " if result.search_ok else "Note: ") + result.search
               + ("; serve the folder over http to use it (python3 -m http.server)" if result.search_ok else ""))
    click.echo(f"Open {result.index.resolve().as_uri()}")


@cli.command()
@db_argument
@click.argument("session")
@click.option("-f", "--format", "fmt", type=click.Choice(["md", "json", "jsonl", "csv"]), default="md",
              show_default=True, help="md: a transcript for a blog post (Q&A grouped); json: everything; "
              "jsonl/csv: one post per line/row.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, allow_dash=True), default="-",
              help="Write to FILE instead of standard output.")
def export(db, session, fmt, output):
    """Export one SESSION (id or slug) as Markdown, JSON, JSONL or CSV.

    \b
    Example:
        chatarchive export chats.db cmgrchat-2026-11-18 --format md -o recap.md
        chatarchive export chats.db cmgrchat-2026-11-18 --format csv > posts.csv
    """
    import io
    import os

    from ..export import export_session

    archive = existing_archive(db)
    buf = io.StringIO()
    export_session(archive, session, fmt, buf)
    if output == "-":
        click.echo(buf.getvalue(), nl=False)
        return
    tmp = f"{output}.tmp{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(buf.getvalue())
        os.replace(tmp, output)
    except OSError as e:
        raise ChatArchiveError(f"{output}: cannot write ({e.strerror})")
    click.echo(f"Wrote {output}", err=True)


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

    from ..demo import run_demo

    run_demo(Path(directory), echo=click.echo)
