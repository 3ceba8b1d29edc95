"""The archive: the SQLite file and everything that reads or writes it.

``schema`` (migrations, opening), ``writer`` (PostWriter, the only writer of
posts), ``importer`` (files through sources/ into the writer, one
transaction), ``queries`` (every read the views make) and ``search`` (FTS5).
May import: models, errors, timeutil, safety, sources.
"""
