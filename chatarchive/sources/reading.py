"""Reading input files: open (gzip, stdin), look at the head, stream records.

* :class:`InputFile`: a file or stdin, transparently gunzipped, whose head
  can be looked at (for detection) before the whole is streamed; a cut
  gzip still yields every byte before the cut.
* :func:`json_records`: one record per JSONL line, or for a whole JSON
  document the document itself (a top-level list is streamed element by
  element, so one bad element costs one element, not the file, and a
  list of any size takes the memory of one element).
* :func:`csv_records`: one dict per row (``header_row`` says where the
  header is, for exports with a preamble row); fields of any size up to
  the cap.
* :func:`loads_deep`: JSON nested deeper than orjson allows (a Bluesky
  thread), without recursion.

Memory is bounded whatever the input (a gzip bomb inflates to gigabytes):
a JSONL line, a CSV field or an element of a top-level list may be up to
:data:`MAX_RECORD_BYTES`; a whole JSON document that is not a list is read
up to :data:`MAX_DOCUMENT_BYTES` and refused beyond.  A UTF-8 byte order
mark at the start of a file is dropped.

A malformed record is yielded as a :class:`Skip` in its place,
with its location (``"12"``, ``"12 item 3"``), so the importer can report
``FILE:LINE: reason`` and go on.  Within a record (an API page of 100
posts), :func:`each_item` keeps one bad item from costing its neighbours:
its reason goes to ``Context.problems``.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import re
import sys
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from json.decoder import scanstring  # type: ignore[attr-defined]
from typing import Any, BinaryIO, TypeVar

import orjson

from ..errors import InputError


class Skip(Exception):
    """A record is malformed or unusable; the message says why."""


@dataclass
class Context:
    """What ``normalize`` is told about the file a record comes from.

    ``instance`` is the Mastodon server that served the file (a host or a
    URL), when the caller knows it (live capture, ``import --instance``).
    ``state`` is the format's per-file state; make a Context with
    :meth:`Format.context` so it is there (formats without state accept any
    Context)."""

    path: str
    tz: str | None = None
    instance: str | None = None
    state: object | None = None
    # Items of the current record that were dropped, with the reason
    # ("post 3 (id 17…): …"); the importer reports and empties it after
    # each record.  Live capture may read it too.
    problems: list[str] = field(default_factory=list)


T = TypeVar("T")


def describe_error(e: BaseException) -> str:
    """An unexpected exception raised while reading one record, in words
    (the record is then skipped; its neighbours are not)."""
    if isinstance(e, Skip):
        return str(e)
    if isinstance(e, KeyError):
        return f"missing field {e.args[0]!r}" if e.args else "a field is missing"
    if isinstance(e, RecursionError):
        return "nested too deeply to read"
    if isinstance(e, OverflowError):
        return f"a number is out of range ({e})"
    if isinstance(e, (TypeError, AttributeError)):
        return f"a field holds an unexpected kind of value ({e})"
    if isinstance(e, UnicodeError):
        return "text that is not valid Unicode"
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__


def each_item(ctx: Context, items: Iterable[T], what: Callable[[int, T], str],
              fn: Callable[[T], Iterable[Any]]) -> Iterator[Any]:
    """``fn(item)``'s posts for each item of a record; an item that fails
    (Skip, or any error) is dropped with its reason in ``ctx.problems``
    (``what(i, item)`` names it, e.g. "post 3 (id 17…)"), and the other
    items are kept."""
    for i, item in enumerate(items, 1):
        try:
            yield from fn(item)
        except MemoryError:
            raise
        except Exception as e:  # one bad item costs that item only
            ctx.problems.append(f"{what(i, item)}: {describe_error(e)}")


HEAD_BYTES = 1 << 16
_NON_BLANK = re.compile(rb"[^ \t\r\n\f\v]")
# The largest record read into memory: a JSONL line, a CSV field, one
# element of a top-level JSON list.  Detection reads at most this far
# looking for the end of the first line.
MAX_RECORD_BYTES = MAX_LINE_BYTES = 1 << 26  # 64 MiB
# The largest JSON document read whole (one that is not a list; a list is
# streamed).  Parsed, a document takes about four times its size.
MAX_DOCUMENT_BYTES = 1 << 26  # 64 MiB
_BOM = b"\xef\xbb\xbf"


class Overlong(bytes):
    """What :meth:`InputFile.lines` yields in place of a line longer than
    the cap (empty, so a caller that does not look sees a blank line)."""


def size_words(n: int) -> str:
    """A cap in words: "64 MB", "48 KB"."""
    return f"{n >> 20} MB" if n >= 1 << 20 else f"{n >> 10} KB"


def overlong_skip() -> Skip:
    """The reason for a line or record past the cap."""
    return Skip(f"a line of more than {size_words(MAX_RECORD_BYTES)}; too large to read")


class InputFile:
    """A file (or stdin), transparently gunzipped, whose head can be looked at
    before streaming the whole.  ``bytes_read`` counts bytes of the file as
    stored (compressed), for progress bars."""

    def __init__(self, path: str):
        self.path = path
        self.display = "<stdin>" if path == "-" else path
        try:
            # open for as long as the InputFile lives: close() closes it
            self._raw: BinaryIO = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115
        except OSError as e:
            raise InputError(f"{path}: cannot open ({e.strerror})") from None
        self.size: int | None = None
        if path != "-":
            try:
                self.size = os.fstat(self._raw.fileno()).st_size
            except OSError:
                pass
        self.jsonl: bool | None = None  # is_jsonl's answer, once asked
        magic = self._peek_raw(2)
        self.compressed = magic == b"\x1f\x8b"
        self._stream: Any = _Gunzip(self._raw) if self.compressed else self._raw
        try:
            self.head = self._stream.read(HEAD_BYTES)
        except (OSError, EOFError) as e:
            raise InputError(f"{self.display}: cannot read compressed data ({e})") from None
        self._head_used = False
        self._eof = len(self.head) < HEAD_BYTES
        if self.head.startswith(_BOM):  # Windows editors start UTF-8 files with one
            self.head = self.head[len(_BOM):]
        self.document: Any = NOTHING  # a whole JSON document, once detection parsed it

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
        found = _complete_lines(self.head, complete_lines)
        if self._head_used or self._eof or found >= complete_lines:
            return
        buf = bytearray(self.head)
        scanned = buf.rfind(b"\n") + 1  # complete lines before this were counted
        try:
            while len(buf) < limit:
                more = self._stream.read(1 << 20)
                if not more:
                    self._eof = True
                    break
                buf += more
                if b"\n" in more:
                    end = buf.rfind(b"\n") + 1
                    found += _complete_lines(bytes(buf[scanned:end]), complete_lines - found)
                    scanned = end
                    if found >= complete_lines:
                        break
        except (OSError, EOFError):
            self._eof = True  # a truncated gzip: records() will report it
        self.head = bytes(buf)

    def read_more(self, n: int = 1 << 20) -> bool:
        """Read up to ``n`` more bytes into the head (detection looking for
        the end of a first element); False at the end of the file."""
        if self._head_used or self._eof:
            return False
        try:
            more = self._stream.read(n)
        except (OSError, EOFError):
            more = b""
        if not more:
            self._eof = True
            return False
        self.head += more
        return True

    def read_document(self, limit: int | None = None) -> bytes:
        """The whole (decompressed) file, for a JSON document that is not a
        list; InputError past ``limit`` bytes (MAX_DOCUMENT_BYTES), before
        reading further."""
        limit = MAX_DOCUMENT_BYTES if limit is None else limit
        parts, size = [], 0
        for chunk in self.chunks():
            parts.append(chunk)
            size += len(chunk)
            if size > limit:
                raise InputError(
                    f"{self.display}: a JSON document of more than {size_words(limit)} that is not a list; "
                    "too large to read whole (split it, or write one record per line as JSONL)")
        return b"".join(parts)

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

    def lines(self, limit: int | None = None) -> Iterator[bytes]:
        """Yield raw lines (without the newline), blank ones too.  A line
        longer than ``limit`` is yielded as an empty :class:`Overlong` and
        its bytes are skipped, never held: memory stays bounded on any input."""
        for _, line in self._lines(MAX_RECORD_BYTES if limit is None else limit, blank=True):
            yield line

    def numbered_lines(self, limit: int | None = None) -> Iterator[tuple[int, bytes]]:
        """(line number, line) for the lines that are not blank (and
        Overlong ones); runs of blank lines, however long, cost no loop."""
        return self._lines(MAX_RECORD_BYTES if limit is None else limit, blank=False)

    def _lines(self, limit: int, blank: bool) -> Iterator[tuple[int, bytes]]:
        # A position scanner, not chunk.split(b"\n"): a head of 64 MiB of
        # newlines would split into 64 million list slots (half a GB).  Runs
        # of blank lines are jumped over with one search and counted.
        n = 0  # lines finished so far
        pieces: list[bytes] = []  # the unfinished line, in parts (no quadratic joins)
        size = 0
        skipping = False  # inside an over-long line: drop bytes up to its end
        for chunk in self.chunks():
            pos, end = 0, len(chunk)
            while pos < end:
                if not blank and not pieces and not skipping:
                    found = _NON_BLANK.search(chunk, pos)
                    if found is None:  # whitespace to the end of the chunk
                        n += chunk.count(b"\n", pos)
                        break
                    before = chunk.rfind(b"\n", pos, found.start())
                    if before >= 0:
                        n += chunk.count(b"\n", pos, before + 1)
                        pos = before + 1
                newline = chunk.find(b"\n", pos)
                if newline < 0:  # the line goes on in the next chunk
                    if not skipping:
                        pieces.append(chunk[pos:])
                        size += end - pos
                        if size > limit:
                            yield n + 1, Overlong()
                            pieces, size, skipping = [], 0, True
                    break
                n += 1
                if skipping:
                    skipping = False
                else:
                    part = chunk[pos:newline]
                    if pieces:
                        pieces.append(part)
                        part = b"".join(pieces)
                        pieces, size = [], 0
                    if len(part) > limit:
                        yield n, Overlong()
                    elif blank or part.strip():
                        yield n, part
                pos = newline + 1
        if pieces and not skipping:
            part = b"".join(pieces)
            if blank or part.strip():
                yield n + 1, part

    def text_chunks(self) -> Iterator[str]:
        """The file as text, chunk by chunk (UnicodeDecodeError when it is not UTF-8)."""
        decoder = codecs.getincrementaldecoder("utf-8-sig")()
        for chunk in self.chunks():
            yield decoder.decode(chunk)
        yield decoder.decode(b"", final=True)


    def close(self) -> None:
        if self.path != "-":
            self._raw.close()


class _Gunzip:
    """Streaming gunzip (concatenated members too) that hands out every byte
    it could decompress before reporting a truncated or corrupt file, so a
    cut download still imports up to the cut.  (gzip.GzipFile drops the
    data of the read call that hits the end.)  Inflates at most what is
    asked for at a time (``max_length``): a gzip bomb never becomes more
    than one read's worth of memory."""

    def __init__(self, raw: BinaryIO):
        self.raw = raw
        self.inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self.pending = b""  # compressed input not yet inflated
        self.member_started = False
        self.done = False
        self.problem: Exception | None = None

    def read(self, n: int = -1) -> bytes:
        want = n if n >= 0 else 1 << 62
        out: list[bytes] = []
        got = 0
        while got < want and not self.done:
            if not self.pending:
                self.pending = self.raw.read(1 << 16)
                if not self.pending:
                    self.done = True
                    if self.member_started and not self.inflater.eof:
                        self.problem = EOFError("compressed data ends before the end-of-stream marker")
                    break
            try:
                self.member_started = True
                piece = self.inflater.decompress(self.pending, min(want - got, 1 << 20))
            except zlib.error as e:
                self.done = True
                self.problem = OSError(f"corrupt compressed data ({e})")
                break
            self.pending = self.inflater.unconsumed_tail
            if piece:
                out.append(piece)
                got += len(piece)
            if self.inflater.eof:
                # the next member (or padding) is the unused data (which
                # unconsumed_tail repeats once the member has ended)
                self.pending = self.inflater.unused_data.lstrip(b"\x00")
                self.inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
                self.member_started = False
        data = b"".join(out)
        if not data and self.problem is not None:
            raise self.problem
        return data


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


