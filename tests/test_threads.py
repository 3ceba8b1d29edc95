"""Conversations: reply trees, roots, missing parents, cycles, deep chains, incremental updates."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "analysis"))
from builders import at, post

from chatarchive.analysis import threads
from chatarchive.analysis.pipeline import analyse_archive
from chatarchive.archive.schema import open_db
from chatarchive.archive.writer import save_posts
from chatarchive.errors import NotFoundError
from chatarchive.models import local_placeholder

T0 = "2026-03-04T18:00:00Z"


def t(minute: float) -> str:
    return at(T0, minute)


def conv_of(db) -> dict[str, str]:
    return dict(db.execute("SELECT id, conversation_id FROM posts").fetchall())


def conversations(db) -> dict[str, tuple]:
    return {r[0]: r[1:] for r in db.execute(
        "SELECT id, size, depth, participants, started, ended FROM conversations")}


def test_tree_roots_sizes_depths(db):
    save_posts(db, [
        post("ann", "root", t(0), id="r"),
        post("bob", "reply 1", t(1), id="a", reply_to="r"),
        post("cat", "reply 2", t(2), id="b", reply_to="r"),
        post("ann", "reply to a", t(3), id="c", reply_to="a"),
        post("dan", "deeper", t(4), id="d", reply_to="c"),
        post("eve", "alone", t(5), id="lone"),
    ])
    analyse_archive(db)
    assert conv_of(db) == {"r": "r", "a": "r", "b": "r", "c": "r", "d": "r", "lone": "lone"}
    # only threads of two or more posts are listed
    assert conversations(db) == {"r": (5, 3, 4, t(0), t(4))}
    rows = threads.thread(db, "d")
    assert [(r["depth"], r["id"]) for r in rows] == [(0, "r"), (1, "a"), (2, "c"), (3, "d"), (1, "b")]
    view = [r[0] for r in db.execute("SELECT id FROM thread_posts WHERE conversation_id = 'r'")]
    assert view == ["r", "a", "b", "c", "d"]


def test_missing_parent_uses_source_root_then_missing_parent_id(db):
    save_posts(db, [
        # X gives the conversation's root id: siblings under a missing parent share it
        post("bob", "reply", t(1), id="x1", reply_to="gone", root_id="xroot"),
        post("cat", "reply", t(2), id="x2", reply_to="gone2", root_id="xroot"),
        # Mastodon gives no root: the missing parent's id names the conversation
        post("dan", "reply", t(3), id="m1", reply_to="mparent", platform="mastodon"),
        post("eve", "reply", t(4), id="m2", reply_to="mparent", platform="mastodon"),
    ])
    analyse_archive(db)
    c = conv_of(db)
    assert c["x1"] == c["x2"] == "xroot"
    assert c["m1"] == c["m2"] == "mparent"
    assert conversations(db)["mparent"][:2] == (2, 1)  # replies to a missing post sit at depth 1


def test_middle_missing_joins_the_present_root(db):
    save_posts(db, [
        post("ann", "root", t(0), id="root"),
        post("bob", "child of a missing middle post", t(2), id="leaf", reply_to="middle", root_id="root"),
    ])
    analyse_archive(db)
    assert conv_of(db)["leaf"] == "root"


def test_self_reply_and_cycle_are_safe(db):
    save_posts(db, [
        post("ann", "I reply to myself", t(0), id="self", reply_to="self"),
        post("bob", "a", t(1), id="c1", reply_to="c3"),
        post("cat", "b", t(2), id="c2", reply_to="c1"),
        post("dan", "c", t(3), id="c3", reply_to="c2"),
        post("eve", "hangs off the cycle", t(4), id="c4", reply_to="c2"),
    ])
    analyse_archive(db)
    c = conv_of(db)
    assert c["self"] == "self"
    # the earliest post of the cycle becomes its root
    assert c["c1"] == c["c2"] == c["c3"] == c["c4"] == "c1"
    assert conversations(db)["c1"][:2] == (4, 2)
    rows = threads.thread(db, "c4")
    assert sorted(r["id"] for r in rows) == ["c1", "c2", "c3", "c4"]  # each once, no endless loop
    assert rows[0]["id"] == "c1" and rows[0]["depth"] == 0


def test_quotes_link_but_do_not_merge(db):
    save_posts(db, [
        post("ann", "original", t(0), id="o"),
        post("bob", "quoting it", t(1), id="q", quote_of="o"),
        post("cat", "reply to the quote", t(2), id="qr", reply_to="q"),
    ])
    analyse_archive(db)
    c = conv_of(db)
    assert c["o"] == "o" and c["q"] == c["qr"] == "q"
    assert db.execute("SELECT quote_of_id FROM posts WHERE id = 'q'").fetchone()[0] == "o"


def test_ten_thousand_deep_chain_full_and_incremental(db):
    n = 10_000
    chain = [post(f"u{i % 7}", f"reply {i}", t(i / 60), id=f"p{i}", reply_to=f"p{i - 1}" if i else None)
             for i in range(n)]
    save_posts(db, chain)
    result = analyse_archive(db)
    assert result["full"]
    assert db.execute("SELECT count(DISTINCT conversation_id) FROM posts").fetchone()[0] == 1
    assert conversations(db)["p0"][:2] == (n, n - 1)
    rows = threads.thread(db, f"p{n - 1}")
    assert [r["id"] for r in rows] == [f"p{i}" for i in range(n)]
    assert rows[-1]["depth"] == n - 1
    # one more reply at the bottom: incremental, same conversation one deeper
    save_posts(db, [post("zed", "and one more", t(n), id="tail", reply_to=f"p{n - 1}")])
    result = analyse_archive(db)
    assert not result["full"]
    assert conv_of(db)["tail"] == "p0"
    assert conversations(db)["p0"][:2] == (n + 1, n)


def test_parent_arriving_later_rekeys_the_conversation(db):
    # first the replies (parent missing), later the parent, itself a reply
    # to a post that never arrives: the conversation moves to the new key
    save_posts(db, [post("bob", f"r{i}", t(i), id=f"r{i}", reply_to="P", platform="mastodon") for i in range(1, 4)])
    save_posts(db, [post("zed", "filler", t(0), id=f"f{i}") for i in range(20)])
    analyse_archive(db)
    assert set(conversations(db)) == {"P"}
    save_posts(db, [post("ann", "the parent", t(0.5), id="P", reply_to="G", platform="mastodon")])
    result = analyse_archive(db)
    assert not result["full"]
    c = conv_of(db)
    assert c["P"] == c["r1"] == c["r2"] == c["r3"] == "G"
    assert conversations(db) == {"G": (4, 2, 2, t(0.5), t(3))}


def test_changed_post_is_reanalysed(db):
    # a context sighting without its reply link, then the full post
    save_posts(db, [post("ann", "root", t(0), id="root")] +
               [post("zed", "filler", t(1), id=f"f{i}") for i in range(10)])
    save_posts(db, [post("bob", "hello", t(2), id="late", matched=False)])
    analyse_archive(db)
    assert conv_of(db)["late"] == "late"
    save_posts(db, [post("bob", "hello", t(2), id="late", reply_to="root")])
    assert db.execute("SELECT count(*) FROM analysis_dirty").fetchone()[0] == 1
    analyse_archive(db)
    assert conv_of(db)["late"] == "root"
    assert db.execute("SELECT count(*) FROM analysis_dirty").fetchone()[0] == 0


def test_incremental_equals_full_on_a_random_forest(tmp_path):
    rng = random.Random(3)
    posts = []
    for i in range(600):
        parent = None
        r = rng.random()
        if posts and r < 0.6:
            parent = rng.choice(posts).id
        elif r < 0.7:
            parent = f"missing{rng.randint(0, 5)}"
        posts.append(post(f"u{rng.randint(0, 30)}", f"post {i}", t(i), id=f"n{i}", reply_to=parent,
                          root_id=rng.choice([None, None, "n0", "missing0"]) if parent else None))
    posts.append(post("loop", "cycle a", t(700), id="ca", reply_to="cb"))
    posts.append(post("loop", "cycle b", t(701), id="cb", reply_to="ca"))
    order = posts[:]
    rng.shuffle(order)  # children often arrive before their parents
    inc = open_db(tmp_path / "inc.db", create=True)
    for i in range(0, len(order), 40):
        save_posts(inc, order[i : i + 40])
        analyse_archive(inc)
    full = open_db(tmp_path / "full.db", create=True)
    save_posts(full, posts)
    analyse_archive(full)
    assert conv_of(inc) == conv_of(full)
    assert conversations(inc) == conversations(full)
    # and a forced full rebuild of the incremental archive changes nothing
    before = conversations(inc)
    analyse_archive(inc, full=True)
    assert conversations(inc) == before


def test_thread_of_unknown_post(db):
    with pytest.raises(NotFoundError):
        threads.thread(db, "nope")


def test_solver_directly_handles_orphans_and_rings():
    # 1 <- 2 <- 3, 4 under a missing parent (-1), 5 <-> 6 ring
    parent = {1: 0, 2: 1, 3: 2, 4: -1, 5: 6, 6: 5}
    root, depth = {}, {}
    state = dict.fromkeys(parent, 0)
    cycles = threads.solve_forest(list(parent), parent, root, depth, state, earliest=min)
    assert cycles == 1
    assert root == {1: 1, 2: 1, 3: 1, 4: -1, 5: 5, 6: 5}
    assert depth == {1: 0, 2: 1, 3: 2, 4: 1, 5: 0, 6: 1}


# --------------------------------------------------------------------------
# Replies whose parent is missing: placeholders and source roots (issue 10, item 2)

SERVER = "social.example"
ROOT_LOCAL = "110000000000000000"


def context_thread(n: int = 59) -> list:
    """A Mastodon /context response's descendants as the importer stores them
    when the root status is absent: replies to the root point at its
    placeholder, the others at their (present) parents' uris."""
    rng = random.Random(59)
    placeholder = local_placeholder(SERVER, ROOT_LOCAL)
    out = []
    for i in range(n):
        parent = placeholder if i < 12 else rng.choice(out).id
        out.append(post(f"user{rng.randrange(20)}", f"reply {i}", t(3 * i), platform="mastodon",
                        id=f"https://{SERVER}/users/u/statuses/{110000000000000001 + i}", reply_to=parent))
    return out


