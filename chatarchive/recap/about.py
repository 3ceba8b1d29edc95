"""``about.html``: who keeps the archive, what it holds and why, how to be
removed from it, and which of the platforms' signals it honours (#11).

The words come from the archive's settings (``chatarchive settings DB
--owner --contact --purpose --removal``), with plain defaults for those not
set; the footer of every page (``templates/base.html``) links here.  The
values are the host's own text: they reach the page through autoescape, a
contact becomes a link only as an e-mail address or an http(s) URL.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from markupsafe import Markup

from ..archive.editorial import settings
from ..archive.published import Publication
from ..archive.queries import Connection, connection
from ..urls import safe_url

ABOUT = "about.html"

# an address worth a mailto: link (anything else stays plain text)
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")

PLATFORM_NAMES = {"x": "X", "mastodon": "Mastodon", "bluesky": "Bluesky"}


def contact_link(contact: str | None) -> str | None:
    """The href for the owner's contact: mailto: for an e-mail address, the
    URL itself for an http(s) URL, None for anything else (shown as text)."""
    if not contact:
        return None
    value = contact.strip()
    if value.lower().startswith("mailto:"):
        value = value[7:]
    if _EMAIL.fullmatch(value):
        return "mailto:" + quote(value, safe="@.+-_")
    return safe_url(value)


def about_context(db: Connection, title: str, hashtags: list[str], publication: Publication) -> dict[str, Any]:
    """The variables of about.html."""
    conn = connection(db)
    values = settings(conn)
    platforms = [PLATFORM_NAMES.get(p, p) for (p,) in conn.execute(
        "SELECT DISTINCT platform FROM posts ORDER BY platform")]
    contact = values.get("contact")
    return {
        "root": "", "page_title": "About this archive", "title": title, "avatar_css": Markup(""),
        "owner": values.get("owner"), "contact": contact, "contact_href": contact_link(contact),
        "purpose": values.get("purpose"), "removal": values.get("removal"),
        "hashtags": hashtags, "platforms": platforms,
        "include_unlisted": publication.include_unlisted,
    }
