"""`chatarchive demo`: the main job end to end on a sample chat bundled in the package.

The sample (chatarchive/sample/, made by bench/make_sample.py) is #samplechat,
two weekly sessions of a community managers' chat held at the same hour on
X (twarc2 JSONL), Mastodon (a tag timeline) and Bluesky (searchPosts).

The demo is a list of steps run in order over one :class:`DemoRun`; each
step reads what earlier steps left on it and prints through ``run.echo``.
Later features add a step (the recap site, Datasette) by appending to
:data:`STEPS` or passing ``steps=`` — nothing else needs to change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import sqlite_utils

from .api import Archive
from .archive.importer import FileResult
from .errors import ChatArchiveError
from .present.terminal import local_time

SAMPLE_PACKAGE = "chatarchive.sample"
SAMPLE_SUFFIXES = (".jsonl", ".json", ".csv")
SAMPLE_HASHTAG = "samplechat"
SAMPLE_TIMEZONE = "America/New_York"  # the chat meets Wednesdays 20:00 New York time


def sample_files() -> list[Path]:
    """The bundled sample chat files, in a stable order."""
    root = resources.files(SAMPLE_PACKAGE)
    return sorted(Path(str(p)) for p in root.iterdir() if p.name.endswith(SAMPLE_SUFFIXES))


@dataclass
class DemoRun:
    """What the demo has done so far; steps read and extend it."""

    directory: Path
    echo: Callable[[str], None]
    db_path: Path
    archive: Archive
    imports: list[FileResult] = field(default_factory=list)
    analysis: dict[str, Any] = field(default_factory=dict)  # Archive.analyse's return
    summary: dict[str, Any] = field(default_factory=dict)  # archive_summary()
    outputs: dict[str, Path] = field(default_factory=dict)  # e.g. {"recap": site index}

    @property
    def db(self) -> sqlite_utils.Database:
        return self.archive.db


DemoStep = Callable[[DemoRun], None]


def step_import(run: DemoRun) -> None:
    files = sample_files()
    if not files:
        raise ChatArchiveError("The bundled sample chat is missing from this installation")
    run.imports = run.archive.import_files(files, analyse=False).files
    run.echo(f"Imported the bundled #samplechat sample ({len(files)} files) into {run.db_path}:")
    for r in run.imports:
        name = Path(r.path).name
        if r.error:
            reason = r.error[len(r.path) + 2:] if r.error.startswith(r.path + ": ") else r.error
            run.echo(f"  {name}: not imported: {reason}")
        else:
            skipped = f", {r.skipped} skipped" if r.skipped else ""
            run.echo(f"  {name} ({r.format}): {r.added} added, {r.updated} updated, {r.unchanged} unchanged{skipped}")


def step_analyse(run: DemoRun) -> None:
    """Detect sessions, threads and Q&A.  Like a host would, tell the archive
    the chat's time zone once, so session slugs and times use its own dates."""
    run.analysis = run.archive.analyse(SAMPLE_HASHTAG, tz=SAMPLE_TIMEZONE)
    if run.analysis.get("summary"):
        run.echo(str(run.analysis["summary"]))


def step_summary(run: DemoRun) -> None:
    s = run.summary = archive_summary(run.archive)
    platforms = ", ".join(f"{n} on {p}" for p, n in s["platforms"].items())
    run.echo("")
    run.echo(f"Found {s['posts']} posts ({s['matched_posts']} matched the hashtag, {s['context_posts']} context) "
             f"by {s['participants']} participants ({platforms})")
    run.echo(f"Sessions: {len(s['sessions'])}")
    for sess in s["sessions"]:
        newcomers = ("first archived session: newcomers unknown" if sess["first_timers"] is None
                     else f"{sess['first_timers']} first-timers, {sess['returning']} returning")
        run.echo(f"  {sess['slug']}: {sess['when']}, {sess['posts']} posts, {sess['participants']} participants"
                 f" ({newcomers})")
        if sess["hosts"]:
            run.echo(f"    hosts: {', '.join('@' + h for h in sess['hosts'])}")
        for q in sess["questions"]:
            text = q["text"] if len(q["text"]) <= 70 else q["text"][:69] + "…"
            run.echo(f"    Q{q['number']}: {q['answers']} answers  {text}")
    run.echo("")
    run.echo("Try:")
    run.echo(f"  chatarchive search {run.db_path} \"welcome\"")
    if s["sessions"]:
        run.echo(f"  chatarchive show {run.db_path} {s['sessions'][-1]['slug']}")
    run.echo(f"  chatarchive serve {run.db_path} --open      # browse it all in Datasette")