def test_a_context_thread_whose_root_is_absent_is_one_conversation(db):
    save_posts(db, context_thread())
    analyse_archive(db)
    assert db.execute("SELECT count(DISTINCT conversation_id) FROM posts").fetchone()[0] == 1
    ((cid, size, depth, *_),) = [(k, *v) for k, v in conversations(db).items()]
    assert cid == local_placeholder(SERVER, ROOT_LOCAL) and size == 59 and depth >= 2
    rows = threads.thread(db, cid)
    assert len(rows) == 59 and {r["depth"] for r in rows[:1]} == {1}  # the replies to the absent root lead


def test_when_the_root_arrives_the_conversation_re_roots_incrementally(tmp_path, monkeypatch):
    monkeypatch.setattr(threads, "FULL_RATIO", 100.0)
    replies = context_thread()
    root = post("host", "the root status", t(-1), platform="mastodon", id=f"https://{SERVER}/users/host/statuses/{ROOT_LOCAL}")
    inc = open_db(tmp_path / "inc.db", create=True)
    save_posts(inc, replies)
    analyse_archive(inc, full=True)
    # the root arrives; the importer replaces the placeholder with its uri
    save_posts(inc, [root])
    fixed = [post(p.author.handle, p.text, p.created_at, platform="mastodon", id=p.id, reply_to=root.id)
             for p in replies[:12]]
    save_posts(inc, fixed)
    assert inc.execute("SELECT count(*) FROM posts WHERE reply_to_id = ?", [root.id]).fetchone()[0] == 12
    result = analyse_archive(inc)
    assert not result["full"]
    assert set(conversations(inc)) == {root.id} and conversations(inc)[root.id][0] == 60
    full = open_db(tmp_path / "full.db", create=True)
    save_posts(full, [root, *fixed, *replies[12:]])
    analyse_archive(full)
    assert conv_of(inc) == conv_of(full) and conversations(inc) == conversations(full)
    assert set(conv_of(inc).values()) == {root.id}


