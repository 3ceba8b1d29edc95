"""Generate the bundled sample chat (chatarchive/sample/): #samplechat, a
weekly chat for community managers, held at the same hour on X, Mastodon
and Bluesky, in the shapes those services really produce:

* ``samplechat-x.jsonl``        twarc2 raw output: one X API v2 search page per
                                line (data, includes.users/tweets/media, meta,
                                __twarc), newest first, one search per session;
* ``samplechat-mastodon.json``  a tag timeline (``/api/v1/timelines/tag/samplechat``
                                on https://social.example), Status objects,
                                newest first; remote accounts from toot.example.org;
* ``samplechat-bluesky.json``   an ``app.bsky.feed.searchPosts`` response
                                ``{posts, cursor, hitsTotal}`` with facets by
                                UTF-8 byte offsets.

Two sessions, Wednesdays 2026-11-11 and 2026-11-18, 20:00-21:00
America/New_York (01:00-02:00 UTC the next day). Everything is invented:
people, handles, ids, links (example.* domains only).

What the sample exercises, on purpose:
- question markers in every accepted shape (``Q1:``, ``Q2.``, ``Q 3 -``,
  ``Q4)``, ``Question 5:``), a teaser that is not a question ("Q3 coming up in
  a minute!"), a re-asked question with the same marker, and each question
  mirrored by a host on Mastodon and Bluesky (same number, same session);
- answers as ``A1:``, ``A 1``, ``a1)``, ``A1a``/``A1b``, an unprefixed reply to a
  question, a quote of a question, a late answer to Q1 posted after Q2, and a
  retweet of a question (a repost, never an answer; X search has not returned
  retweets since 2026-05, but stream captures and older files hold them);
- reply threads 3-4 deep; untagged replies that appear only as context
  (``includes.tweets``, stored with matched = 0); a Bluesky reply whose parent
  was never captured;
- links shared several times (t.co in the X text, expanded_url/unwound_url in
  the entities), images with alt text on all three platforms, an emoji
  before facets (byte offsets differ from character offsets), non-ASCII names;
- first-timers and returning participants across the two sessions;
- hostile but realistic text: ``<script>alert(1)</script>`` and
  ``javascript:`` links (a Bluesky link facet, an anchor from a hostile
  server's HTML) that every renderer must escape or drop.

Deterministic: the same script always writes the same bytes.
``ground_truth()`` says what the files hold by construction (tests/test_demo.py
checks the importers and the analysis against it).

    python bench/make_sample.py            # write chatarchive/sample/
    python bench/make_sample.py --out DIR  # write elsewhere
    python bench/make_sample.py --check    # exit 1 if the committed files differ
"""

from __future__ import annotations

import argparse
import hashlib
import html
import json
import random
import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote

SEED = 20261111
TAG = "samplechat"
INSTANCE = "social.example"
REMOTE = "toot.example.org"
SESSION_STARTS = [
    datetime(2026, 11, 12, 1, 0, tzinfo=timezone.utc),  # Wed 2026-11-11 20:00 EST
    datetime(2026, 11, 19, 1, 0, tzinfo=timezone.utc),  # Wed 2026-11-18 20:00 EST
]
OUT = Path(__file__).resolve().parent.parent / "chatarchive" / "sample"
FILES = ("samplechat-x.jsonl", "samplechat-mastodon.json", "samplechat-bluesky.json")


# --------------------------------------------------------------------------
# People


@dataclass
class Person:
    key: str
    platform: str  # x | mastodon | bluesky
    handle: str  # X username; Mastodon acct (local: no domain); Bluesky handle
    name: str
    blurb: str  # for the intro post
    sessions: tuple[int, ...] = (0, 1)
    activity: float = 0.8
    role: str = "member"  # host | cohost | member
    uid: str = ""  # X user id | Mastodon local account id | Bluesky DID

    @property
    def home(self) -> str:
        """Mastodon: the server the account lives on."""
        return self.handle.split("@", 1)[1] if "@" in self.handle else INSTANCE

    @property
    def username(self) -> str:
        return self.handle.split("@", 1)[0]


PEOPLE = [
    # X
    Person("host", "x", "cmgr_host", "Morgan Hale (host)", "", role="host", activity=1.0),
    Person("cohost", "x", "cmgr_cohost", "Jules Ortega", "", role="cohost", activity=0.6),
    Person("dana", "x", "dana_builds", "Dana Kowalski", "community lead at a tiny indie game studio"),
    Person("priya", "x", "priya_cm", "Priya Raman", "I run the customer community for a B2B analytics tool", activity=0.9),
    Person("tomas", "x", "tomas_forum", "Tomás Ferreira", "forum admin for an open-source mapping project, joining from Lisbon"),
    Person("lee", "x", "lee_modteam", "Lee Park", "head of moderation for a 40k-member Discord", activity=0.9),
    Person("oksana", "x", "oksana_devrel", "Oksana Petrenko", "DevRel + community for a database startup", activity=0.7),
    Person("sam", "x", "sam_ugc", "Sam Whitfield", "community & UGC at a recipe app", sessions=(0,), activity=0.6),
    Person("grace", "x", "grace_events", "Grace Mbeki", "I run meetups and virtual events for a nonprofit network", sessions=(0,), activity=0.7),
    Person("ravi", "x", "ravi_support", "Ravi Iyer", "support community manager, lurker turned poster", activity=0.7),
    Person("nora", "x", "nora_gamesmod", "Nora Lindqvist", "volunteer mod coordinator, Stockholm", activity=0.8),
    Person("ben", "x", "ben_slackadmin", "Ben Adeyemi", "I wrangle a 12k-person Slack for product designers", activity=0.6),
    Person("mei", "x", "mei_ambassadors", "Mei Chen", "ambassador programs at a language-learning app", activity=0.8),
    Person("hugo", "x", "hugo_newbie_cm", "Hugo Martin", "brand new community coordinator at a city library", sessions=(1,), activity=0.7),
    Person("aisha", "x", "aisha_growth", "Aisha Bello", "growth + community at a fintech for freelancers", sessions=(1,), activity=0.8),
    # Mastodon (on https://social.example unless acct says otherwise)
    Person("host_m", "mastodon", "cmgr_host", "Morgan Hale (host)", "", role="host", activity=1.0),
    Person("fern", "mastodon", "fern", "Fern Álvarez", "co-op community organiser, moved here from the bird site", activity=0.9),
    Person("kim", "mastodon", f"kim@{REMOTE}", "Kim Nakamura", "community ops for a museum's members' forum", activity=0.8),
    Person("olu", "mastodon", "olu", "Olu Adebayo", "I look after a Matrix space for civic tech volunteers", activity=0.7),
    Person("marta", "mastodon", f"marta@{REMOTE}", "Marta Nowak", "library makerspace community, part-time", sessions=(0,), activity=0.6),
    Person("yusuf", "mastodon", "yusuf", "Yusuf Demir", "first chat! I moderate a cycling club forum", sessions=(1,), activity=0.7),
    # Bluesky
    Person("cohost_b", "bluesky", "jules.example.org", "Jules Ortega (co-host)", "", role="cohost", activity=1.0),
    Person("ines", "bluesky", "ines.pds.example.net", "Inês Sousa", "community at a climate newsletter 🌍", activity=0.9),
    Person("theo", "bluesky", "theo.pds.example.net", "Théo Laurent", "Discourse admin for a maker community", activity=0.8),
    Person("wren", "bluesky", "wren.example.com", "Wren Castillo", "freelance community consultant", activity=0.7),
    Person("zoe", "bluesky", "zoe.pds.example.net", "Zoë Whitaker", "just started a community for indie podcasters", sessions=(1,), activity=0.8),
]
BY_KEY = {p.key: p for p in PEOPLE}
HOSTS = {"x": "host", "mastodon": "host_m", "bluesky": "cohost_b"}  # who asks the questions where

