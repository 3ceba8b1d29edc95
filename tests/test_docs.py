"""Docs that cannot drift (as sqlite-utils' test_docs.py): every command and
subcommand of the CLI has help text with an example, every option says what
it does, and every command appears in README.md.

The Click tree is walked at collection time, so commands added later are
covered without touching this file.
"""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from chatarchive.cli import cli

README = Path(__file__).resolve().parent.parent / "README.md"


def walk(group: click.Group, prefix: tuple[str, ...] = ()):
    for name in sorted(group.commands):
        cmd = group.commands[name]
        if cmd.hidden:
            continue
        path = prefix + (name,)
        yield " ".join(path), cmd
        if isinstance(cmd, click.Group):
            yield from walk(cmd, path)


COMMANDS = list(walk(cli))
IDS = [path for path, _ in COMMANDS]
# One command object registered under several names (an alias such as
# `sessions show` for `show`) is documented once, under any of its names.
ALIASES: dict[int, list[str]] = {}
for _path, _cmd in COMMANDS:
    ALIASES.setdefault(id(_cmd), []).append(_path)


def names_of(cmd: click.Command) -> str:
    """A regex alternative of every path the command is reachable by."""
    return "(?:" + "|".join(re.escape(p) for p in ALIASES[id(cmd)]) + ")"


def test_the_tree_is_walked():
    # The commands the foundation ships; the walk must see at least these.
    assert {"import", "search", "demo"} <= set(IDS)


@pytest.mark.parametrize("path,cmd", COMMANDS, ids=IDS)
def test_command_has_help_with_example(path, cmd):
    text = cmd.help or ""
    assert text.strip(), f"chatarchive {path}: no docstring/help"
    first = text.strip().splitlines()[0]
    assert len(first) <= 100, f"chatarchive {path}: first help line too long for the command list"
    assert re.search(r"^\s*Examples?:", text, re.M), f"chatarchive {path}: help has no 'Example:' block"
    assert re.search(rf"^\s*chatarchive {names_of(cmd)}\b", text, re.M), \
        f"chatarchive {path}: the example does not show 'chatarchive {path} …'"


@pytest.mark.parametrize("path,cmd", COMMANDS, ids=IDS)
def test_options_have_help(path, cmd):
    missing = [p.name for p in cmd.params
               if isinstance(p, click.Option) and not p.hidden and not (p.help or "").strip()
               and p.name not in ("help",)]
    assert not missing, f"chatarchive {path}: options without help: {missing}"


@pytest.mark.parametrize("path,cmd", COMMANDS, ids=IDS)
def test_help_renders(runner, path, cmd):
    result = runner.invoke(cli, path.split() + ["--help"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert f"Usage: cli {path}" in result.output or f"Usage: chatarchive {path}" in result.output
    assert "Example" in result.output


@pytest.mark.parametrize("path,cmd", COMMANDS, ids=IDS)
def test_command_in_readme(path, cmd):
    readme = README.read_text("utf-8")
    # an example line in a code block: "chatarchive sessions detect chats.db …"
    assert re.search(rf"^\s*(?:\$ )?chatarchive {names_of(cmd)}\b", readme, re.M), \
        f"README.md has no example of 'chatarchive {path}'"


def test_readme_has_the_documented_sections():
    readme = README.read_text("utf-8")
    for heading in ("## Set up", "## Commands", "## Schema", "## Design notes"):
        assert re.search(rf"^{re.escape(heading)}\s*$", readme, re.M), heading
    # the two set-up commands: run the main job, run the tests
    assert "chatarchive demo" in readme
    assert "python -m pytest" in readme


def test_readme_schema_lists_every_table_and_column(tmp_path):
    """The Schema section names every table and column the migrations create."""
    from chatarchive.archive.schema import open_db

    readme = README.read_text("utf-8")
    section = readme.split("## Schema", 1)[1].split("\n## ", 1)[0]
    db = open_db(tmp_path / "schema.db")
    missing = []
    for table in db.table_names():
        if table_is_internal(table):
            continue
        block = table_block(section, table)
        if not block:
            missing.append(f"{table} (no ### heading naming it)")
            continue
        for column in db[table].columns_dict:
            if f"`{column}`" not in block:
                missing.append(f"{table}.{column}")
    for view in db.view_names():
        if not re.search(rf"`{re.escape(view)}`", section):
            missing.append(f"view {view}")
    assert not missing, f"README Schema section lacks: {missing}"


def table_is_internal(table: str) -> bool:
    # FTS shadow tables and the migrations bookkeeping are SQLite/sqlite-utils internals.
    return table.startswith("_") or bool(re.match(r"\w+_fts(_\w+)?$", table))


def table_block(section: str, table: str) -> str:
    """The part of the Schema section under the ### heading that names the table."""
    for chunk in re.split(r"^(?=### )", section, flags=re.M):
        heading = chunk.split("\n", 1)[0]
        if heading.startswith("### ") and f"`{table}`" in heading:
            return chunk
    return ""
