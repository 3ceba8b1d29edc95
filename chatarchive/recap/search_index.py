"""The site's search index: Pagefind's index built from the site's search
records (``search_records.py``: one per question block, conversation,
session and person, each linking to its anchor) into ``pagefind/``: each
record becomes a small page in a temporary folder that Pagefind's command
line indexes (the site's own pages are never read back).  Without
Pagefind (not installed, failing) the site works anyway and search.html
says why."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from html import escape
from pathlib import Path
from urllib.parse import quote

from .files import check_target, real
from .search_records import SearchRecord

# Every record is English to Pagefind (base.html's lang): one index, one word list.
LANGUAGE = "en"
# In the site folder: the hash of the records the index holds (a run that
# changes none leaves the index alone).
SEARCH_STAMP = ".chatarchive-search"


def records_stamp(records: list[SearchRecord]) -> str:
    data = json.dumps([r.as_dict() for r in records], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(data.encode("utf-8", "surrogatepass")).hexdigest() + "\n"


def pagefind_executable() -> str | None:
    try:
        import pagefind_bin

        return str(pagefind_bin.get_executable())
    except (ImportError, FileNotFoundError):
        pass
    return shutil.which("pagefind") or shutil.which("pagefind_extended")


def record_page(record: SearchRecord) -> str:
    """One record as the small page Pagefind reads: its text, its title and
    filters as Pagefind's attributes (outside the indexed text, so snippets
    are what people wrote), and the page it links to as the ``url`` meta
    (relative to the site's root, where search.html is)."""
    url = quote(record.url, safe="/#:.-_~%")  # never a comma or a quote in the attribute
    filters = "".join(f'<span data-pagefind-filter="{escape(name)}">{escape(v)}</span>'
                      for name, values in sorted(record.filters.items()) for v in values)
    text = "".join(f"<p>{escape(line)}</p>" for line in record.content.split("\n") if line)
    return (f'<!doctype html><html lang="{LANGUAGE}"><body data-pagefind-body data-pagefind-meta="url:{url}">'
            f'<div data-pagefind-ignore><b data-pagefind-meta="title">{escape(record.title)}</b>{filters}</div>'
            f"{text}</body></html>")


def index_site(out: Path, records: Iterable[SearchRecord], needed: bool = True) -> tuple[bool, str]:
    """Index ``records`` with Pagefind into ``out/pagefind``; (ok, what happened).

    The bundle is built in a temporary folder and copied over file by file,
    so an unchanged index leaves files untouched and a failure leaves the old
    one in place."""
    if not needed:
        return True, "search index unchanged"
    exe = pagefind_executable()
    if exe is None:
        return False, ("search disabled: Pagefind is not installed (pip install 'pagefind[bin]'); "
                       "the pages work without it")
    with tempfile.TemporaryDirectory(prefix="chatarchive-search-") as record_pages, \
            tempfile.TemporaryDirectory(prefix="chatarchive-pagefind-") as tmp:
        # Pagefind's command line over one small page per record: its indexing
        # service (custom records) takes several times longer for the same records.
        for n, record in enumerate(records):
            Path(record_pages, f"{n}.html").write_text(record_page(record), "utf-8")
        try:
            proc = subprocess.run([exe, "--site", record_pages, "--output-path", tmp, "--silent"],
                                  capture_output=True, text=True, timeout=600, check=False)
        except (OSError, subprocess.SubprocessError) as e:
            return False, f"search disabled: Pagefind could not run ({e})"
        if proc.returncode != 0:
            why = (proc.stderr or proc.stdout or "").strip().splitlines()
            return False, f"search disabled: Pagefind failed ({why[-1] if why else f'exit {proc.returncode}'})"
        src = Path(tmp)
        dest = out / "pagefind"
        root = real(out)
        new = {p.relative_to(src).as_posix() for p in src.rglob("*") if p.is_file()}
        if not new:
            return False, "search disabled: Pagefind wrote no index"
        for rel in sorted(new):
            data = (src / rel).read_bytes()
            target = dest / rel
            check_target(out, root, target)  # never through a link out of the site
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                if target.read_bytes() == data:
                    continue
            except OSError:
                pass
            target.write_bytes(data)
        if dest.is_dir():
            for p in sorted(dest.rglob("*"), reverse=True):
                rel = p.relative_to(dest).as_posix()
                if p.is_symlink():
                    continue  # not ours, and never followed
                if p.is_file() and rel not in new:
                    p.unlink()
                elif p.is_dir() and not any(p.iterdir()):
                    p.rmdir()
    pages = 0
    entry = out / "pagefind" / "pagefind-entry.json"
    try:
        meta = json.loads(entry.read_text("utf-8"))
        pages = sum(v.get("page_count", 0) for v in (meta.get("languages") or {}).values())
    except (OSError, ValueError):
        pass
    return True, f"search index built with Pagefind ({pages} records)"
