"""``chatarchive demo``: the whole job on the bundled sample chat."""

from __future__ import annotations

from pathlib import Path

import click

from ..demo import run_demo


@click.command()
@click.argument("directory", default="chatarchive-demo", type=click.Path(file_okay=False))
def demo(directory: str) -> None:
    """Import the bundled sample chat into DIRECTORY/demo.db and show what was found.

    \b
    Example:
        chatarchive demo
    """
    run_demo(Path(directory), echo=click.echo)