def loads_any_depth(data: bytes) -> Any:
    """orjson, or (when orjson refuses the nesting depth, > 1024 levels: a
    deep Bluesky getPostThread tree) the recursion-free parser."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as e:
        if "depth" not in str(e):
            raise
        try:
            return loads_deep(data.decode("utf-8-sig"))
        except (ValueError, UnicodeDecodeError) as deep_error:
            raise orjson.JSONDecodeError(str(deep_error), "", 0) from None


NOTHING = object()  # "not JSON" (None is a JSON value)


def loads_or_nothing(data: bytes) -> Any:
    """The JSON value of ``data``, or :data:`NOTHING` when it is not JSON."""
    try:
        return loads_any_depth(data)
    except orjson.JSONDecodeError:
        return NOTHING


_BLANKS = re.compile(rb"[ \t\r\n\f\v]*")


def _nonblank_lines(head: bytes, limit: int, complete: bool) -> Iterator[bytes]:
    """The non-blank lines of ``head``, up to ``limit`` (only whole lines,
    ending in a newline, when ``complete``).  Blank runs (a newline flood)
    are skipped by the regex engine in one step each, and no line is
    scanned twice: linear in the head, never one object per blank line."""
    pos, n = 0, 0
    while n < limit:
        m = _BLANKS.match(head, pos)
        pos = m.end() if m else pos
        if pos >= len(head):
            return
        nl = head.find(b"\n", pos)
        if nl < 0:
            if not complete:
                yield head[pos:]
            return
        yield head[pos:nl]
        n += 1
        pos = nl + 1


def _complete_lines(head: bytes, enough: int = 2) -> int:
    """How many whole non-blank lines ``head`` holds, counting up to ``enough``."""
    return sum(1 for _ in _nonblank_lines(head, enough, complete=True))


def first_lines(head: bytes, n: int = 50) -> list[bytes]:
    """The first ``n`` non-blank lines of ``head`` (the last may be cut)."""
    return list(_nonblank_lines(head, n, complete=False))


def is_jsonl(f: InputFile) -> bool:
    """JSON Lines (one value per line) rather than one (pretty-printed) document.

    JSONL when the first non-blank line is a JSON value by itself; also when
    it is broken (a truncated first record) but a later line in the head is a
    JSON object, unless the first line is a lone ``{`` or ``[``, which opens
    a pretty-printed document."""
    if f.jsonl is not None:
        return f.jsonl
    f.extend_head(2)
    lines = first_lines(f.head)
    answer = False
    if lines:
        first = lines[0].strip().lstrip(b"\xef\xbb\xbf")
        if loads_or_nothing(first) is not NOTHING:
            answer = True
        elif first not in (b"{", b"[") and not first.endswith((b"{", b"[")):
            answer = any(isinstance(loads_or_nothing(line), dict) for line in lines[1:])
    f.jsonl = answer
    return answer


def json_records(f: InputFile, ctx: Context) -> Iterator[tuple[str, Any]]:
    """JSONL: one record per line.  A whole JSON document (pretty printed):
    each element of a top-level list, streamed; else the document."""
    if is_jsonl(f):
        for n, line in f.numbered_lines():
            if type(line) is Overlong:
                yield str(n), overlong_skip()
                continue
            try:
                value = loads_any_depth(line)
            except orjson.JSONDecodeError as e:
                yield str(n), Skip(f"invalid JSON ({short_json_error(e, line)})")
                continue
            if isinstance(value, list):  # a compact one-line JSON array
                for i, item in enumerate(value, 1):
                    yield f"{n} item {i}", item
            else:
                yield str(n), value
        return
    if f.head.lstrip(b" \t\r\n")[:1] == b"[" and f.document is NOTHING:
        for i, (at, item) in enumerate(iter_array(f.text_chunks(), f.display), 1):
            yield f"{at} item {i}", item
        return
    doc = f.document
    if doc is NOTHING:
        data = f.read_document()
        try:
            doc = loads_any_depth(data)
        except orjson.JSONDecodeError as e:
            at = data.count(b"\n", 0, getattr(e, "pos", 0) or 0) + 1
            yield str(at), Skip(f"invalid JSON ({short_json_error(e, b'')})")
            return
    f.document = NOTHING  # handed on: the reader keeps no copy
    if isinstance(doc, list):
        for i, item in enumerate(doc, 1):
            yield f"item {i}", item
    else:
        yield "1", doc


def short_json_error(e: Exception, line: bytes) -> str:
    """orjson's message without its position noise; "line is cut off" for a truncated line."""
    msg = str(e).split(":")[0]
    if line and not line.rstrip().endswith((b"}", b"]")):
        return "line is cut off" if len(line) > 20 else msg
    return msg


# csv's default field limit (131,072 characters) refused real TAGS cells;
# fields up to the record cap are read (the cap keeps memory bounded).
csv.field_size_limit(MAX_RECORD_BYTES)


def csv_records(f: InputFile, ctx: Context, header_row: int = 0) -> Iterator[tuple[str, Any]]:
    """One dict per row after the header (``header_row``: its index among
    the rows).  A row the csv module cannot read, or a line past the cap,
    is a Skip; the rows after it are read."""
    overlong: list[int] = []

    def text() -> Iterator[str]:
        for n, line in enumerate(f.lines(), 1):
            if type(line) is Overlong:
                overlong.append(n)
            yield line.decode("utf-8") + "\n"

    reader = csv.reader(text())
    header: list[str] | None = None
    i = -1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            yield str(reader.line_num), Skip(f"unreadable CSV row ({e})")
            continue
        while overlong:
            yield str(overlong.pop(0)), overlong_skip()
        i += 1
        if i < header_row:
            continue
        if header is None:
            header = [h.strip() for h in row]
            continue
        if not any(cell.strip() for cell in row):
            continue
        yield str(reader.line_num), dict(zip(header, row))


def csv_head(head: bytes) -> list[list[str]]:
    """The first rows of a CSV head, cells stripped (for sniffing); [] when not CSV."""
    text = head[:HEAD_BYTES].decode("utf-8-sig", errors="replace")
    lines = text.splitlines()[:6]
    try:
        return [[c.strip() for c in row] for row in csv.reader(lines)]
    except csv.Error:
        return []


# --------------------------------------------------------------------------
# A top-level JSON list, element by element (documents of any size; the
# account archive's tweets.js is one after its "window.YTD… =" prefix)

_DECODER = json.JSONDecoder()
_WS_CHARS = " \t\r\n"


def first_element(head: bytes) -> Any:
    """The first element of the JSON list that ``head`` starts (for
    detection), as ``[element]`` (``[]`` for an empty list), or NOTHING when
    the head does not hold a whole first element."""
    try:
        text = head.decode("utf-8", errors="ignore")
    except UnicodeDecodeError:  # pragma: no cover - errors="ignore"
        return NOTHING
    pos = len(text) - len(text.lstrip(_WS_CHARS))
    if text[pos:pos + 1] != "[":
        return NOTHING
    pos += 1
    while pos < len(text) and text[pos] in _WS_CHARS:
        pos += 1
    if text[pos:pos + 1] == "]":
        return []
    try:
        value, _ = decode_any_depth(text, pos)
    except ValueError:
        return NOTHING
    return [value]


_SEPARATORS = re.compile(r"[ \t\r\n,]*")
_BLANK = re.compile(r"[ \t\r\n]*")


def iter_array(chunks: Iterable[str], display: str, line: int = 1) -> Iterator[tuple[int, Any]]:
    """Yield (line, element) for each element of the JSON list at the
    start of the text (whitespace before it is fine).  A broken, cut-off or
    over-long element is yielded as a Skip and ends the reading (no JSON
    reader can find the next element after a broken one).  Memory: one
    element (at most MAX_RECORD_BYTES) and one chunk; whitespace between
    elements, however much, is skipped at C speed."""
    it = iter(chunks)
    buf = ""
    eof = False

    def more(at_least: int = 1) -> bool:
        """Append chunks until ``at_least`` more characters came (or the end)."""
        nonlocal buf, eof
        if eof:
            return False
        parts, got = [buf], 0
        for piece in it:
            if piece:
                parts.append(piece)
                got += len(piece)
                if got >= at_least:
                    break
        else:
            eof = True
        buf = "".join(parts)
        return got > 0

    pos = 0
    while True:  # the opening bracket
        end = _BLANK.match(buf, pos).end()  # type: ignore[union-attr]  # always matches
        line += buf.count("\n", pos, end)
        pos = end
        if pos < len(buf):
            break
        buf, pos = "", 0
        if not more():
            raise InputError(f"{display}: nothing where a JSON list should start (the file is cut off)")
    if buf[pos] != "[":
        raise InputError(f"{display}: expected a JSON list, found {buf[pos:pos + 20]!r}")
    pos += 1
    index = 0
    while True:
        # skip whitespace and the comma between elements
        while True:
            end = _SEPARATORS.match(buf, pos).end()  # type: ignore[union-attr]
            line += buf.count("\n", pos, end)
            pos = end
            if pos < len(buf):
                break
            buf, pos = "", 0
            if not more():
                yield line, Skip("the list is cut off (no closing ']'): the file may be truncated")
                return
        if buf[pos] == "]":
            return
        index += 1
        while True:
            try:
                value, end = decode_any_depth(buf, pos)
                break
            except ValueError as e:
                held = len(buf) - pos
                if held > MAX_RECORD_BYTES:
                    yield line, Skip(f"item {index}: more than {size_words(MAX_RECORD_BYTES)}; too large to read, "
                                     "and the rest of the file cannot be read")
                    return
                # the element may go on in the next chunks: read as much
                # again before trying (a long element is parsed a few times,
                # not once per chunk)
                if more(max(held, 1 << 16)):
                    continue
                cut = not buf[-4096:].rstrip().rstrip(";").rstrip().endswith("]")
                msg = e.msg if isinstance(e, json.JSONDecodeError) else str(e)
                reason = "the file is cut off" if cut else f"invalid JSON: {msg}"
                yield line, Skip(f"item {index}: {reason}; the rest of the file cannot be read")
                return
        yield line, value
        line += buf.count("\n", pos, end)
        pos = end
        if pos > 1 << 20:  # drop what was read, keep memory flat
            buf, pos = buf[pos:], 0


def decode_any_depth(text: str, pos: int) -> tuple[Any, int]:
    """(value, end) of the JSON value at ``text[pos:]``: the standard
    library's decoder, or the recursion-free one for deeper nesting than it
    allows.  ValueError (JSONDecodeError) when it is not JSON."""
    try:
        return _DECODER.raw_decode(text, pos)
    except RecursionError:
        return decode_deep(text, pos)


# --------------------------------------------------------------------------
# Reading: JSON nested deeper than orjson's limit (1,024 levels) — a real
# getPostThread with depth=1000 replies is ~2,000 levels deep — is parsed by
# a small iterative parser instead of being reported as invalid.

_WS = re.compile(r"[ \t\n\r]*")
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?")
_LITERALS = {"true": True, "false": False, "null": None}


def loads_deep(text: str) -> Any:
    """JSON to Python without recursion (any nesting depth).  Slower than
    orjson; used only when orjson refuses a document for its depth."""
    value, end = decode_deep(text, 0)
    m = _WS.match(text, end)
    if m and m.end() != len(text):
        raise ValueError(f"extra data at char {m.end()}")
    return value


MAX_DEPTH = 100_000  # a real Bluesky thread is a few thousand levels deep


def decode_deep(text: str, start: int) -> tuple[Any, int]:
    """(value, end) of the JSON value at ``text[start:]`` (leading
    whitespace allowed), without recursion; ValueError past MAX_DEPTH
    levels (64 MB of "[" would otherwise become 64 million lists)."""
    ws_match = _WS.match

    def skip(j: int) -> int:  # past whitespace (the pattern always matches)
        m = ws_match(text, j)
        return m.end() if m else j

    stack: list[tuple[Any, str]] = []  # open containers (+ pending key, "" for lists)
    n = len(text)
    i = skip(start)

    def fail(msg: str, at: int) -> ValueError:
        return ValueError(f"{msg} at char {at}")

    def key_at(j: int) -> tuple[str, int]:
        if j >= n or text[j] != '"':
            raise fail("expected a string key", j)
        k, j = scanstring(text, j + 1)
        j = skip(j)
        if j >= n or text[j] != ":":
            raise fail("expected ':'", j)
        return k, skip(j + 1)

    while True:
        if i >= n:
            raise fail("unexpected end of data", i)
        c = text[i]
        if c == "{":
            i = skip(i + 1)
            if i < n and text[i] == "}":
                value: Any = {}
                i += 1
            else:
                key, i = key_at(i)
                stack.append(({}, key))
                if len(stack) > MAX_DEPTH:
                    raise fail(f"nested more than {MAX_DEPTH:,} levels deep", i)
                continue
        elif c == "[":
            i = skip(i + 1)
            if i < n and text[i] == "]":
                value = []
                i += 1
            else:
                stack.append(([], ""))
                if len(stack) > MAX_DEPTH:
                    raise fail(f"nested more than {MAX_DEPTH:,} levels deep", i)
                continue
        elif c == '"':
            value, i = scanstring(text, i + 1)
        else:
            m = _NUMBER.match(text, i)
            if m:
                s = m.group(0)
                value = float(s) if m.group(1) or m.group(2) else int(s)
                i = m.end()
            else:
                for word, lit in _LITERALS.items():
                    if text.startswith(word, i):
                        value, i = lit, i + len(word)
                        break
                else:
                    raise fail("unexpected character", i)
        # a value is complete: put it in its container, close finished ones
        while True:
            if not stack:
                return value, i
            i = skip(i)
            container, key = stack[-1]
            if isinstance(container, dict):
                container[key] = value
            else:
                container.append(value)
            if i >= n:
                raise fail("unexpected end of data", i)
            c = text[i]
            if c == ",":
                i = skip(i + 1)
                if isinstance(container, dict):
                    key, i = key_at(i)
                    stack[-1] = (container, key)
                break
            if (c == "}" and isinstance(container, dict)) or (c == "]" and isinstance(container, list)):
                stack.pop()
                value = container
                i += 1
                continue
            raise fail("expected ',' or a closing bracket", i)
