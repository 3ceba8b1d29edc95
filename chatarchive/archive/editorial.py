"""The host's editorial decisions and the participants' consent, as stored
in the archive (tables of migration m008: ``hidden``, ``pins``,
``host_notes``, ``forgotten_accounts``, ``consent``, ``settings``).

Every change here runs in one transaction and resolves all its targets
first, so a mistyped target is an error naming it and nothing is written.
What published outputs make of these decisions is ``archive/published.py``.

Targets (:func:`resolve_target`, the one resolver): a post id, a post URL
(``posts.url``), an account as ``@handle``, ``@user@server``, a DID or a
profile URL.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from ..errors import ChatArchiveError, NotFoundError
from . import deletion
from .queries import resolve_session
from .writer import transaction

POST, ACCOUNT = "post", "account"

# What the host may record about the archive (chatarchive settings --KEY).
SETTING_KEYS = ("owner", "contact", "purpose", "removal")


@dataclass(frozen=True)
class Target:
    """A post or an account, as the archive names it."""

    kind: str  # POST | ACCOUNT
    id: str  # posts.id | authors.id
    label: str  # what the host typed

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "id": self.id, "target": self.label}


def _now() -> str:
    from .schema import now_iso

    return now_iso()


def _one(conn: Any, sql: str, params: list[Any]) -> list[str]:
    return [r[0] for r in conn.execute(sql, params)]


def resolve_target(db: sqlite_utils.Database, target: str) -> Target:
    """The post or account ``target`` names; NotFoundError naming it when
    nothing (or more than one account) matches."""
    conn = db.conn
    key = (target or "").strip()
    if not key:
        raise NotFoundError("an empty target: give a post id, a post URL, @handle, @user@server or a DID")
    if key.startswith("@") or ("@" in key and "://" not in key and not key.startswith("did:")):
        handle = key.lstrip("@")
        found = _one(conn, "SELECT id FROM authors WHERE handle = ? COLLATE NOCASE ORDER BY id", [handle])
        if len(found) > 1:
            raise ChatArchiveError(f"{target}: more than one account has this handle ({', '.join(found)}); "
                                   "give the account id or its profile URL")
        if found:
            return Target(ACCOUNT, found[0], key)
        raise NotFoundError(f"{target}: no account with this handle in the archive")
    if key.startswith("did:"):
        if _one(conn, "SELECT id FROM authors WHERE id = ?", [key]):
            return Target(ACCOUNT, key, key)
        raise NotFoundError(f"{target}: no account with this DID in the archive")
    found = _one(conn, "SELECT id FROM posts WHERE id = ?", [key]) or _one(
        conn, "SELECT id FROM posts WHERE url = ? ORDER BY id LIMIT 1", [key])
    if found:
        return Target(POST, found[0], key)
    if key.startswith("at://") and key.count("/") == 2:  # at://did: the account itself
        did = key[5:]
        if _one(conn, "SELECT id FROM authors WHERE id = ?", [did]):
            return Target(ACCOUNT, did, key)
    accounts = _one(conn, "SELECT id FROM authors WHERE id = ? OR url = ? ORDER BY id", [key, key])
    if accounts:
        return Target(ACCOUNT, accounts[0], key)
    raise NotFoundError(f"{target}: no post or account in the archive (give a post id, a post URL, "
                        "@handle, @user@server or a DID)")


def resolve_targets(db: sqlite_utils.Database, targets: Iterable[str]) -> list[Target]:
    """Every target resolved (before anything is written), once each."""
    out: list[Target] = []
    for t in targets:
        got = resolve_target(db, t)
        if all((o.kind, o.id) != (got.kind, got.id) for o in out):
            out.append(got)
    if not out:
        raise ChatArchiveError("no target given")
    return out


def resolve_account(db: sqlite_utils.Database, target: str) -> Target:
    """The account ``target`` names; a post is an error (forget and consent are about people)."""
    got = resolve_target(db, target)
    if got.kind != ACCOUNT:
        raise ChatArchiveError(f"{target}: this is a post, not an account (give @handle, @user@server or a DID)")
    return got


def resolve_post(db: sqlite_utils.Database, target: str) -> Target:
    got = resolve_target(db, target)
    if got.kind != POST:
        raise ChatArchiveError(f"{target}: this is an account, not a post (give a post id or URL)")
    return got


# --------------------------------------------------------------------------
# Hide and unhide


def hide(db: sqlite_utils.Database, targets: Iterable[str], reason: str | None = None) -> list[Target]:
    """Keep posts or accounts out of published outputs (the archive keeps
    them); hiding again updates the reason."""
    resolved = resolve_targets(db, targets)
    when = _now()
    with transaction(db):
        for t in resolved:
            db.conn.execute(
                """INSERT INTO hidden (target_kind, target_id, reason, hidden_at) VALUES (?, ?, ?, ?)
                   ON CONFLICT(target_kind, target_id) DO UPDATE SET reason = coalesce(excluded.reason, reason)""",
                [t.kind, t.id, reason, when])
    return resolved


def unhide(db: sqlite_utils.Database, targets: Iterable[str]) -> list[Target]:
    """Publish hidden posts or accounts again (not hidden: nothing to do)."""
    resolved = resolve_targets(db, targets)
    with transaction(db):
        for t in resolved:
            db.conn.execute("DELETE FROM hidden WHERE target_kind = ? AND target_id = ?", [t.kind, t.id])
    return resolved


def hidden(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    """What is hidden, oldest first: kind, id, who/what it is, reason, when."""
    out = []
    for kind, tid, reason, when in db.conn.execute(
            "SELECT target_kind, target_id, reason, hidden_at FROM hidden ORDER BY hidden_at, target_id"):
        if kind == POST:
            row = db.conn.execute("SELECT author_handle, substr(text, 1, 80), url FROM posts WHERE id = ?",
                                  [tid]).fetchone()
            what = f"post by @{row[0]}: {row[1]}" if row else "post (no longer in the archive)"
        else:
            row = db.conn.execute("SELECT handle, name FROM authors WHERE id = ?", [tid]).fetchone()
            what = f"account @{row[0]}" + (f" ({row[1]})" if row and row[1] else "") if row else "account"
        out.append({"kind": kind, "id": tid, "what": what, "reason": reason, "hidden_at": when})
    return out


# --------------------------------------------------------------------------
# Pins and notes


def pin(db: sqlite_utils.Database, post: str) -> Target:
    t = resolve_post(db, post)
    with transaction(db):
        db.conn.execute("INSERT OR IGNORE INTO pins (post_id, pinned_at) VALUES (?, ?)", [t.id, _now()])
    return t


def unpin(db: sqlite_utils.Database, post: str) -> Target:
    t = resolve_post(db, post)
    with transaction(db):
        db.conn.execute("DELETE FROM pins WHERE post_id = ?", [t.id])
    return t


def set_note(db: sqlite_utils.Database, session: str | int, text: str, question: int | None = None) -> int:
    """The host's note on a session (or one of its questions), replacing any
    earlier one there; empty text removes it.  Returns the session id."""
    sid = resolve_session(db, session)
    if question is not None and not db.conn.execute(
            "SELECT 1 FROM questions WHERE session_id = ? AND number = ?", [sid, question]).fetchone():
        raise NotFoundError(f"session {session}: no question {question}")
    with transaction(db):
        db.conn.execute("DELETE FROM host_notes WHERE session_id = ? AND coalesce(question_number, -1) = ?",
                        [sid, -1 if question is None else question])
        if text.strip():
            db.conn.execute("INSERT INTO host_notes (session_id, question_number, markdown, updated_at) "
                            "VALUES (?, ?, ?, ?)", [sid, question, text, _now()])
    return sid


def notes(db: Any, session_id: int) -> dict[int | None, str]:
    """A session's notes as Markdown, by question number (None: the session's own)."""
    conn = db.conn if isinstance(db, sqlite_utils.Database) else db
    return dict(conn.execute(
        "SELECT question_number, markdown FROM host_notes WHERE session_id = ?", [session_id]))


# --------------------------------------------------------------------------
# Forget a person; consent


def forget_account(db: sqlite_utils.Database, account: str) -> tuple[Target, int]:
    """Remove every trace of an account's posts' content (tombstones stay,
    shown as removed at the author's request), its name and picture, and
    remember it so later imports and captures of its posts are redacted on
    arrival.  Returns the account and how many posts became tombstones.
    Idempotent: forgetting again removes whatever came back since."""
    t = resolve_account(db, account)
    conn = db.conn
    ids = _one(conn, "SELECT id FROM posts WHERE author_id = ?", [t.id])
    with deletion.secure_delete(conn), transaction(db):
        conn.execute("INSERT OR IGNORE INTO forgotten_accounts (author_id, forgotten_at) VALUES (?, ?)",
                     [t.id, _now()])
        changed = deletion.delete_posts(db, ids, purge=False)
        conn.execute("UPDATE posts SET author_name = NULL WHERE author_id = ? AND author_name IS NOT NULL", [t.id])
        conn.execute("UPDATE authors SET name = NULL, avatar_url = NULL WHERE id = ?", [t.id])
        conn.execute("DELETE FROM pins WHERE post_id IN (SELECT id FROM posts WHERE author_id = ?)", [t.id])
    deletion.purge(db)
    return t, changed


def set_consent(db: sqlite_utils.Database, account: str, allow: bool) -> Target:
    """``allow``: publish the account although its platform says unlisted;
    otherwise (revoke): never publish it, whatever its platform says."""
    t = resolve_account(db, account)
    with transaction(db):
        db.conn.execute("INSERT INTO consent (author_id, allow, decided_at) VALUES (?, ?, ?) "
                        "ON CONFLICT(author_id) DO UPDATE SET allow = excluded.allow, decided_at = excluded.decided_at",
                        [t.id, int(allow), _now()])
    return t


def forgotten_authors(db: Any) -> set[str]:
    conn = db.conn if isinstance(db, sqlite_utils.Database) else db
    return {r[0] for r in conn.execute("SELECT author_id FROM forgotten_accounts")}


# --------------------------------------------------------------------------
# Settings


def settings(db: Any) -> dict[str, str]:
    conn = db.conn if isinstance(db, sqlite_utils.Database) else db
    return {k: v for k, v in conn.execute("SELECT key, value FROM settings ORDER BY key") if v is not None}


def update_settings(db: sqlite_utils.Database, values: dict[str, str | None]) -> dict[str, str]:
    """Set the given settings (an empty value removes one); returns them all."""
    unknown = [k for k in values if k not in SETTING_KEYS]
    if unknown:
        raise ChatArchiveError(f"unknown setting {unknown[0]!r} (known: {', '.join(SETTING_KEYS)})")
    with transaction(db):
        for k, v in values.items():
            if v is None:
                continue
            if v.strip():
                db.conn.execute("INSERT INTO settings (key, value) VALUES (?, ?) "
                                "ON CONFLICT(key) DO UPDATE SET value = excluded.value", [k, v.strip()])
            else:
                db.conn.execute("DELETE FROM settings WHERE key = ?", [k])
    return settings(db)
