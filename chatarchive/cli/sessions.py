"""``chatarchive sessions …`` and ``show``: detect, add, schedule, list,
remove and forget sessions; one session's terminal recap."""

from __future__ import annotations

from datetime import timedelta

import click
from rich.console import Console

from ..api import Archive, ForgetResult
from ..models import Session
from ..present.terminal import local_time, print_session_stats, print_sessions, session_lines
from ..present.text import plural
from .common import DURATION, db_argument, err, json_out, qa_options


@click.group()
def sessions() -> None:
    """Find, add and list the sessions (sittings) of a chat hashtag.

    Sessions are detected automatically after every import; these commands
    tune detection, add explicit windows and weekly schedules, and forget a
    hashtag named by mistake.

    \b
    Example:
        chatarchive sessions detect chats.db --hashtag cmgrchat --gap 45m
        chatarchive sessions list chats.db
    """


def echo_sessions(rows: list[Session]) -> None:
    console = Console()
    if console.is_terminal:
        print_sessions(console, rows)
    else:
        for line in session_lines(rows):
            click.echo(line)


def when(s: Session) -> str:
    """A session's time in its chat's zone when one is known ("Wed 2026-11-25
    20:00–21:00 America/New_York"), else in UTC."""
    start = local_time(s.start, s.timezone, "%a %Y-%m-%d %H:%M")
    same_day = local_time(s.start, s.timezone, "%Y-%m-%d")[:10] == local_time(s.end, s.timezone, "%Y-%m-%d")[:10]
    end = local_time(s.end, s.timezone, "%H:%M" if same_day else "%a %Y-%m-%d %H:%M", zone=True)
    if start.endswith(" UTC"):
        start = start[:-4]
    return f"{start}–{end}"


def echo_session(s: Session, as_json: bool) -> None:
    if as_json:
        json_out(s.as_dict())
        return
    hosts = f", hosts {', '.join('@' + h for h in s.configured_hosts)}" if s.configured_hosts else ""
    click.echo(f"Session {s.slug} (#{s.hashtag}, {s.source}): {when(s)}, {plural(s.posts, 'post')}{hosts}")


@sessions.command("detect")
@db_argument
@click.option("--hashtag", "hashtags", multiple=True, metavar="TAG",
              help="Chat hashtag (repeatable). Named hashtags are remembered; without any, every hashtag is tried.")
@click.option("--gap", type=DURATION, metavar="DURATION", help="Silence that splits two sessions [45m].")
@click.option("--min-posts", type=click.IntRange(min=1), help="Fewer posts than this are strays, not a session [10].")
@click.option("--lead", type=DURATION, metavar="DURATION",
              help="How far before a session's busy core the same day's posts still belong to it "
                   "(announcements, reminders, greetings) [6h]; 0 for none.")
@click.option("--tail", type=DURATION, metavar="DURATION",
              help="How far after the core posts still belong to it (late answers, wrap-ups) [2h]; 0 for none.")
@click.option("--tz", metavar="ZONE",
              help="The chat's time zone, for slugs, display and the lead-in's day, e.g. America/New_York.")
@qa_options
@click.option("--json", "as_json", is_flag=True, help="Print the analysis summary and sessions as JSON.")
def sessions_detect(db: str, hashtags: tuple[str, ...], gap: timedelta | None, min_posts: int | None,
                    lead: timedelta | None, tail: timedelta | None, tz: str | None,
                    hosts: tuple[str, ...], question_pattern: str | None, answer_pattern: str | None,
                    as_json: bool) -> None:
    """Detect sessions from gaps in a hashtag's activity, then threads and Q&A.

    A session's core is its busy stretch (its shown time); the same day's
    posts up to --lead before it and --tail after it are members too.
    Re-running is safe: sessions keep their ids and slugs, manual and
    scheduled sessions are left alone. Options are remembered per hashtag
    and applied again after later imports.

    \b
    Example:
        chatarchive sessions detect chats.db --hashtag cmgrchat --gap 45m --min-posts 10
        chatarchive sessions detect chats.db --hashtag cmgrchat --lead 3h --tail 1h --tz America/New_York
        chatarchive sessions detect chats.db --hashtag tchat --question-pattern 'T(?P<n>\\d+):'
    """
    result = Archive(db).detect_sessions(
        hashtags, gap=gap, min_posts=min_posts, tz=tz, hosts=hosts,
        question_pattern=question_pattern, answer_pattern=answer_pattern, lead=lead, tail=tail,
    )
    for tag in result.unknown_hashtags:
        err(f"Warning: no post carries #{tag} (check the spelling); it is remembered as a chat hashtag.")
    if as_json:
        json_out(result.as_dict())
        return
    click.echo(result.analysis["summary"])
    echo_sessions(result.sessions)


