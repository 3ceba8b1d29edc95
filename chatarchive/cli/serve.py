"""``chatarchive serve``: the archive in Datasette."""

from __future__ import annotations

import json

import click

from ..datasette.metadata import build_metadata, datasette_command, parse_settings
from ..datasette.server import prepare_archive
from ..datasette.server import serve as run_datasette
from .common import db_argument, err


@click.command()
@db_argument
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
def serve(db: str, host: str, port: int, open_browser: bool, no_sql: bool, title: str | None, live: bool,
          settings: tuple[tuple[str, str], ...], metadata_out: str | None, quiet: bool) -> None:
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
    extra = parse_settings(settings)
    if metadata_out:
        prepare_archive(db)
        text = json.dumps(build_metadata(db, title=title, allow_sql=not no_sql), indent=2, ensure_ascii=False) + "\n"
        if metadata_out == "-":
            click.echo(text, nl=False)
        else:
            with open(metadata_out, "w", encoding="utf-8") as f:
                f.write(text)
            err(f"Wrote {metadata_out}. Serve the same site with:")
        err(datasette_command(db, "metadata.json" if metadata_out == "-" else metadata_out, extra))
        return
    run_datasette(db, host=host, port=port, open_browser=open_browser, allow_sql=not no_sql, title=title,
                  immutable=not live, settings=extra, quiet=quiet, echo=click.echo)
