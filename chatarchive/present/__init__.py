"""Presentation shared by every output (the recap, the exports, Datasette, the terminal).

* ``text``: post text to safe HTML (linkify, search highlights) and the small
  pieces every page shows (initials, anchors, URL trimming, durations, plurals);
* ``views``: the view models, read through ``archive.queries``: a session
  (``load_session``) and its posts, a post ready to render (``post_view``),
  and the ``LinkTargets`` protocol by which an output says where links point;
* ``html``: a post's HTML, written once (``post_html``, ``mini_html``,
  avatars), styled by ``post.css``;
* ``terminal``: the rich views of the command line.

URL safety and HTML sanitizing are ``chatarchive.safety`` (the sources use them too).
May import: analysis, archive, models, errors, timeutil, safety.  Never writes.
"""