@sessions.command("add")
@db_argument
@click.option("--hashtag", required=True, metavar="TAG", help="The chat hashtag.")
@click.option("--start", required=True, metavar="TIME", help="Start (ISO-8601; UTC unless an offset or --tz is given).")
@click.option("--end", metavar="TIME", help="End (ISO-8601).")
@click.option("--duration", type=DURATION, metavar="DURATION", help="Length instead of --end, e.g. 1h.")
@click.option("--tz", metavar="ZONE", help="Time zone of --start/--end without an offset, and of the slug's date.")
@click.option("--host", "hosts", multiple=True, metavar="HANDLE",
              help="A host of this session (repeatable); replaces those given before, which are kept without it.")
@click.option("--title", help="A title for the recap.")
@click.option("--json", "as_json", is_flag=True, help="Print the session as JSON.")
def sessions_add(db: str, hashtag: str, start: str, end: str | None, duration: timedelta | None, tz: str | None,
                 hosts: tuple[str, ...], title: str | None, as_json: bool) -> None:
    """Add a session with an explicit window (or update the one overlapping it).

    The window is exactly the session: no lead-in or tail is added. Running
    it again updates the session; hosts and title given before are kept
    unless given again.

    \b
    Example:
        chatarchive sessions add chats.db --hashtag cmgrchat --start 2026-11-18T20:00 \\
            --duration 1h --tz America/New_York --host cmgrhost --title "Onboarding"
    """
    if (end is None) == (duration is None):
        raise click.UsageError("Give exactly one of --end and --duration.")
    s = Archive(db).add_session(hashtag, start, end, duration=duration, tz=tz, hosts=hosts, title=title)
    echo_session(s, as_json)


@sessions.command("schedule")
@db_argument
@click.option("--hashtag", required=True, metavar="TAG", help="The chat hashtag.")
@click.option("--every", required=True, metavar='"WEEKDAY HH:MM"', help='When the chat meets, e.g. "wed 20:00".')
@click.option("--tz", required=True, metavar="ZONE", help="The chat's time zone, e.g. America/New_York.")
@click.option("--duration", required=True, type=DURATION, metavar="DURATION", help="Length of the chat, e.g. 1h.")
@click.option("--before", default="0m", show_default=True, type=DURATION, metavar="DURATION", help="Posts this early belong to it too.")
@click.option("--after", default="0m", show_default=True, type=DURATION, metavar="DURATION", help="Posts this late belong to it too.")
@click.option("--host", "hosts", multiple=True, metavar="HANDLE", help="A host of the chat (repeatable).")
@click.option("--title", help="A title for every occurrence.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary and sessions as JSON.")
def sessions_schedule(db: str, hashtag: str, every: str, tz: str, duration: timedelta, before: timedelta,
                      after: timedelta,
                      hosts: tuple[str, ...], title: str | None, as_json: bool) -> None:
    """Make one session per weekly occurrence that has posts (DST-safe).

    The schedule is remembered: later imports get their sessions from it.

    \b
    Example:
        chatarchive sessions schedule chats.db --hashtag cmgrchat --every "wed 20:00" \\
            --tz America/New_York --duration 1h --before 15m --after 30m
    """
    result = Archive(db).schedule(hashtag, every, tz, duration, before=before, after=after, hosts=hosts, title=title)
    if as_json:
        json_out(result.as_dict())
        return
    click.echo(f"{plural(len(result.sessions), 'scheduled session')} of #{result.hashtag}. "
               f"{result.analysis['summary']}")
    echo_sessions(result.sessions)


