"""``--download-media``: copies of the avatars and media of the site's posts
inside the site (``media/``), so pages work without hotlinking.  The recap's
one network step.

Only real images and videos are kept (sniffed from their first bytes: a
server answering HTML or SVG, which could carry script, is refused), never
more than 50 MB a file; copies are named by a hash of their URL and reused
by later runs without a request.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from .. import __version__
from ..archive import queries
from ..archive.queries import Connection
from ..urls import safe_url


def _h(s: str) -> str:
    return hashlib.sha1(s.encode("utf-8", "surrogatepass")).hexdigest()


MEDIA_MAX_BYTES = 50 * 1024 * 1024
_MAGIC = [
    (b"\xff\xd8\xff", "jpg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"\x1aE\xdf\xa3", "webm"),
]


def sniff_media(head: bytes) -> str | None:
    """File extension for image/video bytes we are willing to publish; None
    for anything else (HTML, SVG — which could carry script — or junk)."""
    for magic, ext in _MAGIC:
        if head.startswith(magic):
            return ext
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"avif", b"avis"):
            return "avif"
        return "mp4"
    return None


_NAME = re.compile(r"[0-9a-f]{24}\.[a-z0-9]{2,4}")


def media_index(out: Path) -> dict[str, str]:
    """The copies earlier runs made, {url: file name in media/}, those still there."""
    media_dir = out / "media"
    index_path = media_dir / "index.json"
    if index_path.is_symlink() or not index_path.is_file():
        return {}
    try:
        index = json.loads(index_path.read_text("utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return {}
    if not isinstance(index, dict):
        return {}
    return {u: n for u, n in index.items() if isinstance(u, str) and isinstance(n, str) and _NAME.fullmatch(n)
            and (media_dir / n).is_file() and not (media_dir / n).is_symlink()}


def fetch_all(urls: list[str], media_dir: Path, workers: int = 8) -> tuple[dict[str, str], dict[str, str]]:
    """Download ``urls`` into ``media_dir`` (named by a hash of the URL) and
    return ({url: "media/NAME"}, {url: reason}).  Files already copied by an
    earlier run are reused without a request."""
    media_dir.mkdir(parents=True, exist_ok=True)
    index_path = media_dir / "index.json"
    index = media_index(media_dir.parent)
    got: dict[str, str] = {}
    failed: dict[str, str] = {}
    todo = []
    for u in urls:
        name = index.get(u)
        if name:
            got[u] = f"media/{name}"
        else:
            todo.append(u)

    def fetch(client: httpx.Client, url: str) -> tuple[str, str | None, str | None]:
        try:
            with client.stream("GET", url) as r:
                if r.status_code != 200:
                    return url, None, f"HTTP {r.status_code}"
                if safe_url(str(r.url)) is None:
                    return url, None, "redirected to a non-http URL"
                declared = r.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > MEDIA_MAX_BYTES:
                    return url, None, "too large"
                buf = bytearray()
                for chunk in r.iter_bytes():
                    buf += chunk
                    if len(buf) > MEDIA_MAX_BYTES:
                        return url, None, "too large"
        except httpx.HTTPError as e:
            return url, None, type(e).__name__
        ext = sniff_media(bytes(buf[:32]))
        if ext is None:
            return url, None, "not an image or video"
        name = f"{_h(url)[:24]}.{ext}"
        target = media_dir / name
        tmp = target.with_name(f".{name}.tmp{os.getpid()}")
        tmp.write_bytes(bytes(buf))
        os.replace(tmp, target)
        return url, name, None

    if todo:
        headers = {"User-Agent": f"chatarchive/{__version__} (recap --download-media)"}
        with httpx.Client(follow_redirects=True, timeout=20.0, headers=headers) as client, \
                ThreadPoolExecutor(max_workers=workers) as pool:
            for url, name, why in pool.map(lambda u: fetch(client, u), todo):
                if name:
                    index[url] = name
                    got[url] = f"media/{name}"
                else:
                    failed[url] = why or "failed"
        tmp = index_path.with_name(".index.json.tmp")
        tmp.write_text(json.dumps(index, indent=0, sort_keys=True), "utf-8")
        os.replace(tmp, index_path)
    return got, failed


@dataclass
class MediaCopies:
    local: dict[str, str] = field(default_factory=dict)  # {url: "media/NAME"}
    failed: dict[str, str] = field(default_factory=dict)  # {url: why}


def copy_session_media(db: Connection, session_ids: list[int], out: Path,
                       progress: Callable[[str], None] = lambda msg: None) -> MediaCopies:
    """Copy every avatar and media file (and video preview) of these
    sessions' posts into ``out/media``; http(s) URLs only."""
    urls = {href for href in (safe_url(u) for u in queries.session_media_urls(db, session_ids)) if href}
    progress(f"Copying {len(urls)} avatars and media files…")
    got, failed = fetch_all(sorted(urls), out / "media")
    return MediaCopies(got, failed)
