"""The analysis: threads, sessions, Q&A and statistics, computed from the archive.

``pipeline.analyse_archive`` runs the steps in order (threads, detection,
membership, Q&A) with the state between them passed explicitly.
May import: archive, models, errors, timeutil.
"""
