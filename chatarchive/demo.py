"""`chatarchive demo`: the main job end to end on a sample chat bundled in the package."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Callable

SAMPLE_PACKAGE = "chatarchive.sample"


def sample_files() -> list[Path]:
    root = resources.files(SAMPLE_PACKAGE)
    return sorted(Path(str(p)) for p in root.iterdir() if p.name.endswith((".jsonl", ".json", ".csv")))


def run_demo(directory: Path, echo: Callable[[str], None] = print) -> Path:
    from .analyse import analyse_archive
    from .importer import import_files
    from .store import open_db

    directory.mkdir(parents=True, exist_ok=True)
    db_path = directory / "demo.db"
    db = open_db(db_path)
    results = import_files(db, [str(p) for p in sample_files()])
    for r in results:
        echo(f"Imported {r.path.rsplit('/', 1)[-1]} ({r.format}): {r.added} added, {r.updated} updated, {r.unchanged} unchanged")
    analysis = analyse_archive(db)
    if analysis.get("summary"):
        echo(analysis["summary"])
    posts = db.execute("select count(*) from posts").fetchone()[0]
    authors = db.execute("select count(*) from authors").fetchone()[0]
    echo(f"Archive {db_path}: {posts} posts by {authors} people")
    return db_path
