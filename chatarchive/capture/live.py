"""``chatarchive capture DB PLATFORM QUERY --stream`` (and ``all``) as a library call.

Builds the stream sources for the platforms asked for — Bluesky through
Jetstream (no login), each Mastodon ``--instance`` through its streaming API
(or its timeline, polled, where we have no token), X through the filtered
stream — and runs them in one :class:`~.stream.StreamEngine` into one
archive, then analyses.  A platform named on its own without what it needs
is an error naming the variable to set; under ``all`` it is skipped with one
line saying so, and the others run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlite_utils

from ..analysis.pipeline import analyse_archive
from ..errors import CaptureError
from ..sources.mastodon import host_of
from .base import MissingCredentials, Window
from .config import ENV_X_TOKEN, Config
from .http import Clock
from .jetstream import JetstreamSource
from .mastodon import instance_url
from .mastodon_stream import MastodonStreamSource
from .runner import CaptureOptions
from .stream import StreamEngine, StreamPolicy, StreamResult, StreamSource, StreamUI
from .x import XCapture
from .x_stream import XStreamSource

PLATFORMS = ("bluesky", "mastodon", "x")


@dataclass
class Skipped:
    platform: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"platform": self.platform, "status": "skipped", "problems": [self.reason]}


@dataclass
class LiveRun:
    results: list[StreamResult]
    skipped: list[Skipped] = field(default_factory=list)
    analysis: dict = field(default_factory=dict)
    engine: StreamEngine | None = None

    @property
    def added(self) -> int:
        return sum(r.added for r in self.results)

    def as_dicts(self) -> list[dict[str, Any]]:
        return [r.as_dict() for r in self.results] + [s.as_dict() for s in self.skipped]


def stream_sources(platforms: list[str], query: str, opts: CaptureOptions, config: Config, *,
                   clock: Clock | None = None, policy: StreamPolicy | None = None
                   ) -> tuple[list[StreamSource], list[Skipped]]:
    strict = len(platforms) == 1
    sources: list[StreamSource] = []
    skipped: list[Skipped] = []

    def skip(platform: str, reason: str) -> None:
        if strict:
            raise MissingCredentials(reason)
        skipped.append(Skipped(platform, reason))

    for platform in platforms:
        if platform == "bluesky":
            sources.append(JetstreamSource(query, jetstream=opts.jetstream, appview=opts.appview, policy=policy,
                                           clock=clock, timeout=opts.timeout))
        elif platform == "x":
            token = config.x_bearer_token.reveal() if config.x_bearer_token else None
            if not token:
                skip("x", f"x: skipped: set {ENV_X_TOKEN} (an X app's bearer token; or bearer_token under [x] in "
                          "the config file) to follow X's filtered stream")
                continue
            client = XCapture(query, token=token, api_base=opts.api_base, clock=clock, policy=opts.policy,
                              timeout=opts.timeout)
            sources.append(XStreamSource(client, policy))
        elif platform == "mastodon":
            instances = list(opts.instances) or ([opts.api_base] if strict and opts.api_base else [])
            if not instances:
                skip("mastodon", "mastodon: skipped: give --instance URL (the servers the chat's people use, "
                                 "e.g. --instance https://mastodon.social)")
                continue
            seen: list[str] = []
            for i, value in enumerate(instances):
                base = instance_url(value)
                if base in seen:
                    continue
                seen.append(base)
                host = host_of(base) or ""
                # a token goes only to the server it was made for (as polling capture does)
                tok = config.mastodon_tokens.get(host) or (config.mastodon_token if i == 0 else None)
                sources.append(MastodonStreamSource(query, base, token=tok.reveal() if tok else None, policy=policy,
                                                    clock=clock, timeout=opts.timeout, http_policy=opts.policy))
        else:
            raise CaptureError(f"Unknown platform {platform!r}: choose x, mastodon, bluesky or all")
    return sources, skipped


def capture_live(db: sqlite_utils.Database, platforms: list[str], query: str, opts: CaptureOptions,
                 config: Config, *, clock: Clock | None = None, ui: StreamUI | None = None,
                 policy: StreamPolicy | None = None) -> LiveRun:
    """Follow the streams of ``platforms`` over the window of ``opts``
    (until ``opts.until``, or Ctrl-C), then analyse."""
    if opts.since and opts.until and opts.until <= opts.since:
        raise CaptureError("--until must be later than --since")
    sources, skipped = stream_sources(platforms, query, opts, config, clock=clock, policy=policy)
    ready = []
    for src in sources:
        try:
            src.preflight()
            ready.append(src)
        except CaptureError as e:
            if len(platforms) == 1:
                for s in sources:
                    s.close()
                raise
            skipped.append(Skipped(src.platform, f"{src.name or src.platform}: skipped: {e}"))
            src.close()
    sources = ready
    if not sources:
        raise MissingCredentials("; ".join(s.reason for s in skipped))
    engine = StreamEngine(db, sources, Window(opts.since, opts.until), policy=policy, clock=clock, ui=ui,
                          raw_path=opts.raw_path, label=query)
    results = engine.run()
    run = LiveRun(results, skipped, engine=engine)
    if opts.analyse and any(r.added or r.updated or r.deleted for r in results):
        run.analysis = analyse_archive(db) or {}
        for r in results:
            r.analysis = run.analysis
    return run

