"""Mastodon Status JSON (sources.md §6.4, §6.6, §6.7).

Shapes read (auto-detected; one JSONL line may hold any of them):

* a list of statuses (a tag-timeline page, ``GET /api/v1/timelines/tag/…``),
  or JSONL with one status (or one page) per line;
* a single status (``GET /api/v1/statuses/:id``);
* a thread context ``{"ancestors": [...], "descendants": [...]}``
  (``GET /api/v1/statuses/:id/context``);
* a v2 search result ``{"statuses": [...], ...}``.

What ``matched`` means here: a status that is itself an item of the file (a
timeline page, a search result, a single status) is what the user fetched
for the chat, so it is ``matched = 1``.  Everything that only comes along
is context (``matched = 0``): every status of a *context* file (ancestors and
descendants alike — the context endpoint never includes the status it was
asked about), the original inside a boost, and a quoted status.  A boost
itself is stored as its own post (``id`` = the boost's uri, ``is_repost``,
author = the booster, content mirrored from the original as §6.7 says).

Identity: ``posts.id`` is the status ``uri`` (global: the same status read
from two servers is one row); the server's own ``id`` is kept as
``local_id`` with the server as ``instance``.

Which server is ``instance``?  The one that *served* the JSON, because that
is the server on which ``id`` and ``in_reply_to_id`` are valid.  The rule,
first that applies:

1. ``Context.instance`` (live capture knows it, ``import --instance`` says
   it; a host or a URL);
2. evidence in the status itself (or its boosted/quoted status): the host of
   a ``tags[].url`` (a server links hashtags to itself), else of the account
   when it is local (``acct`` without ``@``), else of a local mention;
3. the first such evidence found in the first 1,000 records of the file;
4. otherwise unknown (``NULL``): local ids are then only resolved within the
   file.

Hosts are kept with their port (``localhost:3000``) and lower-cased.

Replies: ``reply_to_local_id`` = ``in_reply_to_id``; ``reply_to_id`` is the
parent's uri when the parent is in the same file; else the uri it must
have when that can be derived (the parent's author is a local account of
a server that names statuses ``{account uri}/statuses/{id}``, as this very
status shows); else a placeholder for the absent parent,
``local:{server}/{local id}`` (``archive.writer.local_placeholder``), so
that siblings share one conversation.  ``archive.writer.resolve_local_replies``
replaces the placeholder with the parent's uri when the parent arrives,
whatever the order of files.  ``reply_to_author`` is the parent's author
when the parent is known, else the mention whose id is
``in_reply_to_account_id``.

Every field is read by its type (``sources.fields``); one bad status of a
page costs that status only.  An unreadable or out-of-range ``created_at``
is stored as NULL with a warning.

Quotes: ``quote_of_id`` is the quoted status's uri (4.4+ ``quote.quoted_status``,
a Status put directly in ``quote`` by forks, Pleroma's ``pleroma.quote``).
A ShallowQuote (``quoted_status_id``, a local id) is resolved only when the
quoted status is in the same file.  Boosts carry no counts of their own
(NULL).  Media: ``remote_url`` (the file on the author's server, the same
from every server) is preferred over ``url`` (this server's cached copy);
``description`` is the alt text.

HTML: ``content`` is rebuilt keeping only ``p``, ``br``, ``span`` and
``a[href]``, where an href is kept only when :func:`chatarchive.urls.safe_url`
accepts it (http/https, as a browser reads it; other links become their
text); ``<script>``/``<style>`` bodies are dropped; Mastodon's
``quote-inline`` fallback ("RE: <link>") is dropped when the status carries
a quote.  The result then goes through the one sanitizer every output uses,
:func:`chatarchive.safety.sanitize_html` (links get
``rel="nofollow noopener noreferrer ugc"``, hashtag and mention links their
class), so what is stored is exactly what the recap and Datasette show.
``text`` is the plain text of the same tree: ``<br>`` is a newline,
paragraphs are separated by a blank line, entities are unescaped.

Per-file state (:class:`MastodonFile`, in ``Context.state``): the serving
server (given, or guessed from the first records) and the local id -> uri
map that links replies within a file.
"""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

