"""The recap's "about this archive" page (#11): owner, contact, purpose and
removal text from `chatarchive settings`, defaults when they are not set,
the platform signals honoured, and a footer link to it on every page."""

from __future__ import annotations

from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from recap_helpers import recap_archive

from chatarchive.cli import cli

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("about") / "chats.db"
    recap_archive(path)
    return path


def build(runner, archive: Path, out: Path, *settings: str) -> BeautifulSoup:
    db = out.parent / "copy.db"
    db.write_bytes(archive.read_bytes())
    if settings:
        res = runner.invoke(cli, ["settings", str(db), *settings])
        assert res.exit_code == 0, res.output
    res = runner.invoke(cli, ["recap", str(db), "--out", str(out), "--no-search"])
    assert res.exit_code == 0, res.output
    return BeautifulSoup((out / "about.html").read_text("utf-8"), "html.parser")


def test_the_settings_are_shown_escaped_and_the_contact_is_a_link(runner, archive, tmp_path):
    purpose = "We keep #RecapChat so <script>newcomers</script> can catch up."
    page = build(runner, archive, tmp_path / "site", "--owner", "Ada & the RecapChat team",
                 "--contact", "chat@example.org", "--purpose", purpose,
                 "--removal", "Send a DM to @chathost and we remove you within a week.")
    text = page.get_text(" ", strip=True)
    assert "kept by Ada & the RecapChat team" in text
    assert purpose in text and page.find("script") is None  # the host's text is text, never markup
    assert "Send a DM to @chathost and we remove you within a week." in text
    assert [a["href"] for a in page.select("a[href^='mailto:']")] == ["mailto:chat@example.org"]
    assert "chatarchive forget" in text  # what removal means, whatever the host wrote
    for signal in ("noindex", "indexable: false", "!no-unauthenticated", "X protected accounts"):
        assert signal in text


def test_defaults_without_settings_name_the_chats_and_a_way_to_ask(runner, archive, tmp_path):
    page = build(runner, archive, tmp_path / "site")
    text = page.get_text(" ", strip=True)
    assert "kept by the hosts of the chats" in text
    assert "#RecapChat" in text and "from X" in text  # what is archived: the hashtags, the platforms
    assert "ask the hosts of the chat" in text and "are left out of these pages" in text
    assert not page.select("a[href^='mailto:']")


def test_a_contact_that_is_not_an_address_or_a_web_url_is_not_a_link(runner, archive, tmp_path):
    page = build(runner, archive, tmp_path / "site", "--contact", "javascript:alert(1)")
    assert "javascript:alert(1)" in page.get_text()
    assert not [a for a in page.find_all("a") if "javascript" in a.get("href", "")]
    page = build(runner, archive, tmp_path / "site2", "--contact", "https://example.org/contact")
    assert page.select("a[href='https://example.org/contact']")


def test_every_page_links_to_the_about_page(runner, archive, tmp_path):
    out = tmp_path / "site"
    build(runner, archive, out, "--owner", "Ada")
    pages = sorted(out.rglob("*.html"))
    assert len(pages) > 5
    for page in pages:
        links = [a["href"] for a in BeautifulSoup(page.read_text("utf-8"), "html.parser").select("footer a")
                 if a.get_text() == "About this archive"]
        assert len(links) == 1, page
        assert (page.parent / links[0]).resolve() == (out / "about.html").resolve(), page
