"""Input formats: the registry, file reading and format detection.

A format is a small object with a ``sniff`` (does this sample look like me?)
and a pure ``normalize`` (one record -> Post records).  Reading is shared:

* ``json`` formats get one record per JSONL line, or, for a whole JSON
  document, the document itself (a top-level list yields one record per
  element, so one bad element costs one element, not the file);
* ``csv`` formats get one dict per row (``header_row`` says where the header
  is, for exports with a preamble row);
* a format may instead define ``records(stream, ctx)`` itself (tweets.js).

``normalize`` raises :class:`Skip` (or KeyError/TypeError/ValueError) for a
malformed record; the importer reports ``FILE:LINE: reason`` and goes on.
"""

from __future__ import annotations

import csv
import io
import sys
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import orjson

from ..errors import InputError
from ..models import Post
from ..safety import printable

HEAD_BYTES = 1 << 16
# Detection reads at most this much ahead looking for the end of the first
# JSONL line; a longer "line" is a one-line JSON document read whole anyway.
MAX_LINE_BYTES = 1 << 26


class Skip(Exception):
    """A record is malformed or unusable; the message says why."""


@dataclass
class Context:
    path: str
    tz: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class Format:
    name: str
    description: str
    kind: str  # "json" | "csv" | "custom"
    sniff: Callable[[Any], bool]
    normalize: Callable[[Any, Context], Iterable[Post]]
    records: Callable[[InputFile, Context], Iterator[tuple[str, Any]]] | None = None
    header_row: int = 0  # csv: index of the header row


FORMATS: dict[str, Format] = {}


def register(fmt: Format) -> Format:
    FORMATS[fmt.name] = fmt
    return fmt


def _load_all() -> None:
    # Importing the modules registers their formats, in detection order.
    from . import bluesky, csv_sheets, mastodon, twarc2, tweets_js, twitter_v1  # noqa: F401


# --------------------------------------------------------------------------
# Reading


class InputFile:
    """A file (or stdin), transparently gunzipped, whose head can be looked at
    before streaming the whole.  ``bytes_read`` counts bytes of the file as
    stored (compressed), for progress bars."""

    def __init__(self, path: str):
        self.path = path
        self.display = "<stdin>" if path == "-" else path
        try:
            self._raw: BinaryIO = sys.stdin.buffer if path == "-" else open(path, "rb")
        except OSError as e:
            raise InputError(f"{path}: cannot open ({e.strerror})")
        self.size = None
        if path != "-":
            try:
                import os

                self.size = os.fstat(self._raw.fileno()).st_size
            except OSError:
                pass
        magic = self._peek_raw(2)
        self.compressed = magic == b"\x1f\x8b"
        self._stream: Any = _Gunzip(self._raw) if self.compressed else self._raw
        try:
            self.head = self._stream.read(HEAD_BYTES)
        except (OSError, EOFError) as e:
            raise InputError(f"{self.display}: cannot read compressed data ({e})")
        self._head_used = False
        self._eof = len(self.head) < HEAD_BYTES

    def _peek_raw(self, n: int) -> bytes:
        raw = self._raw
        if hasattr(raw, "peek"):
            return raw.peek(n)[:n]
        data = raw.read(n)  # stdin without peek: keep it in front
        self._raw = _Prefixed(data, raw)  # type: ignore[assignment]
        return data

    def extend_head(self, complete_lines: int = 1, limit: int = MAX_LINE_BYTES) -> None:
        """Read on until the head holds ``complete_lines`` whole non-blank
        lines (or the file ends, or ``limit`` bytes): one twarc2 page is one
        line of a few hundred KB, far more than HEAD_BYTES.  The extra bytes
        stay in the head, so ``chunks()`` still yields the file unchanged."""
        if self._head_used or self._eof or _complete_lines(self.head) >= complete_lines:
            return
        parts, size = [self.head], len(self.head)
        try:
            while size < limit:
                more = self._stream.read(1 << 20)
                if not more:
                    self._eof = True
                    break
                parts.append(more)
                size += len(more)
                if b"\n" in more and _complete_lines(b"".join(parts)) >= complete_lines:
                    break
        except (OSError, EOFError):
            self._eof = True  # a truncated gzip: records() will report it
        self.head = b"".join(parts)

    def read_head_to_end(self) -> None:
        """Make the head the whole (decompressed) file: for JSON documents."""
        if not self._head_used and not self._eof:
            try:
                self.head += self._stream.read()
            except (OSError, EOFError):
                pass
            self._eof = True

    @property
    def bytes_read(self) -> int:
        try:
            return self._raw.tell()
        except (OSError, ValueError, AttributeError):
            return 0

    def chunks(self) -> Iterator[bytes]:
        if not self._head_used:
            self._head_used = True
            yield self.head
        while True:
            data = self._stream.read(1 << 20)
            if not data:
                return
            yield data

    def lines(self) -> Iterator[bytes]:
        """Yield raw lines (without the newline)."""
        rest = b""
        for chunk in self.chunks():
            parts = (rest + chunk).split(b"\n")
            rest = parts.pop()
            yield from parts
        if rest:
            yield rest

    def read_all(self) -> bytes:
        return b"".join(self.chunks())

    def text_stream(self) -> io.TextIOWrapper:
        reader = _ChunkReader(self.chunks())
        return io.TextIOWrapper(reader, encoding="utf-8-sig", newline="")  # type: ignore[arg-type]

    def close(self) -> None:
        if self.path != "-":
            self._raw.close()


