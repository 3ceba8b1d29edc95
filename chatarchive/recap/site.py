"""The static recap site: Jinja2 environment, page data, site writer, search index.

``build_site(db, out)`` writes ``index.html``, one page per session
(``sessions/SLUG.html``), per hashtag (``hashtags/TAG.html``) and per
participant (``people/HANDLE.html``), then indexes them with Pagefind.
Sessions, threads, Q&A and statistics come from the analysis
(``stats.session_stats``/``hashtag_stats``, the ``questions`` and
``conversations`` tables); this module only reads the archive.

Safety: every value from a post reaches a page through Jinja's autoescape,
except three things built here and marked safe — post text (escaped piece by
piece while linkifying), Mastodon HTML (re-sanitized with nh3) and avatar CSS
(URLs percent-encoded so they cannot leave ``url("…")``).  Every URL from the
archive passes :func:`safe_url` (http/https only), so no ``javascript:`` or
``data:`` URL reaches an ``href`` or ``src``.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone, tzinfo
from pathlib import Path
from typing import Any

import sqlite_utils
from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateNotFound,
    TemplateSyntaxError,
    UndefinedError,
)
from markupsafe import Markup, escape

from .. import __version__
from ..analysis import stats as stats_mod
from ..archive.queries import resolve_session, session_ids
from ..errors import ChatArchiveError, NotFoundError
from ..present.text import and_join, anchor_for, esc, human_duration, initials, linkify, plural, url_domain, url_rest
from ..safety import css_url, safe_url, sanitize_html
from ..timeutil import get_zone, parse_iso

MANIFEST = ".chatarchive-site.json"

# --------------------------------------------------------------------------
# Templates


def template_dirs() -> list[Path]:
    """Our templates: inside the package in a wheel (force-included by
    pyproject), or the top-level ``templates/`` of a source checkout or
    editable install."""
    here = Path(__file__).resolve().parent.parent  # chatarchive/
    return [p for p in (here / "templates", here.parent / "templates") if (p / "base.html").is_file()]


def make_env(templates: str | Path | None = None) -> Environment:
    """Jinja2 environment: the user's ``--templates`` folder first, then ours;
    autoescape everywhere; a missing variable raises instead of rendering blank."""
    loaders = []
    if templates is not None:
        tdir = Path(templates)
        if not tdir.is_dir():
            raise ChatArchiveError(f"--templates {templates}: not a directory")
        loaders.append(FileSystemLoader(str(tdir)))
    ours = template_dirs()
    if not ours:
        raise ChatArchiveError("The recap templates are missing from this installation (reinstall chatarchive)")
    loaders.append(FileSystemLoader(str(ours[0])))
    env = Environment(
        loader=ChoiceLoader(loaders),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = lambda n: f"{n:,}" if isinstance(n, int) else n
    env.filters["plural"] = plural
    env.filters["duration"] = human_duration
    env.filters["domain"] = url_domain
    env.filters["urlrest"] = url_rest
    env.filters["platform"] = lambda p: PLATFORM_NAMES.get(p, p)
    env.filters["and_join"] = and_join
    env.globals["version"] = __version__
    env.globals["site_title"] = "Chat archive"
    env.globals["search_js"] = Markup(SEARCH_JS)
    env.globals["search_js_hash"] = SEARCH_JS_HASH
    return env


FAVICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 26 26"><rect width="26" height="26" rx="8" fill="#4b3fd0"/>'
    '<path d="M7 8.5h12a1.5 1.5 0 0 1 1.5 1.5v6a1.5 1.5 0 0 1-1.5 1.5h-6.2L9 20v-2.5H7A1.5 1.5 0 0 1 5.5 16v-6A1.5 '
    '1.5 0 0 1 7 8.5z" fill="#fff"/></svg>\n'
)

PLATFORM_NAMES = {"x": "X", "mastodon": "Mastodon", "bluesky": "Bluesky"}

# The only script of the site (on search.html): Pagefind's UI, started only
# over http(s) because browsers refuse its modules and WebAssembly on file://.
SEARCH_JS = """(function () {
  var q = new URLSearchParams(location.search).get("q") || "";
  var box = document.getElementById("site-q");
  if (box) box.value = q;
  if (location.protocol === "file:") { document.getElementById("search-file").hidden = false; return; }
  var css = document.createElement("link");
  css.rel = "stylesheet"; css.href = "pagefind/pagefind-ui.css";
  document.head.appendChild(css);
  var js = document.createElement("script");
  js.src = "pagefind/pagefind-ui.js";
  js.onload = function () {
    var here = new URL("./", location.href).pathname;
    var ui = new PagefindUI({ element: "#search", showSubResults: true, showImages: false,
      bundlePath: here + "pagefind/", baseUrl: here, autofocus: !q,
      translations: { placeholder: "Search posts, people, questions" } });
    if (q) ui.triggerSearch(q);
  };
  document.head.appendChild(js);
})();"""
SEARCH_JS_HASH = "sha256-" + __import__("base64").b64encode(hashlib.sha256(SEARCH_JS.encode()).digest()).decode()


def slugify(value: str, fallback: str = "x") -> str:
    s = re.sub(r"[^a-z0-9_.\-]+", "-", (value or "").lower()).strip("-.")
    s = re.sub(r"\.{2,}", ".", s)
    return s[:80] or fallback


def _h(s: str) -> str:
    return hashlib.sha1(s.encode("utf-8", "surrogatepass")).hexdigest()


def archive_time(value: str) -> datetime:
    """Parse an archive time; the fixed form ``YYYY-MM-DDTHH:MM:SS.fffZ`` fast."""
    if len(value) == 24 and value[-1] == "Z":
        try:
            return datetime.fromisoformat(value[:23]).replace(tzinfo=timezone.utc)
        except ValueError:
            pass
    return parse_iso(value)


def engagement(p: dict) -> int:
    return (
        (p.get("like_count") or 0) + (p.get("repost_count") or 0) + (p.get("quote_count") or 0)
        + max(p.get("reply_count") or 0, len(p.get("children") or ()))
    )


# --------------------------------------------------------------------------
# Session data (no HTML here: export.py uses it too)


_POST_SQL = """
SELECT p.id, p.platform, p.url, p.author_id, p.author_handle, p.author_name, p.text, p.html,
       p.created_at, p.reply_to_id, p.reply_to_author, p.quote_of_id, p.is_repost, p.lang,
       p.like_count, p.repost_count, p.reply_count, p.quote_count, p.conversation_id, p.matched,
       p.question_id, p.answer_to_id, p.spoiler_text, p.edited_at,
       a.avatar_url, a.url AS author_url, a.name AS a_name, a.handle AS a_handle