from ..models import Author, Media, Post, local_placeholder
from ..safety import sanitize_html
from ..timeutil import TimeProblem, source_time
from ..urls import safe_url
from .fields import count, ident, link_title, nonempty, obj, pick_time, seq, text
from .reading import Context, InputFile, Skip, each_item, json_records
from .registry import Format, register, state_of

PLATFORM = "mastodon"
LOOKAHEAD = 1000  # records read ahead to find the file's instance
MAX_KNOWN = 100_000  # local id -> uri entries kept per file (memory bound)

# The elements whose structure the rebuilt HTML keeps (the rest become their
# text); safety.sanitize_html then applies the allowlist itself.
_KEPT_TAGS = {"p", "br", "span", "a"}


# --------------------------------------------------------------------------
# HTML


_VOID = {"br", "img", "hr", "input", "meta", "link", "wbr", "source", "area", "base", "col",
         "embed", "param", "track", "keygen"}
# Elements whose content is not text a person wrote: dropped with their content.
_DROP = {"script", "style", "template", "iframe", "object", "noscript", "textarea", "select",
         "svg", "math", "title", "head", "frameset", "noembed", "noframes", "xmp"}
_PARA = {"p", "div", "blockquote", "pre", "ul", "ol", "table", "section", "article", "header",
         "footer", "h1", "h2", "h3", "h4", "h5", "h6", "figure", "dl"}
_LINE = {"li", "tr", "dt", "dd", "figcaption"}
_PARA_MARK = "\ue000"
_LINE_MARK = "\ue001"


@dataclass
class Content:
    html: str
    text: str
    links: list[str]
    hashtags: list[str]  # as displayed in the text (original case), without "#"


class _ContentParser(HTMLParser):
    """One pass over status HTML giving a reduced HTML, plain text, the
    links and the hashtags as written.  Never recursive."""

    def __init__(self, drop_quote_inline: bool):
        super().__init__(convert_charrefs=True)
        self.drop_quote_inline = drop_quote_inline
        self.html: list[str] = []
        self.text: list[str] = []
        self.links: list[str] = []
        self.hashtags: list[str] = []
        self.stack: list[tuple[str, str]] = []  # (tag, role)
        self.open_count: dict[str, int] = {}
        self.dropping = 0
        self.anchor_text: list[str] | None = None  # collecting a hashtag anchor's text

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, dict(attrs), closed=tag in _VOID)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, dict(attrs), closed=True)

    def _start(self, tag: str, attrs: dict[str, str | None], closed: bool) -> None:
        classes = (attrs.get("class") or "").split()
        if self.dropping or tag in _DROP or (
            tag == "span" and self.drop_quote_inline and "quote-inline" in classes
        ):
            if not closed:
                self.stack.append((tag, "drop"))
                self.open_count[tag] = self.open_count.get(tag, 0) + 1
                self.dropping += 1
            return
        role = "keep" if tag in _KEPT_TAGS else "strip"
        if tag == "br":
            self.html.append("<br>")
            self.text.append("\n")
            return
        if tag in _PARA:
            self.text.append(_PARA_MARK)
        elif tag in _LINE:
            self.text.append(_LINE_MARK)
        if tag == "a":
            href = safe_url(attrs.get("href"))
            rel = (attrs.get("rel") or "").split()
            if "hashtag" in classes or "tag" in rel:
                role = "hashtag"
                self.anchor_text = []
            elif "mention" in classes:
                role = "mention"
            elif href and href not in self.links:
                self.links.append(href)
            if href:
                self.html.append(f'<a href="{html_lib.escape(href)}">')
            else:
                role = "strip" if role == "keep" else role  # no usable target: text only
                if role != "strip":
                    self.html.append("<a>")
        elif role == "keep":
            self.html.append(f"<{tag}>")
        if not closed:
            self.stack.append((tag, role))
            self.open_count[tag] = self.open_count.get(tag, 0) + 1

    def handle_endtag(self, tag: str) -> None:
        # Close up to the matching open element; a stray end tag is ignored
        # (counted, so hostile markup cannot make this quadratic).
        if not self.open_count.get(tag):
            return
        while self.stack:
            t, role = self.stack.pop()
            self.open_count[t] -= 1
            self._closed(t, role)
            if t == tag:
                return

    def _closed(self, t: str, role: str) -> None:
        if role == "drop":
            self.dropping -= 1
            return
        if self.dropping:
            return
        if role == "hashtag" and self.anchor_text is not None:
            shown = "".join(self.anchor_text).strip()
            if shown.startswith("#") and len(shown) > 1:
                self.hashtags.append(shown[1:])
            self.anchor_text = None
        if role != "strip" and t in _KEPT_TAGS:
            self.html.append(f"</{t}>")
        elif (t in _PARA or t in _LINE) and self.html and self.html[-1] not in ("<br>", "</p>"):
            self.html.append("<br>")  # a stripped block (li, div, blockquote…) still ends a line
        if t in _PARA:
            self.text.append(_PARA_MARK)
        elif t in _LINE:
            self.text.append(_LINE_MARK)

    def handle_data(self, data: str) -> None:
        if self.dropping or not data:
            return
        if self.anchor_text is not None:
            self.anchor_text.append(data)
        self.html.append(html_lib.escape(data, quote=False))
        if not self.text or self.text[-1] in ("\n", _PARA_MARK, _LINE_MARK):
            data = data.lstrip("\r\n")  # source formatting right after a break
        self.text.append(data)

    def plain_text(self) -> str:
        s = "".join(self.text).replace(_PARA_MARK + _LINE_MARK, _PARA_MARK)
        s = re.sub(f"[\n{_LINE_MARK}]*{_PARA_MARK}[{_PARA_MARK}{_LINE_MARK}\n]*", _PARA_MARK, s)
        s = re.sub(f"\n*{_LINE_MARK}[{_LINE_MARK}\n]*", "\n", s)
        s = s.strip(_PARA_MARK + _LINE_MARK)
        return s.replace(_PARA_MARK, "\n\n").strip()


