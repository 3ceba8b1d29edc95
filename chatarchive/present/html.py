"""The HTML of a post, written once: the recap's pages and the Datasette
pages call these on a ``model.PostView`` (and ``present/post.css`` styles
what they write, in both).

Written as Python string building, not as a Jinja macro: a chat page holds
thousands of posts and a macro call costs ~100 µs each, this ~5 µs.

Safety: every string of a view is escaped here (``esc``) except the pieces
the view made safe already (``body``, ``av``, ``av_s``, ``who``: Markup);
hrefs and srcs in a view passed ``urls.safe_url`` or are the output's own
links, and are escaped as attribute values all the same.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from markupsafe import Markup, escape

from ..safety import css_url
from .model import Person, PostView
from .text import esc, url_domain, url_rest


@functools.lru_cache(maxsize=1)
def post_css() -> str:
    """The stylesheet of this markup (``present/post.css``): the recap inlines
    it in every page, the Datasette plugin serves it with its own."""
    return (Path(__file__).parent / "post.css").read_text(encoding="utf-8")


def _e(v: Any) -> str:
    if type(v) is str:
        return esc(v)
    return str(v) if isinstance(v, Markup) else str(escape(v))


def avatar(person: Person, size: str = "") -> Markup:
    """A person's avatar: their initials, with the picture on top set by the
    page's :func:`avatar_css` (a picture that fails to load leaves the initials)."""
    return Markup(f'<span class="av {_e(person.cls)}{" " + _e(size) if size else ""}" aria-hidden="true">'
                  f'{_e(person.initials)}</span>')


def who(person: Person, href: str | None) -> Markup:
    """A person's name (their handle when they have none), linked when ``href``."""
    name = _e(person.name or person.handle)
    return Markup(f'<a class="who" href="{_e(href)}">{name}</a>' if href else f'<span class="who">{name}</span>')


@functools.lru_cache(maxsize=8192)
def _person_markup(cls: str, initials: str, name: str, handle: str, href: str | None) -> tuple[Markup, Markup, Markup]:
    shown = _e(name or handle)
    av = f'<span class="av {_e(cls)}" aria-hidden="true">{_e(initials)}</span>'
    av_s = f'<span class="av {_e(cls)} s" aria-hidden="true">{_e(initials)}</span>'
    link = f'<a class="who" href="{_e(href)}">{shown}</a>' if href else f'<span class="who">{shown}</span>'
    return Markup(av), Markup(av_s), Markup(link)


def person_markup(person: Person, href: str | None) -> tuple[Markup, Markup, Markup]:
    """A person's avatar, small avatar and linked name (as :func:`avatar` and
    :func:`who`), made once per person and link: pages repeat them per post."""
    return _person_markup(person.cls, person.initials, person.name, person.handle, href)


def avatar_css(people: Iterable[Person], image: Callable[[str | None], str | None]) -> Markup:
    """The style rules that give each person's avatar its colour and picture
    (``image``: where the output loads a picture from, or None).  The URLs
    pass ``safety.css_url``, so they cannot leave ``url("…")``."""
    rules = []
    unique = {p.cls: p for p in people}
    for person in sorted(unique.values(), key=lambda p: p.cls):
        rule = f".{person.cls}{{--h:{person.hue}"
        src = image(person.avatar_url)
        if src:
            rule += f";--img:{css_url(src)}"
        rules.append(rule + "}")
    return Markup("\n".join(dict.fromkeys(rules)))


def _time(p: PostView, href: str | None, cls: str = "t") -> str:
    """The post's time, linked to ``href``; "time unknown" (no datetime) when it is."""
    stamp = f'<time datetime="{_e(p.iso)}">{_e(p.time)}</time>' if p.iso else f'<span class="tu">{_e(p.time)}</span>'
    return f'<a class="{cls}" href="{_e(href)}">{stamp}</a>' if href else f'<span class="{cls}">{stamp}</span>'


DELETED = "This post was deleted."
HIDDEN_PREFIX = "This post was hidden"  # archive.published.PLACEHOLDERS["hidden"]


def deleted_html(p: PostView, *, mini: bool = False) -> Markup:
    """A tombstone: it keeps its place (replies to it stay in their thread)
    and its time, and shows nothing of what it said or who said it."""
    tag = "div" if mini else "article"
    badge = "hidden" if p.placeholder.startswith(HIDDEN_PREFIX) else "removed" if p.placeholder else "deleted"
    return Markup(f'<{tag} class="{"mini" if mini else "post"} del"><div class="pb"><div class="ph">'
                  f'<span class="b bc">{badge}</span>{_time(p, p.href if mini else None)}</div>'
                  f'<p class="tx">{_e(p.placeholder) if p.placeholder else DELETED}</p></div></{tag}>')


