"""Bluesky handles and display names for the DIDs a Jetstream event names.

Jetstream carries DIDs only.  :class:`ProfileResolver` asks
``app.bsky.actor.getProfiles`` on the public AppView (no login; 25 actors a
request) for the DIDs it has not seen, in batches — never one request per
post — and keeps the answers (authors already in the archive are read from
it, not asked for).  A DID the AppView does not know is remembered as such;
when the AppView cannot be reached the DIDs are tried again later and the
posts are stored with the DID meanwhile (their handle is filled in when it
arrives)."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

import sqlite_utils

from .http import ApiError, CaptureError, HttpClient, body_summary, parse_json, public_url

DEFAULT_APPVIEW = "https://public.api.bsky.app"
GET_PROFILES = "/xrpc/app.bsky.actor.getProfiles"
BATCH = 25  # the lexicon's maximum
CACHE = 50_000  # profiles kept (a busy chat has a few hundred people)
RETRY_AFTER = 30.0  # seconds before DIDs whose lookup failed are asked for again


def appview_url(value: str | None) -> str:
    v = (value or DEFAULT_APPVIEW).strip().rstrip("/")
    if "://" not in v:
        v = "https://" + v
    return v


class ProfileResolver:
    def __init__(self, http: HttpClient, appview: str | None = None):
        self.http = http
        self.appview = appview_url(appview)
        self.http.add_url_credentials(self.appview)
        self.cache: OrderedDict[str, dict | None] = OrderedDict()  # did -> profile (None: unknown there)
        self.failed: dict[str, float] = {}  # did -> monotonic time of the failed lookup
        self.calls = 0  # getProfiles requests
        self.asked: list[int] = []  # actors per request (the tests check the batching)
        self.problems: list[str] = []

    def _keep(self, did: str, profile: dict | None) -> None:
        self.cache[did] = profile
        self.cache.move_to_end(did)
        while len(self.cache) > CACHE:
            self.cache.popitem(last=False)

    def known(self, did: str) -> dict | None:
        return self.cache.get(did)

    def resolve(self, dids: Iterable[str], db: sqlite_utils.Database | None = None) -> dict[str, dict]:
        """Profiles (``{did, handle, displayName, avatar}``) of ``dids``, as far as known."""
        wanted = [d for d in dict.fromkeys(dids) if isinstance(d, str) and d.startswith("did:")]
        now = time.monotonic()
        missing = [d for d in wanted if d not in self.cache and now - self.failed.get(d, -1e9) >= RETRY_AFTER]
        if missing and db is not None:
            for i in range(0, len(missing), 500):
                chunk = missing[i : i + 500]
                rows = db.conn.execute(
                    f"""SELECT id, handle, name, avatar_url FROM authors
                        WHERE handle IS NOT NULL AND id IN ({', '.join('?' * len(chunk))})""", chunk).fetchall()
                for did, handle, name, avatar in rows:
                    self._keep(did, {"did": did, "handle": handle, "displayName": name, "avatar": avatar})
            missing = [d for d in missing if d not in self.cache]
        for i in range(0, len(missing), BATCH):
            self._ask(missing[i : i + BATCH])
        return {d: p for d in wanted if (p := self.cache.get(d))}

    def _ask(self, dids: list[str]) -> None:
        self.calls += 1
        self.asked.append(len(dids))
        try:
            resp = self.http.request("GET", self.appview + GET_PROFILES, params={"actors": dids})
        except CaptureError as e:
            self._failed(dids, self.http.redact(str(e)))
            return
        body = parse_json(resp)
        if resp.status_code != 200 or not isinstance(body, dict):
            detail = self.http.redact(body_summary(resp))
            self._failed(dids, f"{public_url(self.appview)} getProfiles: HTTP {resp.status_code} ({detail})")
            return
        found: dict[str, dict] = {}
        for prof in body.get("profiles") or []:
            if isinstance(prof, dict) and isinstance(prof.get("did"), str):
                found[prof["did"]] = _profile(prof)
        for d in dids:
            self._keep(d, found.get(d))  # None: deleted, suspended or unknown
            self.failed.pop(d, None)

    def _failed(self, dids: list[str], why: str) -> None:
        now = time.monotonic()
        for d in dids:
            self.failed[d] = now
        if len(self.problems) < 20:
            self.problems.append(f"handles not resolved yet ({why}); posts keep the DID until they are")


def _profile(p: dict[str, Any]) -> dict:
    handle = p.get("handle") if isinstance(p.get("handle"), str) else None
    return {"did": p["did"], "handle": handle if handle != "handle.invalid" else None,
            "displayName": p.get("displayName") if isinstance(p.get("displayName"), str) else None,
            "avatar": p.get("avatar") if isinstance(p.get("avatar"), str) else None}


__all__ = ["DEFAULT_APPVIEW", "ApiError", "ProfileResolver", "appview_url"]
