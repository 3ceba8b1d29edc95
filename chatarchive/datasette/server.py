"""Running Datasette on an archive: checking the file, the configured
instance, its start-up facts (fingerprint, time-boxed counts) and the server.

Datasette is imported inside the functions, in the order Datasette itself
does: importing ``datasette.handle_exception`` first (as a module-level
import here would, in import-sorted order) registers Datasette's default
exception handler while that module is half-loaded, and every 4xx/5xx then
fails."""

from __future__ import annotations

import asyncio
import hashlib
import signal
import socket
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..archive.schema import check_archive, open_db
from ..errors import BusyError, ChatArchiveError
from .metadata import SETTINGS, build_metadata, database_name


def prepare_archive(db_path: str | Path) -> bool:
    """Check DB is a chatarchive archive and bring its schema up to date (the
    views and indexes Datasette uses).  Returns False when the file cannot be
    written (it is then served as it is)."""
    path = Path(db_path)
    check_archive(path)
    try:
        open_db(path).conn.close()
    except BusyError:
        return False  # a running import or capture holds it: serve it as it is
    except sqlite3.OperationalError as e:
        # A read-only file, or one a running import/capture holds locked:
        # serve it as it is.
        if any(w in str(e) for w in ("readonly", "read-only", "unable to open", "locked")):
            return False
        raise ChatArchiveError(f"{path}: cannot update the schema ({e})") from None
    return True


def ensure_plugin_registered() -> None:
    """`serve` works from a source checkout too, where the entry point may
    not be installed; never register twice."""
    from datasette.plugins import pm

    from . import plugin as me

    if not pm.is_registered(me) and pm.get_plugin("chatarchive") is None:
        pm.register(me, name="chatarchive")


def make_datasette(
    db_path: str | Path,
    *,
    metadata: dict[str, Any] | None = None,
    allow_sql: bool = True,
    title: str | None = None,
    immutable: bool = True,
    settings: dict[str, Any] | None = None,
):
    """A configured Datasette instance for one archive (not started)."""
    from datasette.app import Datasette

    ensure_plugin_registered()
    if metadata is None:
        metadata = build_metadata(db_path, title=title, allow_sql=allow_sql)
    path = str(db_path)
    ds = Datasette(
        files=[] if immutable else [path],
        immutables=[path] if immutable else [],
        metadata=metadata,
        settings={**SETTINGS, **(settings or {})},
        inspect_data={database_name(db_path): inspect_archive(db_path)} if immutable else None,
    )
    from .archives import mark_archive

    mark_archive(ds, database_name(db_path))  # checked by serve; --live: a busy archive waits, then says so
    return ds


def inspect_archive(db_path: str | Path, budget_ms: int = 500) -> dict[str, Any]:
    """What Datasette otherwise works out for an immutable file on its own:
    a sha256 of the whole file (seconds for a big archive, on the first
    index page) and exact row counts of every table (the first request
    waits for them, `raw` included).  Here: a fingerprint of size, mtime and
    header, and counts that give up after `budget_ms` (shown as "many")."""
    path = Path(db_path)
    st = path.stat()
    with path.open("rb") as f:
        head = f.read(1 << 16)
    fingerprint = hashlib.sha256(f"{st.st_size}:{st.st_mtime_ns}:".encode() + head).hexdigest()
    conn = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
    tables: dict[str, dict[str, Any]] = {}
    try:
        names = [r[0] for r in conn.execute("select name from sqlite_master where type = 'table'")]
        deadline = 0.0

        def too_long() -> bool:
            return time.monotonic() > deadline

        conn.set_progress_handler(too_long, 10000)
        for name in names:
            deadline = time.monotonic() + budget_ms / 1000
            try:
                # "where 1" keeps SQLite from using its one-instruction count,
                # which the progress handler cannot interrupt.
                count = conn.execute(f"select count(*) from [{name}] where 1").fetchone()[0]
            except sqlite3.DatabaseError:  # interrupted, or an FTS shadow oddity
                count = None
            tables[name] = {"count": count}
    finally:
        conn.close()
    return {"hash": fingerprint, "size": st.st_size, "file": str(path), "tables": tables}


def bind_socket(host: str, port: int) -> socket.socket:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise ChatArchiveError(f"Cannot listen on {host}:{port}: {e}") from None
    family, _, _, _, addr = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(addr)
    except OSError as e:
        sock.close()
        reason = "address already in use" if e.errno == 98 else (e.strerror or str(e))
        raise ChatArchiveError(f"Cannot listen on {host}:{port}: {reason} (try --port)") from None
    return sock


LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def serve(
    db_path: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8001,
    open_browser: bool = False,
    allow_sql: bool = True,
    title: str | None = None,
    immutable: bool = True,
    settings: dict[str, Any] | None = None,
    quiet: bool = False,
    echo: Callable[[str], None] = print,
) -> None:
    """Run Datasette on the archive until Ctrl-C (SIGINT) or SIGTERM."""
    # Datasette prints every 4xx (a browser asking for /robots.txt) as a
    # rich traceback *with local variables*, request headers and cookies
    # included: secrets must not reach logs, so not in our server process.
    import datasette.handle_exception as datasette_errors
    import uvicorn

    datasette_errors.rich = None
    if not prepare_archive(db_path):
        echo(f"Note: {db_path} cannot be written now (read-only or locked); serving it as it is.")
    ds = make_datasette(db_path, allow_sql=allow_sql, title=title, immutable=immutable, settings=settings)
    sock = bind_socket(host, port)
    bound_port = sock.getsockname()[1]
    shown_host = f"[{host}]" if ":" in host else host
    base = f"http://{shown_host}:{bound_port}"
    name = database_name(db_path)
    route = ds.urls.database(name)
    echo(f"Serving {db_path} at {base}/  (search: {base}{route}/-/search)  Ctrl-C stops.")
    if host not in LOOPBACK:
        echo(f"Warning: listening on {host}: anyone who can reach this machine can read the archive.")
    config = uvicorn.Config(
        ds.app(), log_level="warning" if quiet else "info", lifespan="on", server_header=False,
    )
    server = uvicorn.Server(config)

    async def run() -> None:
        await ds.invoke_startup()
        task = asyncio.create_task(server.serve(sockets=[sock]))
        if open_browser:
            while not server.started and not task.done():
                await asyncio.sleep(0.05)
            if server.started:
                import webbrowser

                webbrowser.open(f"{base}/")
        await task

    def stop(signum, frame):
        raise KeyboardInterrupt

    # uvicorn catches SIGINT/SIGTERM, shuts down gracefully, then re-raises
    # the signal to the previous handler: for both, a stop is not an error.
    previous = signal.signal(signal.SIGTERM, stop)
    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        sock.close()
    echo("Stopped.")