def post_html(p: PostView) -> Markup:
    """A post: a one-line repost, or an article with the author, badges, the
    time linking to the original, the reply it answers, its text (folded
    under its content warning), what it quotes, media, links, counts and the
    sessions it belongs to; a deleted post as a tombstone."""
    if p.deleted:
        return deleted_html(p)
    if p.repost and not p.snippet:
        quote = p.quote
        out = [f'<div class="rp">{p.av_s}<span>{p.who} reposted']
        if quote:
            out.append(f' <a href="{_e(quote.href)}">@{_e(quote.handle)}</a>')
        out.append("</span>")
        if p.url or not p.iso:
            out.append(_time(p, p.url))
        out.append("</div>")
        return Markup("".join(out))
    cls = "post" + (" is-q" if p.q else "") + (" is-a" if p.a else "") + (" ctx" if p.context else "")
    out = [f'<article class="{cls}">{p.av}<div class="pb">\n<div class="ph">{p.who}<span class="hd">@{_e(p.handle)}']
    if p.on:
        out.append(f" · {_e(p.on)}")
    out.append("</span>")
    if p.q:
        out.append(f'<span class="b bq">Q{_e(p.q)}</span>')
    if p.a:
        out.append(f'<span class="b ba">A{_e(p.a)}</span>')
    if p.context:
        out.append('<span class="b bc">context</span>')
    if p.repost:
        out.append('<span class="b bc">repost</span>')
    out.append(_time(p, p.url))
    if p.row:
        out.append(f'<a class="rw" href="{_e(p.row)}" title="This post in the archive">row</a>')
    out.append("</div>\n")
    reply = p.reply_to
    if reply:
        whom = f'<a href="{_e(reply.href)}">@{_e(reply.handle)}</a>' if reply.href else f"@{_e(reply.handle)}"
        out.append(f'<p class="re">↩ to {whom}</p>')
    if p.cw:
        out.append(f'<details class="cw"><summary>CW: {_e(p.cw)}</summary>')
    out.append(f'<div class="tx{" h" if p.is_html else ""}">{_e(p.body)}</div>')
    if p.cw:
        out.append("</details>")
    if p.quote:
        out.append(f'<p class="re">❝ quoting <a href="{_e(p.quote.href)}">@{_e(p.quote.handle)}</a></p>')
    if p.media:
        out.append('<div class="md">')
        for m in p.media:
            kind = "Video" if m.video else "Image"
            alt = f": {_e(m.alt)}" if m.alt else ""
            if m.src:
                img = f'<img src="{_e(m.src)}" alt="{_e(m.alt)}" loading="lazy" decoding="async">'
                if m.href:
                    img = f'<a href="{_e(m.href)}">{img}</a>'
                cap = f'<figcaption>{"▶ " if m.video else ""}{_e(m.alt)}</figcaption>' if m.alt else ""
                out.append(f"<figure>{img}{cap}</figure>")
            elif m.href:
                out.append(f'<a class="nomedia" href="{_e(m.href)}">{kind}{alt}</a>')
            else:
                out.append(f'<span class="nomedia">{kind}{alt}</span>')
        out.append("</div>")
    if p.links:
        out.append('<div class="lk">')
        for u in p.links:
            out.append(f'<a href="{_e(u)}" rel="nofollow ugc"><b>{_e(url_domain(u))}</b><span>{_e(url_rest(u))}</span></a>')
        out.append("</div>")
    if p.likes or p.reposts or p.replies:
        out.append('<p class="pf">')
        # a narrow no-break space ties each count to its sign (word-spacing spreads the three)
        if p.likes:
            out.append(f"♥\u202f{_e(p.likes)} ")
        if p.reposts:
            out.append(f"↻\u202f{_e(p.reposts)} ")
        if p.replies:
            out.append(f"↩\u202f{_e(p.replies)}")
        out.append("</p>")
    if p.sessions:
        out.append('<p class="in">in ' + ", ".join(f'<a href="{_e(s.href)}">{_e(s.slug)}</a>' for s in p.sessions)
                   + "</p>")
    out.append("</div></article>")
    return Markup("".join(out))


def mini_html(p: PostView) -> Markup:
    """A compact post inside a reply thread or conversation; its time links to where the post is shown in full."""
    if p.deleted:
        return deleted_html(p, mini=True)
    out = [f'<div class="mini">{p.av_s}<div class="pb"><div class="ph">{p.who}<span class="hd">@{_e(p.handle)}</span>']
    if p.a:
        out.append(f'<span class="b ba">A{_e(p.a)}</span>')
    out.append(f'{_time(p, p.href)}</div><div class="tx{" h" if p.is_html else ""}">{_e(p.body)}</div>')
    media = p.media
    if media:
        n = len(media)
        alt = f": {_e(media[0].alt)}" if media[0].alt else ""
        out.append(f'<p class="re">{n} {"attachment" if n == 1 else "attachments"}{alt}</p>')
    out.append("</div></div>")
    return Markup("".join(out))


def post_list_html(views: Iterable[PostView]) -> Markup:
    """Posts as the items of a list, each with its anchor (``ol.stream``)."""
    return Markup("".join(f'<li id="{_e(v.anchor)}">{v.html}</li>' for v in views))
