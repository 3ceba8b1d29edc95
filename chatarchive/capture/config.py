"""Credentials for live capture: environment variables or a private config file.

Lookup order for each value: the environment variable, then the config file
(``--config PATH``, else ``$CHATARCHIVE_CONFIG``, else
``$XDG_CONFIG_HOME/chatarchive/config.toml`` i.e. ``~/.config/chatarchive/config.toml``)::

    [x]
    bearer_token = "AAAA…"            # or X_BEARER_TOKEN

    [bluesky]
    handle = "you.bsky.social"        # or BLUESKY_HANDLE
    app_password = "xxxx-xxxx-xxxx-xxxx"   # or BLUESKY_APP_PASSWORD
    service = "https://bsky.social"

    [mastodon]
    token = "…"                       # or MASTODON_TOKEN: sent to the first --instance only
    [mastodon.tokens]
    "fosstodon.org" = "…"             # per-server tokens

A config file that group or others can read is refused (``chmod 600``), so
is a config folder every user can write to (or another user owns), and
values are wrapped in :class:`Secret` so an accidental ``print``/``repr``
shows ``***``.  Bluesky sessions (access/refresh JWTs) are cached beside the
config file in ``bluesky-sessions.json`` (mode 0600) so a rerun does not
call createSession again (it is limited to 30 per 5 minutes per account);
they never go into the archive.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..errors import CaptureError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ENV_X_TOKEN = "X_BEARER_TOKEN"
ENV_BLUESKY_HANDLE = "BLUESKY_HANDLE"
ENV_BLUESKY_PASSWORD = "BLUESKY_APP_PASSWORD"
ENV_MASTODON_TOKEN = "MASTODON_TOKEN"
ENV_CONFIG = "CHATARCHIVE_CONFIG"


class ConfigError(CaptureError):
    """The config file is unsafe or unreadable."""


class Secret:
    """A credential that does not print itself."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def reveal(value: Secret | None) -> str | None:
    return value.reveal() if value else None


@dataclass
class Config:
    path: Path | None = None  # the config file read, if any
    dir: Path | None = None  # where session caches go
    x_bearer_token: Secret | None = None
    bluesky_handle: str | None = None
    bluesky_app_password: Secret | None = None
    bluesky_service: str | None = None
    mastodon_token: Secret | None = None
    mastodon_tokens: dict[str, Secret] = field(default_factory=dict)  # host -> token

    def secrets(self) -> list[str]:
        """Every secret value, for redaction and for tests."""
        out = [reveal(self.x_bearer_token), reveal(self.bluesky_app_password), reveal(self.mastodon_token)]
        out += [t.reveal() for t in self.mastodon_tokens.values()]
        return [s for s in out if s]


def default_config_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if env.get(ENV_CONFIG):
        return Path(env[ENV_CONFIG]).expanduser()
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base).expanduser() / "chatarchive" / "config.toml"


def check_private(path: Path) -> None:
    """Refuse a file of secrets that other users could read or change."""
    if os.name != "posix":
        return
    st = path.stat()
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        mode = stat.filemode(st.st_mode)
        raise ConfigError(
            f"{path}: refusing to read credentials from a file other users can access ({mode}); "
            f"run: chmod 600 {path}"
        )


def check_private_dir(path: Path) -> None:
    """Refuse a folder for secrets that other users can write to: they could
    swap the config file, or plant a symlink where the session cache is
    written (``bluesky-sessions.json.tmp`` -> a file of yours elsewhere)."""
    if os.name != "posix" or not path.exists():
        return
    st = path.stat()
    mode = stat.filemode(st.st_mode)
    if st.st_mode & stat.S_IWOTH:
        raise ConfigError(
            f"{path}: refusing to keep credentials or login sessions in a folder every user can write to "
            f"({mode}); run: chmod 700 {path}"
        )
    uid = os.geteuid()
    if uid != 0 and st.st_uid not in (uid, 0):
        raise ConfigError(f"{path}: refusing to keep credentials or login sessions in a folder another user "
                          f"owns (uid {st.st_uid}); use a folder of your own (--config FILE)")


