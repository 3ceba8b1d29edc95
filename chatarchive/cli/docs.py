"""The README's command reference, generated from the real ``--help`` texts.

    python -m chatarchive.cli.docs            # rewrite the help blocks of README.md
    python -m chatarchive.cli.docs --check    # exit 1 (and say which) when one is stale

A block is everything between ``<!-- help: chatarchive CMD… -->`` and
``<!-- /help -->``: the output of ``chatarchive CMD… --help`` at a fixed
width, in a code block (folded in ``<details>`` for a subcommand).  The rest
of the README is hand-written and left alone; tests/test_docs.py fails when
a block is stale or a command has none.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import click

from . import cli

WIDTH = 100  # the CLI's max_content_width: help as a wide terminal shows it
BLOCK = re.compile(r"(?P<open><!-- help: (?P<command>[^>]*?) -->\n)(?P<body>.*?)(?P<close><!-- /help -->)", re.S)
REGENERATE = "python -m chatarchive.cli.docs"


def commands(group: click.Group = cli, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    """Every visible command and subcommand, depth first, with its path of names."""
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        if cmd is None or cmd.hidden:
            continue
        yield prefix + (name,), cmd
        if isinstance(cmd, click.Group):
            yield from commands(cmd, prefix + (name,))


def help_text(path: Sequence[str]) -> str:
    """``chatarchive PATH… --help`` exactly as the command prints it, at :data:`WIDTH` columns."""
    ctx = click.Context(cli, info_name="chatarchive", terminal_width=WIDTH, **cli.context_settings)
    cmd: click.Command = cli
    for name in path:
        if not isinstance(cmd, click.Group):
            raise click.UsageError(f"chatarchive {' '.join(path)}: {name!r} is not a subcommand")
        sub = cmd.get_command(ctx, name)
        if sub is None:
            raise click.UsageError(f"chatarchive {' '.join(path)}: no such command")
        cmd = sub
        ctx = click.Context(cmd, info_name=name, parent=ctx)
    return cmd.get_help(ctx)


def render(command: str) -> str:
    """The body of the block for ``command`` ("chatarchive sessions add")."""
    words = command.split()
    if not words or words[0] != "chatarchive":
        raise click.UsageError(f"<!-- help: {command} -->: a block names a command starting with 'chatarchive'")
    fence = f"```\n{help_text(words[1:]).rstrip()}\n```\n"
    if len(words) == 1:
        return fence
    return f"<details><summary><code>{command} --help</code></summary>\n\n{fence}\n</details>\n"


def update(text: str) -> str:
    """``text`` (a README) with every help block regenerated."""
    return BLOCK.sub(lambda m: m["open"] + render(m["command"]) + m["close"], text)


def documented(text: str) -> set[str]:
    """The commands that have a help block ("chatarchive sessions add", …)."""
    return {m["command"].strip() for m in BLOCK.finditer(text)}


def without_blocks(text: str) -> str:
    """``text`` without its generated blocks (the hand-written part)."""
    return BLOCK.sub(lambda m: m["open"] + m["close"], text)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=REGENERATE, description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("readme", nargs="?", default="README.md", type=Path, help="the file to update [README.md]")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 when a block is stale")
    args = parser.parse_args(argv)
    text = args.readme.read_text(encoding="utf-8")
    new = update(text)
    if args.check:
        stale = sorted(m["command"] for m, n in zip(BLOCK.finditer(text), BLOCK.finditer(new)) if m["body"] != n["body"])
        for command in stale:
            print(f"{args.readme}: the help of {command!r} is stale; run: {REGENERATE}", file=sys.stderr)
        return 1 if stale else 0
    if new != text:
        args.readme.write_text(new, encoding="utf-8")
        print(f"Updated {args.readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