def parse_content(content: str | None, *, drop_quote_inline: bool = False) -> Content:
    """Sanitized HTML, plain text, links and hashtags of a status ``content``."""
    if not content:
        return Content(html="", text="", links=[], hashtags=[])
    p = _ContentParser(drop_quote_inline)
    p.feed(content)
    p.close()
    return Content(html=str(sanitize_html("".join(p.html))), text=p.plain_text(),
                   links=p.links, hashtags=p.hashtags)


# --------------------------------------------------------------------------
# Instances and handles


def host_of(url: str | None) -> str | None:
    """Host (with port) of a URL, lower-cased; a bare host is returned as is."""
    if not url or not isinstance(url, str):
        return None
    s = url.strip()
    if "//" not in s:
        s = "https://" + s
    try:
        netloc = urlsplit(s).netloc
    except ValueError:
        return None
    netloc = netloc.rsplit("@", 1)[-1].lower()
    return netloc or None


def _is_local(acct: Any) -> bool:
    return isinstance(acct, str) and bool(acct) and "@" not in acct


def _own_evidence(status: dict) -> str | None:
    for tag in seq(status.get("tags")):
        if isinstance(tag, dict):
            host = host_of(tag.get("url"))
            if host:
                return host
    account = obj(status.get("account"))
    if _is_local(account.get("acct")):
        host = host_of(nonempty(account.get("url")) or account.get("uri"))
        if host:
            return host
    for m in seq(status.get("mentions")):
        if isinstance(m, dict) and _is_local(m.get("acct")):
            host = host_of(m.get("url"))
            if host:
                return host
    return None


def instance_evidence(status: dict) -> str | None:
    """The serving server as far as this status (and the statuses nested in
    it, which the same server rendered) can tell, else None."""
    todo = [status]
    while todo:
        s = todo.pop()
        if not isinstance(s, dict):
            continue
        found = _own_evidence(s)
        if found:
            return found
        todo.extend(n for n in (s.get("reblog"), _quoted_status(s)) if isinstance(n, dict))
    return None


def global_acct(acct: Any, url: Any, instance: str | None) -> str | None:
    """``acct`` made global: a local ``user`` becomes ``user@host``."""
    if not isinstance(acct, str) or not acct.lstrip("@"):
        return None
    acct = acct.lstrip("@")
    if "@" in acct:
        return acct
    host = host_of(url) or instance
    return f"{acct}@{host}" if host else acct


