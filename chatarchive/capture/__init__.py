"""Live capture from X, Mastodon and Bluesky (the I/O side of sources/).

``http`` (the shared client: timeouts, retries, rate limits, an injectable
clock), ``base`` (the capture window and the client interface), one client
per platform (``x``, ``mastodon``, ``bluesky``), ``config`` (credentials
from the environment or a private file), ``runner`` (polling, per-page
commits, resume state, the ``CaptureUI`` protocol) and ``ui`` (the terminal
panel and log lines).  Pages are normalized by the same pure functions as
imported files (:mod:`chatarchive.sources`) and written by
``archive.writer.PostWriter``.  May import: models, errors, timeutil,
sources, archive, analysis (to re-analyse after a capture).
"""
