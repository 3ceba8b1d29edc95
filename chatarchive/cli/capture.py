"""``chatarchive capture``: a chat live from the platforms' APIs."""

from __future__ import annotations

import sys
from datetime import datetime, timezone

import click
from rich.console import Console

from ..api import Archive
from ..capture.config import load_config
from ..capture.runner import CaptureOptions, CaptureResult, CaptureUI, capture_context
from ..capture.runner import capture as run_capture
from ..capture.ui import LiveUI, LogUI
from ..timeutil import get_zone, parse_duration, parse_time
from .common import db_argument, err, json_out


@click.command()
@db_argument
@click.argument("platform", type=click.Choice(["x", "mastodon", "bluesky", "context"]))
@click.argument("query")
@click.option("--since", help="Start of the window (ISO-8601; UTC unless an offset or --tz is given).")
@click.option("--until", help="End of the window (exclusive). With --follow: stop there.")
@click.option("--duration", help="Window length, e.g. 1h15m: from --since, or from now when --since is not given.")
@click.option("--tz", help="Time zone of --since/--until without an offset, e.g. America/New_York.")
@click.option("--follow", is_flag=True, help="Keep polling for new posts until --until or Ctrl-C.")
@click.option("--interval", type=click.FloatRange(min=0.05), default=30.0, show_default=True,
              help="Seconds between polls with --follow.")
@click.option("--instance", "instances", multiple=True, metavar="URL",
              help="Mastodon server whose tag timeline to read (repeatable; posts are merged by uri).")
@click.option("--api-base", metavar="URL", help="Talk to this server instead (X API host, Bluesky service).")
@click.option("--service", metavar="URL", help="Bluesky PDS/entryway for login and search [https://bsky.social].")
@click.option("--archive", is_flag=True, help="X: full-archive search (/2/tweets/search/all) instead of the last 7 days.")
@click.option("--raw", "raw_path", type=click.Path(dir_okay=False),
              help="Also append every API page to this JSONL file (X: twarc2-compatible; re-importable).")
@click.option("--context", "with_context", is_flag=True,
              help="Afterwards fetch the reply parents and untagged replies of the captured threads.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="Credentials file (TOML, mode 600) [~/.config/chatarchive/config.toml].")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=30.0, show_default=True,
              help="Seconds before a stalled request is retried.")
@click.option("--no-analyse", is_flag=True, help="Do not re-detect sessions, threads and Q&A afterwards.")
@click.option("-q", "--quiet", is_flag=True, help="No live panel and no summary.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def capture(db: str, platform: str, query: str, since: str | None, until: str | None, duration: str | None,
            tz: str | None, follow: bool, interval: float, instances: tuple[str, ...], api_base: str | None,
            service: str | None, archive: bool, raw_path: str | None, with_context: bool, config_path: str | None,
            timeout: float, no_analyse: bool, quiet: bool, as_json: bool) -> None:
    """Capture a hashtag chat live from X, Mastodon or Bluesky into DB.

    Every page is committed as it arrives; running the same command again
    resumes where it stopped, without duplicates. Credentials come from
    X_BEARER_TOKEN, MASTODON_TOKEN (optional), BLUESKY_HANDLE and
    BLUESKY_APP_PASSWORD, or the --config file. "context SESSION" fetches
    the reply parents and untagged replies of a session's threads.

    \b
    Examples:
        chatarchive capture chats.db x '#edchat' --since 2026-11-18T19:55 --duration 1h15m
        chatarchive capture chats.db mastodon '#edchat' --instance https://mastodon.social --follow
        chatarchive capture chats.db bluesky '#edchat' --follow --until 2026-11-18T21:10
        chatarchive capture chats.db context edchat-2026-11-18
    """
    if tz:
        get_zone(tz)
    start = parse_time(since, tz) if since else None
    end = parse_time(until, tz) if until else None
    if duration:
        if end is not None:
            raise click.UsageError("Give --until or --duration, not both.")
        start = start or datetime.now(timezone.utc)
        end = start + parse_duration(duration)
    if platform != "mastodon" and platform != "context" and instances:
        raise click.UsageError("--instance is for Mastodon; use --api-base or --service for other platforms.")
    if platform == "mastodon" and not instances and not api_base:
        raise click.UsageError("Mastodon capture needs --instance URL (e.g. --instance https://mastodon.social).")
    if archive and platform not in ("x", "context"):
        raise click.UsageError("--archive is for X full-archive search.")
    if api_base and service:
        raise click.UsageError("Give --api-base or --service, not both.")
    config = load_config(config_path)
    target = Archive(db, create=True)
    opts = CaptureOptions(
        since=start, until=end, follow=follow, interval=interval, instances=tuple(instances),
        api_base=api_base or service, archive=archive, raw_path=raw_path, context=with_context,
        analyse=not no_analyse, timeout=timeout,
    )
    console = Console(stderr=True)
    ui: CaptureUI | None
    if quiet or as_json:
        ui = None
    elif console.is_terminal:
        ui = LiveUI(console)
    else:
        ui = LogUI(err)
    results: list[CaptureResult]
    try:
        if platform == "context":
            results = capture_context(target.db, query, opts, config, ui=ui)
        else:
            results = [run_capture(target.db, platform, query, opts, config, ui=ui)]
    except BaseException:
        # a first capture that failed before storing anything (no token, a
        # refused login) leaves no empty archive behind
        target.discard_if_empty()
        raise
    if as_json:
        json_out([r.as_dict() for r in results] if platform == "context" else results[0].as_dict())
    elif not quiet:
        for r in results:
            what = f"{r.platform} context" if platform == "context" else f"{r.platform} {r.query!r}"
            state = {"ok": "", "interrupted": " (stopped)"}.get(r.status, f" ({r.status})")
            resumed = ", resumed" if r.resumed else ""
            click.echo(
                f"{what}{state}: {r.added:,} posts added, {r.updated:,} updated; "
                f"{r.requests:,} requests, {r.pages:,} pages{resumed} (capture #{r.capture_id})"
            )
            if r.context:
                click.echo(f"  context: {r.context['added']:,} posts added around {r.context['posts']:,} posts")
            for p in r.problems[-5:]:
                err(f"  problem: {p}")
        analysis = results[-1].analysis if results else {}
        if analysis.get("summary"):
            click.echo(analysis["summary"])
    if any(r.status == "interrupted" for r in results) and not follow:
        sys.exit(130)