_B32 = "abcdefghijklmnopqrstuvwxyz234567"
_S32 = "234567abcdefghijklmnopqrstuvwxyz"  # base32-sortable (AT Protocol TIDs)


def _digest(*parts: str) -> bytes:
    return hashlib.sha256("\x00".join(parts).encode()).digest()


def _b32(data: bytes, n: int) -> str:
    bits = int.from_bytes(data, "big")
    return "".join(_B32[(bits >> (5 * i)) & 31] for i in range(n))


for _p in PEOPLE:
    d = _digest("person", _p.key)
    if _p.platform == "x":
        _p.uid = str(1_000_000_000_000_000_000 + int.from_bytes(d[:8], "big") % 500_000_000_000_000_000)
    elif _p.platform == "mastodon":
        _p.uid = str(109_300_000_000_000_000 + int.from_bytes(d[:8], "big") % 10**15)
    else:
        _p.uid = "did:plc:" + _b32(d, 24)


# --------------------------------------------------------------------------
# Posts of the invented world, platform-neutral

# A post body is a list of segments so each platform can render its own
# entities: ("t", text) | ("@", person_key) | ("#", tag) | ("link", url, label)
Seg = tuple


@dataclass
class WPost:
    key: str
    platform: str
    author: str
    t: datetime
    body: list[Seg]
    reply_to: str | None = None
    quote_of: str | None = None
    repost_of: str | None = None
    media: list[tuple[str, str]] = field(default_factory=list)  # (name, alt)
    kind: str = "chat"  # chat | intro | question | teaser | answer | reply | repost
    number: int | None = None  # question: its number; answer: the number it answers
    session: int = 0
    likes: int = 0
    reposts: int = 0
    html_override: str | None = None  # Mastodon: content from a hostile server


LINKS = {
    "checklist": ("https://example.com/blog/onboarding-checklist", "example.com/blog/onboardi…"),
    "welcome_dm": ("https://example.org/templates/welcome-dm", "example.org/templates/welc…"),
    "buddy": ("https://example.com/guides/community-buddy-program", "example.com/guides/commun…"),
    "survey": ("https://example.org/reports/2026-community-survey", "example.org/reports/2026-…"),
    "health": ("https://example.org/guides/community-health-metrics", "example.org/guides/commun…"),
    "burnout": ("https://example.com/blog/moderator-burnout", "example.com/blog/moderato…"),
    "recaps": ("https://example.com/samplechat/recaps", "example.com/samplechat/rec…"),
    "dashboard": ("https://example.net/tools/community-dashboard-template", "example.net/tools/communit…"),
}
# X wraps every link in t.co; one goes through a shortener first, which only
# unwound_url resolves (as the real API does).
SHORTENED = {"survey": "https://sho.example/s26"}

SESSIONS = [
    {
        "topic": "onboarding new members",
        "questions": [
            "Q1: What's the very first thing a new member sees when they join your community?",
            "Q2. How do you help quiet newcomers make their first post?",
            "Q 3 - Which onboarding tasks have you automated, and which do you keep human?",
            "Q4) How do you know onboarding is working? What do you measure?",
            "Question 5: What's one onboarding change you'll try this month?",
        ],
        "answers": [
            ["a pinned welcome post that nobody reads, honestly", "a short welcome DM from a real person within the hour",
             "a 'start here' channel with three things to do", "an intro thread where the last 5 newcomers get tagged",
             "our community guidelines, which is… not very welcoming", "a video from our founder saying hi",
             "a checklist: set your avatar, say hi, pick your topics", "an auto-generated email. We're fixing that!",
             "a welcome bot that asks one question about what they're building", "a map of who's who and which channels matter"],
            ["we ask them a question they can answer in one line", "weekly 'newbie hour' with no wrong questions",
             "I tag them in a thread where their expertise is needed", "low-stakes prompts: share your desk, share your pet",
             "a buddy system: every newcomer gets a regular to say hi", "DMs, always DMs first. Public posting is scary",
             "we celebrate first posts with a special emoji reaction", "templates! A fill-in-the-blanks intro helps a lot"],
            ["automated: role assignment and the welcome DM. Human: the first reply to their intro",
             "we automated reminders, never the hellos", "the bot handles verification, humans handle belonging",
             "automated tagging of intros so a mod sees every single one", "honestly we automated too much and are rolling it back",
             "a form collects interests, then a human matches them with a group", "scheduled posts for prompts, live humans in the replies"],
            ["% of newcomers who post within 7 days", "time to first reply on an intro post",
             "how many newcomers come back for a second event", "we survey at day 30, three questions only",
             "retention at 90 days vs the cohort before the change", "honestly: vibes plus the number of 'thanks for the welcome' posts",
             "the share of first posts that get a reply from a non-staff member"],
            ["shorter welcome message, one call to action", "a monthly newcomer AMA with the mod team",
             "recruit three members as official greeters", "rewrite the guidelines in plain language",
             "personal video replies to intros for a week", "remove two steps from the signup flow", "a newcomer-only channel for the first two weeks"],
        ],
    },
    {
        "topic": "measuring community health",
        "questions": [
            "Q1: Which single metric tells you the most about your community's health?",
            "Q2. How do you report community value to leadership?",
            "Q 3 - What's a vanity metric you stopped tracking?",
            "Q4) How do you keep your volunteer moderators from burning out?",
            "Question 5: What tool or ritual helps you review your numbers?",
        ],
        "answers": [
            ["member-to-member replies: how often people help each other without us",
             "returning participants week over week", "the ratio of questions answered by members vs staff",
             "how many members invite someone else", "sentiment in intro posts, read by a human",
             "monthly active contributors, not monthly active users", "median time to first reply"],
            ["I tie every number to a support ticket we didn't have to answer", "a one-page monthly memo with three stories and three numbers",
             "quotes from members beat charts every time", "deflected tickets + product ideas that shipped",
             "I bring a member to the quarterly review. Works every time", "a dashboard they never open and a Slack summary they always read"],
            ["total member count. It only goes up and means nothing", "page views on the forum",
             "follower counts on our social accounts", "likes. We track replies now",
             "number of posts per day: spam was winning that one", "newsletter open rates after the privacy changes"],
            ["shifts with a hard end time and a handover note", "a private channel just for mods to vent",
             "we rotate the difficult queues weekly", "pay them. Or at least swag and real recognition",
             "clear escalation paths so nobody handles harassment alone", "quarterly check-ins that are about them, not the community",
             "fewer rules, better tools: auto-hide after 3 reports"],
            ["a Friday 30-minute numbers review with coffee", "a spreadsheet, a template and a calendar reminder",
             "a shared dashboard and a monthly 'what surprised us' thread", "Datasette on top of our exports, honestly",
             "I write a weekly note to myself: what went up, what went down, why",
             "a quarterly retro with the mod team using the numbers as prompts"],
        ],
    },
]

