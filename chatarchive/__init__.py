"""chatarchive: archive hashtag chats into SQLite, publish recaps, search old chats."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("chatarchive")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"
