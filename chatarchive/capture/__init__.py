"""Live capture from X, Mastodon and Bluesky (the I/O side of sources/).

``http`` (the shared client: timeouts, retries, rate limits, an injectable
clock), one client per platform (``x``, ``mastodon``, ``bluesky``),
``config`` (credentials from the environment or a private file) and
``runner`` (polling, per-page commits, resume state, the live panel).
Pages are normalized by the pure functions in :mod:`chatarchive.sources`.
"""