FROM session_posts sp JOIN posts p ON p.id = sp.post_id
LEFT JOIN authors a ON a.id = p.author_id
WHERE sp.session_id = ?
ORDER BY p.created_at, p.id
"""


def _rows(db: sqlite_utils.Database, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
    cur = db.conn.execute(sql, list(params))
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur]


def _attach_entities(db: sqlite_utils.Database, posts: dict[str, dict], session_id: int | None = None,
                     ids: list[str] | None = None) -> None:
    if session_id is not None:
        media_sql = """SELECT pm.post_id, m.url, m.type, m.alt, m.preview_url FROM session_posts sp
                       JOIN post_media pm ON pm.post_id = sp.post_id JOIN media m ON m.id = pm.media_id
                       WHERE sp.session_id = ? ORDER BY m.id"""
        link_sql = """SELECT pl.post_id, l.url FROM session_posts sp JOIN post_links pl ON pl.post_id = sp.post_id
                      JOIN links l ON l.id = pl.link_id WHERE sp.session_id = ? ORDER BY l.id"""
        media_rows = db.conn.execute(media_sql, [session_id]).fetchall()
        link_rows = db.conn.execute(link_sql, [session_id]).fetchall()
    else:
        media_rows, link_rows = [], []
        for i in range(0, len(ids or []), 500):
            chunk = (ids or [])[i:i + 500]
            marks = ",".join("?" * len(chunk))
            media_rows += db.conn.execute(
                f"""SELECT pm.post_id, m.url, m.type, m.alt, m.preview_url FROM post_media pm
                    JOIN media m ON m.id = pm.media_id WHERE pm.post_id IN ({marks}) ORDER BY m.id""", chunk).fetchall()
            link_rows += db.conn.execute(
                f"""SELECT pl.post_id, l.url FROM post_links pl JOIN links l ON l.id = pl.link_id
                    WHERE pl.post_id IN ({marks}) ORDER BY l.id""", chunk).fetchall()
    for p in posts.values():
        p["media"] = []
        p["links"] = []
    for pid, url, typ, alt, preview in media_rows:
        if pid in posts:
            posts[pid]["media"].append({"url": url, "type": typ, "alt": alt, "preview_url": preview})
    for pid, url in link_rows:
        if pid in posts:
            posts[pid]["links"].append(url)


def flatten_tree(roots: Iterable[str], children: dict[str, list[str]], start_depth: int = 0) -> list[tuple[int, str]]:
    """Depth-first order of reply trees as (depth, id); iterative (a 10,000
    deep chain is fine) and cycle-safe."""
    out: list[tuple[int, str]] = []
    seen: set[str] = set()
    stack = [(start_depth, r) for r in reversed(list(roots))]
    while stack:
        depth, pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        out.append((depth, pid))
        for child in reversed(children.get(pid, ())):
            if child not in seen:
                stack.append((depth + 1, child))
    return out


@dataclass
class SessionData:
    stats: dict[str, Any]
    posts: list[dict[str, Any]]  # time order
    by_id: dict[str, dict[str, Any]]
    questions: list[dict[str, Any]]  # stats question + "post" + "answers": [{"post", "thread": [(depth, post)]}]
    conversations: list[dict[str, Any]]  # {"id","size","depth","participants","started","items": [(depth, post)]}
    participants: list[dict[str, Any]]
    zone: tzinfo
    stats_seconds: float = 0.0  # time spent in stats.session_stats

    @property
    def session(self) -> dict[str, Any]:
        return self.stats["session"]


def load_session(db: sqlite_utils.Database, id_or_slug: str | int) -> SessionData:
    """Everything a recap page or an export shows about one session."""
    sid = resolve_session(db, id_or_slug)
    t0 = time.perf_counter()
    stats = stats_mod.session_stats(db, sid)
    stats_seconds = time.perf_counter() - t0
    posts = _rows(db, _POST_SQL, [sid])
    by_id = {p["id"]: p for p in posts}
    _attach_entities(db, by_id, session_id=sid)
    children: dict[str, list[str]] = defaultdict(list)
    for p in posts:
        p["children"] = children[p["id"]]
        p["handle"] = p["author_handle"] or p["a_handle"] or (p["author_id"] or "unknown")
        p["name"] = p["author_name"] or p["a_name"] or ""
        parent = p["reply_to_id"]
        if parent and parent in by_id and parent != p["id"]:
            children[parent].append(p["id"])
    zone: tzinfo = timezone.utc
    tzname = stats["session"].get("timezone")
    if tzname:
        try:
            zone = get_zone(tzname)
        except ChatArchiveError:
            zone = timezone.utc

    # Q&A: answers most engaged first, each with its reply thread.
    qnum = {q["id"]: q["number"] for q in stats.get("questions") or []}
    for p in posts:
        p["q_number"] = qnum.get(p["question_id"]) if p["question_id"] is not None else None
        p["a_number"] = qnum.get(p["answer_to_id"]) if p["answer_to_id"] is not None else None
        p["engagement"] = engagement(p)
    answers_of: dict[int, list[dict]] = defaultdict(list)
    for p in posts:
        if p["answer_to_id"] is not None and not p["is_repost"]:
            answers_of[p["answer_to_id"]].append(p)
    questions = []
    for q in stats.get("questions") or []:
        answers = sorted(answers_of.get(q["id"], []), key=lambda a: (-a["engagement"], a["created_at"]))
        questions.append({
            **q,
            "post": by_id.get(q.get("post_id")),
            "answers": [
                {"post": a, "thread": [(d, by_id[i]) for d, i in flatten_tree(a["children"], children, 1)]}
                for a in answers
            ],
        })

    conversations = _conversations(db, sid, posts, by_id, children)
    participants = _participants(stats, posts, by_id)
    return SessionData(stats=stats, posts=posts, by_id=by_id, questions=questions,
                       conversations=conversations, participants=participants, zone=zone,
                       stats_seconds=stats_seconds)


def _conversations(db, sid, posts, by_id, children) -> list[dict[str, Any]]:
    """Reply trees with at least two posts, in the order they started."""
    members: dict[str, list[str]] = defaultdict(list)
    roots: dict[str, str] = {}
    for p in posts:
        members[p["conversation_id"] or _reply_root(p["id"], by_id, roots)].append(p["id"])
    info = {r["id"]: r for r in _rows(db, "SELECT * FROM conversations WHERE session_id = ?", [sid])}
    out = []
    for cid, ids in members.items():
        if len(ids) < 2:
            continue
        idset = set(ids)
        roots = [i for i in ids if by_id[i]["reply_to_id"] not in idset]
        sub = {i: [c for c in children.get(i, ()) if c in idset] for i in ids}
        items = [(d, by_id[i]) for d, i in flatten_tree(roots, sub)]
        row = info.get(cid, {})
        out.append({
            "id": cid,
            "size": len(ids),
            "depth": row.get("depth") if row.get("depth") is not None else max(d for d, _ in items),
            "participants": len({by_id[i]["author_id"] for i in ids}),
            "started": min(by_id[i]["created_at"] for i in ids),
            "items": items,
        })
    out.sort(key=lambda c: c["started"])
    return out


def _reply_root(pid: str, by_id: dict[str, dict], known: dict[str, str]) -> str:
    """The earliest ancestor of ``pid`` among the session's posts (for posts
    the analysis left without a conversation); memoized in ``known`` so a
    long chain costs linear time, and cycle-safe."""
    path: list[str] = []
    on_path: set[str] = set()
    while pid not in known:
        path.append(pid)
        on_path.add(pid)
        parent = by_id[pid]["reply_to_id"]
        if not parent or parent not in by_id or parent in on_path:
            known[pid] = pid
            break
        pid = parent
    root = known[pid]
    for p in path:
        known[p] = root
    return root


def _participants(stats, posts, by_id) -> list[dict[str, Any]]:
    """Everyone who posted in the session (context-only authors left out):
    posts, replies received from others, answers, host and first-timer flags."""
    first = {h.lower() for h in stats.get("first_timers") or [] if h}
    flags = {t.get("author_id"): t.get("first_timer") for t in stats.get("top_participants") or []}
    hosts = {h.lower().lstrip("@") for h in stats["session"].get("hosts") or [] if h}
    people: dict[str, dict] = {}
    for p in posts:
        key = p["author_id"] or p["handle"]
        if key not in people:
            handle = (p["handle"] or "").lower()
            people[key] = {
                "author_id": p["author_id"], "handle": p["handle"], "name": p["name"],
                "avatar_url": p["avatar_url"], "url": p["author_url"], "platform": p["platform"],
                "posts": 0, "replies_received": 0, "answers": 0,
                "first_timer": bool(flags[p["author_id"]]) if p["author_id"] in flags else handle in first,
                "host": handle in hosts,
            }
    for p in posts:
        person = people[p["author_id"] or p["handle"]]
        if p["matched"] or p["reply_to_id"]:
            person["posts"] += 1
        if p["answer_to_id"] is not None:
            person["answers"] += 1
        parent = by_id.get(p["reply_to_id"]) if p["reply_to_id"] else None
        if parent is not None and parent["author_id"] != p["author_id"]:
            people[parent["author_id"] or parent["handle"]]["replies_received"] += 1
    out = [v for v in people.values() if v["posts"]]
    out.sort(key=lambda v: (not v["host"], -v["posts"], -v["replies_received"], (v["handle"] or "").lower()))
    return out


# --------------------------------------------------------------------------
# Site-wide maps: who has a page, which hashtags


@dataclass
class Person:
    author_id: str
    handle: str
    name: str
    platform: str
    avatar_url: str | None
    url: str | None
    page: str = ""  # "people/slug.html"
    cls: str = ""  # CSS class of the avatar
    initials: str = "?"
    hue: int = 0


@dataclass
class RecapResult:
    out: Path
    pages: int = 0
    written: int = 0
    unchanged: int = 0
    removed: int = 0
    sessions: int = 0
    search: str = ""
    search_ok: bool = False
    media_downloaded: int = 0
    media_failed: int = 0
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase
    messages: list[str] = field(default_factory=list)

    @property
    def index(self) -> Path:
        return self.out / "index.html"


class View(dict):
    """A dict whose keys templates read as attributes at attribute speed
    (Jinja tries getattr first; on a plain dict that fails every time)."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


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


