"""The static recap site: pages, media download (the one network step), search index.

May import: present, analysis, archive, models, errors, timeutil.
"""