def account_to_author(account: dict, instance: str | None) -> Author:
    url = nonempty(account.get("url"))
    uri = nonempty(account.get("uri"))
    handle = global_acct(nonempty(account.get("acct")) or account.get("username"), url or uri, instance)
    key = uri or url
    if not key:
        if not handle:
            raise Skip("status account has neither uri, url nor acct")
        key = f"acct:{handle}"
    return Author(
        id=key,
        platform=PLATFORM,
        handle=handle,
        name=nonempty(account.get("display_name")) or nonempty(account.get("username")),
        avatar_url=nonempty(account.get("avatar")) or nonempty(account.get("avatar_static")),
        url=url or uri,
        unlisted=account_unlisted(account),
    )


def account_unlisted(account: dict) -> bool | None:
    """Whether the account opted out of being indexed (``noindex: true``, or
    Mastodon 4.2's ``indexable: false``); None when the account says neither."""
    noindex, indexable = account.get("noindex"), account.get("indexable")
    if noindex is True or indexable is False:
        return True
    if noindex is False or indexable is True:
        return False
    return None


# --------------------------------------------------------------------------
# Statuses


def _quoted_status(status: dict) -> dict | None:
    """The quoted status object, whichever shape carries it: 4.4+ Quote
    ``{state, quoted_status}``, a Status put directly in ``quote`` (forks),
    or Pleroma/Akkoma's ``pleroma.quote``."""
    q = status.get("quote")
    if isinstance(q, dict):
        inner = q.get("quoted_status")
        if isinstance(inner, dict):
            return inner
        if "uri" in q and "account" in q:
            return q
    pl = status.get("pleroma")
    if isinstance(pl, dict) and isinstance(pl.get("quote"), dict):
        return pl["quote"]
    return None


def _quoted_local_id(status: dict) -> str | None:
    q = status.get("quote")
    if isinstance(q, dict) and ident(q.get("quoted_status_id")) is not None:
        return ident(q["quoted_status_id"])  # ShallowQuote
    pl = status.get("pleroma")
    if isinstance(pl, dict) and ident(pl.get("quote_id")) is not None:
        return ident(pl["quote_id"])
    return None


_STATUS_PATH = "/statuses/"


def derived_parent_uri(status: dict, author_uri: str | None, parent_local: str, mention: dict | None) -> str | None:
    """The uri the absent parent must have, when the file shows how this
    server names statuses: this status is local and its uri is
    ``{account uri}/statuses/{id}`` (Mastodon's scheme), and the parent's
    author is local too (the same account, or a local mention) — then the
    parent is ``{that account's uri}/statuses/{parent id}``."""
    account = obj(status.get("account"))
    local_id = ident(status.get("id"))
    if not author_uri or not local_id or not _is_local(account.get("acct")):
        return None
    if status.get("uri") != f"{author_uri}{_STATUS_PATH}{local_id}":
        return None
    parent_account = ident(status.get("in_reply_to_account_id"))
    if parent_account is not None and parent_account == ident(account.get("id")):
        return f"{author_uri}{_STATUS_PATH}{parent_local}"
    if mention is not None and _is_local(mention.get("acct")) and isinstance(mention.get("username"), str):
        base = author_uri.rsplit("/", 1)[0]  # https://host/users
        if base.endswith("/users"):
            return f"{base}/{mention['username']}{_STATUS_PATH}{parent_local}"
    return None


def _is_status(v: Any) -> bool:
    return (
        isinstance(v, dict)
        and isinstance(v.get("uri"), str)
        and "created_at" in v
        and isinstance(v.get("account"), dict)
        and ("content" in v or "reblog" in v)
    )


# (instance, local id) -> (uri, author handle)
Known = dict[tuple[str | None, str], tuple[str, str | None]]