# --------------------------------------------------------------------------
# Posts as HTML, fast: the same markup as the `post` and `mini` macros of
# templates/_post.html, written out in Python because a chat page holds
# thousands of posts and a Jinja macro call costs ~100 µs each.  Used only
# while _post.html is ours (a --templates override of it is always honoured);
# tests/test_recap.py checks both give identical HTML for every fixture post.


def _e(v: Any) -> str:
    if type(v) is str:
        return esc(v)
    return str(v) if isinstance(v, Markup) else str(escape(v))


def _fast_post(p: dict[str, Any]) -> Markup:
    if p["repost"]:
        quote = p["quote"]
        out = [f'<div class="rp">{p["av_s"]}<span>{p["who"]} reposted']
        if quote:
            out.append(f' <a href="{_e(quote["href"])}">@{_e(quote["handle"])}</a>')
        out.append("</span>")
        if p["url"]:
            out.append(f'<a class="t" href="{_e(p["url"])}"><time datetime="{_e(p["iso"])}">{_e(p["time"])}</time></a>')
        out.append("</div>")
        return Markup("".join(out))
    cls = "post" + (" is-q" if p["q"] else "") + (" ctx" if p["context"] else "")
    out = [f'<article class="{cls}">{p["av"]}<div class="pb">\n<div class="ph">{p["who"]}<span class="hd">@{_e(p["handle"])}']
    if p["on"]:
        out.append(f' · {_e(p["on"])}')
    out.append("</span>")
    if p["q"]:
        out.append(f'<span class="b bq">Q{_e(p["q"])}</span>')
    if p["a"]:
        out.append(f'<span class="b ba">A{_e(p["a"])}</span>')
    if p["context"]:
        out.append('<span class="b bc">context</span>')
    if p["url"]:
        out.append(f'<a class="t" href="{_e(p["url"])}"><time datetime="{_e(p["iso"])}">{_e(p["time"])}</time></a>')
    else:
        out.append(f'<time class="t" datetime="{_e(p["iso"])}">{_e(p["time"])}</time>')
    out.append("</div>\n")
    reply = p["reply_to"]
    if reply:
        who = f'<a href="{_e(reply["href"])}">@{_e(reply["handle"])}</a>' if reply["href"] else f'@{_e(reply["handle"])}'
        out.append(f'<p class="re">↩ to {who}</p>')
    if p["cw"]:
        out.append(f'<details class="cw"><summary>CW: {_e(p["cw"])}</summary>')
    out.append(f'<div class="tx{" h" if p["is_html"] else ""}">{_e(p["body"])}</div>')
    if p["cw"]:
        out.append("</details>")
    if p["quote"]:
        out.append(f'<p class="re">❝ quoting <a href="{_e(p["quote"]["href"])}">@{_e(p["quote"]["handle"])}</a></p>')
    if p["media"]:
        out.append('<div class="md">')
        for m in p["media"]:
            kind = "Video" if m["video"] else "Image"
            alt = f": {_e(m['alt'])}" if m["alt"] else ""
            if m["src"]:
                img = f'<img src="{_e(m["src"])}" alt="{_e(m["alt"])}" loading="lazy" decoding="async">'
                if m["href"]:
                    img = f'<a href="{_e(m["href"])}">{img}</a>'
                cap = f'<figcaption>{"▶ " if m["video"] else ""}{_e(m["alt"])}</figcaption>' if m["alt"] else ""
                out.append(f"<figure>{img}{cap}</figure>")
            elif m["href"]:
                out.append(f'<a class="nomedia" href="{_e(m["href"])}">{kind}{alt}</a>')
            else:
                out.append(f'<span class="nomedia">{kind}{alt}</span>')
        out.append("</div>")
    if p["links"]:
        out.append('<div class="lk">')
        for u in p["links"]:
            out.append(f'<a href="{_e(u)}" rel="nofollow ugc"><b>{_e(url_domain(u))}</b><span>{_e(url_rest(u))}</span></a>')
        out.append("</div>")
    if p["likes"] or p["reposts"] or p["replies"]:
        out.append('<p class="pf">')
        # a narrow no-break space ties each count to its sign (word-spacing spreads the three)
        if p["likes"]:
            out.append(f'♥\u202f{_e(p["likes"])} ')
        if p["reposts"]:
            out.append(f'↻\u202f{_e(p["reposts"])} ')
        if p["replies"]:
            out.append(f'↩\u202f{_e(p["replies"])}')
        out.append("</p>")
    out.append("</div></article>")
    return Markup("".join(out))


