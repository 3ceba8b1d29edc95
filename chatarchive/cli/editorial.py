"""``chatarchive hide / unhide / hidden / pin / unpin / note / forget /
consent / settings / check-deleted``: the host's editorial control and the
participants' consent (the library side is ``archive/editorial.py`` and,
for check-deleted, ``capture/deleted.py``)."""

from __future__ import annotations

import json
from typing import Any

import click

from ..api import Archive
from ..archive.editorial import Target
from ..safety import printable
from .common import db_argument, err, json_out

TARGETS_HELP = "post id, post URL, @handle, @user@server or DID"


def _said(verb: str, targets: list[Target]) -> None:
    for t in targets:
        click.echo(printable(f"{verb} {t.kind} {t.id}", 500))


@click.command()
@db_argument
@click.argument("targets", nargs=-1, required=True, metavar="TARGET...")
@click.option("--reason", help="Why (spam, off-topic, …): shown by `chatarchive hidden`.")
@click.option("--json", "as_json", is_flag=True, help="Print what was hidden as JSON.")
def hide(db: str, targets: tuple[str, ...], reason: str | None, as_json: bool) -> None:
    """Keep posts or accounts out of the recap, exports and Datasette pages.

    TARGET: a post id, a post URL, @handle, @user@server or a DID. The
    archive keeps them; replies to a hidden post still show, with "hidden
    by the host" in its place. A mistyped TARGET is an error (nothing is
    hidden then).

    \b
    Example:
        chatarchive hide chats.db @spammer https://mastodon.social/@ana/1130 --reason spam
    """
    got = Archive(db).hide(targets, reason)
    json_out([t.as_dict() for t in got]) if as_json else _said("hidden:", got)


@click.command()
@db_argument
@click.argument("targets", nargs=-1, required=True, metavar="TARGET...")
def unhide(db: str, targets: tuple[str, ...]) -> None:
    """Publish hidden posts or accounts again.

    \b
    Example:
        chatarchive unhide chats.db @ana
    """
    _said("shown:", Archive(db).unhide(targets))


@click.command()
@db_argument
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
def hidden(db: str, as_json: bool) -> None:
    """List what is hidden from published outputs, and why.

    \b
    Example:
        chatarchive hidden chats.db --json
    """
    rows = Archive(db).hidden()
    if as_json:
        json_out(rows)
        return
    if not rows:
        click.echo("Nothing is hidden.")
    for r in rows:
        why = f" ({r['reason']})" if r["reason"] else ""
        click.echo(printable(f"{r['kind']} {r['id']}: {r['what']}{why}, since {r['hidden_at']}", 1000))


@click.command()
@db_argument
@click.argument("post")
def pin(db: str, post: str) -> None:
    """Pin a best answer: shown first under its question and in the session's Highlights.

    \b
    Example:
        chatarchive pin chats.db 1849261837465300000
    """
    _said("pinned:", [Archive(db).pin(post)])


@click.command()
@db_argument
@click.argument("post")
def unpin(db: str, post: str) -> None:
    """Unpin a post.

    \b
    Example:
        chatarchive unpin chats.db 1849261837465300000
    """
    _said("unpinned:", [Archive(db).unpin(post)])


@click.command()
@db_argument
@click.argument("session")
@click.argument("text")
@click.option("--question", type=int, metavar="N", help="Attach the note to question N of the session.")
def note(db: str, session: str, text: str, question: int | None) -> None:
    """Add the host's note (Markdown) to a session or one of its questions.

    The note replaces any earlier one there; an empty TEXT removes it. It is
    shown, sanitized, on the recap page and in the Markdown export.

    \b
    Example:
        chatarchive note chats.db cmgrchat-2026-11-18 "Thanks all! **Slides**: https://example.org/s"
        chatarchive note chats.db cmgrchat-2026-11-18 --question 2 "Best thread of the night."
    """
    s = Archive(db).note(session, text, question=question)
    where = f"question {question} of " if question is not None else ""
    click.echo(printable(f"note {'set' if text.strip() else 'removed'} on {where}{s.slug}", 500))


@click.command()
@db_argument
@click.argument("account")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def forget(db: str, account: str, yes: bool, as_json: bool) -> None:
    """Remove a person at their request: their posts' content, for good.

    Text, HTML, media, alt text, links, raw source objects and search index
    entries of every post of ACCOUNT (@handle, @user@server or a DID) are
    removed, so that no byte of them is left in the file; each post keeps
    a tombstone ("removed at the author's request") so threads stay whole.
    Later imports and captures of their posts are redacted on arrival.

    \b
    Example:
        chatarchive forget chats.db @ana@mastodon.social --yes
    """
    archive = Archive(db)
    if not yes:
        from ..archive.editorial import resolve_account

        t = resolve_account(archive.db, account)
        click.confirm(printable(f"Remove every post of account {t.id} for good?", 500), abort=True)
    t, n = archive.forget_account(account)
    if as_json:
        json_out({**t.as_dict(), "posts_removed": n})
    else:
        click.echo(printable(f"forgot account {t.id}: {n} post(s) removed; later imports are redacted", 500))


@click.command()
@db_argument
@click.argument("account")
@click.option("--allow", "decision", flag_value="allow",
              help="Publish this account although its platform marks it unlisted.")
@click.option("--revoke", "decision", flag_value="revoke",
              help="Never publish this account's posts (whatever its platform says).")
