"""Datasette on an archive: metadata, plugin hooks and pages (through archive.queries and present/).

May import: present, analysis, archive, models, errors, timeutil.
"""
