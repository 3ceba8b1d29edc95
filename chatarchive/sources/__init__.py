"""Input formats: from a platform's files (or live pages) to ``models.Post``.

``registry`` (Format, Context, the formats in detection order), ``reading``
(files, gzip, stdin, JSON/JSONL/CSV records, deep JSON), ``detect`` (which
format a file is), and one module per format family: ``twarc2`` (X API v2),
``twitter_v1`` (API v1.1), ``tweets_js`` (the account archive),
``csv_sheets`` (TAGS, Twitter Archiver, twarc-csv), ``mastodon``,
``bluesky``.  Each format's ``normalize`` is pure (no I/O); its per-file
state lives in ``Context.state``, made by the format.  Sources never touch
the database.  May import: models, errors, timeutil, safety.
"""

from __future__ import annotations

from . import bluesky, csv_sheets, mastodon, twarc2, tweets_js, twitter_v1
from .detect import describe_non_posts, detect, sample_of
from .reading import HEAD_BYTES, Context, InputFile, Skip, csv_records, is_jsonl, json_records, loads_deep
from .registry import FORMATS, ORDER, Format, get_format, open_records, register, state_of

__all__ = [
    "FORMATS",
    "HEAD_BYTES",
    "ORDER",
    "Context",
    "Format",
    "InputFile",
    "Skip",
    "bluesky",
    "csv_records",
    "csv_sheets",
    "describe_non_posts",
    "detect",
    "get_format",
    "is_jsonl",
    "json_records",
    "loads_deep",
    "mastodon",
    "open_records",
    "register",
    "sample_of",
    "state_of",
    "twarc2",
    "tweets_js",
    "twitter_v1",
]
