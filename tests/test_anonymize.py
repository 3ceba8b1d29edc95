"""`recap --anonymize` and `export --anonymize` (#11): every non-host as a
stable pseudonym ("Participant N", numbered by first appearance in the
archive); no real handle, name, avatar, profile URL or author id of a
participant anywhere in the site or in any export format; hosts still named."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from chatarchive import Archive
from chatarchive.cli import cli
from chatarchive.models import handle_matches

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


SAMPLE = Path(__file__).resolve().parent.parent / "chatarchive" / "sample"


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    """The bundled sample chat (X, Mastodon and Bluesky; two sessions), imported and analysed."""
    from click.testing import CliRunner

    db = tmp_path_factory.mktemp("anon") / "demo.db"
    res = CliRunner().invoke(cli, ["import", str(db), *map(str, sorted(SAMPLE.glob("samplechat-*")))])
    assert res.exit_code == 0, res.output
    return db


def people(db: Path) -> tuple[list[tuple], list[str]]:
    """(non-host authors in order of their first post: id, handle, name, avatar, url), the host handles."""
    with Archive(db) as a:
        hosts = sorted({h for s in a.sessions() for h in (*s.hosts, *s.configured_hosts)})
        rows = a.conn.execute(
            """SELECT a.id, a.handle, a.name, a.avatar_url, a.url, min(p.created_at) AS first
               FROM authors a JOIN posts p ON p.author_id = a.id GROUP BY a.id ORDER BY first, a.id""").fetchall()
    others = [r[:5] for r in rows if not any(handle_matches(r[1], h) for h in hosts)]
    return others, hosts


def needles(author: tuple, host_names: list[str]) -> set[str]:
    """What would name this person: handle (and @user of user@server), name, avatar, profile URL, id."""
    aid, handle, name, avatar, url = author
    out = {aid, handle, f"@{handle.split('@')[0]}", avatar, url}
    if name and not any(name in h for h in host_names):  # a host's own name (a co-host's other account) stays
        out.add(name)
    return {n for n in out if n and len(n) >= 4}


def outputs(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): p.read_text("utf-8") for p in folder.rglob("*")
            if p.is_file() and p.suffix in (".html", ".xml", ".json", ".md", ".csv", ".jsonl")}


def test_no_participant_is_named_anywhere_in_the_site_or_the_exports(runner, demo, tmp_path):
    site, exports = tmp_path / "site", tmp_path / "exports"
    res = runner.invoke(cli, ["recap", str(demo), "--out", str(site), "--anonymize", "--no-search"])
    assert res.exit_code == 0, res.output
    exports.mkdir()
    with Archive(demo) as a:
        slugs = [s.slug for s in a.sessions()]
        host_names = [r[0] for r in a.conn.execute("SELECT name FROM authors WHERE name IS NOT NULL")]
    for slug in slugs:
        for fmt in ("md", "json", "jsonl", "csv"):
            res = runner.invoke(cli, ["export", str(demo), slug, "--format", fmt, "--anonymize",
                                      "-o", str(exports / f"{slug}.{fmt}")])
            assert res.exit_code == 0, res.output
    texts = {**outputs(site), **{f"exports/{k}": v for k, v in outputs(exports).items()}}
    assert len(texts) > 10 and not (site / "people").exists()  # participant pages would name their person
    others, hosts = people(demo)
    host_name_list = [n for n in host_names if any(n in t for t in texts.values())]
    leaks = [(needle, name) for author in others for needle in needles(author, host_name_list)
             for name, text in texts.items() if needle.lower() in text.lower()]
    assert leaks == []
    for h in hosts:  # hosts are still named
        assert any(h.lower() in t.lower() for t in texts.values()), h
    assert any("Participant 1" in t for t in texts.values())


def test_the_same_person_has_the_same_pseudonym_everywhere_numbered_by_first_appearance(runner, demo, tmp_path):
    others, _ = people(demo)
    number = {author[0]: n for n, author in enumerate(others, 1)}
    with Archive(demo) as a:
        slugs = [s.slug for s in a.sessions()]
        plain = {s: json.loads(a.export(s, "json")) for s in slugs}
        anon = {s: json.loads(a.export(s, "json", anonymize=True)) for s in slugs}
        again = {s: a.export(s, "json", anonymize=True) for s in slugs}
    checked = 0
    for s in slugs:
        assert json.dumps(anon[s], indent=2, ensure_ascii=False) + "\n" == again[s]  # stable across runs
        for real, shown in zip(plain[s]["posts"], anon[s]["posts"], strict=True):
            if real["author_id"] in number:
                n = number[real["author_id"]]
                assert (shown["author_handle"], shown["author_name"]) == (f"participant-{n}", f"Participant {n}")
                assert shown["url"] is None and shown["id"] != real["id"] and shown["created_at"] == real["created_at"]
                checked += 1
            elif real["author_id"] is not None:  # a host
                assert shown["author_handle"] == real["author_handle"] and shown["id"] == real["id"]
    assert checked > 20


def test_mentions_in_text_become_pseudonyms(runner, demo):
    others, _ = people(demo)
    with Archive(demo) as a:
        slug = a.sessions()[0].slug
        plain = json.loads(a.export(slug, "json"))["posts"]
        anon = json.loads(a.export(slug, "json", anonymize=True))["posts"]
    number = {author[1].lower(): n for n, author in enumerate(others, 1)}
    mentioned = 0
    for real, shown in zip(plain, anon, strict=True):
        for handle in re.findall(r"(?<![\w@])@([\w.]+[\w])", real["text"] or ""):
            if handle.lower() in number:
                assert f"@participant-{number[handle.lower()]}" in shown["text"]
                assert f"@{handle}" not in shown["text"]
                mentioned += 1
    assert mentioned > 0


def test_an_anonymized_site_is_not_written_over_a_site_that_names_people(runner, demo, tmp_path):
    site = tmp_path / "site"
    assert runner.invoke(cli, ["recap", str(demo), "--out", str(site), "--no-search"]).exit_code == 0
    before = {p: p.read_bytes() for p in site.rglob("*") if p.is_file()}
    res = runner.invoke(cli, ["recap", str(demo), "--out", str(site), "--anonymize", "--no-search"])
    assert res.exit_code == 1 and "--anonymize" in res.output and "Traceback" not in res.output
    assert {p: p.read_bytes() for p in site.rglob("*") if p.is_file()} == before