def test_siblings_share_a_conversation_when_only_some_name_the_root(tmp_path, monkeypatch):
    # Bluesky gives reply.root; a copy of a sibling without it (another file) must not split the thread
    posts = [
        post("ann", "reply with its root", t(1), id="at://a/1", platform="bluesky", reply_to="at://gone/p",
             root_id="at://gone/root"),
        post("bob", "sibling without root", t(2), id="at://b/2", platform="bluesky", reply_to="at://gone/p"),
        post("cat", "under the rootless sibling", t(3), id="at://c/3", platform="bluesky", reply_to="at://b/2"),
        post("dan", "another branch of the root", t(4), id="at://d/4", platform="bluesky", reply_to="at://gone/q",
             root_id="at://gone/root"),
    ]
    full = open_db(tmp_path / "full.db", create=True)
    save_posts(full, posts)
    analyse_archive(full)
    assert set(conv_of(full).values()) == {"at://gone/root"}
    # the same, arriving one post at a time in the worst order
    monkeypatch.setattr(threads, "FULL_RATIO", 100.0)
    inc = open_db(tmp_path / "inc.db", create=True)
    save_posts(inc, [post("zed", "filler", t(0), id=f"f{i}") for i in range(10)])
    analyse_archive(inc)
    for p in (posts[2], posts[1], posts[3], posts[0]):
        save_posts(inc, [p])
        analyse_archive(inc)
    assert {k: v for k, v in conv_of(inc).items() if k.startswith("at:")} == conv_of(full)
    assert conversations(inc) == conversations(full)
    # when the root itself arrives, everything hangs under it
    save_posts(inc, [post("root", "the root", t(-5), id="at://gone/root", platform="bluesky")])
    analyse_archive(inc)
    assert {conv_of(inc)[p.id] for p in posts} == {"at://gone/root"}
    assert conversations(inc)["at://gone/root"][:2] == (5, 2)  # replies to a missing post sit at depth 1