# (reaction to an answer, fitting replies back from the answerer)
REACTIONS = [
    ("So true!", ["Right? Took us a while to admit it.", "Glad it's not just us 😅"]),
    ("Stealing this 🙌", ["Please do! Here's what we used:", "Steal away, that's what this chat is for."]),
    ("Yes! We saw the same thing.", ["Did it change your numbers too?", "Let's compare notes after the chat."]),
    ("How long did that take to set up?", ["About two weeks, mostly writing copy.", "An afternoon, then months of tweaking."]),
    ("Did that work for lurkers too?", ["Mostly yes, lurkers liked the low stakes.", "Less than we hoped, honestly."]),
    ("Oh that's clever.", ["Thanks! Took us a few tries.", "A member suggested it, I take no credit."]),
    ("We tried this and it backfired a bit 😅", ["Oh no, what happened?", "Ha, we learned the hard way too."]),
    ("Do you have a template for that?", ["Here's what we used:", "Happy to share, DM me!"]),
    ("Curious how you measure that.", ["We just count it in a spreadsheet, nothing fancy.", "Here's the sheet we use:"]),
    ("Same here, and leadership loved it.", ["Love to hear it!", "Leadership loving anything is a win 😂"]),
    ("+1, especially for small teams.", ["Exactly. Small and consistent beats big and rare."]),
]
# when an answer repeats one given already
SECONDS = ["Same as others: ", "Similar here: ", "+1 to that, ", "For us too: ", "Ours is close: "]
THIRD_VOICE = [
    "Jumping in: this thread is gold.", "Adding to this: ask members to co-write it.", "Bookmarking this whole thread.",
    "We do a version of this with volunteers.", "Same question here, following.", "This is why I love this chat.",
]
EMOJI = ["", "", "", " 🙌", " 💡", " 🎉", " 👀", " 💜", " 🌱"]


class World:
    def __init__(self) -> None:
        self.rng = random.Random(SEED)
        self.posts: dict[str, WPost] = {}
        self.n = 0

    def add(self, platform: str, author: str, t: datetime, body: list[Seg], **kw) -> WPost:
        self.n += 1
        p = WPost(f"p{self.n}", platform, author, t, body, **kw)
        assert BY_KEY[author].platform == platform, (author, platform)
        self.posts[p.key] = p
        return p


def tagged_body(text: str, *, mentions: tuple[str, ...] = (), link: str | None = None,
                tag_first: bool = False, emoji: str = "") -> list[Seg]:
    body: list[Seg] = []
    for m in mentions:
        body += [("@", m), ("t", " ")]
    if tag_first:
        body += [("#", TAG), ("t", " ")]
    body.append(("t", text + emoji))
    if link:
        url, label = LINKS[link]
        body += [("t", " "), ("link", url, label)]
    if not tag_first:
        body += [("t", " "), ("#", TAG)]
    return body


def untagged_body(text: str, mentions: tuple[str, ...] = ()) -> list[Seg]:
    body: list[Seg] = []
    for m in mentions:
        body += [("@", m), ("t", " ")]
    body.append(("t", text))
    return body


def build_world() -> World:
    w = World()
    for s, start in enumerate(SESSION_STARTS):
        build_session(w, s, start)
    return w


def at(start: datetime, minute: float, rng: random.Random, jitter: float = 0.0) -> datetime:
    secs = minute * 60 + (rng.uniform(0, jitter * 60) if jitter else 0)
    return start + timedelta(seconds=round(secs, 3))


def build_session(w: World, s: int, start: datetime) -> None:
    rng = w.rng
    spec = SESSIONS[s]
    members = [p for p in PEOPLE if s in p.sessions and p.role == "member"]
    first_timers = {p.key for p in members if s > 0 and 0 not in p.sessions} | ({p.key for p in members} if s == 0 else set())
    host, cohost = "host", "cohost"

    def chat(platform, author, minute, body, jitter=0.0, **kw):
        return w.add(platform, author, at(start, minute, rng, jitter), body, session=s, **kw)

    # --- welcome, mirrored by the host on Mastodon and the co-host on Bluesky
    welcome = (f"Welcome to #{TAG}! Tonight we're talking {spec['topic']}. Questions come as Q1, Q2…, "
               "answer with A1, A2… and please keep the hashtag on your posts. Introduce yourself 👋")

    def hashtag_inline(text: str) -> list[Seg]:
        head, tail = text.split(f"#{TAG}", 1)
        return [("t", head), ("#", TAG), ("t", tail)]

    chat("x", host, -0.5, hashtag_inline(welcome), likes=14, reposts=3)
    chat("mastodon", "host_m", -0.4, hashtag_inline(welcome), likes=6, reposts=2)
    chat("bluesky", "cohost_b", -0.3, hashtag_inline(welcome), likes=5)
    chat("x", cohost, 0.2, tagged_body("Hi everyone! Co-hosting tonight. Grab a drink and say hi ☕"), likes=4)

    # --- intros (first-timers say so; the hosts welcome them)
    for p in members:
        if rng.random() > 0.85 + 0.15 * p.activity:
            continue
        first = p.key in first_timers and s > 0
        text = f"Hi all! {p.name.split(' (')[0].split()[0]} here, {p.blurb}." + (" First time joining!" if first else "")
        if s > 0 and not first and rng.random() < 0.4:
            text = f"Back again! {p.name.split()[0]}, {p.blurb}."
        intro = chat(p.platform, p.key, rng.uniform(0.3, 4.5), tagged_body(text, emoji=rng.choice(EMOJI)),
                     kind="intro", likes=rng.randint(1, 6))
        if first:
            greeter = {"x": host, "mastodon": "host_m", "bluesky": "cohost_b"}[p.platform]
            chat(p.platform, greeter, (intro.t - start).total_seconds() / 60 + rng.uniform(0.3, 1.2),
                 tagged_body("Welcome, so glad you found us! Jump in whenever you like.", mentions=(p.key,)),
                 reply_to=intro.key, likes=2)

    # --- questions at minute 5, 16, 28, 39, 50
    q_minutes = [5, 16, 28, 39, 50]
    questions: dict[int, dict[str, WPost]] = {}
    for n, (minute, qtext) in enumerate(zip(q_minutes, spec["questions"]), 1):
        if n == 3:
            chat("x", host, minute - 1.1, tagged_body("Q3 coming up in a minute!", emoji=" 👀"), kind="teaser", likes=2)
        questions[n] = {}
        for platform, delay in (("x", 0.0), ("mastodon", 0.25), ("bluesky", 0.35)):
            who = HOSTS[platform]
            questions[n][platform] = chat(platform, who, minute + delay, tagged_body(qtext), kind="question", number=n,
                                          likes=rng.randint(8, 25) if platform == "x" else rng.randint(2, 9),
                                          reposts=rng.randint(2, 9) if platform == "x" else rng.randint(0, 3))

    # --- answers and threads
    answers_by_q: dict[int, list[WPost]] = {}
    for n in range(1, 6):
        pool: list[str] = []
        again = None  # False on the first pass through the answers, True after
        window = (q_minutes[n] if n < 5 else 59) - q_minutes[n - 1]
        answers_by_q[n] = []
        for p in members:
            if rng.random() > p.activity:
                continue
            if not pool:
                pool = list(spec["answers"][n - 1])
                rng.shuffle(pool)
                again = again is not None
            text = pool.pop()
            text = (rng.choice(SECONDS) + text) if again else text[0].upper() + text[1:]
            minute = q_minutes[n - 1] + rng.uniform(0.6, window * 0.8)
            prefix = rng.choice([f"A{n}:", f"A{n}:", f"A{n}:", f"A{n} -", f"A {n}", f"a{n})", f"A{n}."])
            q = questions[n][p.platform]
            reply = rng.random() < 0.55
            host_mention = (HOSTS[p.platform],) if reply else ()
            link = rng.choice([None] * 6 + ["checklist", "welcome_dm", "buddy", "health", "burnout", "dashboard"])
            if (link in ("health", "burnout", "dashboard") and s == 0) or (link in ("checklist", "welcome_dm", "buddy") and s == 1):
                link = None
            ans = chat(p.platform, p.key, minute,
                       tagged_body(f"{prefix} {text}", mentions=host_mention, link=link, emoji=rng.choice(EMOJI)),
                       reply_to=q.key if reply else None, kind="answer", number=n, likes=rng.randint(0, 12),
                       reposts=rng.randint(0, 3))
            answers_by_q[n].append(ans)
            make_thread(w, s, start, ans, members, window)

    specials(w, s, start, questions, answers_by_q)

    # --- wrap-up
    chat("x", host, 58, tagged_body("That's a wrap! Thank you all 💜 The recap will be at",
                                    link="recaps")[:-2] + [("t", " — same time next week. "), ("#", TAG)],
         likes=21, reposts=4)
    chat("mastodon", "host_m", 58.3, tagged_body("That's a wrap, thank you all! Recap:", link="recaps"), likes=7)
    chat("bluesky", "cohost_b", 58.4, tagged_body("Thanks for joining us! 💜 Recap soon:", link="recaps"), likes=6)
    for p in rng.sample(members, 3):
        chat(p.platform, p.key, rng.uniform(58.5, 62), tagged_body("Thanks for hosting! Great chat tonight.",
                                                                   emoji=rng.choice(EMOJI)), likes=rng.randint(0, 4))