def status_to_post(
    status: dict,
    *,
    instance: str | None,
    matched: bool,
    known: Known | None = None,
    root_id: str | None = None,
) -> Post:
    """Map one Status as served by ``instance`` to a Post.

    A boost maps to the boost itself (``is_repost``); use
    :func:`status_to_posts` to also get the boosted and quoted statuses as
    context posts.  ``known`` maps (instance, local id) to (uri, handle) for
    statuses seen nearby, to link replies and shallow quotes at once."""
    if not _is_status(status):
        raise Skip("not a Mastodon status (needs uri, created_at, account, content)")
    known = known if known is not None else {}
    warnings: list[str] = []
    uri = status["uri"]
    if not uri:
        raise Skip("the status uri is empty")
    local_id = ident(status.get("id"))
    author = account_to_author(status["account"], instance)
    reblog = status.get("reblog")
    shown: dict = reblog if isinstance(reblog, dict) and _is_status(reblog) else status  # a boost shows the original
    quoted = _quoted_status(shown)
    quoted_local = _quoted_local_id(shown)
    content = parse_content(text(shown.get("content")), drop_quote_inline=bool(quoted or quoted_local))

    hashtags: list[str] = []
    seen_tags: set[str] = set()
    written = {t.lower(): t for t in content.hashtags}
    for tag in seq(shown.get("tags")):
        name = nonempty(obj(tag).get("name"))
        if name and name.lower() not in seen_tags:
            seen_tags.add(name.lower())
            hashtags.append(written.get(name.lower()) or name)
    for t in content.hashtags:  # anchors a server did not list in tags[]
        if t.lower() not in seen_tags:
            seen_tags.add(t.lower())
            hashtags.append(t)

    mentions: list[str] = []
    mention_by_id: dict[str, dict] = {}
    for m in seq(shown.get("mentions")):
        if not isinstance(m, dict):
            continue
        acct = global_acct(nonempty(m.get("acct")) or m.get("username"), m.get("url"), instance)
        if acct:
            if acct not in mentions:
                mentions.append(acct)
            mid = ident(m.get("id"))
            if mid is not None:
                mention_by_id[mid] = {**m, "global": acct}

    links = list(content.links)
    titles: dict[str, str] = {}
    card = shown.get("card")
    if isinstance(card, dict):
        card_url = safe_url(card.get("url"))
        if card_url and card_url not in links:
            links.append(card_url)
        if card_url and (title := link_title(card.get("title"))):
            titles[card_url] = title

    media = []
    for a in seq(shown.get("media_attachments")):
        if not isinstance(a, dict):
            continue
        # remote_url is the file on the author's server: the same for every
        # server that shows the status (url is this server's cached copy).
        url = nonempty(a.get("remote_url")) or nonempty(a.get("url"))
        if url:
            media.append(Media(url=url, type=text(a.get("type")), alt=nonempty(a.get("description")),
                               preview_url=nonempty(a.get("preview_url"))))

    # A boost is never a reply itself (its in_reply_to_* are null).
    reply_local = ident(status.get("in_reply_to_id")) if reblog is None else None
    reply_to_id = reply_to_author = None
    if reply_local is not None:
        parent = known.get((instance, reply_local))
        if parent:
            reply_to_id, reply_to_author = parent
        acc_id = ident(status.get("in_reply_to_account_id"))
        mention = mention_by_id.get(acc_id) if acc_id is not None else None
        if not reply_to_author and acc_id is not None:
            # in_reply_to_account_id may name the thread's first author rather
            # than the parent's (self-reply chains); the parent wins when known.
            if acc_id == ident(status["account"].get("id")):
                reply_to_author = author.handle
            elif mention is not None:
                reply_to_author = mention["global"]
        if reply_to_id is None:
            # the parent is not in this file: its uri when it can be known,
            # else a stand-in siblings share (resolved when the parent arrives)
            reply_to_id = derived_parent_uri(status, nonempty(obj(status["account"]).get("uri")), reply_local,
                                             mention) or local_placeholder(instance, reply_local)

    quote_of_id = None
    if quoted is not None and nonempty(quoted.get("uri")):
        quote_of_id = quoted["uri"]
    elif quoted_local is not None and (instance, quoted_local) in known:
        quote_of_id = known[(instance, quoted_local)][0]

    if reblog is not None:
        counts: dict[str, int | None] = {"like": None, "repost": None, "reply": None, "quote": None}
    else:
        counts = {
            "like": count(status.get("favourites_count"), "favourites_count", warnings),
            "repost": count(status.get("reblogs_count"), "reblogs_count", warnings),
            "reply": count(status.get("replies_count"), "replies_count", warnings),
            "quote": count(status.get("quotes_count"), "quotes_count", warnings),
        }
    if root_id is None and status.get("in_reply_to_id") is None and reblog is None:
        root_id = uri  # not a reply: its own conversation root
    return Post(
        id=uri,
        platform=PLATFORM,
        source="mastodon",
        created_at=pick_time([("created_at", status.get("created_at"))], warnings),
        author=author,
        text=content.text,
        html=content.html if text(shown.get("content")) else None,
        url=nonempty(status.get("url")) or nonempty(shown.get("url")) or uri,
        reply_to_id=reply_to_id,
        reply_to_author=reply_to_author,
        root_id=root_id if reblog is None else None,
        quote_of_id=quote_of_id if reblog is None else None,
        is_repost=reblog is not None,
        lang=nonempty(shown.get("language")),
        like_count=counts["like"],
        repost_count=counts["repost"],
        reply_count=counts["reply"],
        quote_count=counts["quote"],
        matched=matched,
        hashtags=hashtags,
        mentions=mentions,
        links=links,
        link_titles=titles,
        media=media,
        local_id=local_id,
        instance=instance,
        reply_to_local_id=reply_local,
        spoiler_text=nonempty(shown.get("spoiler_text")),
        edited_at=_edited_at(status.get("edited_at")),
        raw=status,
        warnings=warnings,
    )


