"""A :class:`~chatarchive.present.model.SessionView` with every non-host
person replaced by their pseudonym (``archive.pseudonyms``): names, handles,
author ids, avatars and profile URLs of the people, @mentions and names in
the text, the ids and URLs of their posts, the statistics.  Applied by
``load_session`` when the publication asks for it, so the recap, every
export format and whatever is built on a view (digests, feeds, cards) are
anonymized alike.

Mastodon HTML is dropped for the participants' posts (its links name the
profiles it mentions): their text is shown, linkified like the other
platforms' posts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from ..archive.pseudonyms import Pseudonyms
from ..models import Author
from .model import SessionPost, SessionView
from .text import note_html


def anonymize_view(view: SessionView, names: Pseudonyms) -> SessionView:
    """``view`` anonymized in place (and returned)."""
    # Post ids: a host's keep theirs; any other (a participant's, or a
    # parent outside the view whose author is unknown here) is replaced.
    hosts = {p.post.id for p in view.posts if names.number(p.post.author_id, p.handle) is None}
    ids = {p.post.id: names.post_id(p.post.id) for p in view.posts if p.post.id not in hosts}

    def pid(value: str | None) -> str | None:
        return value if not value or value in hosts else ids.get(value) or names.post_id(value)

    for p in view.posts:
        _anonymize_post(p, names, pid)
    view.by_id = {p.post.id: p for p in view.posts}
    for q in view.questions:
        q.post_id = pid(q.post_id)
        q.text = names.text(q.text)
    for c in view.conversations:
        c.id = pid(c.id) or c.id
    for person in view.participants:
        n = names.number(person.author_id, person.handle)
        if n is not None:
            person.author_id, person.handle, person.name = names.handle(n), names.handle(n), names.name(n)
            person.avatar_url = person.url = None
    stats = names.data(view.stats)
    view.stats = _ids_in(stats, ids)
    view.notes_markdown = {k: names.text(v) or "" for k, v in view.notes_markdown.items()}

    view.notes = {k: note_html(v) for k, v in view.notes_markdown.items()}
    return view


def _anonymize_post(p: SessionPost, names: Pseudonyms, to: Callable[[str | None], str | None]) -> None:
    sp = p.post
    n = names.number(sp.author_id, p.handle)
    changes: dict[str, Any] = {"text": names.text(sp.text), "spoiler_text": names.text(sp.spoiler_text),
               "reply_to_id": to(sp.reply_to_id), "quote_of_id": to(sp.quote_of_id),
               "conversation_id": to(sp.conversation_id), "root_id": to(sp.root_id),
               "reply_to_author": names.handle_of(sp.reply_to_author)}
    if n is not None:
        changes.update(id=to(sp.id), author_id=names.handle(n), author_handle=names.handle(n),
                       author_name=names.name(n), url=None, html=None, local_id=None, reply_to_local_id=None)
        p.handle, p.name = names.handle(n), names.name(n)
        p.author = Author(id=names.handle(n), platform=sp.platform, handle=names.handle(n), name=names.name(n))
        # pictures whose address names their author (Bluesky's CDN: /DID/) go
        p.media = [m for m in p.media if not any(sp.author_id and sp.author_id in (u or "")
                                                 for u in (m.url, m.preview_url))]
    elif sp.html and sp.platform == "mastodon":
        changes["html"] = None  # a host's Mastodon HTML links the profiles it mentions: show the text
    p.post = replace(sp, **changes)
    p.children = [to(c) or c for c in p.children]
    p.links = [names.text(u) or u for u in p.links]


def _ids_in(value: Any, ids: dict[str, str]) -> Any:
    """Post ids inside the statistics (top posts, questions) anonymized too."""
    if isinstance(value, str):
        return ids.get(value, value)
    if isinstance(value, list):
        return [_ids_in(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: _ids_in(v, ids) for k, v in value.items()}
    return value
