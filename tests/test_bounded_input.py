"""Bounded input (issue 14): memory stays bounded whatever a file holds.

Gzip bombs of every shape (a 1 GiB JSON object, a 1 GiB JSONL line, a list
padded with a gigabyte of whitespace, a newline flood, a CSV with a
gigabyte cell, a tweets.js, 64 MiB of nesting) are imported by a real
``chatarchive import`` child process, whose peak RSS is read with
its own ``/proc/self/status``: under 400 MB, with one clear line and no traceback.  Also
here: the byte order mark, CSV fields of any size up to the cap, over-long
lines, the line reader at chunk edges, and the nesting cap.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from conftest import FIXTURES

from chatarchive.archive.importer import import_files
from chatarchive.archive.schema import open_db
from chatarchive.sources import InputFile, reading
from chatarchive.sources.reading import Overlong, decode_deep

GIB = 1 << 30
MAX_RSS = 400 << 20

STATUS = json.loads((FIXTURES / "mastodon" / "tag-edchat-mastodon-example.json").read_text(encoding="utf-8"))[0]


def bomb(path: Path, head: bytes, filler: bytes, size: int, tail: bytes = b"") -> Path:
    """A gzip file inflating to ``head`` + ``size`` bytes of ``filler`` +
    ``tail``: one compressed MiB of filler repeated as gzip members (a valid
    gzip, of a few hundred KB on disk, made in an instant)."""
    block = (filler * (1 + (1 << 20) // len(filler)))[: 1 << 20]
    member = gzip.compress(block, compresslevel=9)
    with open(path, "wb") as f:
        f.write(gzip.compress(head))
        for _ in range(size >> 20):
            f.write(member)
        f.write(gzip.compress(tail))
    return path


# The child reports its own peak (VmHWM of its own memory map) on the way out:
# ru_maxrss from wait4 would not do, because Linux carries the parent's peak
# over fork and exec, so a child of a large pytest process reads as large.
REPORT_PEAK = """
import atexit, os, sys
def report_peak():
    with open("/proc/self/status") as status, open(os.environ["PEAK_FILE"], "w") as out:
        out.write(next(line for line in status if line.startswith("VmHWM")).split()[1])