def _edited_at(value: Any) -> str | None:
    """An edit time when it is a real one; an odd one is dropped (the post
    keeps its text either way)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return source_time(value)
    except TimeProblem:
        return None


def status_to_posts(
    status: dict,
    *,
    instance: str | None,
    matched: bool,
    known: Known | None = None,
    root_id: str | None = None,
) -> list[Post]:
    """The status, then as context (matched=False) the boosted original and
    any quoted statuses (a quote of a quote too), each once."""
    out = [status_to_post(status, instance=instance, matched=matched, known=known, root_id=root_id)]
    todo = []
    if _is_status(status.get("reblog")):
        todo.append(status["reblog"])
    q = _quoted_status(status)
    if _is_status(q):
        todo.append(q)
    seen = {out[0].id}
    while todo:
        s = todo.pop(0)
        if s["uri"] in seen:
            continue
        seen.add(s["uri"])
        try:
            out.append(status_to_post(s, instance=instance, matched=False, known=known))
        except Skip:
            continue  # a broken embedded copy costs itself, not the status
        q = _quoted_status(s)
        if _is_status(q):
            todo.append(q)
    return out


# --------------------------------------------------------------------------
# Files


@dataclass
class MastodonFile:
    """Per-file state: which server served the file, and the statuses seen
    so far by (instance, local id), so replies and shallow quotes link at once."""

    explicit: str | None = None  # Context.instance, as a host
    guessed: str | None = None  # from the first records of the file
    known: Known = field(default_factory=dict)

    def instance_for(self, status: dict) -> str | None:
        return self.explicit or instance_evidence(status) or self.guessed

    def remember(self, status: dict) -> None:
        todo = [status]
        while todo:
            s = todo.pop()
            if not _is_status(s):
                continue
            local = ident(s.get("id"))
            if local is not None and s["uri"]:
                if len(self.known) >= MAX_KNOWN:
                    self.known.clear()
                account = obj(s.get("account"))
                handle = global_acct(nonempty(account.get("acct")), nonempty(account.get("url")) or account.get("uri"),
                                     self.instance_for(s))
                self.known[(self.instance_for(s), local)] = (s["uri"], handle)
            todo.extend(n for n in (s.get("reblog"), _quoted_status(s)) if n)


def _evidence_or_none(status: dict) -> str | None:
    try:
        return instance_evidence(status)
    except Exception:
        return None


def new_state(ctx: Context) -> MastodonFile:
    return MastodonFile(explicit=host_of(ctx.instance) if ctx.instance else None)


def _statuses_in(value: Any) -> Iterator[dict]:
    if isinstance(value, list):
        yield from (v for v in value if isinstance(v, dict))
    elif isinstance(value, dict):
        if "ancestors" in value or "descendants" in value:
            for key in ("ancestors", "descendants"):
                yield from (v for v in seq(value.get(key)) if isinstance(v, dict))
        elif isinstance(value.get("statuses"), list):
            yield from (v for v in value["statuses"] if isinstance(v, dict))
        else:
            yield value


def records(f: InputFile, ctx: Context) -> Iterator[tuple[str, Any]]:
    """JSON/JSONL records, read ahead a little so that the file's server is
    known (and nearby replies can be linked) before the first status is mapped."""
    state = state_of(ctx, MastodonFile)
    it = json_records(f, ctx)
    ahead = []
    for loc, rec in it:
        ahead.append((loc, rec))
        if len(ahead) >= LOOKAHEAD:
            break
    if state.explicit is None:
        for _, rec in ahead:
            for s in _statuses_in(rec):
                state.guessed = _evidence_or_none(s)
                if state.guessed:
                    break
            if state.guessed:
                break
    for _, rec in ahead:
        if not isinstance(rec, Skip):
            for s in _statuses_in(rec):
                try:
                    state.remember(s)
                except Exception:
                    pass
    yield from ahead
    yield from it


def normalize(value: Any, ctx: Context) -> Iterator[Post]:
    """One record: a status list, a status, a context or a search result.
    Each id is yielded once; a status both listed and quoted/boosted in the
    same record keeps its matched sighting."""
    out: dict[str, Post] = {}
    for p in _normalize(value, ctx):
        prior = out.get(p.id)
        if prior is None or (p.matched and not prior.matched):
            out[p.id] = p
    return iter(out.values())


def _normalize(value: Any, ctx: Context) -> Iterator[Post]:
    state = state_of(ctx, MastodonFile)
    if isinstance(value, dict) and ("ancestors" in value or "descendants" in value):
        ancestors = value.get("ancestors") or []
        descendants = value.get("descendants") or []
        if not isinstance(ancestors, list) or not isinstance(descendants, list):
            raise Skip("context ancestors/descendants are not lists")
        statuses = [s for s in ancestors + descendants if isinstance(s, dict)]
        # ancestors run root -> parent; a root with no parent is the real root
        root = None
        if ancestors and isinstance(ancestors[0], dict) and ancestors[0].get("in_reply_to_id") is None:
            root = nonempty(ancestors[0].get("uri"))
        matched = False
    else:
        statuses = list(_statuses_in(value))
        root = None
        matched = True
        if isinstance(value, dict) and "statuses" in value and not statuses:
            return  # an empty search result
        if not statuses or not any(_is_status(s) for s in statuses):
            raise Skip("not a Mastodon status, status list or context")
    if state.explicit is None and state.guessed is None:
        # called without records() (live capture, tests): this record's evidence
        state.guessed = next(filter(None, (_evidence_or_none(s) for s in statuses if isinstance(s, dict))), None)
    for s in statuses:
        try:
            state.remember(s)
        except Exception:
            pass

    def one(s: dict) -> list[Post]:
        if not _is_status(s):
            raise Skip("not a Mastodon status (needs uri, created_at, account, content)")
        return status_to_posts(s, instance=state.instance_for(s), matched=matched, known=state.known, root_id=root)

    def name(i: int, s: dict) -> str:
        sid = ident(s.get("id")) if isinstance(s, dict) else None
        return f"status {i} (id {sid})" if sid else f"status {i}"

    yield from each_item(ctx, statuses, name, one)


def _sniff(value: Any) -> bool:
    if isinstance(value, list):
        return bool(value) and _is_status(value[0])
    if not isinstance(value, dict):
        return False
    if "ancestors" in value and "descendants" in value:
        a, d = value.get("ancestors") or [], value.get("descendants") or []
        if not isinstance(a, list) or not isinstance(d, list):
            return False
        items = a + d
        return not items or _is_status(items[0])
    if isinstance(value.get("statuses"), list) and value["statuses"]:
        return _is_status(value["statuses"][0])
    return _is_status(value)


FORMAT = register(Format(
    name="mastodon",
    description="Mastodon statuses (tag timeline pages, statuses, thread contexts)",
    kind="json",
    sniff=_sniff,
    normalize=normalize,
    records=records,
    new_state=new_state,
))
