"""``chatarchive recap`` and ``export``: the static site and one session's transcript."""

from __future__ import annotations

import click

from ..api import Archive
from ..export import FORMATS
from ..safety import printable
from .common import db_argument, err


@click.command()
@db_argument
@click.argument("sessions", nargs=-1, metavar="[SESSION]...")
@click.option("-o", "--out", required=True, type=click.Path(file_okay=False), help="Folder to write the site into.")
@click.option("--templates", type=click.Path(file_okay=False, exists=True),
              help="Folder of Jinja2 templates overriding ours, one file at a time (e.g. just base.html).")
@click.option("--download-media", is_flag=True,
              help="Copy avatars and media into OUT/media instead of hotlinking them.")
@click.option("--no-search", is_flag=True, help="Do not build the Pagefind search index.")
@click.option("--prune", is_flag=True,
              help="Also delete the pages of sessions (and people, hashtags, media) no longer in the archive; "
              "only files an earlier recap wrote.")
@click.option("--base-url", metavar="URL",
              help="The address the site is published at (https://example.org/chats/): absolute links in the "
              "Atom feeds, preview cards and og:url. Without it feed links are relative and og:url is left out.")
@click.option("--include-unlisted", is_flag=True,
              help="Also publish accounts unlisted on their platform (noindex, !no-unauthenticated, protected).")
@click.option("--anonymize", is_flag=True,
              help="Show every non-host as a stable pseudonym (\"Participant 12\"): no names, handles, avatars or "
              "profile links, for research sharing.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors.")
def recap(db: str, sessions: tuple[str, ...], out: str, templates: str | None, download_media: bool,
          no_search: bool, prune: bool, base_url: str | None, include_unlisted: bool, anonymize: bool,
          quiet: bool) -> None:
    """Write a static recap site of SESSIONs (all when none is given) into OUT.

    Each session gets a page (before the chat, Q&A, conversations,
    transcript, timeline, people, links, media); index.html and a page per
    hashtag list every session of the archive; each participant gets a page
    too, and each hashtag a community page (sessions over time, retention,
    regulars, every question, the links shared), an Atom feed
    (feeds/TAG.xml; feed.xml for the whole site) and every session a
    preview card (cards/SLUG.png, with Open Graph tags). Naming SESSIONs adds or updates their pages and keeps every other
    page of OUT (a weekly run: recap DB THIS-WEEK --out site/); only
    --prune deletes anything. Pages are self-contained (inline CSS, no
    scripts, no fonts) and work from file://; Pagefind adds search (it
    needs the site served over http: python3 -m http.server). Only files
    whose content changed are rewritten, and nothing is written or deleted
    outside OUT.

    \b
    Example:
        chatarchive recap chats.db --out site/
        chatarchive recap chats.db cmgrchat-2026-11-18 --out site/ --download-media
        chatarchive recap chats.db --out site/ --prune
        chatarchive recap chats.db --out site/ --base-url https://example.org/chats/
        chatarchive recap chats.db --out research-site/ --anonymize
    """
    result = Archive(db).recap(out, sessions, templates=templates, download_media=download_media,
                               search=not no_search, prune=prune, base_url=base_url,
                               include_unlisted=include_unlisted, anonymize=anonymize,
                               progress=None if quiet else (lambda msg: err(printable(msg, 400))))
    if quiet:
        return
    for message in result.messages:
        err(printable(message, 1000))
    removed = f", {result.removed} removed" if prune else ""
    click.echo(printable(f"Wrote {result.out}: {result.pages} pages ({result.sessions} session page(s) rendered, "
                         f"{result.listed} session(s) listed); {result.written} file(s) changed, "
                         f"{result.unchanged} unchanged{removed} ({result.seconds:.1f} s)", 1000))
    if download_media:
        click.echo(f"Media: {result.media_downloaded} file(s) in the site, {result.media_failed} could not be copied")
    click.echo(printable(("Search: " if result.search_ok else "Note: ") + result.search
                         + ("; serve the folder over http to use it (python3 -m http.server)" if result.search_ok
                            else ""), 1000))
    click.echo(f"Open {result.index.resolve().as_uri()}")


@click.command()
@db_argument
@click.argument("session")
@click.option("-f", "--format", "fmt", type=click.Choice(FORMATS), default="md",
              show_default=True, help="md: a transcript for a blog post (Q&A grouped); json: everything; "
              "jsonl/csv: one post per line/row.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, allow_dash=True), default="-",
              help="Write to FILE instead of standard output.")
@click.option("--include-unlisted", is_flag=True,
              help="Also publish accounts unlisted on their platform (noindex, !no-unauthenticated, protected).")
@click.option("--anonymize", is_flag=True,
              help="Show every non-host as a stable pseudonym (\"Participant 12\"): no names, handles, avatars or "
              "profile links, for research sharing.")
def export(db: str, session: str, fmt: str, output: str, include_unlisted: bool, anonymize: bool) -> None:
    """Export one SESSION (id or slug) as Markdown, JSON, JSONL or CSV.

    \b
    Example:
        chatarchive export chats.db cmgrchat-2026-11-18 --format md -o recap.md
        chatarchive export chats.db cmgrchat-2026-11-18 --format csv > posts.csv
        chatarchive export chats.db cmgrchat-2026-11-18 --format json --anonymize -o research.json
    """
    archive = Archive(db)
    if output == "-":
        click.echo(archive.export(session, fmt, include_unlisted=include_unlisted, anonymize=anonymize), nl=False)
        return
    archive.export(session, fmt, output, include_unlisted=include_unlisted, anonymize=anonymize)
    err(f"Wrote {output}")
