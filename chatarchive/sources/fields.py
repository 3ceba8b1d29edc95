"""Reading one field of a source record by its type, never trusting it.

A file can hold anything where a field should be: a number for a handle,
a list for an object, ``1e20`` for a count, ``0000-01-01`` for a time.
The normalizers read every field through these helpers, so a wrong type
is treated as the field being absent (and a wrong time or count as
unknown, with a warning) instead of raising half-way through a record;
what must be there (a post's id) is checked where it is read, with a
plain ``Skip`` reason.  ``sources.check`` is the gate behind them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from ..timeutil import TimeProblem, source_time

MAX_COUNT = (1 << 63) - 1


def obj(v: Any) -> dict:
    """``v`` when it is a JSON object, else an empty one."""
    return v if isinstance(v, dict) else {}


def seq(v: Any) -> list:
    """``v`` when it is a JSON list, else an empty one."""
    return v if isinstance(v, list) else []


def text(v: Any) -> str | None:
    """``v`` when it is text (possibly empty), else None."""
    return v if isinstance(v, str) else None


def nonempty(v: Any) -> str | None:
    """``v`` when it is non-empty text, else None."""
    return v if isinstance(v, str) and v else None


LINK_TITLE_MAX = 300


def link_title(v: Any) -> str | None:
    """A link's page title from the data (X ``entities.urls[].title``, a
    Mastodon card, a Bluesky external embed): text on one line, without
    control characters, at most 300 characters; None when there is none."""
    if not isinstance(v, str):
        return None
    # the character filter only when needed: most titles are all printable
    title = " ".join((v if v.isprintable() else "".join(c for c in v if c.isprintable() or c.isspace())).split())
    return title[:LINK_TITLE_MAX] or None


def ident(v: Any) -> str | None:
    """An id: non-empty text, or an integer written as text; else None."""
    if isinstance(v, str):
        return v or None
    if isinstance(v, int) and not isinstance(v, bool):
        return str(v)
    return None


def count(v: Any, name: str = "count", warnings: list[str] | None = None) -> int | None:
    """A count: a non-negative integer (also written as 3.0 or "3"); None
    when unknown.  One too large to be true (above 2^63) or negative is
    unknown too, with a warning."""
    if v is None or isinstance(v, bool):
        return None
    n: int | None = None
    if isinstance(v, int):
        n = v
    elif isinstance(v, float):
        if math.isfinite(v) and v == int(v):
            n = int(v)
        elif warnings is not None:
            warnings.append(f"{name} {v} is not a count; stored as unknown")
            return None
    elif isinstance(v, str) and v.strip().isdigit() and len(v.strip()) < 30:
        n = int(v.strip())
    if n is None:
        return None
    if 0 <= n <= MAX_COUNT:
        return n
    if warnings is not None:
        warnings.append(f"{name} {n} is not a count (negative, or larger than 2^63); stored as unknown")
    return None


def pick_time(candidates: Iterable[tuple[str, Any]], warnings: list[str], *,
              fallback: tuple[str, str | None] | None = None,
              parse: Callable[[str], datetime] | None = None) -> str | None:
    """The post's time: the first of ``candidates`` ((field name, value),
    in order of preference) that is a readable time within the archive's
    range; else ``fallback`` ((where from, the time it gives), e.g. the
    time in the post id); else None.  A candidate present but unusable is
    reported in ``warnings``, saying what was stored instead."""
    first_problem: str | None = None
    for name, value in candidates:
        if value is None or value == "":
            continue
        try:
            return source_time(value, parse)
        except TimeProblem as e:
            first_problem = first_problem or f"{name}: {e}"
    if fallback is not None and fallback[1] is not None:
        if first_problem:
            warnings.append(f"{first_problem}; the time was taken from {fallback[0]}")
        return fallback[1]
    warnings.append(f"{first_problem or 'no time given'}; stored without a time")
    return None