def _fast_mini(p: dict[str, Any]) -> Markup:
    out = [f'<div class="mini">{p["av_s"]}<div class="pb"><div class="ph">{p["who"]}<span class="hd">@{_e(p["handle"])}</span>']
    if p["a"]:
        out.append(f'<span class="b ba">A{_e(p["a"])}</span>')
    out.append(f'<a class="t" href="{_e(p["href"])}"><time datetime="{_e(p["iso"])}">{_e(p["time"])}</time></a></div>'
               f'<div class="tx{" h" if p["is_html"] else ""}">{_e(p["body"])}</div>')
    media = p["media"]
    if media:
        n = len(media)
        alt = f": {_e(media[0]['alt'])}" if media[0]["alt"] else ""
        out.append(f'<p class="re">{n} {"attachment" if n == 1 else "attachments"}{alt}</p>')
    out.append("</div></div>")
    return Markup("".join(out))


class _FastPosts:
    """Stands in for the _post.html module: fast post/mini, template avatar/who."""

    def __init__(self, module: Any):
        self.avatar = module.avatar
        self.who = module.who

    post = staticmethod(_fast_post)
    mini = staticmethod(_fast_mini)


# --------------------------------------------------------------------------
# The site


class Site:
    def __init__(self, db: sqlite_utils.Database, out: Path, *, templates: str | Path | None = None,
                 download_media: bool = False, progress: Callable[[str], None] | None = None):
        self.db = db
        self.out = out
        self.env = make_env(templates)
        self.download_media = download_media
        self.progress = progress or (lambda msg: None)
        self.people: dict[str, Person] = {}
        self.by_handle: dict[str, Person] = {}
        self.tag_pages: dict[str, str] = {}
        self.session_pages: dict[int, str] = {}
        self.local_media: dict[str, str] = {}
        self._macros: Any = None
        self.fast_posts = True
        self._link_targets: dict[tuple[str, str], tuple[Callable[[str], str | None], Callable[[str], str | None]]] = {}
        self._person_html: dict[tuple[str, str, str], tuple[Markup, Markup, Markup]] = {}

    # ---- names

    def plan(self, session_ids: list[int]) -> None:
        rows = _rows(self.db, f"""
            SELECT DISTINCT a.id, a.handle, a.name, a.platform, a.avatar_url, a.url
            FROM session_posts sp JOIN posts p ON p.id = sp.post_id JOIN authors a ON a.id = p.author_id
            WHERE sp.session_id IN ({','.join('?' * len(session_ids))})""", session_ids) if session_ids else []
        rows.sort(key=lambda r: r["id"])
        used: set[str] = set()
        for r in rows:
            handle = r["handle"] or r["id"]
            base = slugify(handle, "person")
            slug = base
            if slug in used:
                slug = f"{base}-{r['platform']}"
            if slug in used:
                slug = f"{base}-{_h(r['id'])[:8]}"
            used.add(slug)
            hx = _h(r["id"])
            person = Person(author_id=r["id"], handle=handle, name=r["name"] or "", platform=r["platform"],
                            avatar_url=r["avatar_url"], url=r["url"], page=f"people/{slug}.html",
                            cls="a" + hx[:8], initials=initials(r["name"], handle), hue=int(hx[8:12], 16) % 360)
            self.people[r["id"]] = person
            self.by_handle.setdefault(handle.lower(), person)
        sess = _rows(self.db, f"SELECT id, slug, hashtag FROM sessions WHERE id IN ({','.join('?' * len(session_ids))})",
                     session_ids) if session_ids else []
        used = set()
        for s in sorted(sess, key=lambda s: s["id"]):
            slug = slugify(s["slug"], f"session-{s['id']}")
            if slug in used:
                slug = f"{slug}-{s['id']}"
            used.add(slug)
            self.session_pages[s["id"]] = f"sessions/{slug}.html"
            if s["hashtag"]:
                self.tag_pages.setdefault(s["hashtag"].lower(), f"hashtags/{slugify(s['hashtag'], 'tag')}.html")

    def person_for(self, p: dict) -> Person:
        person = self.people.get(p.get("author_id") or "")
        if person is None:
            handle = p.get("handle") or p.get("author_handle") or "unknown"
            hx = _h(handle)
            person = Person(author_id=p.get("author_id") or "", handle=handle, name=p.get("name") or "",
                            platform=p.get("platform") or "", avatar_url=None, url=None, page="",
                            cls="a" + hx[:8], initials=initials(p.get("name"), handle), hue=int(hx[8:12], 16) % 360)
        return person

    # ---- media

    def media_src(self, url: str | None) -> str | None:
        """Where a page loads an image from: our copy with --download-media
        (None when it could not be fetched), else the original (hotlinked)."""
        u = safe_url(url)
        if u is None:
            return None
        if self.download_media:
            return self.local_media.get(u)
        return u

    def fetch_media(self, session_ids: list[int], writer: SiteWriter, result: RecapResult) -> None:
        if not session_ids:
            return
        marks = ",".join("?" * len(session_ids))
        urls: set[str] = set()
        for (u,) in self.db.conn.execute(
            f"""SELECT DISTINCT a.avatar_url FROM session_posts sp JOIN posts p ON p.id = sp.post_id
                JOIN authors a ON a.id = p.author_id WHERE sp.session_id IN ({marks})""", session_ids):
            href = safe_url(u)
            if href:
                urls.add(href)
        for u, prev in self.db.conn.execute(
            f"""SELECT DISTINCT m.url, m.preview_url FROM session_posts sp JOIN post_media pm ON pm.post_id = sp.post_id
                JOIN media m ON m.id = pm.media_id WHERE sp.session_id IN ({marks})""", session_ids):
            for v in (u, prev):
                href = safe_url(v)
                if href:
                    urls.add(href)
        self.progress(f"Copying {len(urls)} avatars and media files…")
        got, failed = fetch_all(sorted(urls), self.out / "media")
        for url, rel in got.items():
            self.local_media[url] = rel
            writer.keep(rel)
        writer.keep("media/index.json")
        result.media_downloaded = len(got)
        result.media_failed = len(failed)
        if failed:
            result.messages.append(f"{len(failed)} media file(s) could not be copied (shown as initials or links): "
                                   + "; ".join(f"{u} ({why})" for u, why in list(failed.items())[:3]))

    # ---- views

    def avatar_css(self, people: Iterable[Person], root: str) -> Markup:
        rules = []
        unique = {p.cls: p for p in people}
        for person in sorted(unique.values(), key=lambda p: p.cls):
            rule = f".{person.cls}{{--h:{person.hue}"
            src = self.media_src(person.avatar_url)
            if src:
                rule += f";--img:{css_url(src if src.startswith('http') else root + src)}"
            rules.append(rule + "}")
        return Markup("\n".join(dict.fromkeys(rules)))

    def post_view(self, p: dict, data: SessionData | None, root: str, session_page: str = "") -> dict[str, Any]:
        person = self.person_for(p)
        if p.get("html") and p["platform"] == "mastodon":
            body = sanitize_html(p["html"])
            is_html = True
        else:
            own = data.session.get("hashtag") if data is not None and data.stats else None
            body = linkify(p.get("text") or "", *self.link_targets(root, own))
            is_html = False
        text = p.get("text") or ""
        links = []
        for u in p.get("links") or []:
            href = safe_url(u)
            if href and u not in text and href not in links:
                links.append(href)
        media = []
        for m in p.get("media") or []:
            full = safe_url(m["url"])
            kind = (m.get("type") or "photo").lower()
            video = kind in ("video", "animated_gif", "gifv", "audio")
            src = self.media_src(m.get("preview_url") if video or not m.get("url") else m["url"])
            if src is not None and not src.startswith("http"):
                src = root + src
            href = full
            if full and self.download_media:
                local = self.local_media.get(full)
                href = root + local if local else full
            media.append({"src": src, "href": href, "alt": m.get("alt") or "", "video": video})
        zone = data.zone if data else timezone.utc
        dt = archive_time(p["created_at"]).astimezone(zone)
        replies = max(p.get("reply_count") or 0, len(p.get("children") or ()))
        av, av_s, who = self.person_html(person, root)
        return View({
            "av": av, "av_s": av_s, "who": who, "handle": person.handle,
            "id": p["id"],
            "anchor": anchor_for(p["id"]),
            "href": (session_page + "#" + anchor_for(p["id"])) if session_page else "#" + anchor_for(p["id"]),
            "url": safe_url(p.get("url")),
            "platform": p.get("platform") or "",
            "person": person,
            "person_href": (root + person.page) if person.page else None,
            "time": f"{dt.hour:02d}:{dt.minute:02d}",
            "dt": dt,
            "iso": p["created_at"],
            "body": body,
            "is_html": is_html,
            "cw": p.get("spoiler_text") or "",
            "links": links,
            "media": media,
            "likes": f"{p['like_count']:,}" if p.get("like_count") else "",
            "reposts": f"{p['repost_count']:,}" if p.get("repost_count") else "",
            "replies": f"{replies:,}" if replies else "",
            "engagement": p.get("engagement") or engagement(p),
            "repost": bool(p.get("is_repost")),
            "context": not p.get("matched"),
            "q": p.get("q_number"),
            "a": p.get("a_number"),
            "reply_to": None,
            "quote": None,
            "edited": bool(p.get("edited_at")),
            "on": "",
        })

    def person_html(self, person: Person, root: str) -> tuple[Markup, Markup, Markup]:
        """A person's avatar (two sizes) and linked name, rendered once per page root."""
        key = (person.cls, person.author_id, root)
        got = self._person_html.get(key)
        if got is None:
            m = self.macros()
            href = root + person.page if person.page else None
            got = self._person_html[key] = (m.avatar(person), m.avatar(person, "s"), m.who(person, href))
        return got

    def link_targets(self, root: str, own: str | None = None
                     ) -> tuple[Callable[[str], str | None], Callable[[str], str | None]]:
        """Where @mentions and #hashtags in post text link to, from a page at
        ``root``.  On a session page the chat's ``own`` hashtag (in nearly
        every post, and linked from the header) is shown muted, unlinked."""
        key = (root, (own or "").lower())
        got = self._link_targets.get(key)
        if got is None:
            tags = self.tag_pages
            own_key = key[1]

            def mention(handle: str) -> str | None:
                return self.mention_href(handle, root)

            def tag(t: str) -> str | None:
                low = t.lower()
                if low == own_key:
                    return ""
                page = tags.get(low)
                return root + page if page else None

            got = self._link_targets[key] = (mention, tag)
        return got

    def mention_href(self, handle: str, root: str) -> str | None:
        person = self.by_handle.get(handle.lower())
        return root + person.page if person and person.page else None

    # ---- pages

    def session_context(self, data: SessionData) -> dict[str, Any]:
        root = "../"
        st = data.stats
        s = data.session
        multi = len({p["platform"] for p in data.posts}) > 1
        views = {p["id"]: self.post_view(p, data, root) for p in data.posts}
        if multi:
            for v in views.values():
                v["on"] = PLATFORM_NAMES.get(v["platform"], v["platform"])
        for pid, v in views.items():
            p = data.by_id[pid]
            parent = data.by_id.get(p["reply_to_id"]) if p["reply_to_id"] else None
            if parent is not None:
                v["reply_to"] = {"href": "#" + anchor_for(parent["id"]), "handle": parent["handle"]}
            elif p["reply_to_id"]:
                v["reply_to"] = {"href": None, "handle": p.get("reply_to_author") or ""}
            quoted = data.by_id.get(p["quote_of_id"]) if p["quote_of_id"] else None
            if quoted is not None:
                v["quote"] = {"href": "#" + anchor_for(quoted["id"]), "handle": quoted["handle"]}
        macros = self.macros()
        for v in views.values():
            v["html"] = macros.post(v)

        def tree(items: Iterable[tuple[int, dict]], shift: int = 0) -> list[dict[str, Any]]:
            out = []
            for d, p in items:
                v = views[p["id"]]
                if "mini" not in v:
                    v["mini"] = macros.mini(v)
                out.append({"d": min(d - shift, 7), "deep": d - shift, "p": v})
            return out

        questions = []
        for q in data.questions:
            post = views.get(q["post_id"]) if q.get("post_id") else None
            questions.append({
                "number": q["number"], "anchor": f"q{q['number']}", "post": post,
                "text": post["body"] if post else linkify(q.get("text") or ""),
                "answers_count": len(q["answers"]),
                "first_answer": q.get("first_answer_seconds"),
                "answers": [{"post": views[a["post"]["id"]], "thread": tree(a["thread"], 1)} for a in q["answers"]],
            })
        # Threads that start at a question or an answer are in the Q&A (answers with
        # their replies); the conversations view holds the rest, biggest first.
        convs = [{**c, "items": tree(c["items"])} for c in data.conversations
                 if c["items"] and c["items"][0][1]["q_number"] is None and c["items"][0][1]["answer_to_id"] is None]
        convs.sort(key=lambda c: (-c["size"], c["started"]))
        start = parse_iso(s["start"]).astimezone(data.zone) if s.get("start") else None
        end = parse_iso(s["end"]).astimezone(data.zone) if s.get("end") else None
        people = [self.person_for(p) for p in data.posts]
        participants = []
        for part in data.participants:
            person = self.people.get(part["author_id"] or "") or self.person_for(part)
            participants.append({**part, "person": person, "href": root + person.page if person.page else None})
        media = [(m, v) for v in views.values() for m in v["media"] if not v["repost"]]
        top = []
        for t in st.get("top_posts") or []:
            if t.get("id") in views and not views[t["id"]]["repost"]:
                top.append(views[t["id"]])
        links = [{"href": safe_url(l["url"]), "count": l.get("count", 1)} for l in st.get("links") or []]
        links = [l for l in links if l["href"]]
        hosts: list[dict[str, Any]] = []
        for h in s.get("hosts") or []:
            host = self.by_handle.get((h or "").lstrip("@").lower())
            hosts.append({"handle": (h or "").lstrip("@"), "href": root + host.page if host and host.page else None,
                          "person": host})
        zone_name = start.strftime("%Z") if start else "UTC"
        return {
            "root": root,
            "page_title": self.session_title(s),
            "s": s,
            "st": st,
            "hashtag_href": root + self.tag_pages[s["hashtag"].lower()] if s.get("hashtag") and s["hashtag"].lower() in self.tag_pages else None,
            "title": self.session_title(s),
            "date": start.strftime("%A, %-d %B %Y") if start else "",
            "day": start.strftime("%-d") if start else "",
            "short": start.strftime("%-d %b %Y") if start else "",
            "month": start.strftime("%b %Y") if start else "",
            "start_time": start.strftime("%H:%M") if start else "",
            "end_time": end.strftime("%H:%M") if end else "",
            "zone_abbr": zone_name,
            "zone_name": s.get("timezone") or "UTC",
            "duration": (end - start).total_seconds() if start and end else None,
            "hosts": hosts,
            "posts": [views[p["id"]] for p in data.posts],
            "questions": questions,
            "conversations": convs,
            "participants": participants,
            "first_timers": sum(1 for p in participants if p["first_timer"]),
            "media": media,
            "links": links,
            "top_posts": top[:5],
            "timeline": self.timeline(st, data),
            "transcript": self.transcript_groups([views[p["id"]] for p in data.posts], data),
            "avatar_css": self.avatar_css(people + [h["person"] for h in hosts if h["person"]], root),
            "multi_platform": multi,
        }

    def transcript_groups(self, posts: list[dict], data: SessionData) -> list[dict[str, Any]]:
        """The transcript cut every 10 minutes (local time), each cut a heading with an anchor."""
        groups: list[dict[str, Any]] = []
        for v in posts:
            dt = v["dt"]
            key = dt.strftime("%Y%m%d%H") + f"{dt.minute // 10}0"
            if not groups or groups[-1]["key"] != key:
                label = dt.replace(minute=dt.minute // 10 * 10).strftime("%H:%M")
                if groups and groups[-1]["day"] != dt.date():
                    label = dt.strftime("%-d %b ") + label
                groups.append({"key": key, "day": dt.date(), "anchor": f"t{key[-4:]}" if not groups or
                               groups[-1]["day"] == dt.date() else f"t{key[-8:]}", "label": label, "posts": []})
            groups[-1]["posts"].append(v)
        seen: set[str] = set()
        for g in groups:
            while g["anchor"] in seen:
                g["anchor"] += "x"
            seen.add(g["anchor"])
        return groups

    def session_title(self, s: dict) -> str:
        if s.get("title"):
            return s["title"]
        tag = f"#{s['hashtag']}" if s.get("hashtag") else "Chat"
        if s.get("start"):
            zone: tzinfo = timezone.utc
            if s.get("timezone"):
                try:
                    zone = get_zone(s["timezone"])
                except ChatArchiveError:
                    pass
            return f"{tag} · {parse_iso(s['start']).astimezone(zone).strftime('%-d %B %Y')}"
        return tag

    def timeline(self, st: dict, data: SessionData) -> dict[str, Any]:
        minutes = st.get("per_minute") or []
        if not minutes:
            return {"bars": "", "n": 0, "max": 0, "marks": [], "ticks": [], "busiest": None}
        n = len(minutes)
        peak = max(m["posts"] for m in minutes) or 1
        # One path of bars on a 0..n x 0..100 grid, stretched to the box.
        path = []
        for i, m in enumerate(minutes):
            if m["posts"]:
                h = max(2.0, 100.0 * m["posts"] / peak)
                path.append(f"M{i + 0.1:.1f} 100v-{h:.1f}h0.8v{h:.1f}z")
        t0 = datetime.fromisoformat(minutes[0]["minute"] + ":00+00:00")
        marks = []
        for q in st.get("questions") or []:
            if not q.get("created_at"):
                continue
            t = parse_iso(q["created_at"])
            x = (t - t0).total_seconds() / 60.0
            if -1 <= x <= n:
                marks.append({"left": max(0.0, min(100.0, 100.0 * (x + 0.5) / n)), "label": f"Q{q['number']}",
                              "anchor": f"q{q['number']}", "time": t.astimezone(data.zone).strftime("%H:%M")})
        step = next(s for s in (1, 2, 5, 10, 15, 30, 60, 120, 240, 480, 1440, 10080) if n / s <= 8)
        ticks = []
        for i, m in enumerate(minutes):
            t = datetime.fromisoformat(m["minute"] + ":00+00:00").astimezone(data.zone)
            if (t.hour * 60 + t.minute) % step == 0:
                ticks.append({"left": 100.0 * (i + 0.5) / n, "label": t.strftime("%H:%M")})
        busiest = max(minutes, key=lambda m: m["posts"])
        bt = datetime.fromisoformat(busiest["minute"] + ":00+00:00").astimezone(data.zone)
        return {"bars": " ".join(path), "n": n, "max": peak, "marks": marks, "ticks": ticks,
                "busiest": {"time": bt.strftime("%H:%M"), "posts": busiest["posts"]}}

    def macros(self) -> Any:
        """The macros of _post.html, called once per post: the user's when
        --templates overrides it, else ours (post/mini in their fast form)."""
        if self._macros is None:
            try:
                template = self.env.get_template("_post.html")
                module = template.make_module({})
            except TemplateSyntaxError as e:
                raise ChatArchiveError(f"Template {e.filename or e.name}:{e.lineno}: {e.message}")
            ours = [str(d / "_post.html") for d in template_dirs()]
            self._macros = _FastPosts(module) if self.fast_posts and template.filename in ours else module
        return self._macros

    def render(self, template: str, **ctx: Any) -> str:
        try:
            return self.env.get_template(template).render(**ctx)
        except TemplateNotFound as e:
            raise ChatArchiveError(f"Template {e.name} not found (while rendering {template})")
        except TemplateSyntaxError as e:
            raise ChatArchiveError(f"Template {e.filename or e.name}:{e.lineno}: {e.message}")
        except UndefinedError as e:
            raise ChatArchiveError(f"Template {template}: {e.message} (a template uses a variable the page does not have)")


@contextlib.contextmanager
def gc_paused():
    """Pause the cyclic garbage collector: a page builds hundreds of thousands
    of small objects (no cycles) and its full collections would cost a third
    of the time."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def build_site(
    db: sqlite_utils.Database,
    out: str | Path,
    sessions: Iterable[str | int] | None = None,
    *,
    templates: str | Path | None = None,
    download_media: bool = False,
    search: bool = True,
    progress: Callable[[str], None] | None = None,
) -> RecapResult:
    """Write the recap site of ``sessions`` (all when empty) into ``out``.

    Re-running rewrites only files whose content changed, and removes pages
    an earlier run wrote for sessions no longer in the site."""
    with gc_paused():
        return _build_site(db, out, sessions, templates=templates, download_media=download_media,
                           search=search, progress=progress)


def _build_site(db, out, sessions, *, templates, download_media, search, progress) -> RecapResult:
    t0 = time.perf_counter()
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ChatArchiveError(f"--out {out}: exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    result = RecapResult(out=out)
    site = Site(db, out, templates=templates, download_media=download_media, progress=progress)
    ids = session_ids(db, sessions)
    if not ids and sessions is None and not db.conn.execute("SELECT count(*) FROM sessions").fetchone()[0]:
        raise NotFoundError("No sessions in this archive yet: run `chatarchive sessions detect DB` "
                            "(or import posts, which detects them) first")
    site.plan(ids)
    tags = sorted({t for (t,) in db.conn.execute(
        f"SELECT DISTINCT hashtag FROM sessions WHERE id IN ({','.join('?' * len(ids))})", ids) if t}) if ids else []
    site.env.globals["site_title"] = f"#{tags[0]} archive" if len(tags) == 1 else "Chat archive"
    writer = SiteWriter(out)
    if download_media:
        site.fetch_media(ids, writer, result)
    summaries: list[dict[str, Any]] = []
    timings = result.timings
    timings["statistics"] = 0.0
    lap = time.perf_counter()

    def phase(name: str) -> None:
        nonlocal lap
        now = time.perf_counter()
        timings[name] = timings.get(name, 0.0) + now - lap
        lap = now

    phase("setup")
    for n, sid in enumerate(ids, 1):
        data = load_session(db, sid)
        timings["statistics"] += data.stats_seconds
        ctx = site.session_context(data)
        page = site.session_pages[sid]
        writer.write(page, site.render("session.html", **ctx))
        result.pages += 1
        s = data.session
        summaries.append({
            "id": sid, "page": page, "slug": s["slug"], "hashtag": s.get("hashtag") or "", "title": ctx["title"],
            "start": s.get("start") or "", "date": ctx["date"], "time": ctx["start_time"], "zone": ctx["zone_abbr"],
            "day": ctx["day"], "month": ctx["month"], "short": ctx["short"],
            "posts": data.stats.get("matched_posts", data.stats.get("posts", 0)),
            "participants": data.stats.get("participants", len(data.participants)),
            "first_timers": ctx["first_timers"], "questions": len(data.questions),
            "hosts": [h["handle"] for h in ctx["hosts"]],
        })
        if n % 25 == 0:
            site.progress(f"{n}/{len(ids)} session pages")
    result.sessions = len(ids)
    phase("session pages")
    _write_hashtag_pages(site, writer, summaries, result)
    phase("hashtag pages")
    _write_people_pages(site, writer, ids, summaries, result)
    phase("participant pages")
    _write_index(site, writer, summaries, result)
    writer.write("favicon.svg", FAVICON)
    # Stale pages go before indexing (so search never finds them); the old
    # search bundle and search.html stay until the new ones replace them.
    writer.remove_stale(keep=lambda rel: rel.startswith("pagefind/") or rel == "search.html")
    # Search last: it indexes the pages, and search.html says whether it worked.
    if search:
        ok, message = index_site(out, needed=bool(writer.changed_pages) or not (out / "pagefind" / "pagefind.js").is_file())
    else:
        ok, message = False, "search disabled (--no-search)"
    phase("search index")
    result.search_ok, result.search = ok, message
    writer.write("search.html", site.render("search.html", root="", page_title="Search",
                                            search_ok=ok, search_message=message,
                                            hashtags=sorted({s["hashtag"] for s in summaries if s["hashtag"]}),
                                            avatar_css=Markup("")))
    if ok:
        for p in (out / "pagefind").rglob("*"):
            if p.is_file():
                writer.keep(p.relative_to(out).as_posix())
    result.removed = writer.finish()
    result.pages += 1
    result.written, result.unchanged = writer.written, writer.unchanged
    result.seconds = time.perf_counter() - t0
    return result


def _write_hashtag_pages(site: Site, writer: SiteWriter, summaries: list[dict], result: RecapResult) -> None:
    by_tag: dict[str, list[dict]] = defaultdict(list)
    for s in summaries:
        if s["hashtag"]:
            by_tag[s["hashtag"].lower()].append(s)
    for key, sess in by_tag.items():
        tag = sess[0]["hashtag"]
        hs = stats_mod.hashtag_stats(site.db, tag)
        ordered = sorted(sess, key=lambda s: s["start"])
        peak = max((s["participants"] for s in ordered), default=0) or 1
        bars = []
        n = len(ordered)
        for i, s in enumerate(ordered):
            total = 100.0 * s["participants"] / peak
            new = 100.0 * s["first_timers"] / peak
            bars.append({"x": i, "total": total, "new": new, "label": f"{s['short']}: {s['participants']} participants, "
                         f"{s['first_timers']} first-timers", "href": "../" + s["page"]})
        regulars = []
        for r in hs.get("regulars") or []:
            person = site.by_handle.get((r.get("handle") or "").lower())
            regulars.append({"handle": r.get("handle") or "", "sessions": r.get("sessions", 0), "person": person,
                             "href": "../" + person.page if person and person.page else None})
        people = [r["person"] for r in regulars if r["person"]]
        page = site.tag_pages[key]
        writer.write(page, site.render(
            "hashtag.html", root="../", page_title=f"#{tag}", tag=tag,
            sessions=sorted(sess, key=lambda s: s["start"], reverse=True),
            growth={"bars": bars, "n": n, "peak": peak,
                    "first": ordered[0]["short"] if ordered else "", "last": ordered[-1]["short"] if ordered else ""},
            regulars=regulars[:60], total_posts=sum(s["posts"] for s in sess),
            avatar_css=site.avatar_css(people, "../"),
        ))
        result.pages += 1


_PEOPLE_SQL = """
SELECT p.id, p.platform, p.url, p.author_id, p.author_handle, p.author_name, p.text, p.html, p.created_at,
       p.reply_to_id, p.reply_to_author, p.quote_of_id, p.is_repost, p.like_count, p.repost_count,
       p.reply_count, p.quote_count, p.matched, p.spoiler_text, p.edited_at, p.question_id, p.answer_to_id,
       sp.session_id, q1.number AS q_number, q2.number AS a_number
FROM session_posts sp JOIN posts p ON p.id = sp.post_id
LEFT JOIN questions q1 ON q1.id = p.question_id
LEFT JOIN questions q2 ON q2.id = p.answer_to_id
WHERE sp.session_id IN ({marks}) AND p.author_id IS NOT NULL AND p.is_repost = 0
ORDER BY p.author_id, p.created_at
"""


def _write_people_pages(site: Site, writer: SiteWriter, ids: list[int], summaries: list[dict],
                        result: RecapResult) -> None:
    if not ids:
        return
    info = {s["id"]: s for s in summaries}
    zones: dict[int, tzinfo] = {}
    for r in site.db.conn.execute(f"SELECT id, timezone FROM sessions WHERE id IN ({','.join('?' * len(ids))})", ids):
        try:
            zones[r[0]] = get_zone(r[1]) if r[1] else timezone.utc
        except ChatArchiveError:
            zones[r[0]] = timezone.utc
    # post_view only needs a session's time zone
    frames = {sid: SessionData(stats={}, posts=[], by_id={}, questions=[], conversations=[], participants=[],
                               zone=zones.get(sid, timezone.utc)) for sid in ids}
    cur = site.db.conn.execute(_PEOPLE_SQL.format(marks=",".join("?" * len(ids))), ids)
    cols = [d[0] for d in cur.description]

    def flush(author_id: str, rows: list[dict]) -> None:
        person = site.people.get(author_id)
        if person is None or not rows:
            return
        byid = {r["id"]: r for r in rows}
        _attach_entities(site.db, byid, ids=list(byid))
        groups: dict[int, list] = defaultdict(list)
        post = site.macros().post
        for r in rows:
            sid = r["session_id"]
            r["children"] = ()
            v = site.post_view(r, frames[sid], "../", "../" + info[sid]["page"])
            v["html"] = post(v)
            groups[sid].append(v)
        sessions = sorted(groups, key=lambda sid: info[sid]["start"], reverse=True)
        writer.write(person.page, site.render(
            "participant.html", root="../", page_title=f"{person.name or person.handle} (@{person.handle})",
            person=person, profile=safe_url(person.url),
            groups=[{"s": info[sid], "posts": groups[sid]} for sid in sessions],
            total=len(rows), first=info[sessions[-1]], answers=sum(1 for r in rows if r["answer_to_id"]),
            hashtags=sorted({info[sid]["hashtag"] for sid in sessions if info[sid]["hashtag"]}),
            avatar_css=site.avatar_css([person], "../"),
        ))
        result.pages += 1

    current: str | None = None
    rows: list[dict[str, Any]] = []
    for raw in cur:
        r = dict(zip(cols, raw))
        if r["author_id"] != current:
            if current is not None:
                flush(current, rows)
            current, rows = r["author_id"], []
        rows.append(r)
    if current is not None:
        flush(current, rows)


def _write_index(site: Site, writer: SiteWriter, summaries: list[dict], result: RecapResult) -> None:
    tags: dict[str, dict] = {}
    for s in summaries:
        if not s["hashtag"]:
            continue
        t = tags.setdefault(s["hashtag"].lower(), {"tag": s["hashtag"], "sessions": 0, "posts": 0,
                                                    "latest": s, "href": site.tag_pages[s["hashtag"].lower()],
                                                    "first": s})
        t["sessions"] += 1
        t["posts"] += s["posts"]
        if s["start"] > t["latest"]["start"]:
            t["latest"] = s
        if s["start"] < t["first"]["start"]:
            t["first"] = s
    ordered = sorted(summaries, key=lambda s: s["start"], reverse=True)
    hashtags = sorted(tags.values(), key=lambda t: t["latest"]["start"], reverse=True)
    title = site.env.globals["site_title"]
    writer.write("index.html", site.render(
        "index.html", root="", page_title=title, title=title, sessions=ordered, hashtags=hashtags,
        total_posts=sum(s["posts"] for s in summaries), people=len(site.people), avatar_css=Markup(""),
    ))
    result.pages += 1


# --------------------------------------------------------------------------
# --download-media: copies of avatars and media inside the site

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


def fetch_all(urls: list[str], media_dir: Path, workers: int = 8) -> tuple[dict[str, str], dict[str, str]]:
    """Download ``urls`` into ``media_dir`` (named by a hash of the URL) and
    return ({url: "media/NAME"}, {url: reason}).  Files already copied by an
    earlier run are reused without a request."""
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    media_dir.mkdir(parents=True, exist_ok=True)
    index_path = media_dir / "index.json"
    try:
        index: dict[str, str] = json.loads(index_path.read_text("utf-8"))
    except (OSError, ValueError):
        index = {}
    got: dict[str, str] = {}
    failed: dict[str, str] = {}
    todo = []
    for u in urls:
        name = index.get(u)
        if name and re.fullmatch(r"[0-9a-f]{24}\.[a-z0-9]{2,4}", name) and (media_dir / name).is_file():
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


# --------------------------------------------------------------------------
# Search (Pagefind)


def pagefind_executable() -> str | None:
    try:
        import pagefind_bin  # type: ignore[import-not-found]

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
        new = {p.relative_to(src).as_posix() for p in src.rglob("*") if p.is_file()}
        if not new:
            return False, "search disabled: Pagefind wrote no index"
        for rel in sorted(new):
            data = (src / rel).read_bytes()
            target = dest / rel
            try:
                if target.read_bytes() == data:
                    continue
            except OSError:
                pass
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        if dest.is_dir():
            for p in sorted(dest.rglob("*"), reverse=True):
                rel = p.relative_to(dest).as_posix()
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
