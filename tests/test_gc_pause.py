"""gc_paused: the collector is off inside, and overlapping pauses (a server's
concurrent requests) never leave it off."""

from __future__ import annotations

import gc

from chatarchive.gc_pause import gc_paused


def test_paused_inside_and_back_on_after():
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_overlapping_pauses_leave_it_on():
    first, second = gc_paused(), gc_paused()
    first.__enter__()
    second.__enter__()  # starts while the first is running
    first.__exit__(None, None, None)  # ... and outlives it
    second.__exit__(None, None, None)
    assert gc.isenabled()


def test_an_error_inside_turns_it_back_on():
    try:
        with gc_paused():
            raise KeyError("x")
    except KeyError:
        pass
    assert gc.isenabled()
