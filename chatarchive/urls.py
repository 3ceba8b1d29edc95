"""Shared links as every output names, dedupes and links them: one rule.

* :func:`canonical_url`: the key two links share when they lead to the same
  page (scheme and host in lower case, no default port, no trailing slash,
  no tracking parameters, no fragment).  The recap's link lists dedupe by it.
* :func:`link_href`: what an ``href`` to a shared link carries: the URL
  through ``safety.safe_url`` with its tracking parameters removed, and
  nothing for a ``t.co`` short link (an X wrapper that tracks every click
  and says nothing about where it leads; the importers expand the ones
  their data explains).

May import: safety.  Never writes.
"""

from __future__ import annotations

import functools
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .safety import safe_url

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

