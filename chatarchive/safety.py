"""The safety rules every stage shares, each written once.

* :func:`safe_url`: which URLs may become an ``href`` or ``src`` (http and
  https only, read the way a browser reads them) — used when links are
  stored, when posts are rendered, in the recap, the exports and Datasette;
* :func:`sanitize_html`: the one allowlist for HTML from a platform
  (Mastodon ``content``), applied when it is stored and again when shown;
* :func:`css_url`: a URL inside CSS ``url("…")``;
* :func:`printable`: text from a file or a post made safe for one terminal line.

A foundation module like ``models`` and ``errors``: any stage may import it,
it imports nothing of the package.
"""

from __future__ import annotations

import functools
import re
from typing import Any
from urllib.parse import quote

import nh3
from markupsafe import Markup

_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.\-]*):")
_STRIP = re.compile(r"[\t\n\r]")
# Characters kept as they are in an output URL; everything else (quotes,
# spaces, <, >, backslash, parentheses, non-ASCII) is percent-encoded, so a
# URL can never break out of an attribute or a CSS url("").
_URL_SAFE = "-._~:/?#[]@!$&*+,;=%"


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def safe_url(url: Any) -> str | None:
    """An http(s) URL fit for an href/src, normalized; None for anything else
    (javascript:, data:, vbscript:, relative or malformed URLs).

    The scheme is read as a browser reads it: leading/trailing spaces and
    control characters are ignored and tabs/newlines inside are dropped."""
    if not isinstance(url, str):
        return None
    return _safe_url(url)


@functools.lru_cache(maxsize=65536)
def _safe_url(url: str) -> str | None:
    u = _STRIP.sub("", url.strip("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0c\x0e\x0f\x10\x11\x12\x13"
                                 "\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f \t\n\r"))
    m = _SCHEME.match(u)
    if not m or m.group(1).lower() not in ("http", "https"):
        return None
    rest = u[m.end():]
    if not rest.startswith("//") or len(rest) < 3 or rest[2] in "/\\":
        return None
    if _CONTROL.search(rest):
        return None
    return m.group(1).lower() + ":" + quote(rest, safe=_URL_SAFE)


def css_url(url: str) -> Markup:
    """``url("…")`` for a URL already through :func:`safe_url` or one of ours
    (relative path); quote-free by construction."""
    return Markup('url("' + quote(url, safe=_URL_SAFE) + '")')


_ALLOWED_TAGS = {"p", "br", "a", "span"}


_EMPTY_CLASS = re.compile(r'(<(?:a|span)\b[^>]*?) class=""')
_LINK_KIND = re.compile(r"<a (?![^>]*class=)(?=[^>]*>([#@]))")


def _shared_link_href(element: str, attribute: str, value: str) -> str | None:
    """A link's href as ``urls.link_href`` writes every shared link (no
    tracking parameters, no t.co: the attribute is dropped)."""
    if element == "a" and attribute == "href":
        from .urls import link_href  # (urls builds on safe_url above)

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


def is_web_url(url: Any) -> bool:
    """Whether ``url`` is an http(s) URL that :func:`safe_url` accepts."""
    return safe_url(url) is not None


_TERMINAL_CONTROL = dict.fromkeys([*range(32), 127, *range(0x80, 0xA0)], " ")


def printable(text: str, limit: int = 120, *, strip: bool = True) -> str:
    """Text from a file made safe for a one-line message on a terminal: no
    control characters (escape sequences), no line breaks, not too long."""
    text = text.translate(_TERMINAL_CONTROL)
    if strip:
        text = text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"