class _Gunzip:
    """Streaming gunzip (concatenated members too) that hands out every byte
    it could decompress before reporting a truncated or corrupt file, so a
    cut download still imports up to the cut.  (gzip.GzipFile drops the
    data of the read call that hits the end.)"""

    def __init__(self, raw: BinaryIO):
        self.raw = raw
        self.inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self.parts: list[bytes] = []
        self.buffered = 0
        self.member_started = False
        self.done = False
        self.problem: Exception | None = None

    def _fill(self, want: int) -> None:
        while not self.done and (want < 0 or self.buffered < want):
            data = self.raw.read(1 << 16)
            if not data:
                self.done = True
                if self.member_started and not self.inflater.eof:
                    self.problem = EOFError("compressed data ends before the end-of-stream marker")
                return
            try:
                while data:
                    self.member_started = True
                    out = self.inflater.decompress(data)
                    if out:
                        self.parts.append(out)
                        self.buffered += len(out)
                    data = b""
                    if self.inflater.eof:
                        data = self.inflater.unused_data.lstrip(b"\x00")  # next member (or padding)
                        self.inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
                        self.member_started = False
            except zlib.error as e:
                self.done = True
                self.problem = OSError(f"corrupt compressed data ({e})")

    def read(self, n: int = -1) -> bytes:
        self._fill(n)
        data = b"".join(self.parts)
        if n < 0 or len(data) <= n:
            out, rest = data, b""
        else:
            out, rest = data[:n], data[n:]
        self.parts = [rest] if rest else []
        self.buffered = len(rest)
        if not out and self.problem is not None:
            raise self.problem
        return out


class _Prefixed(io.RawIOBase):
    def __init__(self, prefix: bytes, rest: BinaryIO):
        self.prefix, self.rest, self.pos = prefix, rest, 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if self.prefix:
            out, self.prefix = self.prefix, b""
            more = self.rest.read(n - len(out)) if n and n > len(out) else b""
            out += more or b""
        else:
            out = self.rest.read(n)
        self.pos += len(out)
        return out

    def tell(self) -> int:
        return self.pos


class _ChunkReader(io.RawIOBase):
    def __init__(self, chunks: Iterator[bytes]):
        self.chunks, self.buf = chunks, b""

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        while not self.buf:
            try:
                self.buf = next(self.chunks)
            except StopIteration:
                return 0
        n = min(len(b), len(self.buf))
        b[:n] = self.buf[:n]
        self.buf = self.buf[n:]
        return n


def loads(data: bytes | str) -> Any:
    return orjson.loads(data)


