"""The format registry: what a format is, the one list of formats in
detection order, and how a file's records are read for its format.

A :class:`Format` is a small object with a ``sniff`` (does this sample look
like me?) and a pure ``normalize`` (one record -> Post records, no I/O).
What a normalizer may know beyond the record travels in a ``Context`` (reading.py),
one per file: the file's name, ``--tz``, the Mastodon server that served
it, and the format's own per-file state (made by ``Format.new_state``: the
Mastodon local-id map, the Bluesky DID -> handle map, the tweets.js owner).
Nothing else is shared between records.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from ..errors import ChatArchiveError
from ..models import Post
from .reading import Context, InputFile, csv_records, json_records

# Every format, in the order detection tries them within a kind (custom
# formats sniff the raw head, json ones the first value, csv ones the first
# rows) and ``--format`` lists them.  Within a kind the more specific come
# first: the Twitter Archiver's preamble row before TAGS' header before
# twarc-csv's v2 names (which exclude both); Bluesky and X v2 pages before
# v1.1 statuses and Mastodon statuses.
ORDER = ("bluesky", "twarc2", "twitter_v1", "twitter_archiver", "tags_csv", "twarc_csv", "mastodon", "tweets_js")

S = TypeVar("S")


@dataclass
class Format:
    name: str
    description: str
    kind: str  # "json" | "csv" | "custom"
    sniff: Callable[[Any], bool]
    normalize: Callable[[Any, Context], Iterable[Post]]
    # reads the records itself (tweets.js, read-ahead for Mastodon); else
    # the shared JSON/JSONL or CSV reader does
    records: Callable[[InputFile, Context], Iterator[tuple[str, Any]]] | None = None
    header_row: int = 0  # csv: index of the header row
    new_state: Callable[[Context], object] | None = None  # per-file state for Context.state

    def context(self, path: str, *, tz: str | None = None, instance: str | None = None) -> Context:
        """A Context for one file (or one live stream) read as this format."""
        ctx = Context(path=path, tz=tz, instance=instance)
        if self.new_state is not None:
            ctx.state = self.new_state(ctx)
        return ctx


FORMATS: dict[str, Format] = {}


def register(fmt: Format) -> Format:
    """Add a format (kept in :data:`ORDER`, whatever order modules load in)."""
    if fmt.name not in ORDER:
        raise ValueError(f"format {fmt.name!r} is not in sources.registry.ORDER (its place in detection)")
    FORMATS[fmt.name] = fmt
    ordered = sorted(FORMATS.values(), key=lambda f: ORDER.index(f.name))
    FORMATS.clear()
    FORMATS.update((f.name, f) for f in ordered)
    return fmt


def get_format(name: str) -> Format:
    """The format called ``name`` (``--format``), or a ChatArchiveError naming the choices."""
    fmt = FORMATS.get(name)
    if fmt is None:
        raise ChatArchiveError(f"Unknown format {name!r}; choose from {', '.join(FORMATS)}")
    return fmt


def state_of(ctx: Context, kind: type[S]) -> S:
    """The per-file state of type ``kind`` on ``ctx``; a TypeError when the
    Context was not made by the format (:meth:`Format.context`)."""
    state = ctx.state
    if not isinstance(state, kind):
        raise TypeError(f"{ctx.path}: the Context carries no {kind.__name__} "
                        "(make it with the format's FORMAT.context(path))")
    return state


def open_records(f: InputFile, fmt: Format, ctx: Context) -> Iterator[tuple[str, Any]]:
    """(location, record) pairs of ``f`` as ``fmt`` reads it; a malformed record is a Skip."""
    if fmt.records is not None:
        return fmt.records(f, ctx)
    if fmt.kind == "csv":
        return csv_records(f, ctx, fmt.header_row)
    return json_records(f, ctx)