def make_thread(w: World, s: int, start: datetime, ans: WPost, members: list[Person], window: float) -> None:
    """Sometimes another member replies, the answerer replies back, a third joins."""
    rng = w.rng
    if rng.random() > 0.45:
        return
    peers = [p for p in members if p.platform == ans.platform and p.key != ans.author]
    if not peers:
        return
    a = ans.author
    b = rng.choice(peers).key
    # X replies often drop the hashtag: those only survive as context parents.
    tag_prob = 0.55 if ans.platform == "x" else 1.0
    t = (ans.t - start).total_seconds() / 60

    def reply(author, parent, text, mentions, tagged):
        nonlocal t
        t += rng.uniform(0.4, 2.5)
        body = tagged_body(text, mentions=mentions) if tagged else untagged_body(text, mentions)
        return w.add(ans.platform, author, at(start, t, rng), body, reply_to=parent.key, kind="reply",
                     session=s, likes=rng.randint(0, 5))

    reaction, backs = rng.choice(REACTIONS)
    r1 = reply(b, ans, reaction, (a,), rng.random() < tag_prob)
    if rng.random() < 0.7:
        back = rng.choice(backs)
        r2 = reply(a, r1, back, (b,), rng.random() < tag_prob or back.endswith(":"))
        if back.endswith(":"):
            w.posts[r2.key].body = tagged_body(back, mentions=(b,), link=rng.choice(
                ["checklist", "welcome_dm", "buddy"] if s == 0 else ["health", "dashboard", "survey"]))
        if rng.random() < 0.45:
            others = [p for p in peers if p.key != b]
            if others:
                c = rng.choice(others).key
                # the deepest reply keeps the tag so its untagged parents arrive as context
                reply(c, r2, rng.choice(THIRD_VOICE), (a, b), True)


def specials(w: World, s: int, start: datetime, questions, answers_by_q) -> None:
    rng = w.rng

    def chat(platform, author, minute, body, **kw):
        return w.add(platform, author, at(start, minute, rng), body, session=s, **kw)

    q = questions
    if s == 0:
        # A1a / A1b: one answer in two parts
        chat("x", "dana", 7.2, tagged_body("A1a: A welcome post with our three house rules, in plain words."),
             kind="answer", number=1, likes=9)
        chat("x", "dana", 7.9, tagged_body("A1b: …and a pinned 'who to ask' list with real faces, not a ticket form. "
                                           "Screenshot of ours:"), kind="answer", number=1, likes=15, reposts=2,
             media=[("dana-start-here", "Screenshot of a 'Start here' page: three house rules and four mods' faces with their time zones")])
        # an unprefixed reply to the question
        chat("x", "ravi", 8.4, tagged_body("Honestly? A wall of channels. We're cutting it down to five this month.",
                                           mentions=("host",)), reply_to=q[1]["x"].key, kind="answer", number=1, likes=3)
        # a quote of the question
        chat("x", "lee", 9.1, tagged_body("This is the question I needed today. For us: a human hello within the first hour, every time.",
                                          emoji=" 💡"), quote_of=q[1]["x"].key, kind="answer", number=1, likes=11, reposts=1)
        # a retweet of Q2: a repost, never an answer
        chat("x", "sam", 16.6, [], repost_of=q[2]["x"].key, kind="repost")
        # a late answer to Q1, after Q2 went out
        chat("x", "mei", 19.3, tagged_body("A1: sorry, catching up! Ours is a 60-second video tour from a member, not staff.",
                                           link="checklist"), kind="answer", number=1, likes=6)
        # the host re-asks Q2 with the same marker: the same question, not a sixth
        chat("x", "host", 23.0, tagged_body("Q2. (Re-asking for everyone who just joined) How do you help quiet newcomers make their first post?"),
             kind="question", number=2, likes=4, reposts=1)
        # a report that is shared a lot, through a shortener
        chat("x", "priya", 33.5, tagged_body("A3: Our 2026 survey said members want humans for the hello, bots for the admin. Full report:",
                                             link="survey"), kind="answer", number=3, likes=19, reposts=6)
        # hostile but realistic: someone quoting what their bot filters
        chat("x", "lee", 34.2, tagged_body("A3: our bot strips anything like <script>alert(1)</script> from intros, and yes, "
                                           "someone put javascript:alert(1) in their bio 🙄 Humans review the rest."),
             kind="answer", number=3, likes=12)
        # images with alt text on Mastodon and Bluesky
        chat("mastodon", "fern", 8.8, tagged_body("A1: our 'start here' wall, hand-drawn by a member:"), kind="answer", number=1,
             likes=8, media=[("fern-start-wall", "A hand-drawn poster titled Start Here with arrows to Introduce yourself, Read the pins and Ask anything")])
        chat("bluesky", "ines", 10.2, tagged_body("A1: this little card 🌱 goes out with every welcome DM:"), kind="answer", number=1,
             likes=7, media=[("ines-welcome-card", "A green welcome card reading You belong here, with a list of three first steps")])
        # a Mastodon answer with a hostile anchor, as a non-Mastodon server might send it
        hostile = chat("mastodon", "kim", 35.6, tagged_body("A3: <script>alert(1)</script> is what our filter catches most. Report template:",
                                                            link="welcome_dm"), kind="answer", number=3, likes=3)
        hostile.html_override = (
            f'<p>A3: &lt;script&gt;alert(1)&lt;/script&gt; is what our filter catches most. '
            f'<a href="javascript:alert(document.cookie)">Report template</a> '
            f'<a href="https://{INSTANCE}/tags/{TAG}" class="mention hashtag" rel="tag">#<span>{TAG}</span></a></p>'
        )
        # a Bluesky link facet pointing at javascript:
        chat("bluesky", "wren", 36.3, [("t", "A3: never automate the reply to a report ⚠️ and never click links like "),
                                       ("link", "javascript:alert(document.cookie)", "this one"), ("t", " "), ("#", TAG)],
             kind="answer", number=3, likes=4)
        # a Bluesky quote of the co-host's Q4
        chat("bluesky", "theo", 41.0, tagged_body("Great one. Time to first reply, always."), quote_of=q[4]["bluesky"].key,
             kind="answer", number=4, likes=5)
    else:
        chat("x", "aisha", 6.8, tagged_body("A1a: Repeat participation. If people come back, something's working."),
             kind="answer", number=1, likes=7)
        chat("x", "aisha", 7.4, tagged_body("A1b: …and whether they bring a friend the second time.",
                                            emoji=" 🎉"), kind="answer", number=1, likes=9)
        chat("x", "hugo", 8.0, tagged_body("We don't measure anything yet 😬 that's why I'm here!", mentions=("host",)),
             reply_to=q[1]["x"].key, kind="answer", number=1, likes=10)
        chat("x", "tomas", 18.9, tagged_body("A1: late, but: issues closed by non-maintainers. Best health signal we have.",
                                             link="health"), kind="answer", number=1, likes=8)
        chat("x", "nora", 17.2, tagged_body("Leadership only reads the first line. Make it a member's quote."),
             quote_of=q[2]["x"].key, kind="answer", number=2, likes=13, reposts=2)
        chat("x", "oksana", 22.4, tagged_body("A2: we put this in every quarterly deck, it got us a second hire:",
                                              link="survey"), kind="answer", number=2, likes=16, reposts=4,
             media=[("oksana-chart", "Bar chart: questions answered by members grew from 31% to 58% over four quarters")])
        chat("mastodon", "yusuf", 19.0, tagged_body("Is it OK to answer an older question? Ours is simply: are people still riding together on Sundays.",
                                                    mentions=("host_m",)), reply_to=q[1]["mastodon"].key, kind="answer", number=1, likes=4)
        chat("bluesky", "zoe", 41.7, tagged_body("A4: first week as a mod myself 😅 taking notes from all of you", emoji=" 🎙️"),
             reply_to=q[4]["bluesky"].key, kind="answer", number=4, likes=6)
        # a Bluesky reply whose parent (an untagged post) was never captured
        chat("bluesky", "ines", 44.5, tagged_body("Agree with all of this, and rotate who writes the monthly report too.",
                                                  mentions=("wren",)), reply_to="missing:wren-untagged", kind="reply", likes=2)
        chat("mastodon", "olu", 44.0, tagged_body("A4: our burnout checklist, adapted from this post:", link="burnout"),
             kind="answer", number=4, likes=9, reposts=3)
        chat("x", "ben", 52.1, tagged_body("A5: Datasette over our Slack exports. Saved queries for every monthly number.",
                                           link="dashboard"), kind="answer", number=5, likes=11)


