"""The site's search index: Pagefind run over the written session pages into
``pagefind/``.  Without Pagefind (not installed, failing) the site works
anyway and search.html says why."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

from .files import check_target, real


def pagefind_executable() -> str | None:
    try:
        import pagefind_bin

        return str(pagefind_bin.get_executable())
    except (ImportError, FileNotFoundError):
        pass
    return shutil.which("pagefind") or shutil.which("pagefind_extended")


def index_site(out: Path, needed: bool = True) -> tuple[bool, str]:
    """Index the written pages with Pagefind into ``out/pagefind``; (ok, what happened).

    The bundle is built in a temporary folder and copied over file by file,
    so an unchanged index leaves files untouched and a failure leaves the old
    one in place."""
    if not needed:
        return True, "search index unchanged"
    exe = pagefind_executable()
    if exe is None:
        return False, ("search disabled: Pagefind is not installed (pip install 'pagefind[bin]'); "
                       "the pages work without it")
    with tempfile.TemporaryDirectory(prefix="chatarchive-pagefind-") as tmp:
        try:
            proc = subprocess.run(
                # Only session pages are indexed (data-pagefind-body); reading
                # just those saves Pagefind parsing every participant page.
                [exe, "--site", str(out), "--output-path", tmp, "--silent", "--glob", "sessions/*.html",
                 "--exclude-selectors", ".av,.pf,.qmeta,.deep,.b"],
                capture_output=True, text=True, timeout=600, check=False,
            )
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
    return True, f"search index built with Pagefind ({pages} pages)"
