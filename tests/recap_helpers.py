"""Test archives for the recap/export tests (tests/fixtures/recap/, made by
make_fixtures.py there): imported, then analysed by the real analysis with the
chat's settings (hashtag, zone, host) as a host would give them."""

from __future__ import annotations

from pathlib import Path

from chatarchive.analysis.pipeline import analyse_archive
from chatarchive.archive.importer import import_files
from chatarchive.archive.schema import open_db

RECAP_FIXTURES = Path(__file__).parent / "fixtures" / "recap"
CHAT = RECAP_FIXTURES / "recapchat.jsonl"
HOSTILE = RECAP_FIXTURES / "hostile.jsonl"
ZONE = "America/New_York"
# Session slugs of recapchat.jsonl (dates in the chat's zone).
FIRST, SECOND = "recapchat-2026-11-11", "recapchat-2026-11-18"
HOSTILE_SLUG = "recapchat-2026-12-01"


def recap_archive(path: Path, files=(CHAT,), *, hosts=("chathost",)):
    """A fresh analysed archive at ``path`` built from our fixtures."""
    db = open_db(path, create=True)
    results = import_files(db, [str(f) for f in files])
    assert all(r.error is None for r in results), results
    analyse_archive(db, hashtags=["RecapChat"], tz=ZONE, hosts=list(hosts))
    return db


# --------------------------------------------------------------------------
# Local HTTP servers (127.0.0.1 only): media for --download-media, a static
# server for search (Pagefind needs http)


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A solid-colour PNG, made by hand (no imaging library needed)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" + bytes(rgb) * width
    raw = zlib.compress(row * height)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", raw) + chunk(b"IEND", b""))


class MediaServer:
    """Serves PNGs under /avatars/ and /media/; /missing/... is a 404 and
    /html/... answers an HTML page pretending to be an image."""

    def __init__(self):
        import http.server
        import threading

        self.requests: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                if self.path.startswith(("/avatars/", "/media/")):
                    n = sum(self.path.encode()) % 360
                    body, ctype = png(64, 48, ((n * 7) % 200 + 30, (n * 13) % 200 + 30, (n * 3) % 200 + 30)), "image/png"
                elif self.path.startswith("/html/"):
                    body, ctype = b"<html><script>window.__pwned=1</script></html>", "image/png"
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def point_media_at(db, base: str, *, broken_handles=(), html_handles=()) -> None:
    """Make every avatar and media URL of the archive point at a MediaServer."""
    for author_id, handle in db.execute("SELECT id, handle FROM authors").fetchall():
        kind = "missing" if handle in broken_handles else "html" if handle in html_handles else "avatars"
        db.execute("UPDATE authors SET avatar_url = ? WHERE id = ?", [f"{base}/{kind}/{author_id}.png", author_id])
    db.execute("UPDATE media SET url = ? || '/media/' || id || '.png'", [base])


class StaticServer:
    """A plain static file server for a folder (search needs http)."""

    def __init__(self, directory: Path):
        import functools
        import http.server
        import threading

        class Quiet(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(directory)))
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
