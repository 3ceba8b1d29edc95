"""Reading input files: open (gzip, stdin), look at the head, stream records.

* :class:`InputFile`: a file or stdin, transparently gunzipped, whose head
  can be looked at (for detection) before the whole is streamed; a cut
  gzip still yields every byte before the cut.
* :func:`json_records`: one record per JSONL line, or for a whole JSON
  document the document itself (a top-level list yields one record per
  element, so one bad element costs one element, not the file).
* :func:`csv_records`: one dict per row (``header_row`` says where the
  header is, for exports with a preamble row).
* :func:`loads_deep`: JSON nested deeper than orjson allows (a Bluesky
  thread), without recursion.

A malformed record is yielded as a :class:`Skip` in its place,
with its location (``"12"``, ``"item 3"``), so the importer can report
``FILE:LINE: reason`` and go on.
"""

from __future__ import annotations

import csv
import io
import os
import re
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from json.decoder import scanstring  # type: ignore[attr-defined]
from typing import Any, BinaryIO

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



HEAD_BYTES = 1 << 16
# Detection reads at most this much ahead looking for the end of the first
# JSONL line; a longer "line" is a one-line JSON document read whole anyway.
MAX_LINE_BYTES = 1 << 26


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
    if f.jsonl is not None:
        return f.jsonl
    f.extend_head(2)
    lines = [line for line in f.head.split(b"\n")[:50] if line.strip()]
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
    the document, or each element of a top-level list."""
    if is_jsonl(f):
        for n, line in enumerate(f.lines(), 1):
            if not line.strip():
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
    data = f.read_all()
    try:
        doc = loads_any_depth(data)
    except orjson.JSONDecodeError as e:
        at = data.count(b"\n", 0, getattr(e, "pos", 0) or 0) + 1
        yield str(at), Skip(f"invalid JSON ({short_json_error(e, b'')})")
        return
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


def csv_head(head: bytes) -> list[list[str]]:
    """The first rows of a CSV head, cells stripped (for sniffing); [] when not CSV."""
    text = head.decode("utf-8-sig", errors="replace")
    lines = text.splitlines()[:6]
    try:
        return [[c.strip() for c in row] for row in csv.reader(lines)]
    except csv.Error:
        return []


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
    ws_match = _WS.match

    def skip(j: int) -> int:  # past whitespace (the pattern always matches)
        m = ws_match(text, j)
        return m.end() if m else j

    stack: list[tuple[Any, str]] = []  # open containers (+ pending key, "" for lists)
    n = len(text)
    i = skip(0)

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
                continue
        elif c == "[":
            i = skip(i + 1)
            if i < n and text[i] == "]":
                value = []
                i += 1
            else:
                stack.append(([], ""))
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
            i = skip(i)
            if not stack:
                if i != n:
                    raise fail("extra data", i)
                return value
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
