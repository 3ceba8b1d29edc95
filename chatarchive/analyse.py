"""Run the whole analysis (sessions, conversations, Q&A) after new posts arrive.

Placeholder until the analysis lands: import and capture call
``analyse_archive(db)`` so a user never sees stale sessions.
"""

from __future__ import annotations

import sqlite_utils


def analyse_archive(db: sqlite_utils.Database, **options) -> dict:
    return {}
