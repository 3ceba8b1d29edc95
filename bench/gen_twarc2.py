"""Generate N synthetic posts as twarc2 raw JSONL (X API v2 search pages).

Deterministic (same --seed, same bytes) and realistic in shape and size:
100 posts per line, each line a full search page with ``includes`` (users,
referenced posts, media), ``meta`` and ``__twarc``; about 3.5 KB per post
like real twarc2 output (brexit.jsonl in the shared fixtures has 3.5 KB).
Pages run newest first like ``twarc2 search``: reply parents, quoted and
retweeted posts are older posts that appear later as matches themselves, so
the importer meets the "context first, then matched" merge on every page.

    python bench/gen_twarc2.py 100000 -o /tmp/bench-100k.jsonl
    python bench/gen_twarc2.py 1000 | chatarchive import chats.db -
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import random
import sys
from datetime import datetime, timedelta, timezone

BASE_ID = 1_790_000_000_000_000_000
EPOCH = datetime(2026, 11, 18, 20, 0, tzinfo=timezone.utc)
N_USERS = 40_000
HASHTAGS = ["cmgrchat", "edchat", "growthchat", "blogchat", "PSTweetChat", "DLFteach",
            "smmchat", "uxchat", "a11ychat", "rstats"]
# Word frequencies follow Zipf's law as in real posts: function words on
# top, the chat's topic words spread over ranks ~60-900 (1-4% of posts
# each), then a long tail of made-up words.
FUNCTION_WORDS = ["the", "to", "and", "a", "of", "in", "is", "for", "you", "that", "it", "on", "with", "this", "are", "be", "at", "have", "we", "our", "what", "how", "your", "i", "can", "do", "not", "my", "more", "about", "all", "so", "as", "they", "from", "one", "just", "like", "if", "but", "when", "it's", "there", "their", "out", "up", "by", "get", "an", "or", "will", "was", "how's", "who", "me", "us"]
TOPIC_WORDS = ["community", "metrics", "question", "answer", "chat", "great", "love", "thanks", "think", "people", "new", "time", "data", "work", "team", "share", "learn", "best", "idea", "ideas", "good", "make", "help", "know", "building", "members", "engagement", "content", "social", "media", "brand", "growth", "strategy", "measure", "measuring", "events", "onboarding", "feedback", "tools", "platform", "moderation", "trust", "value", "retention", "survey", "insight", "insights", "report", "story", "stories", "customer", "customers", "product", "launch", "goal", "goals", "culture", "remote", "hybrid", "week", "today", "tonight", "everyone", "welcome", "hello", "joining", "first", "host", "hosts", "topic", "topics", "café", "naïve", "résumé", "über", "🎉", "🙌", "💡", "✅", "🚀", "🔥", "👋", "😂", "❤️"]
SYLLABLES = ["ka", "lo", "mi", "ne", "ra", "tu", "vi", "zo", "pe", "sa", "do", "qui",
             "ber", "tan", "gor", "lin", "mus", "per", "sol", "tri", "ven", "wex"]
SOURCES = ["Twitter Web App", "Twitter for iPhone", "Twitter for Android", "TweetDeck",
           "Buffer", "Hootsuite Inc."]
LANGS = ["en"] * 14 + ["es", "fr", "de", "pt", "und"]
DOMAINS = [
    ("10", "Person", "Named people in the world like Nelson Mandela"),
    ("35", "Politician", "Politicians in the world, like Joe Biden"),
    ("46", "Business Taxonomy", "Categories within Brand Verticals that narrow down the scope of Brands"),
    ("47", "Brand", "Brands and Companies"),
    ("65", "Interests and Hobbies Vertical", "Top level interests and hobbies groupings, like Food or Travel"),
    ("66", "Interests and Hobbies Category",
     "A grouping of interests and hobbies entities, like Novelty Food or Destinations"),
    ("131", "Unified Twitter Taxonomy", "A taxonomy view into the Semantic Core knowledge graph"),
]
ENTITIES = ["Community management", "Social media", "Marketing", "Business & finance",
            "Technology", "Education", "Data science", "Careers", "Small business", "Podcasts"]


def _vocab(rng: random.Random, n: int = 20_000) -> list[str]:
    seen = set(FUNCTION_WORDS) | set(TOPIC_WORDS)
    made: list[str] = []
    while len(made) < n:
        w = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))
        if w not in seen:
            seen.add(w)
            made.append(w)
    words = list(FUNCTION_WORDS)
    step = 10
    for k, topic in enumerate(TOPIC_WORDS):
        words.extend(made[k * (step - 1):(k + 1) * (step - 1)])
        words.append(topic)
    words.extend(made[len(TOPIC_WORDS) * (step - 1):])
    return words[:n]


class Generator:
    def __init__(self, total: int, seed: int = 42, per_page: int = 100):
        self.total, self.seed, self.per_page = total, seed, per_page
        rng = random.Random(seed)
        self.words = _vocab(rng)
        # Zipf-like word frequencies: a few very common words, a long tail.
        weights = [1.0 / (r + 8) for r in range(len(self.words))]
        acc, self.cum = 0.0, []
        for w in weights:
            acc += w
            self.cum.append(acc)
        self.users: dict[int, dict] = {}

    # Every object is a pure function of (seed, index) so a post generated as
    # context on one page is identical when it later appears as a match.
    def _rng(self, kind: int, i: int) -> random.Random:
        return random.Random(self.seed * 1_000_003 + kind * 100_000_007 + i)

    def tweet_id(self, i: int) -> str:
        return str(BASE_ID - i * 4096 * 977)

    def user_index(self, i: int) -> int:
        # Busy chats: a core of regulars writes most posts.
        r = self._rng(3, i).random()
        return int(N_USERS * r ** 3)

    def user(self, u: int) -> dict:
        got = self.users.get(u)
        if got is not None:
            return got
        rng = self._rng(2, u)
        name = " ".join(w.capitalize() for w in rng.choices(self.words[200:2000], k=2))
        handle = (name.replace(" ", "_")[:12] + str(u))[:15]
        tags = rng.sample(HASHTAGS, 2)
        desc = (f"{rng.choice(['Community manager', 'Teacher', 'Researcher', 'Founder', 'Host'])} "
                f"at {name.split()[0]} Labs. Opinions my own. #{tags[0]} #{tags[1]} 🌱")
        user = {
            "id": str(10_000_000 + u * 7919),
            "name": name + (" 🌻" if u % 7 == 0 else ""),
            "username": handle,
            "created_at": f"2012-{u % 12 + 1:02d}-{u % 28 + 1:02d}T10:{u % 60:02d}:00.000Z",
            "description": desc,
            "entities": {"description": {"hashtags": [
                {"start": desc.index("#" + tags[0]), "end": desc.index("#" + tags[0]) + len(tags[0]) + 1,
                 "tag": tags[0]},
                {"start": desc.index("#" + tags[1]), "end": desc.index("#" + tags[1]) + len(tags[1]) + 1,
                 "tag": tags[1]}]}},
            "location": rng.choice(["NC", "London", "Berlin, Germany", "", "Toronto", "Lagos"]),
            "pinned_tweet_id": self.tweet_id(u * 13 + 5),
            "profile_image_url": f"https://pbs.twimg.com/profile_images/{1400000000000000000 + u}/a{u}_normal.jpg",
            "protected": False,
            "public_metrics": {"followers_count": rng.randint(10, 90000), "following_count": rng.randint(10, 5000),
                               "tweet_count": rng.randint(100, 200000), "listed_count": rng.randint(0, 900)},
            "url": "",
            "verified": u % 50 == 0,
        }
        if len(self.users) < 60_000:
            self.users[u] = user
        return user

    def _words(self, rng: random.Random, k: int) -> list[str]:
        return rng.choices(self.words, cum_weights=self.cum, k=k)

    def tweet(self, i: int) -> tuple[dict, list[tuple[str, int]], list[dict], list[dict]]:
        """Post i (0 = newest), its references [(type, index)], media objects
        and users (author and mentioned)."""
        rng = self._rng(1, i)
        tid = self.tweet_id(i)
        author = self.user(self.user_index(i))
        session = i // 2000  # one chat hour of about 2,000 posts, weekly
        created = EPOCH - timedelta(days=7 * session, seconds=(i % 2000) * 1.8 + rng.random())
        tag = HASHTAGS[session % len(HASHTAGS)]
        kind = rng.random()
        refs: list[tuple[str, int]] = []
        if kind < 0.35:
            refs.append(("replied_to", i + 1 + int(rng.expovariate(1 / 40))))
        elif kind < 0.50:
            refs.append(("retweeted", i + 1 + int(rng.expovariate(1 / 200))))
        elif kind < 0.55:
            refs.append(("quoted", i + 1 + int(rng.expovariate(1 / 300))))
        mentioned = [self.user(self.user_index(i + 7 + m * 31)) for m in range(rng.choice([0, 0, 1, 1, 2]))]
        words = self._words(rng, rng.randint(12, 38))
        qa = ""
        if rng.random() < 0.3:
            qa = f"A{rng.randint(1, 8)}: "
        text_parts = ["@" + m["username"] for m in mentioned]
        text = (" ".join(text_parts) + " " if text_parts else "") + qa + " ".join(words)
        hashtags, urls, mentions, annotations = [], [], [], []
        pos = 0
        for m in mentioned:
            start = text.index("@" + m["username"], pos)
            mentions.append({"start": start, "end": start + len(m["username"]) + 1,
                             "username": m["username"], "id": m["id"]})
            pos = start + 1
        extra_tags = [tag] + ([rng.choice(HASHTAGS)] if rng.random() < 0.2 else [])
        for t in extra_tags:
            hashtags.append({"start": len(text) + 1, "end": len(text) + 2 + len(t), "tag": t})
            text += " #" + t
        if rng.random() < 0.3:
            short = "https://t.co/" + "".join(rng.choices("abcdefghijkLMNOPQ0123456789", k=10))
            target = f"https://example.org/{rng.choice(self.words[100:3000])}/{i % 997}"
            urls.append({"start": len(text) + 1, "end": len(text) + 1 + len(short), "url": short,
                         "expanded_url": target, "display_url": target[8:30] + "…",
                         "status": 200, "title": " ".join(self._words(rng, 6)),
                         "description": " ".join(self._words(rng, 18)),
                         "unwound_url": target})
            text += " " + short
        media_objs = []
        attachments = None
        if rng.random() < 0.12:
            key = f"3_{BASE_ID - i * 4096 * 977 + 1}"
            short = "https://t.co/" + "".join(rng.choices("abcdefghijkLMNOPQ0123456789", k=10))
            urls.append({"start": len(text) + 1, "end": len(text) + 1 + len(short), "url": short,
                         "expanded_url": f"https://x.com/{author['username']}/status/{tid}/photo/1",
                         "display_url": "pic.x.com/" + short[-10:], "media_key": key})
            text += " " + short
            attachments = {"media_keys": [key]}
            media_objs.append({"media_key": key, "type": "photo", "width": 1200, "height": 800,
                               "url": f"https://pbs.twimg.com/media/F{i}x.jpg",
                               "alt_text": " ".join(self._words(rng, 8)) if rng.random() < 0.5 else None})
        if rng.random() < 0.5:
            w = rng.choice(words)
            if w in text:
                annotations.append({"start": text.index(w), "end": text.index(w) + len(w) - 1,
                                    "probability": round(rng.random(), 4), "type": "Other",
                                    "normalized_text": w})
        if refs and refs[0][0] == "retweeted":
            orig = self.tweet(refs[0][1])[0]
            orig_handle = self.user(self.user_index(refs[0][1]))["username"]
            text = f"RT @{orig_handle}: {orig['text']}"
            text = text[:140] + "…" if len(text) > 140 else text
            orig_author = self.user(self.user_index(refs[0][1]))
            mentions = [{"start": 3, "end": 4 + len(orig_handle), "username": orig_handle, "id": orig_author["id"]}]
            mentioned = [orig_author]
            hashtags, urls, annotations, media_objs, attachments = [], [], [], [], None
        context = []
        for _ in range(rng.randint(1, 4)):
            d = rng.choice(DOMAINS)
            e = rng.choice(ENTITIES)
            context.append({"domain": {"id": d[0], "name": d[1], "description": d[2]},
                            "entity": {"id": str(800000000000000000 + ENTITIES.index(e) * 7777), "name": e,
                                       "description": e}})
        entities: dict = {}
        if hashtags:
            entities["hashtags"] = hashtags
        if mentions:
            entities["mentions"] = mentions
        if urls:
            entities["urls"] = urls
        if annotations:
            entities["annotations"] = annotations
        tweet = {
            "id": tid,
            "text": text,
            "author_id": author["id"],
            "conversation_id": tid,
            "created_at": created.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "lang": rng.choice(LANGS),
            "source": rng.choice(SOURCES),
            "possibly_sensitive": False,
            "reply_settings": "everyone",
            "edit_history_tweet_ids": [tid],
            "edit_controls": {"edits_remaining": 5, "is_edit_eligible": not refs,
                              "editable_until": (created + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%S.000Z")},
            "public_metrics": {"retweet_count": int(rng.expovariate(1 / 3)), "reply_count": int(rng.expovariate(1)),
                               "like_count": int(rng.expovariate(1 / 8)), "quote_count": int(rng.expovariate(4)),
                               "bookmark_count": 0, "impression_count": rng.randint(20, 5000)},
            "context_annotations": context,
        }
        if entities:
            tweet["entities"] = entities
        if attachments:
            tweet["attachments"] = attachments
        if refs:
            tweet["referenced_tweets"] = [{"type": t, "id": self.tweet_id(j)} for t, j in refs]
            if refs[0][0] == "replied_to":
                parent_author = self.user(self.user_index(refs[0][1]))
                tweet["in_reply_to_user_id"] = parent_author["id"]
                tweet["conversation_id"] = self.tweet_id(refs[0][1] + 5)
        return tweet, refs, media_objs, [author] + mentioned

    def page(self, first: int, count: int) -> dict:
        data, users, tweets, media = [], {}, {}, {}
        for i in range(first, first + count):
            tweet, refs, media_objs, people = self.tweet(i)
            data.append(tweet)
            for u in people:
                users[u["id"]] = u
            for mo in media_objs:
                media[mo["media_key"]] = mo
            for _, j in refs:
                ref, _, ref_media, ref_people = self.tweet(j)
                tweets[ref["id"]] = ref
                for u in ref_people:
                    users.setdefault(u["id"], u)
                for mo in ref_media:
                    media[mo["media_key"]] = mo
        includes = {"users": list(users.values())}
        if tweets:
            includes["tweets"] = list(tweets.values())
        if media:
            includes["media"] = list(media.values())
        return {
            "data": data,
            "includes": includes,
            "meta": {"newest_id": data[0]["id"], "oldest_id": data[-1]["id"], "result_count": len(data),
                     "next_token": f"b26v89c19zqg8o3f{first:012d}"},
            "__twarc": {"url": "https://api.twitter.com/2/tweets/search/all?expansions=author_id%2C"
                               "in_reply_to_user_id%2Creferenced_tweets.id%2Creferenced_tweets.id.author_id"
                               "%2Centities.mentions.username%2Cattachments.media_keys&max_results=100"
                               "&query=%23cmgrchat",
                        "version": "2.14.1", "retrieved_at": "2026-11-19T09:00:00+00:00"},
        }

    def pages(self):
        for first in range(0, self.total, self.per_page):
            yield self.page(first, min(self.per_page, self.total - first))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("posts", type=int, help="number of matched posts to generate")
    ap.add_argument("-o", "--output", help="file to write (.gz is gzipped); default stdout")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--per-page", type=int, default=100)
    args = ap.parse_args(argv)
    gen = Generator(args.posts, seed=args.seed, per_page=args.per_page)
    with contextlib.ExitStack() as stack:
        if args.output is None:
            out = sys.stdout.buffer
        elif args.output.endswith(".gz"):
            out = stack.enter_context(gzip.open(args.output, "wb", compresslevel=3))
        else:
            out = stack.enter_context(open(args.output, "wb"))
        for page in gen.pages():
            out.write(json.dumps(page).encode("ascii"))
            out.write(b"\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
