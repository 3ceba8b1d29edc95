"""What every platform client shares: the capture window, the client
interface the runner drives, and small helpers."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ..errors import CaptureError
from ..models import Post
from ..timeutil import iso_utc, parse_iso
from .http import Clock, HttpClient, Page

DEFAULT_LOOKBACK = 7 * 24 * 3600  # without --since: the last 7 days (as X recent search)


class MissingCredentials(CaptureError):
    """No token/login configured where the platform needs one."""


@dataclass
class Window:
    """The capture window: ``since`` inclusive, ``until`` exclusive (UTC)."""

    since: datetime | None = None
    until: datetime | None = None

    @property
    def since_iso(self) -> str | None:
        return iso_utc(self.since) if self.since else None

    @property
    def until_iso(self) -> str | None:
        return iso_utc(self.until) if self.until else None

    def contains(self, created_at: str | None) -> bool:
        if not created_at:
            return True
        if self.since is not None and created_at < iso_utc(self.since):
            return False
        return self.until is None or created_at < iso_utc(self.until)

    def key(self) -> dict[str, str | None]:
        return {"since": self.since_iso, "until": self.until_iso}


def utc_from_epoch(t: float) -> datetime:
    return datetime.fromtimestamp(t, tz=timezone.utc)


def iso_seconds(dt: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ`` (X start_time/end_time, second granularity)."""
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def retrieved_now(clock: Clock) -> str:
    return iso_utc(utc_from_epoch(clock.time()))


def keep_in_window(posts: Iterable[Post], window: Window) -> list[Post]:
    """Matched posts outside the window are dropped (the API could not be
    told the bound); context posts (reply parents) are kept whatever their age."""
    return [p for p in posts if not p.matched or window.contains(p.created_at)]


def as_context(posts: Iterable[Post]) -> list[Post]:
    out = list(posts)
    for p in out:
        p.matched = False
    return out


class CaptureClient:
    """One platform's live client; the runner drives it.

    ``poll(state, window)`` yields :class:`Page` objects, newest data first
    as the API gives it; each carries the complete state to store once the
    page is committed, so a capture killed at any moment resumes from the
    last committed page.  ``context(rows, missing)`` yields pages of thread
    context (parents, untagged replies) for stored posts.
    """

    platform: str = ""
    source: str = ""  # posts.source for what this client captures
    query: str = ""
    http: HttpClient

    @property
    def endpoint(self) -> str:  # identifies the stream of data, for resuming
        raise NotImplementedError

    def poll(self, state: dict, window: Window) -> Iterator[Page]:
        raise NotImplementedError

    def unfinished(self, state: dict) -> bool:
        """Does ``state`` hold a walk a killed run left half done?  Finishing
        it does not reach what arrived since, so the runner polls once more."""
        return bool(state.get("poll"))

    def context(self, rows: list[dict[str, Any]], missing: Callable[[list[str]], list[str]]) -> Iterator[Page]:
        raise NotImplementedError

    def close(self) -> None:
        self.http.close()


def normalize_safely(problems: list[str], what: str, fn: Callable[..., Iterable[Post]], *args: Any,
                     **kwargs: Any) -> list[Post]:
    """``list(fn(*args, **kwargs))`` for one response; a shape we cannot read
    is reported, not fatal (the raw page is kept, so a later version can
    re-read it)."""
    try:
        return list(fn(*args, **kwargs))
    except Exception as e:
        problems.append(f"{what}: could not read the response ({type(e).__name__}: {e})")
        return []


def sort_key_id(value: str) -> tuple[int, str]:
    """Order of numeric-string ids (Mastodon, X): by length, then text."""
    return (len(value), value)


def parse_time_or_none(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_iso(value)
    except ValueError:
        return None
