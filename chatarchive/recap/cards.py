"""The preview card of a session (``cards/SLUG.png``, 1200×630, what Mastodon,
Bluesky and X show when the recap's link is posted): title, date, posts,
people and the question that drew the most answers.

Drawn with Pillow's built-in font (no font file to ship or find) and saved
without any timestamp, so the same session gives the same bytes and
``files.SiteWriter`` leaves an unchanged card untouched.
"""

from __future__ import annotations

import io
from typing import Any

WIDTH, HEIGHT = 1200, 630
MARGIN = 72
INK = (255, 255, 255)
MUTED = (214, 210, 250)
BACKGROUND = (75, 63, 208)  # the site's accent (favicon)
PANEL = (58, 48, 170)


def _wrap(draw: Any, text: str, font: Any, width: int, lines: int) -> list[str]:
    """``text`` cut into at most ``lines`` lines of at most ``width`` pixels (the last one with "…")."""
    words = text.split()
    out: list[str] = []
    current = ""
    for word in words:
        trial = f"{current} {word}".strip()
        if draw.textlength(trial, font=font) <= width:
            current = trial
            continue
        if current:
            out.append(current)
        current = word
        while draw.textlength(current, font=font) > width and len(current) > 1:  # one very long word
            cut = len(current)
            while cut > 1 and draw.textlength(current[:cut], font=font) > width:
                cut -= 1
            out.append(current[:cut])
            current = current[cut:]
        if len(out) >= lines:
            break
    if current and len(out) < lines:
        out.append(current)
    if len(out) > lines or (out and " ".join(out) != " ".join(words)):
        out = out[:lines]
        last = out[-1]
        while last and draw.textlength(last + "…", font=font) > width:
            last = last[:-1]
        out[-1] = last.rstrip() + "…"
    return out


def session_card(*, title: str, date: str, posts: int, people: int, question: str | None,
                 site_title: str) -> bytes:
    """The PNG of one session's card."""
    from PIL import Image, ImageDraw, ImageFont

    img = Image.new("RGB", (WIDTH, HEIGHT), BACKGROUND)
    draw = ImageDraw.Draw(img)
    small = ImageFont.load_default(size=30)
    big = ImageFont.load_default(size=64)
    mid = ImageFont.load_default(size=36)
    y = MARGIN
    draw.text((MARGIN, y), site_title, font=small, fill=MUTED)
    y += 60
    for line in _wrap(draw, title, big, WIDTH - 2 * MARGIN, 2):
        draw.text((MARGIN, y), line, font=big, fill=INK)
        y += 78
    draw.text((MARGIN, y + 6), date, font=mid, fill=MUTED)
    y += 80
    if question:
        draw.rounded_rectangle((MARGIN - 20, y, WIDTH - MARGIN + 20, y + 140), radius=18, fill=PANEL)
        draw.text((MARGIN, y + 16), "Most answered question", font=small, fill=MUTED)
        for i, line in enumerate(_wrap(draw, question, mid, WIDTH - 2 * MARGIN, 2)):
            draw.text((MARGIN, y + 58 + 44 * i), line, font=mid, fill=INK)
    stats = f"{posts:,} posts  ·  {people:,} people"
    draw.text((MARGIN, HEIGHT - MARGIN - 24), stats, font=mid, fill=INK)
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=6)  # no tEXt/tIME chunks: the same input, the same bytes
    return buf.getvalue()
