"""Writing the site's files: only those whose content changed, and removing
the files an earlier run wrote that this run no longer produces, listed in
the site's manifest (``.chatarchive-site.json``) — never anything else in
the folder."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from .. import __version__

MANIFEST = ".chatarchive-site.json"


class SiteWriter:
    """Writes files under ``out`` only when their content changed, and
    removes files an earlier run wrote that this run no longer produces
    (only files listed in our manifest: never anything of the user's)."""

    def __init__(self, out: Path):
        self.out = out
        self.files: set[str] = set()
        self.written = 0
        self.unchanged = 0
        self.changed_pages: list[str] = []
        self.removed = 0
        self.previous: set[str] = set()
        manifest = out / MANIFEST
        if manifest.is_file():
            try:
                self.previous = set(json.loads(manifest.read_text("utf-8")).get("files", []))
            except (ValueError, OSError):
                self.previous = set()

    def write(self, rel: str, content: str | bytes) -> bool:
        data = content.encode("utf-8") if isinstance(content, str) else content
        path = self.out / rel
        self.files.add(rel)
        try:
            if path.stat().st_size == len(data) and path.read_bytes() == data:
                self.unchanged += 1
                return False
        except OSError:
            pass
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        self.written += 1
        if rel.endswith(".html"):
            self.changed_pages.append(rel)
        return True

    def keep(self, rel: str) -> None:
        self.files.add(rel)

    def remove_stale(self, keep: Callable[[str], bool] = lambda rel: False) -> int:
        """Delete files of an earlier run that this run did not produce (except ``keep``)."""
        removed = 0
        for rel in sorted(self.previous - self.files):
            if rel.startswith(("/", "..")) or "/../" in rel or "\\" in rel or keep(rel):
                continue
            path = self.out / rel
            if path.is_file():
                path.unlink()
                removed += 1
                if rel.endswith(".html"):
                    self.changed_pages.append(rel)
                parent = path.parent
                while parent != self.out and self.out in parent.parents and not any(parent.iterdir()):
                    parent.rmdir()
                    parent = parent.parent
        self.removed += removed
        return removed

    def finish(self) -> int:
        self.remove_stale()
        self.write(MANIFEST, json.dumps({"generator": f"chatarchive {__version__}", "files": sorted(self.files)},
                                        indent=0) + "\n")
        return self.removed
