"""``chatarchive import``: files into the archive, then the analysis."""

from __future__ import annotations

import sys

import click
from rich.console import Console

from ..api import Archive
from ..errors import ParseError
from ..present.terminal import ImportProgressBar, PlainProblems
from ..safety import printable
from ..sources import FORMATS
from ..sources.mastodon import host_of
from ..timeutil import get_zone
from .common import db_argument, err, json_out


@click.command(name="import")
@db_argument
@click.argument("files", nargs=-1, required=True, type=click.Path(allow_dash=True))
@click.option("--format", "format_", type=click.Choice(list(FORMATS)), help="Skip detection: read every FILE as this format.")
@click.option("--tz", help="Time zone of local times in the file (Twitter Archiver CSV), e.g. America/New_York.")
@click.option("--strict", is_flag=True, help="Any malformed record aborts the import and leaves the database untouched.")
@click.option("--instance", metavar="URL", help="Mastodon server that served the files (host or URL, e.g. "
              "https://mastodon.social), for files that carry no evidence of it.")
@click.option("--no-analyse", is_flag=True, help="Do not re-detect sessions, threads and Q&A afterwards.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no summary.")
@click.option("--json", "as_json", is_flag=True, help="Print the per-file summary as JSON.")
def import_(db: str, files: tuple[str, ...], format_: str | None, tz: str | None, strict: bool,
            instance: str | None, no_analyse: bool, quiet: bool, as_json: bool) -> None:
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
    if tz:
        get_zone(tz)
    host = None
    if instance:
        host = host_of(instance)
        if not host or "/" in host or " " in host:
            raise click.BadParameter(f"{instance!r} is not a server URL or host", param_hint="--instance")
    archive = Archive(db, create=True)
    console = Console(stderr=True)
    progress: ImportProgressBar | PlainProblems
    if console.is_terminal and not quiet and not as_json:
        progress = ImportProgressBar(console)
    else:
        progress = PlainProblems(err)
    try:
        with progress:
            result = archive.import_files(files, format=format_, tz=tz, strict=strict, instance=host,
                                          analyse=not no_analyse, progress=progress)
    except ParseError as e:
        archive.discard_if_empty()
        raise click.ClickException(f"{printable(str(e), 400)} (--strict: nothing was imported)") from None
    except BaseException:
        archive.discard_if_empty()
        raise
    if not result.posts:
        archive.discard_if_empty()  # every file refused: a new archive is not left behind
    if as_json:
        json_out(result.as_dict())
    else:
        for r in result:
            if r.error:
                err(f"Error: {printable(r.error, 400)}")
            elif not quiet:
                extra = f", {r.skipped:,} skipped" if r.skipped else ""
                click.echo(f"{r.path} ({r.format}): {r.added:,} added, {r.updated:,} updated, "
                           f"{r.unchanged:,} unchanged{extra}")
        done = result.imported
        if not quiet and len(done) > 1:
            total = result.totals()
            click.echo(
                f"Total ({len(done)} files, {result.seconds:.1f} s): {total['added']:,} added, "
                f"{total['updated']:,} updated, {total['unchanged']:,} unchanged, {total['skipped']:,} skipped"
            )
        if not quiet and result.analysis.get("summary"):
            click.echo(result.analysis["summary"])
    if any(r.error for r in result):
        sys.exit(1)
