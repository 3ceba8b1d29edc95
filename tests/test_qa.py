"""Questions and answers: markers, teasers, re-asks, hosts, answers by marker/reply/quote, patterns."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "analysis"))
from builders import ChatBuilder, standard_chat

from chatarchive.analysis import qa, sessions
from chatarchive.analysis.pipeline import analyse_archive
from chatarchive.analysis.qa import QAPost, QATotals, QAWriter, analyse_posts
from chatarchive.analysis.rewrite import PostRewrite
from chatarchive.errors import ChatArchiveError

START = "2026-11-12T01:00:00Z"


class Chat:
    """QAPost lists in time order, one call per post."""

    def __init__(self):
        self.posts: list[QAPost] = []

    def __call__(self, handle, text, reply_to=None, quote_of=None, repost=False, id=None):
        n = len(self.posts)
        p = QAPost(id=id or f"p{n}", author_id=f"id:{handle}", handle=handle, text=text,
                   created_at=f"2026-11-12T01:{n // 60:02d}:{n % 60:02d}.000Z", reply_to_id=reply_to,
                   quote_of_id=quote_of, is_repost=repost)
        self.posts.append(p)
        return p.id


def numbers(result, ids):
    return [result.answer_of.get(i) for i in ids]


def test_question_markers_after_mentions_hashtags_and_emoji():
    c = Chat()
    forms = ["Q1: what first?", "Q2. and then?", "Q 3 - why?", "Q4) how?", "Question 5: who?",
             "@cohost @guest Q6 what now?", ".@guest Q7: really?", "📣 Q8: loud?", "#tchat Q9: tagged?",
             "@guest@mastodon.example Question 10 - federated?", "q11: lower case?"]
    ids = [c("host", f) for f in forms]
    res = analyse_posts(c.posts)
    assert sorted(res.questions) == list(range(1, 12))
    assert [res.question_of[i] for i in ids] == list(range(1, 12))
    assert res.hosts == ["host"]


def test_not_questions_teasers_and_lookalikes():
    c = Chat()
    c("host", "Q1 coming up in a minute!")
    c("host", "Q2 is next, get ready 👀")
    c("host", "Quick question: who's new?")
    c("host", "Q&A afterwards")
    c("host", "Qatar 2022 was fun")
    c("host", "FAQ1: see the pinned post")
    real = c("host", "Q3: What's coming up next for your community this year?")
    res = analyse_posts(c.posts)
    assert list(res.questions) == [3] and res.questions[3].post_id == real


@pytest.mark.parametrize("teaser", [
    "Q5 coming up in 1 minute! Who's still with us?",  # a question mark, over 40 characters: still a teaser
    "Q5 coming up next — grab a coffee? We have so much more to talk about tonight",
    "Q5 is next, get ready 👀 Are you ready? Tell us!",
    "Q5 in 2 minutes… what a chat so far, right?",
    "Q5 in a minute! How's everyone doing?",
    "Q5: get ready, it's a big one. Are you with us?",
    "Q5 ⏰ up next! Still here?",
    "@guest Q5 will be up in a moment, anyone new joining us?",
    "Q5 next! Who's still here?",
])
def test_a_teaser_phrase_after_the_marker_makes_a_teaser_whatever_follows(teaser):
    c = Chat()
    tease = c("host", teaser)
    fooled = c("ann", "Still here! Loving it", reply_to=tease)
    real = c("host", "Q5) What will you try first next week?")
    answer = c("bob", "A5: the survey")
    reply = c("cat", "Talking to newcomers", reply_to=real)
    res = analyse_posts(c.posts)
    assert list(res.questions) == [5]
    assert res.questions[5].post_id == real and res.questions[5].post_ids == [real]
    assert tease not in res.question_of
    # replies to the teaser are not answers; answers to the real question are
    assert numbers(res, [fooled, answer, reply]) == [None, 5, 5]


def test_teaser_words_further_into_a_real_question_do_not_make_it_a_teaser():
    c = Chat()
    ids = [c("host", text) for text in (
        "Q1: What's coming up next for your community this year?",
        "Q2: In a word, what is community?",
        "Q3: How do you get ready for an event?",
        "Q4: Next-level tools: which ones do you use?",
        "Q5 What will you try next?",
    )]
    res = analyse_posts(c.posts)
    assert [res.question_of.get(i) for i in ids] == [1, 2, 3, 4, 5]


def test_when_a_number_repeats_the_post_with_a_delimiter_is_the_question():
    c = Chat()
    loose = c("host", "Q5 Who's still with us?")  # no teaser phrase, but no delimiter either
    reply_loose = c("ann", "me!", reply_to=loose)
    real = c("host", "Q5) What will you try first?")
    copy = c("host@social.example", "Q5: What will you try first?", id="m5")  # the host elsewhere
    reply_real = c("bob", "the survey", reply_to=real)
    reply_copy = c("cat", "the forum", reply_to=copy)
    only_loose = c("host", "Q6 what else?")  # a number asked only without a delimiter stays a question
    res = analyse_posts(c.posts)
    assert res.questions[5].post_id == real and res.questions[5].post_ids == [real, copy]
    assert loose not in res.question_of and res.questions[6].post_id == only_loose
    assert numbers(res, [reply_loose, reply_real, reply_copy]) == [None, 5, 5]


def test_reasked_question_is_one_question_and_its_copies_collect_answers():
    c = Chat()
    q1 = c("host", "Q1: first?")
    q1_mastodon = c("host@social.example", "Q1: first?", id="m1")  # the host's account elsewhere
    c("host", "Q2: second?")
    again = c("host", "Q1. (re-asking for latecomers) first?")
    rt = c("someone", "RT @host: Q1: first?", repost=True)
    a = c("ann", "great question", reply_to=again)
    b = c("bob", "agreed", reply_to=q1_mastodon)
    res = analyse_posts(c.posts)
    assert sorted(res.questions) == [1, 2]
    assert res.questions[1].post_id == q1 and res.questions[1].post_ids == [q1, q1_mastodon, again]
    assert rt not in res.question_of and rt not in res.answer_of
    assert numbers(res, [a, b]) == [1, 1]
    assert res.hosts == ["host", "host@social.example"]  # one host, two platform accounts


def test_hosts_are_detected_and_participants_quoting_a_marker_are_not():
    c = Chat()
    for n in range(1, 5):
        c("host", f"Q{n}: question {n}?")
    c("cohost", "Q5: the co-host asks this one?")
    c("cohost", "Q6: and this?")
    copy = c("ann", "Q2: I keep thinking about this one")
    res = analyse_posts(c.posts)
    assert res.hosts == ["host", "cohost"]
    assert sorted(res.questions) == [1, 2, 3, 4, 5, 6] and copy not in res.question_of
    # given hosts: only theirs count
    res = analyse_posts(c.posts, hosts=["cohost"])
    assert sorted(res.questions) == [5, 6] and res.hosts == ["cohost"]


def test_host_given_once_matches_every_platform_account():
    assert qa.handle_matches("cmgrhost", "cmgrhost")
    assert qa.handle_matches("cmgrhost@social.example", "@cmgrhost")
    assert qa.handle_matches("cmgrhost.bsky.social", "CMGRhost")
    assert not qa.handle_matches("cmgrhost2", "cmgrhost")
    assert not qa.handle_matches(None, "cmgrhost")


def test_answers_by_marker_reply_and_quote():
    c = Chat()
    q1 = c("host", "Q1: first?")
    a = [c("ann", "A1: marker"), c("bob", "A 1 spaced"), c("cat", "a1) lower"), c("dan", "A1a: part one"),
         c("dan", "A1b: part two"), c("eve", "@host A1: after a mention"),
         c("fay", "@host @ann a1) after two")]
    reply = c("gus", "unprefixed reply", reply_to=q1)
    q2 = c("host", "Q2: second?")
    quote = c("hal", "quoting the question", quote_of=q2)
    late = c("ivy", "A1: I'm late to this one")
    explicit = c("jon", "A2: numbered, though it replies to Q1", reply_to=q1)
    embedded = c("kim", "Late to Q1 but A1: better late")
    own = c("host", "Love these answers!", reply_to=q1)
    rt = c("lee", "RT @ann: A1: marker", repost=True)
    rt_reply = c("lee", "RT @host: Q2: second?", repost=True, reply_to=q2)
    others = [c("mo", "Also, hello"), c("ned", "A7: no such question"), c("ole", "I agree with A1 from ann"),
              c("pat", "Answer: forty-two")]
    res = analyse_posts(c.posts)
    assert numbers(res, a) == [1] * 7
    assert numbers(res, [reply, quote, late, explicit, embedded]) == [1, 2, 1, 2, 1]
    assert numbers(res, [own, rt, rt_reply] + others) == [None] * 7


def test_custom_patterns_for_topics_and_emoji():
    c = Chat()
    c("host", "T1: Topic one — what tools?")
    c("host", "T2: Topic two")
    t1a = c("ann", "A1: tool X")
    res = analyse_posts(c.posts, question_pattern=r"T(?P<n>\d+):")
    assert sorted(res.questions) == [1, 2] and res.answer_of[t1a] == 1

    e = Chat()
    e("host", "1️⃣ What brought you here?")
    e("host", "2️⃣ What keeps you here?")
    e1 = e("ann", "➡️1 the people")
    e2 = e("bob", "@host ➡️ 2 the snacks")
    plain = e("cat", "A1: not the marker of this chat")
    res = analyse_posts(e.posts, question_pattern=r"(?P<n>\d)\ufe0f\u20e3", answer_pattern=r"➡️\s*(?P<n>\d)")
    assert sorted(res.questions) == [1, 2]
    assert numbers(res, [e1, e2, plain]) == [1, 2, None]

    g = Chat()
    g("host", "topic 3: shouting works too")
    res = analyse_posts(g.posts, question_pattern=r"(?i)TOPIC (?P<n>\d+):")  # global flag: fallback path
    assert list(res.questions) == [3]


def test_patterns_are_checked():
    with pytest.raises(ChatArchiveError, match="named group n"):
        qa.compile_pattern(r"Q(\d+)", "question")
    with pytest.raises(ChatArchiveError, match="Invalid --answer-pattern"):
        qa.compile_pattern(r"A(?P<n>\d+", "answer")
    assert qa.compile_pattern(None, "question") is None


def test_numbers_from_digits_keycaps_and_circled():
    assert [qa.to_number(v) for v in ("12", "1️⃣", "①", "🔟", "x", "", None)] == [12, 1, 1, 10, None, None, None]


def test_marker_regex_is_fast_on_hostile_prefixes():
    import time

    text = "!" * 20000 + "x"
    t0 = time.perf_counter()
    assert qa.match_marker(text, re.compile(r"Q(?P<n>\d+):")) is None
    assert qa._DEFAULT_A.match("@a " * 3000 + "x") is None
    assert time.perf_counter() - t0 < 2.0


# --------------------------------------------------------------------------
# In the archive


def qrows(db):
    return db.execute("""SELECT s.slug, q.number, q.post_id, q.id FROM questions q
                         JOIN sessions s ON s.id = q.session_id ORDER BY s.start, q.number""").fetchall()


def test_questions_and_answers_are_stored_and_stable(db):
    b = ChatBuilder(START)
    named = standard_chat(b, questions=3, people=5)
    reask = b.add("cmgrhost", "Q2: (again) What about topic 2? #cmgrchat", 25)
    hostile = b.add("cmgrhost", "Q4: <script>alert(1)</script> [bold]markup?[/bold] #cmgrchat", 45)
    b.save(db)
    analyse_archive(db)
    got = qrows(db)
    assert [(r[1], r[2]) for r in got] == [(1, named["q1"].id), (2, named["q2"].id), (3, named["q3"].id),
                                          (4, hostile.id)]
    assert db.execute("SELECT text FROM questions WHERE number = 4").fetchone()[0] == hostile.text
    q2 = got[1][3]
    assert {r[0] for r in db.execute("SELECT id FROM posts WHERE question_id = ?", [q2])} == {named["q2"].id, reask.id}
    answers = dict(db.execute("""SELECT q.number, count(p.id) FROM questions q LEFT JOIN posts p
                                 ON p.answer_to_id = q.id GROUP BY q.number""").fetchall())
    assert answers == {1: 5, 2: 5, 3: 5, 4: 0}
    assert db.execute("SELECT hosts FROM sessions").fetchone()[0] == '["cmgrhost"]'
    # more answers arrive later: same question ids, counts grow
    b.add("late", "A4: answering the hostile one #cmgrchat", 50)
    b.add("late2", "reply to Q1", 51, reply_to=named["q1"].id, matched=False)
    b.save(db)
    analyse_archive(db)
    assert [r[3] for r in qrows(db)] == [r[3] for r in got]
    answers = dict(db.execute("""SELECT q.number, count(p.id) FROM questions q LEFT JOIN posts p
                                 ON p.answer_to_id = q.id GROUP BY q.number""").fetchall())
    assert answers == {1: 6, 2: 5, 3: 5, 4: 1}


def test_hosts_given_without_a_hashtag_apply_to_every_chat(db):
    b = ChatBuilder(START)
    standard_chat(b, host="mainhost", questions=3)
    b.add("guesthost", "Q9: the guest's question #cmgrchat", 50)
    b.save(db)
    analyse_archive(db)
    assert [r[1] for r in qrows(db)] == [1, 2, 3, 9]  # detected: the host and a guest asking one
    analyse_archive(db, hosts=["guesthost"])
    assert [r[1] for r in qrows(db)] == [9]
    assert db.execute("SELECT hosts FROM sessions").fetchone()[0] == '["guesthost"]'


def test_host_and_patterns_are_remembered_per_chat(db):
    b = ChatBuilder(START)
    for n in (1, 2):
        b.add("tophost", f"T{n}: topic {n} #tchat", n * 10)
        b.add("guest", f"T{n}: guest's own topic aside #tchat", n * 10 + 1)
        for i in range(5):
            b.add(f"p{i}", f"A{n}: answer #tchat", n * 10 + 2 + i)
    b.save(db)
    analyse_archive(db)
    assert qrows(db) == []  # no Q markers in this chat
    analyse_archive(db, hashtags=["tchat"], question_pattern=r"T(?P<n>\d+):", hosts=["tophost"])
    got = qrows(db)
    assert [r[1] for r in got] == [1, 2]
    assert db.execute("SELECT count(*) FROM posts WHERE answer_to_id IS NOT NULL").fetchone()[0] == 10
    # a later import is analysed with the same settings
    b.add("tophost", "T3: a third topic #tchat", 40)
    b.add("p1", "A3: yes #tchat", 41)
    b.save(db)
    analyse_archive(db)
    assert [r[1] for r in qrows(db)] == [1, 2, 3]
    assert db.execute("SELECT hosts FROM sessions").fetchone()[0] == '["tophost"]'


def test_qa_writes_questions_and_answers_and_nothing_else(db):
    b = ChatBuilder(START)
    named = standard_chat(b, questions=3, people=5)
    b.save(db)
    analyse_archive(db)
    (sid,) = [r[0] for r in db.execute("SELECT id FROM sessions")]
    expected = (qrows(db), db.execute("SELECT id, question_id, answer_to_id FROM posts ORDER BY id").fetchall())
    db.execute("UPDATE posts SET question_id = NULL, answer_to_id = NULL")
    db.execute("DELETE FROM questions")
    session_rows = db.execute("SELECT * FROM sessions").fetchall()
    # some sessions: the posts' columns are written directly
    writer = QAWriter(db, [sid])
    ((_, members),) = sessions.member_rows(db, writer.session_ids)
    assert writer.add(sid, members) == ["cmgrhost"]  # the hosts it found, for the session summary
    assert writer.finish() == QATotals(questions=3, answers=15)
    got = db.execute("SELECT id, question_id, answer_to_id FROM posts ORDER BY id").fetchall()
    assert [r[1] for r in qrows(db)] == [1, 2, 3] and got == expected[1]
    assert db.execute("SELECT * FROM sessions").fetchall() == session_rows  # no counts, no hosts
    assert {r[0] for r in db.execute("SELECT post_id FROM questions")} == {named[f"q{n}"].id for n in (1, 2, 3)}


def test_qa_of_every_session_goes_through_the_one_pass_rewrite(db):
    b = ChatBuilder(START)
    standard_chat(b, questions=2, people=4)
    b.save(db)
    analyse_archive(db)
    expected = db.execute("SELECT id, question_id, answer_to_id FROM posts ORDER BY id").fetchall()
    with pytest.raises(ValueError):
        QAWriter(db, None)  # every session's answers must go to a PostRewrite
    db.execute("UPDATE posts SET question_id = NULL, answer_to_id = NULL")
    rewrite = PostRewrite(db.conn, conversations=False)
    writer = QAWriter(db, None, rewrite=rewrite)
    for sid, members in sessions.member_rows(db, writer.session_ids):
        writer.add(sid, members)
    assert writer.finish() == QATotals(questions=2, answers=8)
    # held back until the owner of the rewrite writes it
    assert db.execute("SELECT count(*) FROM posts WHERE answer_to_id IS NOT NULL").fetchone()[0] == 0
    rewrite.write(answers=True)
    assert db.execute("SELECT id, question_id, answer_to_id FROM posts ORDER BY id").fetchall() == expected
    assert db.execute("SELECT name FROM sqlite_temp_master").fetchall() == []
