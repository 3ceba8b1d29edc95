"""The command line: ``chatarchive COMMAND``.

Each command is a module here that parses options, calls the library
(:class:`chatarchive.Archive` for everything that opens an archive) and
prints what it returns; nothing here knows SQL, file formats or how a view
looks.  Library errors (``ChatArchiveError``) become one line and exit 1.

A command's module is imported only when that command runs or shows its
help (``chatarchive --help`` lists them by their summaries), so starting
``chatarchive search`` never loads Datasette, Jinja2 or the capture clients.
"""

from __future__ import annotations

import importlib
import sys
from gettext import gettext as _
from typing import Any

import click

import chatarchive

from ..errors import ChatArchiveError

CONTEXT_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

# name -> ("module:attribute" in this package, the first paragraph of its
# help).  The summaries let `chatarchive --help` list the commands without
# importing them all (Datasette, httpx, Jinja2…); tests/test_docs.py checks
# that each is its command's own.
COMMANDS: dict[str, tuple[str, str]] = {
    "capture": ("capture:capture", "Capture a hashtag chat live from X, Mastodon or Bluesky into DB."),
    "check-deleted": ("editorial:check_deleted", "Ask X, Mastodon and Bluesky which archived posts were deleted, "
                      "and remove those."),
    "consent": ("editorial:consent", "Record an account's consent to appear in published outputs."),
    "forget": ("editorial:forget", "Remove a person at their request: their posts' content, for good."),
    "hidden": ("editorial:hidden", "List what is hidden from published outputs, and why."),
    "hide": ("editorial:hide", "Keep posts or accounts out of the recap, exports and Datasette pages."),
    "note": ("editorial:note", "Add the host's note (Markdown) to a session or one of its questions."),
    "pin": ("editorial:pin", "Pin a best answer: shown first under its question and in the session's Highlights."),
    "settings": ("editorial:settings", "Show or set the archive's settings (owner, contact…), shown on the "
                 "recap's About page."),
    "unhide": ("editorial:unhide", "Publish hidden posts or accounts again."),
    "unpin": ("editorial:unpin", "Unpin a post."),
    "demo": ("demo:demo", "Import the bundled sample chat into DIRECTORY/demo.db and show what was found."),
    "export": ("publish:export", "Export one SESSION (id or slug) as Markdown, JSON, JSONL or CSV."),
    "import": ("importing:import_", "Import chat files into DB (created when missing)."),
    "recap": ("publish:recap", "Write a static recap site of SESSIONs (all when none is given) into OUT."),
    "search": ("search:search", "Full-text search of the archive (SQLite FTS5, with stemming)."),
    "serve": ("serve:serve", "Browse and search DB in Datasette: facets, full-text search, canned queries, "
              "a search page and a page per session."),
    "sessions": ("sessions:sessions", "Find, add and list the sessions (sittings) of a chat hashtag."),
    "show": ("sessions:show", "A terminal recap of one session: counts, hosts, questions with answer counts, "
             "top participants and the busiest minutes."),
}


class ChatArchiveGroup(click.Group):
    """The top-level group: imports each command from its module on first
    use, and turns library errors into one clear line and exit 1 — never a
    traceback."""

    def __init__(self, *args: Any, lazy_commands: dict[str, tuple[str, str]] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy_commands:
            module, attribute = self.lazy_commands[cmd_name][0].split(":")
            command = getattr(importlib.import_module(f"{__name__}.{module}"), attribute)
            if not isinstance(command, click.Command):
                raise TypeError(f"{module}:{attribute} is not a click command")
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # as click.Group does, but a command not imported yet is listed by its summary
        rows = [(name, self.commands.get(name) or click.Command(name, help=self.lazy_commands[name][1]))
                for name in self.list_commands(ctx)]
        rows = [(name, cmd) for name, cmd in rows if not cmd.hidden]
        if rows:
            limit = formatter.width - 6 - max(len(name) for name, _ in rows)
            with formatter.section(_("Commands")):
                formatter.write_dl([(name, cmd.get_short_help_str(limit)) for name, cmd in rows])

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ChatArchiveError as e:
            raise click.ClickException(str(e)) from None
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            sys.exit(130)


def print_version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    # chatarchive reads its installed metadata only when asked (30 ms)
    click.echo(f"chatarchive, version {chatarchive.__version__}")
    ctx.exit()


@click.group(cls=ChatArchiveGroup, lazy_commands=COMMANDS, context_settings=CONTEXT_SETTINGS)
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=print_version,
              help="Show the version and exit.")
def cli() -> None:
    """Archive hashtag chats (X, Mastodon, Bluesky, twarc, TAGS) into SQLite,
    publish recaps and search old chats.

    \b
    Quick start:
        chatarchive demo
        chatarchive import chats.db cmgrchat-2026-11-18.jsonl
        chatarchive search chats.db "community AND metrics" --hashtag cmgrchat
    """
