"""links.title (migration m010_link_titles): the page title the data gives
for a shared link — X ``entities.urls[].title``, a Mastodon ``card.title``,
a Bluesky ``app.bsky.embed.external`` title — filled on import, kept when a
later sighting has none, and shown by the recap's resources digest."""

from __future__ import annotations

import json

from community_helpers import GUIDE, GUIDE_TITLE, commchat_archive
from test_sources_fediverse import CAROL_URI, PAGE_A, SEARCH, bctx, by_id, load, mctx

from chatarchive.archive.schema import open_db
from chatarchive.archive.writer import save_posts
from chatarchive.models import Author, Post
from chatarchive.recap.site import build_site
from chatarchive.sources import bluesky, mastodon
from chatarchive.sources.fields import LINK_TITLE_MAX, link_title


def test_normalizers_give_the_titles_their_data_has():
    carol = by_id(mastodon.normalize(load(PAGE_A), mctx()))[CAROL_URI]
    card = next(s["card"] for s in load(PAGE_A) if isinstance(s, dict) and s.get("card"))
    assert carol.link_titles == {card["url"]: card["title"]}
    posts = bluesky.normalize(load(SEARCH), bctx())
    external = {p.id: p.link_titles for p in posts if p.link_titles}
    assert list(external.values()) == [{"https://blog.example/curiosity": "Curiosity"}]
    assert all(not p.link_titles for p in posts if not p.links)


def test_titles_are_one_clean_line():
    assert link_title("  The \x1b[31mguide\x07\n of\tthings ") == "The [31mguide of things"
    assert len(link_title("x" * 5000)) == LINK_TITLE_MAX
    assert link_title("") is None and link_title(None) is None and link_title(["a"]) is None


def test_import_stores_the_x_title_and_a_later_sighting_keeps_it(tmp_path):
    db = commchat_archive(tmp_path)
    titles = dict(db.execute("SELECT url, title FROM links WHERE title IS NOT NULL"))
    spelled = next(u for u in titles if u.lower().startswith(GUIDE.lower()))
    assert titles == {spelled: GUIDE_TITLE}
    # the link shared again, with no title in the data: the title stays
    save_posts(db, [Post(id="9" * 18, platform="x", source="test", author=Author(id="201", platform="x", handle="alice"),
                         created_at="2026-10-08T23:30:00.000Z", text=f"again {spelled}", links=[spelled])])
    assert db.execute("SELECT title FROM links WHERE url = ?", [spelled]).fetchone()[0] == GUIDE_TITLE


def test_the_resources_digest_shows_the_title(tmp_path):
    db = commchat_archive(tmp_path)
    out = tmp_path / "site"
    build_site(db, out, search=False)
    digest = json.loads((out / ".chatarchive-digest.json").read_text())
    titled = [link for s in digest["sessions"] for link in s["links"] if link["title"]]
    assert [link["title"] for link in titled] == [GUIDE_TITLE]  # one link, three spellings, one title
    page = next(p for p in (out / "sessions").glob("*.html") if GUIDE_TITLE in p.read_text())
    assert f"<b>{GUIDE_TITLE}</b>" in page.read_text()


def test_the_migration_adds_the_column(tmp_path):
    db = open_db(tmp_path / "a.db", create=True)
    assert "title" in {c.name for c in db["links"].columns}
