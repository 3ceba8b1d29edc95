"""The reply network of a session: who replied to or mentioned whom, as a
static SVG (no script) with the hosts marked, and its text alternative
(the busiest pairs as a list).

The layout is a circle, busiest people first (hosts at the top): the same
session always draws the same picture, and a circle stays readable at the
sizes of a chat (a dozen to a few dozen people) without a layout library.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup, escape

from .digest import SessionDigest

MAX_PEOPLE = 30  # drawn; everyone else is in the pairs list only
TOP_PAIRS = 12
SIZE = 480
LABEL_MAX = 16


@dataclass(slots=True)
class Pair:
    a: str  # handle
    b: str
    a_to_b: int
    b_to_a: int

    @property
    def total(self) -> int:
        return self.a_to_b + self.b_to_a


def reply_network(d: SessionDigest) -> dict[str, Any] | None:
    """The SVG and the top pairs of a session; None when nobody replied to
    or mentioned anyone."""
    if not d.replies:
        return None
    degree: Counter[str] = Counter()
    weight: dict[tuple[str, str], int] = {}
    for a, b, n in d.replies:
        degree[a] += n
        degree[b] += n
        weight[(a, b)] = weight.get((a, b), 0) + n
    hosts = set(d.hosts)
    ordered = sorted(degree, key=lambda k: (k not in hosts, -degree[k], (d.people.get(k) or k).lower()))
    shown = ordered[:MAX_PEOPLE]
    index = {k: i for i, k in enumerate(shown)}
    n = len(shown)
    c = SIZE / 2
    r = SIZE / 2 - 70
    pos = {k: (c + r * math.sin(2 * math.pi * i / n), c - r * math.cos(2 * math.pi * i / n)) for k, i in index.items()}
    peak = max(weight.values())
    top_degree = max(degree.values())
    parts = [f'<svg class="net" viewBox="0 0 {SIZE} {SIZE}" role="img" aria-labelledby="net-t net-d" '
             f'xmlns="http://www.w3.org/2000/svg"><title id="net-t">Who replied to or mentioned whom</title>'
             f'<desc id="net-d">{n} people; a line for every pair who replied to or mentioned each other, thicker '
             f'for more; hosts ringed. The busiest pairs are listed below.</desc>']
    pairs: dict[tuple[str, str], Pair] = {}
    for (a, b), w in sorted(weight.items()):
        x, y = sorted((a, b))
        p = pairs.get((x, y)) or Pair(d.people.get(x, x), d.people.get(y, y), 0, 0)
        if (a, b) == (x, y):
            p.a_to_b += w
        else:
            p.b_to_a += w
        pairs[(x, y)] = p
    for (x, y), p in sorted(pairs.items()):
        if x in pos and y in pos:
            (x1, y1), (x2, y2) = pos[x], pos[y]
            width = 1 + 5 * p.total / (2 * peak)
            parts.append(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke-width="{width:.1f}">'
                         f'<title>@{escape(p.a)} ↔ @{escape(p.b)}: {p.total}</title></line>')
    for k in shown:
        px, py = pos[k]
        radius = 5 + 9 * math.sqrt(degree[k] / top_degree)
        handle = d.people.get(k, k)
        label = handle if len(handle) <= LABEL_MAX else handle[:LABEL_MAX - 1] + "…"
        host = k in hosts
        anchor = "start" if px > c + 1 else "end" if px < c - 1 else "middle"
        dx = radius + 4 if anchor == "start" else -radius - 4 if anchor == "end" else 0
        dy = 4 if anchor != "middle" else (-radius - 6 if py < c else radius + 14)
        parts.append(f'<g class="{"host" if host else "person"}"><circle cx="{px:.1f}" cy="{py:.1f}" r="{radius:.1f}">'
                     f'<title>@{escape(handle)}{" (host)" if host else ""}: {degree[k]}</title></circle>'
                     f'<text x="{px + dx:.1f}" y="{py + dy:.1f}" text-anchor="{anchor}">@{escape(label)}</text></g>')
    parts.append("</svg>")
    top = sorted(pairs.values(), key=lambda p: (-p.total, p.a.lower(), p.b.lower()))[:TOP_PAIRS]
    return {"svg": Markup("".join(parts)), "pairs": top, "people": len(degree), "shown": n,
            "hosts": [d.people[h] for h in d.hosts if h in degree]}
