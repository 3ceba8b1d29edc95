"""``chatarchive capture``: a chat live from the platforms' APIs and streams."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import click
from rich.console import Console

from ..api import Archive
from ..capture.config import load_config
from ..capture.http import redact_urls
from ..capture.live import LiveRun, capture_live
from ..capture.runner import CaptureOptions, CaptureResult, CaptureUI, capture_context
from ..capture.runner import capture as run_capture
from ..capture.schedule import Occurrence, plan_at, run_schedule, stored_plans
from ..capture.stream import StreamUI
from ..capture.ui import LiveUI, LogUI, StreamLogUI, StreamPanel
from ..errors import ChatArchiveError
from ..timeutil import get_zone, parse_duration, parse_time
from .common import DURATION, db_argument, err, json_out


@click.command()
@db_argument
@click.argument("platform", type=click.Choice(["x", "mastodon", "bluesky", "all", "context"]))
@click.argument("query")
@click.option("--stream", is_flag=True,
              help="Follow the live stream instead of polling search: Bluesky's Jetstream (no login), Mastodon's "
                   "streaming API (MASTODON_TOKEN), X's filtered stream. Gaps are filled from search.")
@click.option("--since", help="Start of the window (ISO-8601; UTC unless an offset or --tz is given).")
@click.option("--until", help="End of the window (exclusive). With --follow or --stream: stop there.")
@click.option("--duration", help="Window length, e.g. 1h15m: from --since, or from now when --since is not given "
                                 "(with --at: the length of each chat).")
@click.option("--tz", help="Time zone of --since/--until/--at without an offset, e.g. America/New_York.")
@click.option("--at", "at", metavar="WHEN",
              help="Wait for WHEN and capture --duration from there: \"wed 20:00\" (weekly, in --tz; repeats "
                   "until Ctrl-C unless --once) or a date and time (once). Streams unless --follow is given.")
@click.option("--scheduled", is_flag=True,
              help="Like --at, for each occurrence of the schedule stored with `sessions schedule` for QUERY.")
@click.option("--once", is_flag=True, help="With --at or --scheduled: capture the next occurrence only, then exit.")
@click.option("--before", type=DURATION, help="With --at: start capturing this long before each chat, e.g. 1h.")
@click.option("--after", type=DURATION, help="With --at: keep capturing this long after each chat, e.g. 30m.")
@click.option("--follow", is_flag=True, help="Keep polling for new posts until --until or Ctrl-C.")
@click.option("--interval", type=click.FloatRange(min=0.05), default=30.0, show_default=True,
              help="Seconds between polls with --follow.")
@click.option("--instance", "instances", multiple=True, metavar="URL",
              help="Mastodon server whose tag timeline or stream to read (repeatable; posts are merged by uri).")
@click.option("--api-base", metavar="URL", help="Talk to this server instead (X API host, Bluesky service).")
@click.option("--service", metavar="URL", help="Bluesky PDS/entryway for login and search [https://bsky.social].")
@click.option("--jetstream", metavar="URL",
              help="Bluesky Jetstream server for --stream: a host, or its /subscribe or subscribeEvents endpoint "
                   "[wss://jetstream2.us-east.bsky.network].")
@click.option("--appview", metavar="URL",
              help="Bluesky AppView for handles and names with --stream (no login) [https://public.api.bsky.app].")
@click.option("--archive", is_flag=True, help="X: full-archive search (/2/tweets/search/all) instead of the last 7 days.")
@click.option("--raw", "raw_path", type=click.Path(dir_okay=False),
              help="Also append every API page or streamed post to this JSONL file (re-importable).")
@click.option("--context", "with_context", is_flag=True,
              help="Afterwards fetch the reply parents and untagged replies of the captured threads.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="Credentials file (TOML, mode 600) [~/.config/chatarchive/config.toml].")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=30.0, show_default=True,
              help="Seconds before a stalled request is retried.")
@click.option("--no-analyse", is_flag=True, help="Do not re-detect sessions, threads and Q&A afterwards.")
@click.option("-q", "--quiet", is_flag=True, help="No live panel and no summary.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def capture(db: str, platform: str, query: str, stream: bool, since: str | None, until: str | None,
            duration: str | None, tz: str | None, at: str | None, scheduled: bool, once: bool,
            before: timedelta | None, after: timedelta | None, follow: bool, interval: float,
            instances: tuple[str, ...], api_base: str | None, service: str | None, jetstream: str | None,
            appview: str | None, archive: bool, raw_path: str | None, with_context: bool, config_path: str | None,
            timeout: float, no_analyse: bool, quiet: bool, as_json: bool) -> None:
    """Capture a hashtag chat live from X, Mastodon or Bluesky into DB.

    Every page (or streamed post) is committed as it arrives; running the
    same command again resumes where it stopped, without duplicates.
    --stream follows the platforms' live streams, and "all" follows X,
    Mastodon and Bluesky at once into one archive (platforms without
    credentials are skipped, saying what to set). Credentials come from
    X_BEARER_TOKEN, MASTODON_TOKEN, BLUESKY_HANDLE and BLUESKY_APP_PASSWORD
    (search only: the Bluesky stream needs no login), or the --config file.
    "context SESSION" fetches the reply parents and untagged replies of a
    session's threads.

    \b
    Examples:
        chatarchive capture chats.db x '#edchat' --since 2026-11-18T19:55 --duration 1h15m
        chatarchive capture chats.db mastodon '#edchat' --instance https://mastodon.social --follow
        chatarchive capture chats.db bluesky '#edchat' --stream --duration 1h15m
        chatarchive capture chats.db all '#edchat' --instance https://mastodon.social --duration 1h15m
        chatarchive capture chats.db all '#edchat' --at "wed 20:00" --tz America/New_York --duration 1h15m
        chatarchive capture chats.db context edchat-2026-11-18
    """
    try:
        _capture(db, platform, query, stream, since, until, duration, tz, at, scheduled, once, before, after, follow,
                 interval, instances, api_base, service, jetstream, appview, archive, raw_path, with_context,
                 config_path, timeout, no_analyse, quiet, as_json)
    except ChatArchiveError as e:
        # the last line of defence for "a password in a URL is never shown"
        raise click.ClickException(redact_urls(str(e))) from None


def _capture(db: str, platform: str, query: str, stream: bool, since: str | None, until: str | None,
             duration: str | None, tz: str | None, at: str | None, scheduled: bool, once: bool,
             before: timedelta | None, after: timedelta | None, follow: bool, interval: float,
             instances: tuple[str, ...], api_base: str | None, service: str | None, jetstream: str | None,
             appview: str | None, archive: bool, raw_path: str | None, with_context: bool, config_path: str | None,
             timeout: float, no_analyse: bool, quiet: bool, as_json: bool) -> None:
    if tz:
        get_zone(tz)
    scheduling = bool(at) or scheduled
    if platform == "all" or (scheduling and not follow):
        stream = True
    _check_options(platform, stream, follow, scheduling, at, scheduled, since, until, duration, instances, api_base,
                   service, jetstream, appview, archive, before, after, with_context)
    start = parse_time(since, tz) if since else None
    end = parse_time(until, tz) if until else None
    length = parse_duration(duration) if duration else None
    if length is not None and not scheduling:
        start = start or datetime.now(timezone.utc)
        end = start + length
    if stream and not scheduling and start is None:
        # "from now" is when the command started: the streams connect a moment
        # later (credentials, rules), and what was posted meanwhile is replayed
        start = datetime.now(timezone.utc)
    config = load_config(config_path)
    target = Archive(db, create=True)
    opts = CaptureOptions(
        since=start, until=end, follow=follow, interval=interval, instances=tuple(instances),
        api_base=api_base or service, archive=archive, raw_path=raw_path, context=with_context,
        analyse=not no_analyse, timeout=timeout, jetstream=jetstream, appview=appview,
    )
    console = Console(stderr=True)
    say: Callable[[str], None] = (lambda m: None) if quiet or as_json else err
    platforms = ["bluesky", "mastodon", "x"] if platform == "all" else [platform]
    outcome: list[Any] = []
    try:
        if scheduling:
            plans = stored_plans(target.db, query) if scheduled else [
                plan_at(at or "", tz, length, before or timedelta(0), after or timedelta(0))]

            def one(occ: Occurrence) -> Any:
                o = CaptureOptions(**{**opts.__dict__, "since": occ.capture_from, "until": occ.capture_until,
                                      "follow": follow})
                return _run(target, platforms, query, o, config, stream, console, quiet, as_json)

            outcome = run_schedule(plans, one, once=once, say=say)
        elif platform == "context":
            outcome = [capture_context(target.db, query, opts, config, ui=_poll_ui(console, quiet, as_json))]
        else:
            outcome = [_run(target, platforms, query, opts, config, stream, console, quiet, as_json)]
    except BaseException:
        # a first capture that failed before storing anything (no token, a
        # refused login) leaves no empty archive behind
        target.discard_if_empty()
        raise
    streamed = [r for o in outcome if isinstance(o, LiveRun) for r in o.results]
    if streamed and all(r.status == "failed" for r in streamed) and not any(r.added or r.updated for r in streamed):
        # nothing ran: one line, the reason
        first = next((r.error for r in streamed if r.error is not None), None)
        raise click.ClickException(redact_urls(str(first or "every stream failed")))
    _report(outcome, platform, stream, as_json, quiet)
    if any(r.status == "failed" for r in streamed):
        sys.exit(1)
    polled = [r for o in outcome if isinstance(o, list) for r in o] + [o for o in outcome if isinstance(o, CaptureResult)]
    if any(r.status == "interrupted" for r in polled) and not follow and not stream:
        sys.exit(130)


def _check_options(platform: str, stream: bool, follow: bool, scheduling: bool, at: str | None, scheduled: bool,
                   since: str | None, until: str | None, duration: str | None, instances: tuple[str, ...],
                   api_base: str | None, service: str | None, jetstream: str | None, appview: str | None,
                   archive: bool, before: timedelta | None, after: timedelta | None, with_context: bool) -> None:
    if duration and until and not scheduling:
        raise click.UsageError("Give --until or --duration, not both.")
    if stream and follow and not scheduling:
        raise click.UsageError("Give --stream (live streams) or --follow (polling search), not both.")
    if platform == "context" and (stream or scheduling):
        raise click.UsageError("context fetches a session's threads once: --stream and --at are for live capture.")
    if at and scheduled:
        raise click.UsageError("Give --at or --scheduled, not both.")
    if scheduling and (since or until):
        raise click.UsageError("--at and --scheduled set the window of each chat: drop --since/--until.")
    if (before or after) and not at:
        raise click.UsageError("--before and --after go with --at (stored schedules keep their own margins).")
    if at and not duration:
        raise click.UsageError("--at needs --duration: how long each chat is captured (e.g. --duration 1h15m).")
    if platform not in ("mastodon", "context", "all") and instances:
        raise click.UsageError("--instance is for Mastodon; use --api-base or --service for other platforms.")
    if platform == "mastodon" and not instances and not api_base:
        raise click.UsageError("Mastodon capture needs --instance URL (e.g. --instance https://mastodon.social).")
    if archive and (platform not in ("x", "context") or stream):
        raise click.UsageError("--archive is for X full-archive search (not for streams).")
    if api_base and service:
        raise click.UsageError("Give --api-base or --service, not both.")
    if (jetstream or appview) and not (stream and platform in ("bluesky", "all")):
        raise click.UsageError("--jetstream and --appview are for the Bluesky stream (bluesky or all, with --stream).")
    if stream and with_context:
        raise click.UsageError("--context goes with search capture; a stream catches the replies as they come.")


def _poll_ui(console: Console, quiet: bool, as_json: bool) -> CaptureUI | None:
    if quiet or as_json:
        return None
    return LiveUI(console) if console.is_terminal else LogUI(err)


def _stream_ui(console: Console, quiet: bool, as_json: bool) -> StreamUI | None:
    if quiet or as_json:
        return None
    return StreamPanel(console) if console.is_terminal else StreamLogUI(err)


def _run(target: Archive, platforms: list[str], query: str, opts: CaptureOptions, config: Any, stream: bool,
         console: Console, quiet: bool, as_json: bool) -> Any:
    if stream:
        run = capture_live(target.db, platforms, query, opts, config, ui=_stream_ui(console, quiet, as_json))
        if not (quiet or as_json):
            for s in run.skipped:
                err(s.reason)
        return run
    return run_capture(target.db, platforms[0], query, opts, config, ui=_poll_ui(console, quiet, as_json))


def _report(outcome: list[Any], platform: str, stream: bool, as_json: bool, quiet: bool) -> None:
    if as_json:
        dicts: list[Any] = []
        for o in outcome:
            if isinstance(o, LiveRun):
                dicts.append(o.as_dicts()[0] if platform not in ("all",) and len(o.as_dicts()) == 1 else o.as_dicts())
            elif isinstance(o, list):
                dicts.append([r.as_dict() for r in o])
            else:
                dicts.append(o.as_dict())
        json_out(dicts[0] if len(dicts) == 1 else dicts)
        return
    if quiet:
        return
    analysis: dict = {}
    for o in outcome:
        if isinstance(o, LiveRun):
            for r in o.results:
                name = r.name if r.platform == "mastodon" else r.platform
                state = {"ok": "", "interrupted": " (stopped)"}.get(r.status, f" ({r.status})")
                resumed = ", resumed" if r.resumed else ""
                click.echo(
                    f"{name} {r.query!r} stream{state}: {r.added:,} posts added, {r.updated:,} updated, "
                    f"{r.deleted:,} deleted; {r.reconnects:,} reconnects, {r.gap_fills:,} gap fills, "
                    f"{r.requests:,} requests{resumed} (capture #{r.capture_id})")
                for p in r.problems[-5:]:
                    err(f"  problem: {p}")
            analysis = o.analysis or analysis
            continue
        results = o if isinstance(o, list) else [o]
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
        if results:
            analysis = results[-1].analysis or analysis
    if analysis.get("summary"):
        click.echo(analysis["summary"])
