"""The recap's Jinja2 environment: the user's ``--templates`` folder first,
then ours; the filters and globals the pages use; template errors as one line.

What ``--templates`` can override: every page template (``base.html`` with
blocks ``title``, ``meta``, ``csp``, ``head``, ``content``, ``footer``;
``session.html``, ``index.html``, ``hashtag.html``, ``participant.html``,
``search.html``), the partials ``_session_row.html`` and ``_timeline.html``,
and the stylesheet ``_style.css``.  A post's HTML is written by
``chatarchive.present.html`` (the same markup as on the Datasette pages) and
styled by ``present/post.css``, which ``_style.css`` takes in as
``{{ post_css }}``; templates show a post as ``{{ p.html }}`` (or
``{{ p.mini }}`` in threads) and an avatar as ``{{ avatar(person) }}``.  So an
override of ``_post.html`` no longer changes how posts look: that file only
keeps templates that ``{% import "_post.html" as pp %}`` working.

Autoescaping is on everywhere and an undefined variable is an error
(``StrictUndefined``), reported in one line with the template's name.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateNotFound,
    TemplateSyntaxError,
    UndefinedError,
)
from markupsafe import Markup

from .. import __version__
from ..errors import ChatArchiveError
from ..present import html as present_html
from ..present.html import avatar, post_css
from ..present.text import and_join, clean, human_duration, platform_name, plural, url_domain, url_rest

FAVICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 26 26"><rect width="26" height="26" rx="8" fill="#4b3fd0"/>'
    '<path d="M7 8.5h12a1.5 1.5 0 0 1 1.5 1.5v6a1.5 1.5 0 0 1-1.5 1.5h-6.2L9 20v-2.5H7A1.5 1.5 0 0 1 5.5 16v-6A1.5 '
    '1.5 0 0 1 7 8.5z" fill="#fff"/></svg>\n'
)

# The only script of the site (on search.html): Pagefind's UI, started only
# over http(s) because browsers refuse its modules and WebAssembly on file://.
SEARCH_JS = """(function () {
  var q = new URLSearchParams(location.search).get("q") || "";
  var box = document.getElementById("site-q");
  if (box) box.value = q;
  if (location.protocol === "file:") { document.getElementById("search-file").hidden = false; return; }
  var css = document.createElement("link");
  css.rel = "stylesheet"; css.href = "pagefind/pagefind-ui.css";
  document.head.appendChild(css);
  var js = document.createElement("script");
  js.src = "pagefind/pagefind-ui.js";
  js.onload = function () {
    var here = new URL("./", location.href).pathname;
    var ui = new PagefindUI({ element: "#search", showSubResults: true, showImages: false,
      bundlePath: here + "pagefind/", baseUrl: here, autofocus: !q,
      translations: { placeholder: "Search posts, people, questions" } });
    if (q) ui.triggerSearch(q);
  };
  document.head.appendChild(js);
})();"""
# search.html's Content-Security-Policy allows this one inline script by its hash.
SEARCH_JS_HASH = "sha256-" + base64.b64encode(hashlib.sha256(SEARCH_JS.encode()).digest()).decode()


def template_dirs() -> list[Path]:
    """Our templates: inside the package in a wheel (force-included by
    pyproject), or the top-level ``templates/`` of a source checkout or
    editable install."""
    here = Path(__file__).resolve().parent.parent  # chatarchive/
    return [p for p in (here / "templates", here.parent / "templates") if (p / "base.html").is_file()]


def make_env(templates: str | Path | None = None) -> Environment:
    """Jinja2 environment: the user's ``--templates`` folder first, then ours;
    autoescape everywhere; a missing variable raises instead of rendering blank."""
    loaders = []
    if templates is not None:
        tdir = Path(templates)
        if not tdir.is_dir():
            raise ChatArchiveError(f"--templates {templates}: not a directory")
        loaders.append(FileSystemLoader(str(tdir)))
    ours = template_dirs()
    if not ours:
        raise ChatArchiveError("The recap templates are missing from this installation (reinstall chatarchive)")
    loaders.append(FileSystemLoader(str(ours[0])))
    env = Environment(
        loader=ChoiceLoader(loaders),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = lambda n: f"{n:,}" if isinstance(n, int) else n
    env.filters["plural"] = plural
    env.filters["duration"] = human_duration
    env.filters["domain"] = url_domain
    env.filters["urlrest"] = url_rest
    env.filters["platform"] = platform_name
    env.filters["and_join"] = and_join
    env.globals["version"] = __version__
    env.globals["site_title"] = "Chat archive"
    env.globals["search_js"] = Markup(SEARCH_JS)
    env.globals["search_js_hash"] = SEARCH_JS_HASH
    env.globals["post_css"] = Markup(post_css())
    env.globals["avatar"] = avatar
    env.globals["present_html"] = present_html  # for _post.html's macros, which shadow the names above
    return env


def render(env: Environment, template: str, **ctx: Any) -> str:
    """A page (without control characters, whatever a post held); template
    trouble (missing, broken, an unknown variable) as one ChatArchiveError line."""
    try:
        return clean(env.get_template(template).render(**ctx))
    except TemplateNotFound as e:
        raise ChatArchiveError(f"Template {e.name} not found (while rendering {template})") from None
    except TemplateSyntaxError as e:
        raise ChatArchiveError(f"Template {e.filename or e.name}:{e.lineno}: {e.message}") from None
    except UndefinedError as e:
        raise ChatArchiveError(
            f"Template {template}: {e.message} (a template uses a variable the page does not have)") from None
