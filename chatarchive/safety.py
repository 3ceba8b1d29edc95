"""The safety rules every stage shares, each written once.

* which URLs may become an ``href`` or ``src`` lives in ``urls``
  (:func:`~chatarchive.urls.safe_url`), with the other URL rules;
* :func:`sanitize_html`: the one allowlist for HTML from a platform
  (Mastodon ``content``), applied when it is stored and again when shown;
* :func:`css_url`: a URL inside CSS ``url("…")``;
* :func:`printable`: text from a file or a post made safe for one terminal line.

A foundation module like ``models`` and ``errors``: any stage may import it;
it imports only ``urls``.
"""

from __future__ import annotations

import re
from urllib.parse import quote

import nh3
from markupsafe import Markup

from .urls import URL_SAFE_CHARACTERS, link_href


def css_url(url: str) -> Markup:
    """``url("…")`` for a URL already through :func:`safe_url` or one of ours
    (relative path); quote-free by construction."""
    return Markup('url("' + quote(url, safe=URL_SAFE_CHARACTERS) + '")')


_ALLOWED_TAGS = {"p", "br", "a", "span"}


_EMPTY_CLASS = re.compile(r'(<(?:a|span)\b[^>]*?) class=""')
_LINK_KIND = re.compile(r"<a (?![^>]*class=)(?=[^>]*>([#@]))")


def _shared_link_href(element: str, attribute: str, value: str) -> str | None:
    """A link's href as ``urls.link_href`` writes every shared link (no
    tracking parameters, no t.co: the attribute is dropped)."""
    if element == "a" and attribute == "href":

        return link_href(value)
    return value


def sanitize_html(html: str) -> Markup:
    """Re-sanitize Mastodon HTML (it was sanitized on import, but the archive
    may come from anywhere): paragraphs, line breaks, http(s) links only.
    Links whose text starts with # or @ get a class so they can look like
    hashtags and mentions (inserted right after ``<a ``: always well formed)."""
    clean = nh3.clean(
        html,
        tags=_ALLOWED_TAGS,
        clean_content_tags={"script", "style", "template", "textarea", "title", "noscript", "iframe"},
        attributes={"a": {"href"}},
        allowed_classes={"span": {"invisible", "ellipsis"}, "a": {"mention", "hashtag"}},
        url_schemes={"http", "https"},
        url_relative="deny",
        link_rel="nofollow noopener noreferrer ugc",
        strip_comments=True,
        attribute_filter=_shared_link_href,
    )
    clean = _EMPTY_CLASS.sub(r"\1", clean)
    clean = _LINK_KIND.sub(lambda m: f'<a class="{"hashtag" if m.group(1) == "#" else "mention"}" ', clean)
    return Markup(clean)


_TERMINAL_CONTROL = dict.fromkeys([*range(32), 127, *range(0x80, 0xA0)], " ")


def printable(text: str, limit: int = 120, *, strip: bool = True) -> str:
    """Text from a file made safe for a one-line message on a terminal: no
    control characters (escape sequences), no line breaks, not too long."""
    text = text.translate(_TERMINAL_CONTROL)
    if strip:
        text = text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"
