"""Pausing Python's cyclic garbage collector around bulk work.

An import, a recap page or a Datasette session page builds hundreds of
thousands of small objects that live until the work is done; the collector
would walk them (and everything else the process holds) again and again for
nothing, a third of the time or more.  Reference counting still frees what
is dropped; cycles wait for the next collection after the pause.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic collection inside the block.  Nested or overlapping pauses
    (a server's concurrent requests) are fine: only the pause that found the
    collector on turns it back on, so it never stays off."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
