"""``chatarchive search``: full-text search from the terminal."""

from __future__ import annotations

import click
from rich.console import Console

from ..api import Archive
from ..models import HIGHLIGHT_END, HIGHLIGHT_START
from ..present.terminal import print_search_results, search_lines
from ..present.text import clean_data
from ..safety import printable
from .common import db_argument, err, json_out


@click.command()
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
def search(db: str, query: str, hashtag: str | None, author: str | None, session: str | None, since: str | None,
           until: str | None, limit: int, order: str, as_json: bool) -> None:
    """Full-text search of the archive (SQLite FTS5, with stemming).

    QUERY uses FTS5 syntax: words, "exact phrases", AND / OR / NOT,
    prefix*, NEAR(a b). Author handles and names are searched too. Text
    that is not FTS5 syntax (A1:, @handle, #tag, a URL) is searched for its
    words, with a note saying so.

    \b
    Example:
        chatarchive search chats.db "community AND metrics" --hashtag cmgrchat
    """
    hits = Archive(db).search(query, hashtag=hashtag, author=author, session=session, since=since, until=until,
                              limit=limit, order=order, highlight=(HIGHLIGHT_START, HIGHLIGHT_END))
    if hits.note:
        err(printable(f"Note: {hits.note}", 1000))
    if as_json:
        # strings without control characters, so a consumer printing them prints no escape sequence
        json_out(clean_data([hit.as_dict() for hit in hits]))
        return
    if not hits:
        err("No matches.")
        return
    console = Console()
    if console.is_terminal:
        print_search_results(console, hits, order)
    else:
        for line in search_lines(hits):
            click.echo(line)