def consent(db: str, account: str, decision: str | None) -> None:
    """Record an account's consent to appear in published outputs.

    \b
    Example:
        chatarchive consent chats.db @ana.bsky.social --allow
    """
    if decision is None:
        raise click.UsageError("give --allow or --revoke")
    t = Archive(db).consent(account, allow=decision == "allow")
    click.echo(printable(f"{'allowed' if decision == 'allow' else 'revoked'}: account {t.id}", 500))


@click.command()
@db_argument
@click.option("--owner", help="Who keeps this archive (shown on the recap's About page).")
@click.option("--contact", help="How to reach the owner (an email address or a URL).")
@click.option("--purpose", help="What is archived and why, in a sentence or two.")
@click.option("--removal", help="How to ask to be removed (default: write to the contact).")
@click.option("--json", "as_json", is_flag=True, help="Print the settings as JSON.")
def settings(db: str, owner: str | None, contact: str | None, purpose: str | None, removal: str | None,
             as_json: bool) -> None:
    """Show or set the archive's settings (owner, contact…), shown on the recap's About page.

    With no option, prints them. An empty value removes a setting.

    \b
    Example:
        chatarchive settings chats.db --owner "CMGR community team" --contact chat@example.org
    """
    values = Archive(db).settings(owner=owner, contact=contact, purpose=purpose, removal=removal)
    if as_json:
        json_out(values)
        return
    if not values:
        click.echo("No settings yet (see: chatarchive settings --help).")
    for k, v in values.items():
        click.echo(printable(f"{k}: {v}", 1000))


class _CheckBar:
    """A rich progress bar per platform for check-deleted (on a terminal
    only); notes (a skipped platform, a rate-limit wait) print above it."""

    def __init__(self, console: Any) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = console
        self.bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), console=console, transient=True)
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> _CheckBar:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def start(self, platform: str, total: int) -> None:
        self.tasks[platform] = self.bar.add_task(platform, total=total)

    def advance(self, platform: str, checked: int) -> None:
        if platform in self.tasks:
            self.bar.advance(self.tasks[platform], checked)

    def note(self, message: str) -> None:
        self.console.print(printable(message, 400), style="yellow", highlight=False, markup=False)


class _CheckNotes:
    """Without a terminal: no bar, each note as a plain line on standard error."""

    def __enter__(self) -> _CheckNotes:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def start(self, platform: str, total: int) -> None:
        pass

    def advance(self, platform: str, checked: int) -> None:
        pass

    def note(self, message: str) -> None:
        err(printable(message, 400))


@click.command("check-deleted")
@db_argument
@click.argument("sessions", nargs=-1, metavar="[SESSION...]")
@click.option("--dry-run", is_flag=True, help="Only list the posts that are gone; write nothing.")
@click.option("--api-base", metavar="URL", help="X API server to ask [https://api.x.com].")
@click.option("--appview", metavar="URL", help="Bluesky AppView to ask (no login) [https://public.api.bsky.app].")
@click.option("--instance", "instances", multiple=True, metavar="URL",
              help="A Mastodon server's URL when it is not https://HOST (repeatable; MASTODON_TOKEN goes to the "
                   "first one only).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="Credentials file (TOML, mode 600) [~/.config/chatarchive/config.toml].")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=30.0, show_default=True,
              help="Seconds before a stalled request is retried.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def check_deleted(db: str, sessions: tuple[str, ...], dry_run: bool, api_base: str | None, appview: str | None,
                  instances: tuple[str, ...], config_path: str | None, timeout: float, as_json: bool) -> None:
    """Ask X, Mastodon and Bluesky which archived posts were deleted, and remove those.

    X: GET /2/tweets (100 ids a request; needs X_BEARER_TOKEN, else X is
    skipped). Mastodon: GET /api/v1/statuses/:id on the server each post was
    seen on (404: gone). Bluesky: app.bsky.feed.getPosts on the public
    AppView (25 a request; no login). Within each platform's rate limits,
    with a progress bar. Gone posts become tombstones: their content is
    removed for good (as `forget` does) and they leave the recap, exports
    and Datasette pages. With SESSIONs, only their posts are checked.

    \b
    Examples:
        chatarchive check-deleted chats.db --dry-run
        chatarchive check-deleted chats.db cmgrchat-2026-11-18
    """
    from rich.console import Console

    from ..capture.config import load_config
    from ..capture.http import redact_urls
    from ..errors import ChatArchiveError

    console = Console(stderr=True)
    try:
        archive = Archive(db)
        config = load_config(config_path)
        with (_CheckBar(console) if console.is_terminal and not as_json else _CheckNotes()) as progress:
            result = archive.check_deleted(sessions, dry_run=dry_run, config=config, api_base=api_base,
                                           appview=appview, instances=instances, timeout=timeout, progress=progress)
    except ChatArchiveError as e:
        raise click.ClickException(redact_urls(str(e))) from None  # never a password in a URL
    if as_json:
        json_out(result.as_dict())
        return
    for p in result.platforms:
        if p.skipped:
            continue  # said above, as it happened
        unknown = f", {p.unknown} not known" if p.unknown else ""
        click.echo(f"{p.platform}: {p.checked} checked, {p.present} still there, {len(p.gone)} gone{unknown}")
    urls = dict(archive.conn.execute("SELECT id, url FROM posts WHERE id IN (SELECT value FROM json_each(?))",
                                     [json.dumps(result.gone)])) if result.gone else {}
    for post_id in result.gone:
        click.echo(printable(f"{'would remove' if dry_run else 'removed'}: {post_id} {urls.get(post_id) or ''}", 600))
    if dry_run:
        click.echo(f"dry run: {len(result.gone)} post(s) would be marked deleted; nothing was written")
    else:
        click.echo(f"{result.marked} post(s) marked deleted; their content is removed")
