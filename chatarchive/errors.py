"""Typed errors raised by the library; the CLI (``cli/``) turns them into one-line messages.

Also :func:`redact`, the one rule that keeps credentials inside URLs out of
messages.
"""

import re


class ChatArchiveError(Exception):
    """Base class: anything the user can fix (bad input, bad option)."""


class InputError(ChatArchiveError):
    """A file could not be read as any supported format, or held no posts."""


class ParseError(ChatArchiveError):
    """One record of an input file is malformed (carries file and line)."""

    def __init__(self, path: str, line: int | None, reason: str):
        self.path, self.line, self.reason = path, line, reason
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {reason}")


class SearchError(ChatArchiveError):
    """An FTS5 query the user typed is not valid FTS5 syntax."""


class NotFoundError(ChatArchiveError):
    """A session, post or other named thing is not in the archive."""


class CaptureError(ChatArchiveError):
    """A live API refused us in a way retrying cannot fix (auth, bad query)."""


class BusyError(ChatArchiveError):
    """Another process holds the archive's write lock (an import, a capture)
    for longer than the busy timeout (``CHATARCHIVE_BUSY_TIMEOUT`` seconds)."""

    def __init__(self, path: str, what: str = "another import or capture is writing to this archive"):
        self.path = path
        super().__init__(f"{path}: {what}; try again when it ends")


_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)([^/?#@\s]*)@")


def redact(text: str) -> str:
    """``text`` with the user and password of every URL in it replaced by
    ``***`` (``https://ana:secret@host/`` -> ``https://***@host/``): messages
    name URLs from files and options, never the secrets inside them."""
    if "@" not in text or "://" not in text:
        return text
    return _CREDENTIALS.sub(r"\1***@", text)
