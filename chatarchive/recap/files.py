"""Writing the site's files: only those whose content changed, never outside
``--out``, and removing only what ``--prune`` asks for.

The site's manifest (``.chatarchive-site.json``) lists the files earlier runs
wrote and which session and person each page belongs to.  A run keeps every
file it lists (a weekly ``recap DB THIS-WEEK`` adds a page and leaves the
others), and with ``prune`` deletes the listed files this run no longer
produces or keeps — never a file it did not write itself.

The folder is checked before anything is written or deleted: a subfolder
that is a link leading outside ``--out``, a manifest entry that does, or a
manifest that is itself a link, stops the run with one line.  Every write
and delete is checked again against the real path of ``--out``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import ChatArchiveError

MANIFEST = ".chatarchive-site.json"
# The folders a site writes into (media: --download-media; pagefind: the search index).
# community/feeds/cards: the community pages, Atom feeds and preview images of issue #13.
SUBFOLDERS = ("sessions", "people", "hashtags", "community", "feeds", "cards", "media", "pagefind")


class UnsafeSiteError(ChatArchiveError):
    """The site folder holds a link (or a manifest entry) leading outside it."""


def real(path: Path) -> Path:
    return Path(os.path.realpath(path))


def is_inside(root: Path, path: Path) -> bool:
    """Whether ``path`` (already resolved) is ``root`` or below it."""
    return path == root or root in path.parents


def clean_relative(rel: Any) -> bool:
    """A manifest entry as we write them: a relative POSIX path of plain parts."""
    if not isinstance(rel, str) or not rel or "\\" in rel or "\x00" in rel or rel.startswith("/"):
        return False
    parts = rel.split("/")
    return all(part not in ("", ".", "..") for part in parts) and ":" not in parts[0]


def check_target(out: Path, root: Path, path: Path) -> None:
    """Refuse to write ``path`` unless it and its folder lie inside ``root``
    (the real ``--out``): a link on the way out stops the run."""
    parent = real(path.parent)
    if not is_inside(root, parent):
        raise UnsafeSiteError(f"{path.parent} leads outside {out} (to {parent}): refusing to write there; "
                              "remove that link from the site folder")
    if path.is_symlink():
        raise UnsafeSiteError(f"{path} is a link (to {real(path)}): refusing to write through it; "
                              "remove it from the site folder")


def _dict(value: Any) -> dict[Any, Any]:
    return value if isinstance(value, dict) else {}


class SiteWriter:
    """Writes files under ``out`` only when their content changed, keeps the
    manifest, and (``finish(prune=True)``) removes listed files this run
    neither wrote nor kept.  Raises :class:`UnsafeSiteError` at once when the
    folder leads outside itself."""

    def __init__(self, out: Path):
        self.out = out
        self.root = real(out)
        self.files: set[str] = set()
        self.written = 0
        self.unchanged = 0
        self.changed_pages: list[str] = []
        self.removed = 0
        self.previous: set[str] = set()
        self.previous_people: dict[str, str] = {}  # author id -> "people/x.html", as earlier runs named them
        self.previous_first_timers: dict[int, int | None] = {}  # session id -> first-timers its page shows
        # What this run's manifest says of the pages: session id -> page, author id -> page,
        # session id -> the first-timers its page shows (the index repeats the page's number).
        self.pages: dict[str, dict[str, Any]] = {"sessions": {}, "people": {}, "first_timers": {}}
        self._checked: set[str] = set()
        for sub in SUBFOLDERS:
            path = out / sub
            if path.is_symlink() or path.exists():
                target = real(path)
                if not is_inside(self.root, target) or target == self.root:
                    raise UnsafeSiteError(f"{path} leads outside {out} (to {target}): refusing to write or "
                                          "delete anything; remove that link from the site folder")
        manifest = out / MANIFEST
        if manifest.is_symlink():
            raise UnsafeSiteError(f"{manifest} is a link (to {real(manifest)}): refusing to use it; "
                                  "remove it from the site folder")
        if manifest.is_file():
            try:
                data = json.loads(manifest.read_text("utf-8"))
            except (ValueError, OSError, UnicodeDecodeError):
                data = {}
            data = data if isinstance(data, dict) else {}
            listed = data.get("files")
            files: list[Any] = listed if isinstance(listed, list) else []
            for rel in files:
                if not clean_relative(rel) or not is_inside(self.root, real(out / rel)):
                    raise UnsafeSiteError(f"{manifest} lists {rel!r}, which leads outside {out}: refusing to write "
                                          "or delete anything; remove that entry (or the manifest)")
            self.previous = set(files)
            pages = _dict(data.get("pages"))
            people = _dict(pages.get("people"))
            self.previous_people = {str(k): v for k, v in people.items() if clean_relative(v) and v in self.previous}
            firsts = _dict(pages.get("first_timers"))
            self.previous_first_timers = {int(k): v for k, v in firsts.items() if str(k).isdigit() and (
                v is None or (type(v) is int and v >= 0))}

    def _path(self, rel: str) -> Path:
        path = self.out / rel
        folder = str(path.parent)
        if folder not in self._checked:
            check_target(self.out, self.root, path)
            self._checked.add(folder)
        elif path.is_symlink():
            check_target(self.out, self.root, path)
        return path

    def write(self, rel: str, content: str | bytes) -> bool:
        data = content.encode("utf-8") if isinstance(content, str) else content
        self.files.add(rel)
        path = self._path(rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            if path.stat().st_size == len(data) and path.read_bytes() == data:
                self.unchanged += 1
                return False
        except OSError:
            pass
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        self.written += 1
        if rel.endswith(".html"):
            self.changed_pages.append(rel)
        return True

    def keep(self, rel: str) -> None:
        """``rel`` stays part of the site without being written this run."""
        self.files.add(rel)

    def has(self, rel: str) -> bool:
        """Whether an earlier run wrote ``rel`` and it is still there."""
        return rel in self.previous and (self.out / rel).is_file()

    def remove(self, rel: str) -> None:
        """Delete ``rel`` now, --prune or not (a page whose person is withheld
        since the last run; a stamp to invalidate), if this run or an earlier one wrote it."""
        ours = rel in self.previous or rel in self.files
        self.files.discard(rel)
        path = self.out / rel
        if ours and not path.is_symlink() and path.is_file() and is_inside(self.root, real(path)):
            path.unlink()
            self.removed += 1
            if rel.endswith(".html"):
                self.changed_pages.append(rel)
        self.previous.discard(rel)

    def prune(self) -> int:
        """Delete the files earlier runs wrote that this run neither wrote nor
        kept (pages of sessions no longer in the archive, …); returns how many."""
        removed = 0
        for rel in sorted(self.previous - self.files):
            path = self.out / rel
            if path.is_symlink() or not path.is_file() or not is_inside(self.root, real(path)):
                continue  # not a file we wrote
            path.unlink()
            removed += 1
            if rel.endswith(".html"):
                self.changed_pages.append(rel)
            parent = path.parent
            while parent != self.out and self.out in parent.parents and not any(parent.iterdir()):
                parent.rmdir()
                parent = parent.parent
        self.previous -= {rel for rel in self.previous if not (self.out / rel).exists()}
        self.removed += removed
        return removed

    def finish(self) -> int:
        """Write the manifest: every file of the site (what this run wrote or
        kept, and what earlier runs wrote that is still there)."""
        files = self.files | {rel for rel in self.previous if (self.out / rel).is_file()}
        people = {k: v for k, v in self.pages["people"].items() if v in files}
        sessions = {k: v for k, v in self.pages["sessions"].items() if v in files}
        firsts = {k: v for k, v in self.pages["first_timers"].items() if k in sessions}
        self.write(MANIFEST, json.dumps({"generator": f"chatarchive {__version__}", "files": sorted(files - {MANIFEST}),
                                         "pages": {"sessions": sessions, "people": people, "first_timers": firsts}},
                                        indent=0, sort_keys=True) + "\n")
        return self.removed
