"""The static recap site.

* ``site``: :func:`build_site` and :class:`RecapResult`: the build, step by step
  (the named sessions' pages; every other page of the site kept);
* ``sitemap``: which sessions, hashtags and people get a page (file names
  safe on every OS), and where links point;
* ``pages``: what each page shows (the variables of its template);
* ``templates``: the Jinja2 environment (``--templates`` overrides);
* ``files``: writing only what changed and never outside ``--out``, the
  manifest, ``--prune``;
* ``media``: ``--download-media``, the one network step;
* ``search_index``: the Pagefind index.

May import: present, analysis, archive, models, errors, timeutil, safety.
"""

from .site import RecapResult, build_site

__all__ = ["RecapResult", "build_site"]
