"""Benchmarks of the recap site (chatarchive/recap/) — prints its figures.

    python bench/recap_bench.py            # all three
    python bench/recap_bench.py page size  # pick some: page, site, size

* page: one 5,000-post session page renders in under 1 s (load + render + write)
* site: a site of 200 sessions x 300 posts (60,000 posts) in under 60 s,
  Pagefind index included; then a 201st session added to it the way a
  weekly host does (``recap DB THIS-WEEK --out site/``: its page, its
  people's pages, the index and hashtag page, the search index), which
  issue 13 wants under 10 s
* size: a 1,000-post session page weighs under 1.5 MB without media

The archives are synthetic but shaped like real chats: a host asks five
numbered questions, most posts answer them ("A2: …"), a quarter reply to
earlier posts (threads several levels deep), some share links or a photo,
regulars come back week after week.  They are built with the real writer
and the real analysis (whose time is printed apart: it is not the recap's).
"""

from __future__ import annotations

import argparse
import functools
import random
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from chatarchive.analysis.pipeline import analyse_archive
from chatarchive.archive.schema import open_db
from chatarchive.archive.writer import save_posts
from chatarchive.models import Author, Media, Post
from chatarchive.present import html as present_html
from chatarchive.present.views import load_session
from chatarchive.recap.pages import session_context
from chatarchive.recap.site import build_site, gc_paused
from chatarchive.recap.sitemap import SiteMap
from chatarchive.recap.templates import make_env
from chatarchive.recap.templates import render as render_page

WORDS = ("community members engagement metrics onboarding retention moderation events feedback "  # noqa: SIM905
         "newsletter forum launch survey trust growth volunteers ambassadors content calendar "
         "welcome thread great point totally agree we tried this last year and it worked really "
         "well for our team honestly the hardest part was getting started with small experiments "
         "data dashboards story value leadership report monthly weekly daily 🎉 🙌 💡 ✅").split()


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize()


def make_session(rng: random.Random, tag: str, start: datetime, n_posts: int, people: list[Author],
                 host: Author, next_id: list[int]) -> list[Post]:
    posts: list[Post] = []
    minutes = 60.0
    q_at = [minutes * i / 5.5 + 2 for i in range(5)]
    questions: list[str] = []
    for i in range(n_posts):
        t = start + timedelta(seconds=minutes * 60 * i / n_posts)
        pid = str(next_id[0])
        next_id[0] += 1
        elapsed = (t - start).total_seconds() / 60
        due = [k for k, at in enumerate(q_at) if at <= elapsed]
        if len(due) > len(questions):
            text = f"Q{len(questions) + 1}: {sentence(rng, 12)}? #{tag}"
            post = Post(id=pid, platform="x", source="bench", created_at=iso(t), author=host, text=text,
                        url=f"https://x.com/{host.handle}/status/{pid}", like_count=rng.randint(5, 40),
                        repost_count=rng.randint(0, 10), hashtags=[tag])
            questions.append(pid)
            posts.append(post)
            continue
        author = rng.choice(people)
        r = rng.random()
        reply_to = None
        if questions and r < 0.55:
            text = f"A{len(questions)}: {sentence(rng, rng.randint(8, 28))} #{tag}"
        elif posts and r < 0.8:
            parent = posts[max(0, len(posts) - rng.randint(1, 30))]
            reply_to = parent
            text = f"@{parent.author.handle} {sentence(rng, rng.randint(5, 22))} #{tag}"
        else:
            text = f"{sentence(rng, rng.randint(6, 24))} #{tag}"
        links = [f"https://example.org/{tag}/resource-{rng.randint(1, 40)}"] if rng.random() < 0.05 else []
        if links:
            text += " " + links[0]
        media = ([Media(url=f"https://pbs.twimg.com/media/{pid}.jpg", type="photo", alt=sentence(rng, 8))]
                 if rng.random() < 0.02 else [])
        posts.append(Post(
            id=pid, platform="x", source="bench", created_at=iso(t), author=author, text=text,
            url=f"https://x.com/{author.handle}/status/{pid}", like_count=rng.randint(0, 25),
            repost_count=rng.randint(0, 4), reply_count=0, quote_count=0,
            reply_to_id=reply_to.id if reply_to else None,
            reply_to_author=reply_to.author.handle if reply_to else None,
            hashtags=[tag], links=links, media=media))
    return posts


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def authors(rng: random.Random, n: int) -> list[Author]:
    first = ["Alex", "Sam", "Noor", "Yuki", "Ana", "Ola", "Ravi", "Mia", "Leo", "Zoë", "Kofi", "Ines", "Tom", "Ada"]
    last = ["Moreau", "Okafor", "Chen", "Ríos", "Haddad", "Kim", "Novak", "Silva", "Berg", "Iyer", "Park"]
    out = []
    for i in range(n):
        handle = f"user{i}_{rng.choice(first).lower()}"
        out.append(Author(id=str(10_000 + i), platform="x", handle=handle,
                          name=f"{rng.choice(first)} {rng.choice(last)}",
                          avatar_url=f"https://pbs.twimg.com/profile_images/{i}/a_normal.jpg",
                          url=f"https://x.com/{handle}"))
    return out