# --------------------------------------------------------------------------
# Ids


def snowflake(t: datetime, seq: int) -> str:
    ms = int(t.timestamp() * 1000)
    return str(((ms - 1288834974657) << 22) | (7 << 17) | (3 << 12) | (seq & 0xFFF))


def mastodon_id(t: datetime, salt: str) -> str:
    ms = int(t.timestamp() * 1000)
    return str((ms << 16) | (int.from_bytes(_digest("m", salt)[:2], "big")))


def tid(t: datetime, salt: str) -> str:
    us = int(t.timestamp() * 1_000_000)
    v = (us << 10) | (int.from_bytes(_digest("tid", salt)[:2], "big") & 0x3FF)
    return "".join(_S32[(v >> (5 * i)) & 31] for i in reversed(range(13)))


def cid(salt: str) -> str:
    return "bafyrei" + _b32(_digest("cid", salt), 52)


def iso_ms(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def tco(salt: str) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    n = int.from_bytes(_digest("tco", salt)[:8], "big")
    return "https://t.co/" + "".join(alphabet[(n >> (6 * i)) % 62] for i in range(10))


# --------------------------------------------------------------------------
# X: twarc2 pages


def x_user(p: Person) -> dict:
    d = _digest("xuser", p.key)
    return {
        "id": p.uid,
        "username": p.handle,
        "name": p.name,
        "profile_image_url": f"https://avatars.example.com/x/{p.handle}_normal.jpg",
        "created_at": f"20{10 + d[0] % 14}-0{1 + d[1] % 9}-1{d[2] % 9}T1{d[3] % 9}:0{d[4] % 9}:22.000Z",
        "verified": False,
        "public_metrics": {"followers_count": 80 + d[5] * 13, "following_count": 120 + d[6] * 3,
                           "tweet_count": 900 + d[7] * 41, "listed_count": d[8] % 40},
    }


def render_x(world: World) -> list[str]:
    posts = {k: p for k, p in world.posts.items() if p.platform == "x"}
    ids: dict[str, str] = {}
    for seq, p in enumerate(sorted(posts.values(), key=lambda p: p.t)):
        ids[p.key] = snowflake(p.t, seq)
    replies: dict[str, int] = {}
    quotes: dict[str, int] = {}
    rts: dict[str, int] = {}
    for p in posts.values():
        if p.reply_to:
            replies[p.reply_to] = replies.get(p.reply_to, 0) + 1
        if p.quote_of:
            quotes[p.quote_of] = quotes.get(p.quote_of, 0) + 1
        if p.repost_of:
            rts[p.repost_of] = rts.get(p.repost_of, 0) + 1

    def conversation(p: WPost) -> str:
        while p.reply_to and p.reply_to in posts:
            p = posts[p.reply_to]
        return ids[p.key]

    def tweet(p: WPost) -> tuple[dict, list[dict]]:
        author = BY_KEY[p.author]
        media_objs = []
        if p.repost_of:
            orig = posts[p.repost_of]
            otext, oent, _ = x_text(orig.body, orig.key, [])
            prefix = f"RT @{BY_KEY[orig.author].handle}: "
            text = prefix + otext
            entities = shift_entities(oent, len(prefix))
            entities.setdefault("mentions", []).insert(
                0, {"start": 3, "end": 3 + 1 + len(BY_KEY[orig.author].handle),
                    "username": BY_KEY[orig.author].handle, "id": BY_KEY[orig.author].uid})
        else:
            media_keys = [f"3_{ids[p.key]}{i}" for i in range(len(p.media))]
            text, entities, media_objs = x_text(p.body, p.key, list(zip(media_keys, p.media)), ids[p.key], author.handle)
        t = {
            "edit_history_tweet_ids": [ids[p.key]],
            "lang": "en",
            "text": html.escape(text, quote=False),
            "author_id": author.uid,
            "public_metrics": {
                "retweet_count": p.reposts + rts.get(p.key, 0) if not p.repost_of else posts[p.repost_of].reposts + rts.get(p.repost_of, 0),
                "reply_count": 0 if p.repost_of else replies.get(p.key, 0),
                "like_count": 0 if p.repost_of else p.likes,
                "quote_count": 0 if p.repost_of else quotes.get(p.key, 0),
                "bookmark_count": 0 if p.repost_of else p.likes // 4,
                "impression_count": 0 if p.repost_of else 40 + p.likes * 23 + len(p.key) * 7,
            },
            "conversation_id": ids[p.key] if p.repost_of else conversation(p),
            "id": ids[p.key],
            "created_at": iso_ms(p.t),
            "reply_settings": "everyone",
            "possibly_sensitive": False,
        }
        if entities:
            t["entities"] = entities
        refs = []
        if p.reply_to:
            refs.append({"type": "replied_to", "id": ids[p.reply_to]})
            t["in_reply_to_user_id"] = BY_KEY[posts[p.reply_to].author].uid
        if p.quote_of:
            refs.append({"type": "quoted", "id": ids[p.quote_of]})
        if p.repost_of:
            refs.append({"type": "retweeted", "id": ids[p.repost_of]})
        if refs:
            t["referenced_tweets"] = refs
        if media_objs:
            t["attachments"] = {"media_keys": [m["media_key"] for m in media_objs]}
        return t, media_objs

    rendered = {k: tweet(p) for k, p in posts.items()}
    lines = []
    for s, start in enumerate(SESSION_STARTS):
        # the capture: a search for the tag around the chat hour, newest first;
        # untagged replies are not search hits
        window = (start - timedelta(minutes=15), start + timedelta(minutes=75))
        hits = sorted((p for p in posts.values() if p.session == s and has_tag(p, posts)),
                      key=lambda p: p.t, reverse=True)
        assert all(window[0] <= p.t < window[1] for p in hits)
        pages = [hits[i:i + 100] for i in range(0, len(hits), 100)]
        next_token = None
        for n, page in enumerate(pages):
            data = [rendered[p.key][0] for p in page]
            users: dict[str, dict] = {}
            inc_tweets: dict[str, dict] = {}
            media: list[dict] = []

            def add_user(key, users=users):
                u = BY_KEY[key]
                users.setdefault(u.uid, x_user(u))

            for p in page:
                add_user(p.author)
                media += rendered[p.key][1]
                for m in rendered[p.key][0].get("entities", {}).get("mentions", []):
                    add_user(next(q.key for q in PEOPLE if q.platform == "x" and q.handle == m["username"]))
                for ref in (p.reply_to, p.quote_of, p.repost_of):
                    if ref:
                        inc_tweets.setdefault(ids[ref], rendered[ref][0])
                        add_user(posts[ref].author)
                        media += [m for m in rendered[ref][1] if m not in media]
            includes: dict = {"users": list(users.values())}
            if inc_tweets:
                includes["tweets"] = list(inc_tweets.values())
            if media:
                includes["media"] = media
            meta = {"newest_id": data[0]["id"], "oldest_id": data[-1]["id"], "result_count": len(data)}
            token = None
            if n < len(pages) - 1:
                token = "b26v89c19zqg8o3fo" + _b32(_digest("tok", str(s), str(n)), 15)
                meta["next_token"] = token
            url = ("https://api.twitter.com/2/tweets/search/recent?expansions=author_id%2Cin_reply_to_user_id%2C"
                   "referenced_tweets.id%2Creferenced_tweets.id.author_id%2Centities.mentions.username%2C"
                   "attachments.media_keys&tweet.fields=attachments%2Cauthor_id%2Cconversation_id%2Ccreated_at%2C"
                   "entities%2Cid%2Cin_reply_to_user_id%2Clang%2Cpublic_metrics%2Creferenced_tweets%2Ctext%2C"
                   "possibly_sensitive%2Creply_settings%2Cedit_history_tweet_ids%2Cnote_tweet"
                   "&user.fields=id%2Cname%2Cusername%2Cprofile_image_url%2Ccreated_at%2Cpublic_metrics%2Cverified"
                   "&media.fields=media_key%2Ctype%2Curl%2Cpreview_image_url%2Calt_text%2Cwidth%2Cheight"
                   f"&query=%23{TAG}&start_time={quote(iso_s(window[0]))}&end_time={quote(iso_s(window[1]))}"
                   "&max_results=100" + (f"&next_token={next_token}" if next_token else ""))
            retrieved = window[1] + timedelta(minutes=2, seconds=n * 3 + 11)
            lines.append(json.dumps({
                "data": data, "includes": includes, "meta": meta,
                "__twarc": {"url": url, "version": "2.14.1",
                            "retrieved_at": retrieved.strftime("%Y-%m-%dT%H:%M:%S+00:00")},
            }, ensure_ascii=False, separators=(",", ":")))
            next_token = token
    return lines


def iso_s(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def has_tag(p: WPost, posts: dict[str, WPost]) -> bool:
    if p.repost_of:
        return has_tag(posts[p.repost_of], posts)
    return any(seg[0] == "#" for seg in p.body)


def x_text(body, salt, media, tweet_id=None, handle=None):
    """Plain X text (t.co links) and its v2 entities (code-point offsets)."""
    text = ""
    ents: dict[str, list] = {}
    for seg in body:
        kind = seg[0]
        if kind == "t":
            text += seg[1]
        elif kind == "@":
            u = BY_KEY[seg[1]]
            ents.setdefault("mentions", []).append(
                {"start": len(text), "end": len(text) + 1 + len(u.handle), "username": u.handle, "id": u.uid})
            text += "@" + u.handle
        elif kind == "#":
            ents.setdefault("hashtags", []).append({"start": len(text), "end": len(text) + 1 + len(seg[1]), "tag": seg[1]})
            text += "#" + seg[1]
        elif kind == "link":
            url, label = seg[1], seg[2]
            short = tco(f"{salt}:{url}")
            entry = {"start": len(text), "end": len(text) + len(short), "url": short,
                     "expanded_url": url, "display_url": label}
            for name, (long_url, _label) in LINKS.items():
                if long_url == url and name in SHORTENED:
                    entry["expanded_url"] = SHORTENED[name]
                    entry["display_url"] = SHORTENED[name].split("//", 1)[1]
                    entry["unwound_url"] = url
                    entry["status"] = 200
                    entry["title"] = "2026 Community Survey: what members want"
            ents.setdefault("urls", []).append(entry)
            text += short
    media_objs = []
    for media_key, (name, alt) in media:
        short = tco(f"{salt}:media:{media_key}")
        text += " " + short
        ents.setdefault("urls", []).append({
            "start": len(text) - len(short), "end": len(text), "url": short,
            "expanded_url": f"https://x.com/{handle}/status/{tweet_id}/photo/1",
            "display_url": f"pic.x.com/{short.rsplit('/', 1)[1]}", "media_key": media_key})
        media_objs.append({"media_key": media_key, "type": "photo",
                           "url": f"https://media.example.com/x/{name}.jpg", "alt_text": alt,
                           "width": 1200, "height": 900})
    return text, ents, media_objs


def shift_entities(ents: dict, by: int) -> dict:
    out = {}
    for k, items in ents.items():
        out[k] = [dict(e, start=e["start"] + by, end=e["end"] + by) for e in items]
    return out


# --------------------------------------------------------------------------
# Mastodon: tag timeline on social.example


def m_account(p: Person) -> dict:
    home = p.home
    d = _digest("macct", p.key)
    local_id = str(109_300_000_000_000_000 + int.from_bytes(d[:6], "big") % 10**15)
    return {
        "id": local_id,
        "username": p.username,
        "acct": p.handle,
        "display_name": p.name,
        "locked": False,
        "bot": False,
        "discoverable": True,
        "group": False,
        "created_at": f"2022-11-{1 + d[0] % 28:02d}T00:00:00.000Z",
        "note": f"<p>{html.escape(p.blurb)}</p>" if p.blurb else "<p>Host of #samplechat</p>",
        "url": f"https://{home}/@{p.username}",
        "uri": f"https://{home}/users/{p.username}",
        "avatar": f"https://{INSTANCE}/system/cache/accounts/avatars/{local_id[:3]}/{local_id[3:6]}/original/{p.username}.png",
        "avatar_static": f"https://{INSTANCE}/system/cache/accounts/avatars/{local_id[:3]}/{local_id[3:6]}/original/{p.username}.png",
        "header": f"https://{INSTANCE}/headers/original/missing.png",
        "header_static": f"https://{INSTANCE}/headers/original/missing.png",
        "followers_count": 40 + d[1] * 3,
        "following_count": 60 + d[2],
        "statuses_count": 300 + d[3] * 11,
        "last_status_at": "2026-11-19",
        "emojis": [],
        "fields": [],
    }


def m_html(body) -> str:
    out = ""
    for seg in body:
        kind = seg[0]
        if kind == "t":
            out += html.escape(seg[1], quote=False)
        elif kind == "@":
            u = BY_KEY[seg[1]]
            out += (f'<span class="h-card" translate="no"><a href="https://{u.home}/@{u.username}" '
                    f'class="u-url mention">@<span>{u.username}</span></a></span>')
        elif kind == "#":
            out += f'<a href="https://{INSTANCE}/tags/{seg[1].lower()}" class="mention hashtag" rel="tag">#<span>{seg[1]}</span></a>'
        elif kind == "link":
            url = seg[1]
            scheme, rest = url.split("://", 1)
            visible, hidden = rest[:30], rest[30:]
            out += (f'<a href="{html.escape(url)}" target="_blank" rel="nofollow noopener" translate="no">'
                    f'<span class="invisible">{scheme}://</span><span class="{"ellipsis" if hidden else ""}">{visible}</span>'
                    f'<span class="invisible">{hidden}</span></a>')
    return f"<p>{out}</p>"


def render_mastodon(world: World) -> list[dict]:
    posts = {k: p for k, p in world.posts.items() if p.platform == "mastodon"}
    local: dict[str, str] = {}
    home: dict[str, str] = {}
    for p in posts.values():
        local[p.key] = mastodon_id(p.t + timedelta(milliseconds=350), p.key)  # federated in a little later
        home[p.key] = mastodon_id(p.t, p.key + "home") if BY_KEY[p.author].home != INSTANCE else local[p.key]
    replies: dict[str, int] = {}
    for p in posts.values():
        if p.reply_to:
            replies[p.reply_to] = replies.get(p.reply_to, 0) + 1
    out = []
    for p in sorted(posts.values(), key=lambda p: (p.t, p.key), reverse=True):
        if not has_tag(p, posts):
            continue
        a = BY_KEY[p.author]
        uri = f"https://{a.home}/users/{a.username}/statuses/{home[p.key]}"
        parent = posts.get(p.reply_to) if p.reply_to else None
        mentions = []
        for seg in p.body:
            if seg[0] == "@":
                u = BY_KEY[seg[1]]
                mentions.append({"id": m_account(u)["id"], "username": u.username, "url": f"https://{u.home}/@{u.username}",
                                 "acct": u.handle})
        status = {
            "id": local[p.key],
            "created_at": iso_ms(p.t),
            "in_reply_to_id": local[parent.key] if parent else None,
            "in_reply_to_account_id": m_account(BY_KEY[parent.author])["id"] if parent else None,
            "sensitive": False,
            "spoiler_text": "",
            "visibility": "public",
            "language": "en",
            "uri": uri,
            "url": f"https://{a.home}/@{a.username}/{home[p.key]}",
            "replies_count": replies.get(p.key, 0),
            "reblogs_count": p.reposts,
            "favourites_count": p.likes,
            "quotes_count": 0,
            "edited_at": None,
            "content": p.html_override or m_html(p.body),
            "reblog": None,
            "quote": None,
            "application": {"name": "Web", "website": None} if a.home == INSTANCE else None,
            "account": m_account(a),
            "media_attachments": [
                {"id": mastodon_id(p.t, name), "type": "image",
                 "url": f"https://{INSTANCE}/system/media_attachments/files/{name}.png",
                 "preview_url": f"https://{INSTANCE}/system/media_attachments/files/small/{name}.png",
                 "remote_url": (f"https://{a.home}/media/{name}.png" if a.home != INSTANCE else None),
                 "preview_remote_url": None, "text_url": None,
                 "meta": {"original": {"width": 1600, "height": 1200, "size": "1600x1200", "aspect": 1.3333333333333333}},
                 "description": alt, "blurhash": "UBL_:rOpGG-;~qRjWBt7xuRjM{of00ay%Mj["}
                for name, alt in p.media
            ],
            "mentions": mentions,
            "tags": [{"name": TAG, "url": f"https://{INSTANCE}/tags/{TAG}"}],
            "emojis": [],
            "card": None,
            "poll": None,
        }
        if a.home != INSTANCE:
            status["application"] = None
        links = [seg[1] for seg in p.body if seg[0] == "link" and seg[1].startswith("https://")]
        if links and not p.html_override:
            status["card"] = {"url": links[0], "title": links[0].rsplit("/", 1)[1].replace("-", " ").capitalize(),
                              "description": "", "type": "link", "author_name": "", "author_url": "",
                              "provider_name": "", "provider_url": "", "html": "", "width": 0, "height": 0,
                              "image": None, "embed_url": "", "blurhash": None}
        out.append(status)
    return out


# --------------------------------------------------------------------------
# Bluesky: searchPosts


def rich_text(body) -> tuple[str, list[dict]]:
    text = ""
    facets = []
    for seg in body:
        kind = seg[0]
        start = len(text.encode("utf-8"))
        if kind == "t":
            text += seg[1]
            continue
        if kind == "@":
            u = BY_KEY[seg[1]]
            text += "@" + u.handle
            feature = {"$type": "app.bsky.richtext.facet#mention", "did": u.uid}
        elif kind == "#":
            text += "#" + seg[1]
            feature = {"$type": "app.bsky.richtext.facet#tag", "tag": seg[1]}
        else:
            text += seg[2]
            feature = {"$type": "app.bsky.richtext.facet#link", "uri": seg[1]}
        facets.append({"$type": "app.bsky.richtext.facet",
                       "features": [feature],
                       "index": {"byteEnd": len(text.encode("utf-8")), "byteStart": start}})
    return text, facets


def b_author(p: Person) -> dict:
    return {
        "did": p.uid,
        "handle": p.handle,
        "displayName": p.name,
        "avatar": f"https://cdn.example.com/img/avatar/plain/{p.uid}/{cid('av' + p.key)}@jpeg",
        "associated": {"chat": {"allowIncoming": "following"}},
        "labels": [],
        "createdAt": "2023-09-14T16:20:11.482Z",
    }


def render_bluesky(world: World) -> dict:
    posts = {k: p for k, p in world.posts.items() if p.platform == "bluesky"}
    uris = {k: f"at://{BY_KEY[p.author].uid}/app.bsky.feed.post/{tid(p.t, k)}" for k, p in posts.items()}
    cids = {k: cid(k) for k in posts}
    # the never-captured parent of one reply
    wren = BY_KEY["wren"]
    uris["missing:wren-untagged"] = f"at://{wren.uid}/app.bsky.feed.post/{tid(SESSION_STARTS[1] + timedelta(minutes=43), 'w')}"
    cids["missing:wren-untagged"] = cid("missing")
    replies: dict[str, int] = {}
    quotes: dict[str, int] = {}
    for p in posts.values():
        if p.reply_to:
            replies[p.reply_to] = replies.get(p.reply_to, 0) + 1
        if p.quote_of:
            quotes[p.quote_of] = quotes.get(p.quote_of, 0) + 1

    def root_of(k: str) -> str:
        while k in posts and posts[k].reply_to:
            k = posts[k].reply_to
        return k

    views = []
    for p in sorted(posts.values(), key=lambda p: (p.t, p.key), reverse=True):
        if not has_tag(p, posts):
            continue
        a = BY_KEY[p.author]
        text, facets = rich_text(p.body)
        record: dict = {"$type": "app.bsky.feed.post", "createdAt": iso_ms(p.t), "langs": ["en"], "text": text}
        if facets:
            record["facets"] = facets
        embed_view = None
        if p.reply_to:
            r = root_of(p.reply_to)
            record["reply"] = {"parent": {"cid": cids[p.reply_to], "uri": uris[p.reply_to]},
                               "root": {"cid": cids[r], "uri": uris[r]}}
        if p.media:
            images = []
            images_view = []
            for name, alt in p.media:
                blob = cid("blob" + name).replace("bafyrei", "bafkrei")
                images.append({"alt": alt, "aspectRatio": {"height": 1000, "width": 1000},
                               "image": {"$type": "blob", "ref": {"$link": blob}, "mimeType": "image/jpeg", "size": 183442}})
                images_view.append({"thumb": f"https://cdn.example.com/img/feed_thumbnail/plain/{a.uid}/{blob}@jpeg",
                                    "fullsize": f"https://cdn.example.com/img/feed_fullsize/plain/{a.uid}/{blob}@jpeg",
                                    "alt": alt, "aspectRatio": {"height": 1000, "width": 1000}})
            record["embed"] = {"$type": "app.bsky.embed.images", "images": images}
            embed_view = {"$type": "app.bsky.embed.images#view", "images": images_view}
        if p.quote_of:
            q = posts[p.quote_of]
            qtext, qfacets = rich_text(q.body)
            record["embed"] = {"$type": "app.bsky.embed.record", "record": {"cid": cids[q.key], "uri": uris[q.key]}}
            value = {"$type": "app.bsky.feed.post", "createdAt": iso_ms(q.t), "langs": ["en"], "text": qtext}
            if qfacets:
                value["facets"] = qfacets
            embed_view = {"$type": "app.bsky.embed.record#view", "record": {
                "$type": "app.bsky.embed.record#viewRecord", "uri": uris[q.key], "cid": cids[q.key],
                "author": b_author(BY_KEY[q.author]), "value": value, "labels": [],
                "likeCount": q.likes, "replyCount": replies.get(q.key, 0), "repostCount": q.reposts,
                "quoteCount": quotes.get(q.key, 0), "indexedAt": iso_ms(q.t + timedelta(milliseconds=640)),
                "embeds": []}}
        view = {
            "uri": uris[p.key],
            "cid": cids[p.key],
            "author": b_author(a),
            "record": record,
        }
        if embed_view:
            view["embed"] = embed_view
        view.update({
            "bookmarkCount": 0,
            "replyCount": replies.get(p.key, 0),
            "repostCount": p.reposts,
            "likeCount": p.likes,
            "quoteCount": quotes.get(p.key, 0),
            "indexedAt": iso_ms(p.t + timedelta(milliseconds=640)),
            "labels": [],
        })
        views.append(view)
    return {"posts": views, "hitsTotal": len(views)}


# --------------------------------------------------------------------------


def ground_truth() -> dict:
    """What the files hold by construction, for tests of import and analysis.

    ``matched``: posts per platform that carry the tag (search hits);
    ``context``: X reply/quote/retweet targets without the tag, present only
    in ``includes.tweets``; per session: the authors (platform, handle) of
    its posts, its first-timers, and ``answers``: {question number: answer
    posts}, counting only posts present in the files.
    """
    world = build_world()
    posts = world.posts
    kept = {k: p for k, p in posts.items() if has_tag(p, posts)}
    context = {}
    for p in kept.values():
        if p.platform != "x":
            continue
        for ref in (p.reply_to, p.quote_of, p.repost_of):
            if ref and ref in posts and ref not in kept:
                context[ref] = posts[ref]
    sessions = []
    seen: set[tuple[str, str]] = set()
    for s, start in enumerate(SESSION_STARTS):
        mine = [p for p in list(kept.values()) + list(context.values()) if p.session == s]
        authors = {(p.platform, BY_KEY[p.author].handle) for p in mine}
        answers: dict[int, int] = {}
        for p in mine:
            if p.kind == "answer" and p.key in kept:
                answers[p.number] = answers.get(p.number, 0) + 1
        sessions.append({
            "date": (start - timedelta(hours=5)).strftime("%Y-%m-%d"),  # EST, the chat's own zone
            "start": iso_ms(start),
            "matched": sum(1 for p in mine if p.key in kept),
            "context": sum(1 for p in mine if p.key in context),
            "authors": authors,
            "first_timers": authors - seen,
            "hosts": {(p.platform, BY_KEY[p.author].handle) for p in mine if p.kind == "question"},
            "answers": dict(sorted(answers.items())),
            "reposts": sum(1 for p in mine if p.repost_of),
        })
        seen |= authors
    matched: dict[str, int] = {}
    for p in kept.values():
        matched[p.platform] = matched.get(p.platform, 0) + 1
    return {"matched": matched, "context": len(context), "sessions": sessions}


def generate() -> dict[str, bytes]:
    world = build_world()
    x_lines = render_x(world)
    mastodon = render_mastodon(world)
    bluesky = render_bluesky(world)
    return {
        "samplechat-x.jsonl": ("\n".join(x_lines) + "\n").encode(),
        "samplechat-mastodon.json": (json.dumps(mastodon, ensure_ascii=False, indent=2) + "\n").encode(),
        "samplechat-bluesky.json": (json.dumps(bluesky, ensure_ascii=False, indent=2) + "\n").encode(),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--check", action="store_true", help="compare with the files in --out; exit 1 if they differ")
    args = ap.parse_args(argv)
    files = generate()
    if args.check:
        stale = [n for n, data in files.items() if not (args.out / n).exists() or (args.out / n).read_bytes() != data]
        for n in stale:
            print(f"{args.out / n}: out of date (run python bench/make_sample.py)")
        return 1 if stale else 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (args.out / name).write_bytes(data)
        print(f"{args.out / name}: {len(data):,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
