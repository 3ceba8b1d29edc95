"""Presentation shared by every output: the one copy of safe URLs, sanitizing,
linkify, initials and anchors, and the post/session view models.

May import: analysis, archive, models, errors, timeutil.  Never writes.
"""