atexit.register(report_peak)
from chatarchive.cli import cli
sys.argv[0] = "chatarchive"
cli()
"""


def import_in_child(db: Path, path: Path, *args: str) -> tuple[int, str, int]:
    """Run `chatarchive import` as a child; (exit code, stderr+stdout, peak RSS in bytes)."""
    peak_file = db.with_name(db.name + ".peak")
    proc = subprocess.run([sys.executable, "-c", REPORT_PEAK, "import", str(db), str(path), "--no-analyse", *args],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          env={**os.environ, "PEAK_FILE": str(peak_file)})
    out = proc.stdout.decode("utf-8", errors="replace")
    return proc.returncode, out, int(peak_file.read_text()) * 1024  # VmHWM is in kB


BOMBS = {
    # detection and reading of a document: refused at the cap, never inflated whole
    "object": (b'{"posts": [{"uri": "at://x", "text": "', b"A", GIB, b'"}]}'),
    # one JSONL line of a gigabyte: skipped as too long, never held
    "jsonl-line": (json.dumps({"data": [{"id": "1", "text": "x"}]}).encode() + b"\n" + b'{"data": [{"text": "',
                   b"B", GIB, b'"}]}\n'),
    # a list streams: its posts are read one by one; the padding costs nothing
    "list": (b"[" + json.dumps(STATUS).encode() + b",", b" \n", GIB, b"]"),
    # a flood of newlines between two lines of posts
    "newlines": (json.dumps({"data": [{"id": "1", "text": "x", "created_at": "2026-11-18T20:00:00.000Z"}]}).encode()
                 + b"\n", b"\n", GIB, json.dumps({"data": [{"id": "2", "text": "y"}]}).encode() + b"\n"),
    # a CSV cell of a gigabyte
    "csv-cell": ((FIXTURES / "x" / "tags.csv").read_bytes() + b'1790000000000000099,bob,"', b"C", GIB, b'"\n'),
    # the account archive, padded
    "tweets.js": (b"window.YTD.tweets.part0 = [", b" ", GIB, b"]"),
    # nesting: 64 MiB of "[" would be 64 million lists
    "nesting": (b"", b"[", 64 << 20, b""),
}


@pytest.mark.parametrize("shape", list(BOMBS))
def test_gzip_bombs_keep_memory_bounded(tmp_path, shape):
    head, filler, size, tail = BOMBS[shape]
    name = "tweets.js.gz" if shape == "tweets.js" else f"bomb-{shape}.{'csv' if shape == 'csv-cell' else 'json'}.gz"
    path = bomb(tmp_path / name, head, filler, size, tail)
    assert path.stat().st_size < 2 << 20  # a small file on disk
    code, out, rss = import_in_child(tmp_path / "chats.db", path)
    # the figure bench/README.md quotes (pytest -s shows it)
    print(f"gzip bomb {shape}: {path.stat().st_size >> 10} KB on disk, {size >> 20} MB inflated, peak RSS {rss >> 20} MB")
    assert "Traceback" not in out and "MemoryError" not in out, out[-2000:]
    assert rss < MAX_RSS, f"peak RSS {rss >> 20} MB"
    if shape in ("list", "newlines", "csv-cell", "jsonl-line"):
        # the posts around the bomb are kept; the bomb's record is one clear line
        assert code == 0, out
    else:
        assert code == 1 and out.count("\n") <= 3, out
    if shape == "object":
        assert "a JSON document of more than 64 MB that is not a list" in out
    if shape in ("jsonl-line", "csv-cell"):
        assert "more than 64 MB; too large to read" in out


# --------------------------------------------------------------------------
# Byte order marks, CSV fields, over-long lines


@pytest.mark.parametrize("name", ["api-page.json", "stream.jsonl"])
def test_a_byte_order_mark_is_accepted(tmp_path, name):
    src = FIXTURES / "twarc2" / name
    data = src.read_bytes()
    if name.endswith(".jsonl"):
        data = data.splitlines()[0] + b"\n"  # a one-line JSONL file
    path = tmp_path / name
    path.write_bytes(b"\xef\xbb\xbf" + data)
    db = open_db(tmp_path / "chats.db", create=True)
    [with_bom] = import_files(db, [str(path)])
    assert not with_bom.error and with_bom.added > 0 and not with_bom.skipped
    plain = tmp_path / ("plain-" + name)
    plain.write_bytes(data)
    [again] = import_files(db, [str(plain)])
    assert (again.added, again.updated) == (0, 0) and again.unchanged == with_bom.added  # the same posts


def test_a_byte_order_mark_on_every_kind_of_file(tmp_path):
    db = open_db(tmp_path / "chats.db", create=True)
    for src in [FIXTURES / "mastodon" / "tag-edchat-mastodon-example.json", FIXTURES / "bluesky" / "feed-edchat.json",
                FIXTURES / "x" / "v1.jsonl", FIXTURES / "x" / "tags.csv", FIXTURES / "x" / "twarc.csv"]:
        path = tmp_path / src.name
        path.write_bytes(b"\xef\xbb\xbf" + src.read_bytes())
        [r] = import_files(db, [str(path)])
        assert not r.error and r.posts, (src.name, r)


def test_csv_fields_over_131072_characters_are_read(tmp_path):
    rows = (FIXTURES / "x" / "tags.csv").read_text(encoding="utf-8").splitlines()
    header = rows[0].split(",")
    text_col = header.index("text")
    import csv
    import io

    reader = list(csv.reader(io.StringIO("\n".join(rows))))
    long_text = "a long answer " * 20_000  # 280,000 characters, over the csv module's default limit
    reader[1][text_col] = long_text
    buf = io.StringIO()
    csv.writer(buf).writerows(reader)
    path = tmp_path / "tags.csv"
    path.write_text(buf.getvalue(), encoding="utf-8")
    db = open_db(tmp_path / "chats.db", create=True)
    [r] = import_files(db, [str(path)])
    [as_is] = import_files(open_db(tmp_path / "reference.db", create=True), [str(FIXTURES / "x" / "tags.csv")])
    assert not r.error and not r.skipped and r.added == as_is.added
    stored = db.execute("SELECT text FROM posts WHERE id = ?", (reader[1][header.index("id_str")],)).fetchone()[0]
    assert stored == long_text


class Chunked(InputFile):
    """An InputFile whose bytes arrive in pieces of ``size`` (the reader's
    behaviour at chunk edges, which real files show only at megabytes)."""

    def __init__(self, path: str, size: int):
        super().__init__(path)
        self.piece = size

    def chunks(self):
        data = b"".join(super().chunks())
        for i in range(0, len(data), self.piece):
            yield data[i:i + self.piece]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 1 << 20])
def test_lines_at_every_chunk_edge(tmp_path, size):
    text = b"one\n\ntwo\r\n" + b"x" * 40 + b"\nthree\n\n\n" + b"y" * 40 + b"\nfour"
    path = tmp_path / "lines.txt"
    path.write_bytes(text)
    got = list(Chunked(str(path), size)._lines(30, blank=True))
    assert [(n, bytes(line), type(line) is Overlong) for n, line in got] == [
        (1, b"one", False), (2, b"", False), (3, b"two\r", False), (4, b"", True), (5, b"three", False),
        (6, b"", False), (7, b"", False), (8, b"", True), (9, b"four", False)]
    numbered = list(Chunked(str(path), size)._lines(30, blank=False))
    assert [n for n, _ in numbered] == [1, 3, 4, 5, 8, 9]


def test_an_over_long_jsonl_line_is_one_skip_and_its_neighbours_stay(tmp_path, monkeypatch):
    monkeypatch.setattr(reading, "MAX_RECORD_BYTES", 10_000)  # the cap, scaled down for the test
    lines = (FIXTURES / "twarc2" / "chat.jsonl").read_text(encoding="utf-8").splitlines()
    long_line = json.dumps({"data": [{"id": "9", "text": "z" * 20_000}]})
    path = tmp_path / "chat.jsonl"
    path.write_text("\n".join([lines[0], long_line, *lines[1:]]) + "\n", encoding="utf-8")
    db = open_db(tmp_path / "chats.db", create=True)
    [r] = import_files(db, [str(path)])
    assert r.problems == [f"{path}:2: a line of more than 9 KB; too large to read"]
    reference = open_db(tmp_path / "reference.db", create=True)
    [whole] = import_files(reference, [str(FIXTURES / "twarc2" / "chat.jsonl")])
    assert (r.added, r.skipped) == (whole.added, 1)


def test_nesting_beyond_the_cap_is_refused_not_built():
    deep = "[" * (reading.MAX_DEPTH + 5) + "]" * (reading.MAX_DEPTH + 5)
    with pytest.raises(ValueError, match="nested more than"):
        decode_deep(deep, 0)
    ok = "[" * 5000 + "]" * 5000  # deeper than orjson and json allow, within the cap
    _, end = decode_deep(ok, 0)
    assert end == len(ok)


def test_a_document_past_the_cap_is_refused_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(reading, "MAX_DOCUMENT_BYTES", 50_000)
    page = json.loads((FIXTURES / "twarc2" / "api-page.json").read_text(encoding="utf-8"))
    page["meta"] = {"padding": "p" * 60_000}
    path = tmp_path / "big.json"
    path.write_text(json.dumps(page, indent=2), encoding="utf-8")
    db = open_db(tmp_path / "chats.db", create=True)
    [r] = import_files(db, [str(path)])
    assert r.error == (f"{path}: a JSON document of more than 48 KB that is not a list; too large to read whole "
                       "(split it, or write one record per line as JSONL)")


def test_a_cut_gzip_member_chain_keeps_what_was_read(tmp_path):
    lines = (FIXTURES / "twarc2" / "chat.jsonl").read_bytes()
    compressed = zlib.compressobj(9, zlib.DEFLATED, 31)
    data = compressed.compress(lines) + compressed.flush()
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(data[: len(data) - 30])
    db = open_db(tmp_path / "chats.db", create=True)
    [r] = import_files(db, [str(path)])
    assert r.posts > 0 and any("file ends early" in p for p in r.problems)