def load_config(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Read credentials; ``path`` given explicitly must exist."""
    env = os.environ if env is None else env
    explicit = path is not None
    p = Path(path).expanduser() if path is not None else default_config_path(env)
    data: dict[str, Any] = {}
    if p.exists():
        check_private_dir(p.parent)
        check_private(p)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise ConfigError(f"{p}: not a valid TOML config file ({e})") from None
        except OSError as e:
            raise ConfigError(f"{p}: cannot read ({e.strerror})") from None
    elif explicit:
        raise ConfigError(f"{p}: config file not found")
    x = _table(data, "x", p)
    bsky = _table(data, "bluesky", p)
    masto = _table(data, "mastodon", p)
    tokens = masto.get("tokens") or {}
    if not isinstance(tokens, dict):
        raise ConfigError(f"{p}: [mastodon.tokens] must map server names to tokens")

    def pick(env_name: str, table: dict, key: str) -> str | None:
        v = env.get(env_name) or table.get(key)
        if v is not None and not isinstance(v, str):
            raise ConfigError(f"{p}: {key} must be a string")
        return v or None

    def secret(v: str | None) -> Secret | None:
        return Secret(v) if v else None

    return Config(
        path=p if p.exists() else None,
        dir=p.parent,
        x_bearer_token=secret(pick(ENV_X_TOKEN, x, "bearer_token")),
        bluesky_handle=pick(ENV_BLUESKY_HANDLE, bsky, "handle"),
        bluesky_app_password=secret(pick(ENV_BLUESKY_PASSWORD, bsky, "app_password")),
        bluesky_service=bsky.get("service") if isinstance(bsky.get("service"), str) else None,
        mastodon_token=secret(pick(ENV_MASTODON_TOKEN, masto, "token")),
        mastodon_tokens={_host_key(str(k)): Secret(str(v)) for k, v in tokens.items() if v},
    )


def _table(data: dict, name: str, p: Path) -> dict:
    t = data.get(name) or {}
    if not isinstance(t, dict):
        raise ConfigError(f"{p}: [{name}] must be a table")
    return t


def _host_key(value: str) -> str:
    v = value.strip().rstrip("/")
    if "://" in v:
        v = urlsplit(v).netloc
    return v.lower()


# --------------------------------------------------------------------------
# Bluesky session cache


class SessionStore:
    """Bluesky sessions (accessJwt/refreshJwt), reused across runs.

    Kept in ``DIR/bluesky-sessions.json`` with mode 0600, keyed by service
    and handle.  With ``dir=None`` (or an unwritable directory) sessions
    live in memory for this run only.
    """

    FILENAME = "bluesky-sessions.json"

    def __init__(self, dir: Path | None):
        self.path = dir / self.FILENAME if dir is not None else None
        self._memory: dict[str, dict] = {}

    @staticmethod
    def key(service: str, handle: str) -> str:
        return f"{service.rstrip('/')}|{handle.lower()}"

    def _read_all(self) -> dict[str, dict]:
        if self.path is None:
            return dict(self._memory)
        check_private_dir(self.path.parent)
        if self.path.is_symlink():
            raise ConfigError(f"{self.path}: refusing to read login sessions through a symlink; remove it")
        if not self.path.exists():
            return dict(self._memory)
        try:
            check_private(self.path)
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError, ConfigError):
            return dict(self._memory)
        return data if isinstance(data, dict) else {}

    def get(self, key: str) -> dict | None:
        got = self._memory.get(key) or self._read_all().get(key)
        return got if isinstance(got, dict) else None

    def put(self, key: str, session: dict | None) -> None:
        if session is None:
            self._memory.pop(key, None)
        else:
            self._memory[key] = session
        if self.path is None:
            return
        data = self._read_all()
        if session is None:
            data.pop(key, None)
        else:
            data[key] = session
        tmp = self.path.with_name(self.path.name + ".tmp")
        if tmp.is_symlink():
            # nobody but an intruder puts a symlink there: writing through it
            # would overwrite whatever it points at with our tokens
            raise ConfigError(f"{tmp}: a symlink where chatarchive writes its login sessions; "
                              f"refusing to write through it (remove it, and check who can write to {tmp.parent})")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            check_private_dir(self.path.parent)
            try:
                os.unlink(tmp)  # a leftover of a run that died mid-write
            except FileNotFoundError:
                pass
            nofollow = getattr(os, "O_NOFOLLOW", 0)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | nofollow, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f)
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except OSError:
            self.path = None  # read-only home: keep sessions in memory
