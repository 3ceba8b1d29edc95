"""chatarchive: archive hashtag chats into SQLite, publish recaps, search old chats.

The Python API is :class:`chatarchive.Archive` (``chatarchive/api.py``)::

    from chatarchive import Archive

    archive = Archive("chats.db", create=True)
    archive.import_files(["cmgrchat.jsonl"])

The pipeline, one folder per stage: ``sources/`` (files to ``models.Post``),
``capture/`` (live APIs), ``archive/`` (the SQLite file: schema, writer,
queries, search), ``analysis/`` (threads, sessions, Q&A, statistics),
``present/`` (what every output shows, and how safely), ``recap/``,
``export.py`` and ``datasette/`` (the outputs), ``cli/`` (the command line).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .api import Archive

    __version__: str

__all__ = ["Archive", "__version__"]

_version: str | None = None


def __getattr__(name: str) -> Any:
    # Resolved on first use, not at import: every command's start-up imports
    # this package, and neither the library behind Archive nor reading the
    # installed package's metadata (30 ms) is needed to parse a command line.
    global _version
    if name == "Archive":
        from .api import Archive

        return Archive
    if name == "__version__":
        if _version is None:
            from importlib.metadata import PackageNotFoundError, version

            try:
                _version = version("chatarchive")
            except PackageNotFoundError:  # running from a source tree that is not installed
                _version = "0.0.0"
        return _version
    raise AttributeError(f"module 'chatarchive' has no attribute {name!r}")