def _loads_any_depth(data: bytes) -> Any:
    """orjson, or (when orjson refuses the nesting depth, > 1024 levels: a
    deep Bluesky getPostThread tree) the recursion-free parser."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as e:
        if "depth" not in str(e):
            raise
        from .bluesky import loads_deep

        try:
            return loads_deep(data.decode("utf-8-sig"))
        except (ValueError, UnicodeDecodeError) as deep_error:
            raise orjson.JSONDecodeError(str(deep_error), "", 0) from None


def _complete_lines(head: bytes) -> int:
    """How many whole non-blank lines the head holds (0, 1 or 2 is all we need)."""
    n = 0
    for line in head.split(b"\n", 8)[:-1]:
        if line.strip():
            n += 1
            if n >= 2:
                break
    return n


def is_jsonl(f: InputFile) -> bool:
    """JSON Lines (one value per line) rather than one (pretty-printed) document.

    JSONL when the first non-blank line is a JSON value by itself; also when
    it is broken (a truncated first record) but a later line in the head is a
    JSON object, unless the first line is a lone ``{`` or ``[``, which opens
    a pretty-printed document."""
    cached = getattr(f, "_is_jsonl", None)
    if cached is not None:
        return cached
    f.extend_head(2)
    lines = [line for line in f.head.split(b"\n")[:50] if line.strip()]
    answer = False
    if lines:
        first = lines[0].strip().lstrip(b"\xef\xbb\xbf")
        if _loads_or_nothing(first) is not _NOTHING:
            answer = True
        elif first not in (b"{", b"[") and not first.endswith((b"{", b"[")):
            answer = any(isinstance(_loads_or_nothing(line), dict) for line in lines[1:])
    f._is_jsonl = answer  # type: ignore[attr-defined]
    return answer


def _loads_or_nothing(data: bytes) -> Any:
    try:
        return _loads_any_depth(data)
    except orjson.JSONDecodeError:
        return _NOTHING


def json_records(f: InputFile, ctx: Context) -> Iterator[tuple[str, Any]]:
    """JSONL: one record per line.  A whole JSON document (pretty printed):
    the document, or each element of a top-level list."""
    if is_jsonl(f):
        for n, line in enumerate(f.lines(), 1):
            if not line.strip():
                continue
            try:
                value = _loads_any_depth(line)
            except orjson.JSONDecodeError as e:
                yield str(n), Skip(f"invalid JSON ({_short_json_error(e, line)})")
                continue
            if isinstance(value, list):  # a compact one-line JSON array
                for i, item in enumerate(value, 1):
                    yield f"{n} item {i}", item
            else:
                yield str(n), value
        return
    data = f.read_all()
    try:
        doc = _loads_any_depth(data)
    except orjson.JSONDecodeError as e:
        at = data.count(b"\n", 0, getattr(e, "pos", 0) or 0) + 1
        yield str(at), Skip(f"invalid JSON ({_short_json_error(e, b'')})")
        return
    if isinstance(doc, list):
        for i, item in enumerate(doc, 1):
            yield f"item {i}", item
    else:
        yield "1", doc


def _short_json_error(e: Exception, line: bytes) -> str:
    msg = str(e).split(":")[0]
    if line and not line.rstrip().endswith((b"}", b"]")):
        return "line is cut off" if len(line) > 20 else msg
    return msg


def csv_records(f: InputFile, ctx: Context, header_row: int = 0) -> Iterator[tuple[str, Any]]:
    reader = csv.reader(f.text_stream())
    header: list[str] | None = None
    for i, row in enumerate(reader):
        if i < header_row:
            continue
        if header is None:
            header = [h.strip() for h in row]
            continue
        if not any(cell.strip() for cell in row):
            continue
        yield str(reader.line_num), dict(zip(header, row))


# --------------------------------------------------------------------------
# Detection

_NOTHING = object()


def _first_json_value(f: InputFile) -> Any:
    """The first record of a JSONL file, or the whole JSON document."""
    if is_jsonl(f):
        for line in f.head.split(b"\n")[:50]:
            if line.strip():
                value = _loads_or_nothing(line)
                if value is not _NOTHING:
                    return value
        return _NOTHING
    # A whole (probably pretty-printed) document: the head alone may be cut,
    # so parse everything (documents are read whole by json_records anyway).
    f.read_head_to_end()
    return _loads_or_nothing(f.head)


def sample_of(value: Any) -> Any:
    """For sniffing: the first element of a list, else the value."""
    if isinstance(value, list):
        return value[0] if value else None
    return value


def detect(f: InputFile) -> Format:
    """Pick the format of an opened file, or raise InputError saying what it looks like."""
    _load_all()
    head = f.head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head:
        raise InputError(f"{f.display}: the file is empty")
    if b"\x00" in head[:4096]:
        raise InputError(f"{f.display}: binary data (or UTF-16 text), not a chat file; "
                         "expected UTF-8 JSON, JSONL or CSV")
    for fmt in FORMATS.values():
        if fmt.kind == "custom" and fmt.sniff(head):
            return fmt
    if head[:1] in (b"{", b"["):
        value = _first_json_value(f)
        if value is _NOTHING:
            raise InputError(f"{f.display}: looks like JSON but cannot be parsed (truncated or corrupt?)")
        for fmt in FORMATS.values():
            if fmt.kind == "json" and fmt.sniff(value):
                return fmt
        raise InputError(f"{f.display}: {describe_non_posts(value)}")
    rows = _csv_head(head)
    for fmt in FORMATS.values():
        if fmt.kind == "csv" and fmt.sniff(rows):
            return fmt
    if rows and len(rows[0]) > 1:
        cols = printable(", ".join(c for c in rows[0][:6] if c))
        raise InputError(f"{f.display}: a CSV file whose columns ({cols}…) match no known chat export")
    raise InputError(f"{f.display}: not a recognised chat file (not JSON, JSONL, CSV or tweets.js)")


def _csv_head(head: bytes) -> list[list[str]]:
    text = head.decode("utf-8-sig", errors="replace")
    lines = text.splitlines()[:6]
    try:
        return [[c.strip() for c in row] for row in csv.reader(lines)]
    except csv.Error:
        return []


def describe_non_posts(value: Any) -> str:
    """A sentence naming what a JSON value that holds no posts looks like."""
    item = sample_of(value)
    if isinstance(item, dict) and "errors" in item and not item.get("data") and "text" not in item:
        errors = item.get("errors")
        first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
        said = first.get("detail") or first.get("message") or first.get("title")
        said = f" ({printable(str(said))})" if said else ""
        return f"an API response holding only errors{said} and no posts; nothing to import"
    if isinstance(item, dict) and "data" in item and "text" not in item:
        data = item.get("data")
        if not data:
            return "an API response with no posts; nothing to import"
        item = sample_of(data)
    if not isinstance(item, dict):
        return "JSON that holds no posts"
    keys = set(item)
    if "tweet_count" in keys:
        return "twarc2 counts output (post counts per period), not posts; nothing to import"
    if "action" in keys and "reason" in keys:
        return "compliance output (deleted/protected ids), not posts; nothing to import"
    if {"owner_id", "follower_count"} & keys or "member_count" in keys:
        return "Twitter lists output, not posts; nothing to import"
    if "acct" in keys:  # before "username": Mastodon accounts have both
        return "Mastodon accounts, not statuses; nothing to import"
    if "username" in keys and "text" not in keys:
        return "user profiles (twarc2 users output), not posts; nothing to import"
    if "did" in keys and "handle" in keys:
        return "Bluesky profiles, not posts; nothing to import"
    shown = printable(", ".join(sorted(map(str, keys))[:8]))
    return f"JSON objects with keys ({shown}) that match no known post format"


def open_records(f: InputFile, fmt: Format, ctx: Context) -> Iterator[tuple[str, Any]]:
    if fmt.records is not None:
        return fmt.records(f, ctx)
    if fmt.kind == "csv":
        return csv_records(f, ctx, fmt.header_row)
    return json_records(f, ctx)
