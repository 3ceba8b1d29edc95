"""Live capture from X, Mastodon and Bluesky (the I/O side of sources/).

Polling search: ``http`` (the shared client: timeouts, retries, rate
limits, an injectable clock, URLs with credentials never shown), ``base``
(the capture window and the client interface), one client per platform
(``x``, ``mastodon``, ``bluesky``), ``config`` (credentials from the
environment or a private file in a private folder), ``runner`` (polling,
per-page commits, resume state, the ``CaptureUI`` protocol).

Streams: ``stream`` (the engine: sources in threads, one committer, resume
positions), ``jetstream`` (Bluesky, no login) with ``profiles`` (handles
from getProfiles), ``mastodon_stream`` (server-sent events, gap fills from
the timeline), ``x_stream`` (the filtered stream and its rules), ``live``
(``capture … --stream`` and ``all`` as a library call), ``schedule``
(``--at``: wait for each occurrence).  ``ui`` has the terminal panels and
log lines of both.

Pages and events are normalized by the same pure functions as imported
files (:mod:`chatarchive.sources`), written by ``archive.writer.PostWriter``,
and deletions go through ``archive.deletion``.  May import: models, errors,
timeutil, safety, sources, archive, analysis (to re-analyse after a
capture, and the schedule rules).
"""