def step_recap(run: DemoRun) -> None:
    """Write the recap site of every session into DIRECTORY/recap and say where to open it."""
    if not run.archive.sessions():
        run.echo("No sessions found, so no recap site was written.")
        return
    result = run.archive.recap(run.directory / "recap")
    run.outputs["recap"] = result.index
    run.echo("")
    run.echo(f"Recap site: {result.pages} pages in {result.out} ({result.seconds:.1f} s)")
    if not result.search_ok:
        run.echo(f"  ({result.search})")
    run.echo(f"  Open {result.index.resolve().as_uri()}")
    if result.search_ok:
        run.echo(f"  Search needs http: python3 -m http.server -d {result.out} 8000, "
                 "then http://localhost:8000/search.html")


STEPS: list[DemoStep] = [step_import, step_analyse, step_summary, step_recap]


def run_demo(directory: Path, echo: Callable[[str], None] = print,
             steps: list[DemoStep] | None = None) -> DemoRun:
    """Import the sample into DIRECTORY/demo.db, analyse it and report; then
    whatever further steps are registered (recap site…).  Re-running is
    safe: the import is idempotent."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise ChatArchiveError(f"{directory}: exists and is not a directory")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ChatArchiveError(f"{directory}: cannot create the demo directory ({e.strerror})") from None
    db_path = directory / "demo.db"
    run = DemoRun(directory=directory, echo=echo, db_path=db_path, archive=Archive(db_path, create=True))
    for step in STEPS if steps is None else steps:
        step(run)
    return run


# --------------------------------------------------------------------------
# What the archive holds, for the report (plain data; the steps print it)


def count_or_none(items: list | None) -> int | None:
    return None if items is None else len(items)


def archive_summary(archive: Archive) -> dict[str, Any]:
    """Counts over the whole archive plus one entry per session (its
    statistics from ``Archive.session_stats``)."""
    q = archive.db.conn.execute
    posts, matched = q("SELECT count(*), coalesce(sum(matched), 0) FROM posts").fetchone()
    participants = q("SELECT count(DISTINCT author_id) FROM posts WHERE author_id IS NOT NULL").fetchone()[0]
    platforms = dict(q("SELECT platform, count(*) FROM posts GROUP BY platform ORDER BY platform").fetchall())
    sessions = []
    for s in archive.sessions():
        st = archive.session_stats(s.id)
        sessions.append({
            "id": s.id, "slug": s.slug, "start": s.start, "end": s.end,
            "when": local_time(s.start, s.timezone, zone=True) or "?",
            "posts": st["posts"], "participants": st["participants"],
            # None for the first archived session of a hashtag: the archive cannot know
            "first_timers": count_or_none(st["first_timers"]), "returning": count_or_none(st["returning"]),
            "hosts": st["session"]["hosts"] or [],
            "questions": [{"number": x["number"], "text": x["text"], "answers": x["answers"]}
                          for x in st["questions"]],
        })
    return {"posts": posts, "matched_posts": matched, "context_posts": posts - matched,
            "participants": participants, "platforms": platforms, "sessions": sessions}


__all__ = [
    "STEPS",
    "DemoRun",
    "DemoStep",
    "archive_summary",
    "run_demo",
    "sample_files",
    "step_analyse",
    "step_import",
    "step_recap",
    "step_summary",
]
