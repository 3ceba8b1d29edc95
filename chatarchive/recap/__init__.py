"""The static recap site.

* ``site``: :func:`build_site` and :class:`RecapResult`: the build, step by step;
* ``sitemap``: which sessions, hashtags and people get a page, and where links point;
* ``pages``: what each page shows (the variables of its template);
* ``templates``: the Jinja2 environment (``--templates`` overrides);
* ``files``: writing only what changed, the manifest, removing stale pages;
* ``media``: ``--download-media``, the one network step;
* ``search_index``: the Pagefind index.

May import: present, analysis, archive, models, errors, timeutil, safety.
"""

from .site import RecapResult, build_site

__all__ = ["RecapResult", "build_site"]