@sessions.command("list")
@db_argument
@click.option("--hashtag", metavar="TAG", help="Only sessions of this hashtag.")
@click.option("--json", "as_json", is_flag=True, help="Print sessions as JSON.")
def sessions_list(db: str, hashtag: str | None, as_json: bool) -> None:
    """List sessions with their posts, participants and questions.

    \b
    Example:
        chatarchive sessions list chats.db --hashtag cmgrchat
    """
    rows = Archive(db).sessions(hashtag)
    if as_json:
        json_out([s.as_dict() for s in rows])
        return
    if not rows:
        err("No sessions. Import a chat, or: chatarchive sessions detect DB --hashtag TAG")
        return
    echo_sessions(rows)


@sessions.command("remove")
@db_argument
@click.argument("session")
def sessions_remove(db: str, session: str) -> None:
    """Delete a session (its posts stay in the archive).

    A detected session comes back on the next detection unless its
    hashtag's settings change; use it for manual sessions added by mistake.

    \b
    Example:
        chatarchive sessions remove chats.db cmgrchat-2026-11-18
    """
    s = Archive(db).remove_session(session)
    click.echo(f"Removed session {s.slug}.")


@sessions.command("forget")
@db_argument
@click.option("--hashtag", required=True, metavar="TAG", help="The remembered hashtag to forget.")
@click.option("--json", "as_json", is_flag=True, help="Print what was forgotten and removed as JSON.")
def sessions_forget(db: str, hashtag: str, as_json: bool) -> None:
    """Forget a hashtag named with --hashtag (detect, add, schedule), e.g. a typo.

    Its remembered options and weekly schedule are deleted, and so are its
    detected sessions. Its manual and scheduled sessions are kept (remove
    them with: chatarchive sessions remove DB SLUG). The archive is then
    analysed as if the hashtag had never been named: when no hashtag is
    named any more, every hashtag is tried again, so it may get detected
    sessions back by guessing.

    \b
    Example:
        chatarchive sessions forget chats.db --hashtag cmgrchatt
    """
    result = Archive(db).forget(hashtag)
    if as_json:
        json_out(result.as_dict())
        return
    for line in forget_lines(result):
        click.echo(line)


def forget_lines(r: ForgetResult) -> list[str]:
    def slugs(items: list[Session]) -> str:
        return f" ({', '.join(s.slug for s in items)})" if items else ""

    lines = [f"Forgot #{r.hashtag}: its remembered options and schedule are gone.",
             f"Removed {plural(len(r.removed), 'detected session')}{slugs(r.removed)}."]
    if r.kept:
        kinds = sorted({s.source or "manual" for s in r.kept})
        lines.append(f"Kept {plural(len(r.kept), ' or '.join(kinds) + ' session')}{slugs(r.kept)}: "
                     "remove with: chatarchive sessions remove DB SLUG")
    if r.guessing:
        found = (f": #{r.hashtag} has {plural(len(r.detected_again), 'detected session')} again"
                 f"{slugs(r.detected_again)}") if r.detected_again else ""
        lines.append(f"No hashtag is named now, so every hashtag is tried again{found}.")
    lines.append(r.analysis["summary"])
    return lines


@click.command()
@db_argument
@click.argument("session")
@click.option("--top", default=10, show_default=True, type=click.IntRange(1, 1000), help="How many participants and posts.")
@click.option("--json", "as_json", is_flag=True, help="Print the full statistics (stats.session_stats) as JSON.")
def show(db: str, session: str, top: int, as_json: bool) -> None:
    """A terminal recap of one session: counts, hosts, questions with answer
    counts, top participants and the busiest minutes.

    SESSION is a session id or slug (see: chatarchive sessions list DB).

    \b
    Example:
        chatarchive show chats.db cmgrchat-2026-11-18
        chatarchive show chats.db cmgrchat-2026-11-18 --json
    """
    st = Archive(db).session_stats(session, top=top)
    if as_json:
        json_out(st)
        return
    print_session_stats(Console(highlight=False), st)


sessions.add_command(show, "show")
