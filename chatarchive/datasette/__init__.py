"""Datasette on an archive.

* ``metadata``: the configuration (titles, descriptions, hidden tables, facets, canned queries, settings);
* ``server``: checking the file and running Datasette on it;
* ``archives``: which databases are archives, and where links point inside one;
* ``plugin``: the plugin's hooks (cells, stylesheet, menu, routes, security headers, errors);
* ``busy``: a mutable archive that a writer holds locked (``serve --live``): wait, then a 503, never a 500;
* ``pages``: the search page and the session pages (through ``archive.queries`` and ``present/``).

May import: present, analysis, archive, models, errors, timeutil, safety.
"""