def test_x_replies_under_a_missing_conversation_root_share_it(db):
    save_posts(db, [
        post("bob", "reply to a missing middle post", t(1), id="101", reply_to="99", root_id="50"),
        post("cat", "reply to another missing post", t(2), id="102", reply_to="98", root_id="50"),
        post("dan", "reply to bob", t(3), id="103", reply_to="101", root_id="50"),
    ] + [post("zed", "filler", t(0), id=f"f{i}") for i in range(20)])
    analyse_archive(db)
    assert {conv_of(db)[i] for i in ("101", "102", "103")} == {"50"}
    save_posts(db, [post("ann", "the root", t(0), id="50")])
    assert not analyse_archive(db)["full"]
    assert {conv_of(db)[i] for i in ("50", "101", "102", "103")} == {"50"}
    assert conversations(db)["50"][:2] == (4, 2)


def test_a_context_file_whose_root_is_absent_imports_as_one_conversation(db):
    # tests/fixtures/analysis/context-59.json: GET /api/v1/statuses/:id/context of a
    # 59-post thread; the status asked about (the root) is not in the file
    from chatarchive.archive.importer import import_files

    path = Path(__file__).parent / "fixtures" / "analysis" / "context-59.json"
    (result,) = import_files(db, [str(path)], instance="social.example")
    assert result.error is None and result.added == 59
    analyse_archive(db)
    assert db.execute("SELECT count(DISTINCT conversation_id) FROM posts").fetchone()[0] == 1
    ((cid, size, *_),) = [(k, *v) for k, v in conversations(db).items()]
    assert size == 59 and cid == local_placeholder(SERVER, ROOT_LOCAL)
