"""The analysis: threads, sessions, Q&A and statistics, computed from the archive.

``pipeline.analyse_archive`` runs the steps in order (threads, detection,
membership, then Q&A and the session summary from one read of each
session's members), handing each step's result to the next explicitly.
``settings`` holds the per-chat options (table ``chats``), ``margins`` the
shaping of detected sessions (core, lead-in, tail), ``times`` which stored
times the analysis may use, ``rewrite`` the one-pass rewrite of the posts'
analysis columns, ``stats`` the statistics the views show.
May import: archive, models, errors, timeutil.
"""
