"""URLs as every output accepts, names, dedupes and links them: one rule.

* :func:`safe_url`: an http(s) URL fit for an href or src, normalized and
  percent-encoded so it cannot break out of an attribute; None for anything
  else (javascript:, data:, relative or malformed).  :func:`is_web_url` asks
  the same question of stored values.
* :func:`canonical_url`: the key two links share when they lead to the same
  page (scheme and host in lower case, no default port, no trailing slash,
  no tracking parameters, no fragment).  The recap's link lists dedupe by it.
* :func:`link_href`: what an ``href`` to a shared link carries: the URL
  through :func:`safe_url` with its tracking parameters removed, and
  nothing for a ``t.co`` short link (an X wrapper that tracks every click
  and says nothing about where it leads; the importers expand the ones
  their data explains).

A foundation module: imports nothing of the package.  Never writes.
"""

from __future__ import annotations

import functools
import re
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.\-]*):")
_STRIP = re.compile(r"[\t\n\r]")
# Characters kept as they are in an output URL; everything else (quotes,
# spaces, <, >, backslash, parentheses, non-ASCII) is percent-encoded, so a
# URL can never break out of an attribute or a CSS url("").
URL_SAFE_CHARACTERS = "-._~:/?#[]@!$&*+,;=%"


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
    return m.group(1).lower() + ":" + quote(rest, safe=URL_SAFE_CHARACTERS)


def is_web_url(url: Any) -> bool:
    """Whether ``url`` is an http(s) URL that :func:`safe_url` accepts."""
    return safe_url(url) is not None



# Query parameters that only say who sent the click (campaigns, ad clicks,
# newsletter and share tracking); a link means the same page without them.
TRACKING_PARAMS = frozenset({
    "fbclid", "gclid", "gclsrc", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "twclid", "ttclid",
    "mc_cid", "mc_eid", "igshid", "igsh", "ref_src", "ref_url", "si", "_hsenc", "_hsmi", "mkt_tok",
    "oly_anon_id", "oly_enc_id", "vero_id", "wickedid", "s_cid", "__s", "spm", "feature",
})
TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "hsa_")
# X's share parameters (?s=20&t=...) on X's own links only: elsewhere "s" and "t" mean something.
X_HOSTS = frozenset({"twitter.com", "www.twitter.com", "x.com", "www.x.com", "mobile.twitter.com"})
X_SHARE_PARAMS = frozenset({"s", "t"})
SHORTENER_HOSTS = frozenset({"t.co"})
DEFAULT_PORTS = {"http": 80, "https": 443}


def is_tracking_param(name: str, host: str = "") -> bool:
    low = name.lower()
    return low in TRACKING_PARAMS or low.startswith(TRACKING_PREFIXES) or (host in X_HOSTS and low in X_SHARE_PARAMS)


@functools.lru_cache(maxsize=65536)
def _parts(url: str) -> tuple[str, str, str, str] | None:
    """(scheme, host[:port], path, query) of a safe URL, lower-cased, without
    its default port and tracking parameters; None when not a web URL."""
    safe = safe_url(url)
    if safe is None:
        return None
    try:
        u = urlsplit(safe)
        port = u.port
    except ValueError:
        return None
    scheme = u.scheme.lower()
    host = (u.hostname or "").lower().rstrip(".")
    if not host:
        return None
    netloc = host if port is None or DEFAULT_PORTS.get(scheme) == port else f"{host}:{port}"
    query = u.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        kept = [(k, v) for k, v in pairs if not is_tracking_param(k, host)]
        if len(kept) != len(pairs):  # re-encoded only when something goes: a query is kept as written
            query = urlencode(kept)
    return scheme, netloc, u.path, query


def canonical_url(url: str | None) -> str | None:
    """The key of a link: two URLs with the same key lead to the same page
    (``HTTPS://Example.org:443/a/?utm_source=x#top`` is ``https://example.org/a``);
    None when ``url`` is not an http(s) URL."""
    if not url:
        return None
    parts = _parts(url)
    if parts is None:
        return None
    scheme, netloc, path, query = parts
    return urlunsplit((scheme, netloc, path.rstrip("/") or "/", query, ""))


def link_href(url: str | None) -> str | None:
    """The ``href`` of a shared link: safe, without tracking parameters and
    its default port (path and fragment as written, so the page is the same);
    None for anything that is not a web URL, and for a ``t.co`` short link."""
    if not url:
        return None
    parts = _parts(url)
    if parts is None:
        return None
    scheme, netloc, path, query = parts
    if netloc.split(":", 1)[0] in SHORTENER_HOSTS:
        return None
    safe = safe_url(url) or ""
    fragment = urlsplit(safe).fragment
    return urlunsplit((scheme, netloc, path, query, fragment))

