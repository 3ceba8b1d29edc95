"""What several commands share: the DB argument, option bundles, JSON output."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

import click

from ..errors import ChatArchiveError
from ..present.text import clean_data
from ..timeutil import parse_duration

F = TypeVar("F", bound=Callable[..., Any])


def db_argument(f: F) -> F:
    return click.argument("db", type=click.Path(dir_okay=False))(f)


def qa_options(f: F) -> F:
    """--host, --question-pattern and --answer-pattern (sessions detect)."""
    f = click.option("--answer-pattern", metavar="REGEX",
                     help="Answer marker: a regex with a group n for the number (default A1 / A 1 / a1) / A1a).")(f)
    f = click.option("--question-pattern", metavar="REGEX",
                     help="Question marker: a regex with a group n, e.g. 'T(?P<n>\\d+):' for T1/T2 chats.")(f)
    f = click.option("--host", "hosts", multiple=True, metavar="HANDLE",
                     help="A host of the chat (repeatable); only hosts' posts are questions. Default: detected.")(f)
    return f


def json_out(data: Any) -> None:
    """JSON on standard output, with no control character in any string: a
    consumer printing a decoded value prints no escape sequence from a post."""
    click.echo(json.dumps(clean_data(data), indent=2, ensure_ascii=False, default=str))


def err(message: str) -> None:
    """A line on standard error."""
    click.echo(message, err=True)


class Duration(click.ParamType):
    """A duration option (45m, 1h30m, 90s) as a timedelta; a bad one is a usage error naming the option."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> timedelta:
        if isinstance(value, timedelta):
            return value
        try:
            return parse_duration(value)
        except ChatArchiveError as e:
            self.fail(str(e), param, ctx)


DURATION = Duration()
