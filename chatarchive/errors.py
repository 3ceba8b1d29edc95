"""Typed errors raised by the library; the CLI (``cli/``) turns them into one-line messages."""


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
