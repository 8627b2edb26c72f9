"""`gc_paused`: the collector is off inside, back on after the last of nested or concurrent
blocks, and left off after if it was off before."""

from __future__ import annotations

import gc
import threading

from servers.gcpause import gc_paused


def test_the_collector_resumes_after_the_last_block() -> None:
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled(), "an inner block ending must not resume it"
    assert gc.isenabled()


def test_concurrent_blocks_share_one_pause() -> None:
    inside, release = threading.Event(), threading.Event()

    def other() -> None:
        with gc_paused():
            inside.set()
            release.wait(5)

    thread = threading.Thread(target=other)
    with gc_paused():
        thread.start()
        inside.wait(5)
    assert not gc.isenabled(), "the other thread's upload is still in flight"
    release.set()
    thread.join(5)
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off() -> None:
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