START = datetime(2023, 1, 5, 1, 0, tzinfo=timezone.utc)
HOST = Author(id="1", platform="x", handle="benchhost", name="Bench Chat Host",
              avatar_url="https://pbs.twimg.com/profile_images/1/h.jpg", url="https://x.com/benchhost")


def add_sessions(db, rng: random.Random, people: list[Author], first_week: int, sessions: int, per_session: int,
                 next_id: list[int]) -> None:
    for s in range(first_week, first_week + sessions):
        # regulars: a stable core plus a rotating crowd
        crowd = people[: len(people) // 5] + rng.sample(people, min(len(people), max(20, per_session // 3)))
        save_posts(db, make_session(rng, "benchchat", START + timedelta(weeks=s), per_session, crowd, HOST, next_id))


def archive(path: Path, sessions: int, per_session: int, n_people: int, seed: int = 7):
    rng = random.Random(seed)
    people = authors(rng, n_people)
    db = open_db(path, create=True)
    next_id = [1_900_000_000_000_000_000]
    t0 = time.perf_counter()
    add_sessions(db, rng, people, 0, sessions, per_session, next_id)
    t1 = time.perf_counter()
    analyse_archive(db, hashtags=["benchchat"], tz="America/New_York", hosts=["benchhost"])
    t2 = time.perf_counter()
    print(f"  (archive: {sessions * per_session:,} posts written in {t1 - t0:.1f} s, analysed in {t2 - t1:.1f} s)")
    return db, (rng, people, next_id)  # the generator's state: later sessions are the same chat


def bench_page(tmp: Path) -> bool:
    print("5,000-post session page")
    db, _ = archive(tmp / "page.db", 1, 5000, 400)
    sid = db.execute("SELECT id FROM sessions").fetchone()[0]
    n = db.execute("SELECT count(*) FROM session_posts WHERE session_id = ?", [sid]).fetchone()[0]
    # Templates are compiled once per run (as build_site does for all its pages): warm up first.
    site = SiteMap()
    site.plan(db, [sid])
    env = make_env()
    render_page(env, "session.html", **session_context(site, load_session(db, sid)))
    runs = []
    for _ in range(3):
        present_html._person_markup.cache_clear()  # avatars and names are made once per page, as for a first page
        with gc_paused():  # as build_site does
            w0, c0 = time.perf_counter(), time.process_time()
            data = load_session(db, sid)
            w1 = time.perf_counter()
            html = render_page(env, "session.html", **session_context(site, data))
            (tmp / "page.html").write_text(html, "utf-8")
            w2, c2 = time.perf_counter(), time.process_time()
        runs.append((w2 - w0, c2 - c0, w1 - w0, w2 - w1))
    wall, cpu, load, render = min(runs)
    ok = wall < 1.0
    print(f"  {n:,} posts: {wall:.2f} s wall, {cpu:.2f} s CPU (data and statistics {load:.2f} s, HTML {render:.2f} s), "
          f"{len(html.encode()) / 1e6:.2f} MB  -> {'OK' if ok else 'TOO SLOW'} (< 1 s)")
    return ok


def bench_site(tmp: Path) -> bool:
    print("Site of 200 sessions x 300 posts")
    db, state = archive(tmp / "site.db", 200, 300, 2000)
    out = tmp / "site"
    t0 = time.perf_counter()
    result = build_site(db, out)
    t1 = time.perf_counter()
    again = build_site(db, out)
    t2 = time.perf_counter()
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    ok = (t1 - t0) < 60 and result.search_ok
    print(f"  {result.sessions} sessions, {result.pages:,} pages, {size / 1e6:.0f} MB: {t1 - t0:.1f} s "
          f"({result.search}) -> {'OK' if ok else 'TOO SLOW'} (< 60 s)")
    phases = ", ".join(f"{k} {v:.1f} s" for k, v in result.timings.items())
    print(f"  phases: {phases}")
    print(f"  (of the session pages, {result.timings['statistics']:.1f} s is stats.session_stats, the analysis' "
          f"module; the recap itself took {t1 - t0 - result.timings['statistics']:.1f} s)")
    print(f"  re-run with nothing changed: {t2 - t1:.1f} s, {again.written} files written, "
          f"{again.unchanged:,} unchanged")
    # The next week: one more session imported and analysed, then the weekly command.
    rng, people, next_id = state
    t3 = time.perf_counter()
    add_sessions(db, rng, people, 200, 1, 300, next_id)
    analyse_archive(db)
    t4 = time.perf_counter()
    slug = db.execute("SELECT slug FROM sessions ORDER BY start DESC LIMIT 1").fetchone()[0]
    week = build_site(db, out, [slug])
    t5 = time.perf_counter()
    ok_week = (t5 - t4) < 10 and week.search_ok and week.removed == 0
    print(f"  adding one new session ({slug}, 300 posts) to the 200-session site: {t5 - t4:.1f} s, "
          f"{week.written} files written, {week.unchanged} unchanged, {week.listed} sessions listed "
          f"-> {'OK' if ok_week else 'TOO SLOW'} (< 10 s, issue 13)")
    print("  phases: " + ", ".join(f"{k} {v:.1f} s" for k, v in week.timings.items())
          + f"  (its import and analysis, not the recap's: {t4 - t3:.1f} s)")
    return ok and ok_week


def bench_size(tmp: Path) -> bool:
    print("1,000-post session page weight")
    db, _ = archive(tmp / "size.db", 1, 1000, 150)
    out = tmp / "size-site"
    build_site(db, out, search=False)
    page = next((out / "sessions").glob("*.html"))
    size = page.stat().st_size
    ok = size < 1.5e6
    print(f"  {page.name}: {size / 1e6:.2f} MB ({size / 1000 / 1000:.2f} KB per post) "
          f"-> {'OK' if ok else 'TOO BIG'} (< 1.5 MB)")
    return ok


print = functools.partial(print, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # checked by hand: argparse (3.11) tests an empty or default list against choices as one choice
    parser.add_argument("which", nargs="*", metavar="{page,site,size}")
    args = parser.parse_args(argv)
    wrong = [w for w in args.which if w not in ("page", "site", "size")]
    if wrong:
        parser.error(f"unknown benchmark {wrong[0]!r} (choose from page, site, size)")
    results = []
    with tempfile.TemporaryDirectory(prefix="recap-bench-") as tmp:
        for name in args.which or ["page", "site", "size"]:
            results.append({"page": bench_page, "site": bench_site, "size": bench_size}[name](Path(tmp)))
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
