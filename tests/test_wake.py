"""The writer's lock-free wake-up (``agentlog._wake``): Event semantics without a lock."""

from __future__ import annotations

import threading
import time

from agentlog._wake import Wake


def test_a_set_from_another_thread_wakes_the_waiter_and_clear_rearms_it() -> None:
    wake = Wake()
    woke: list[float] = []

    def waiter() -> None:
        t0 = time.monotonic()
        assert wake.wait(10)
        woke.append(time.monotonic() - t0)

    t = threading.Thread(target=waiter)
    t.start()
    time.sleep(0.05)
    wake.set()
    t.join(5)
    assert woke and woke[0] < 2  # woken by set(), not by the 10 s timeout
    assert wake.is_set() and wake.wait(0)
    wake.clear()
    t0 = time.monotonic()
    assert not wake.wait(0.05) and time.monotonic() - t0 >= 0.04  # cleared: waits out its timeout


def test_sets_beyond_the_pipes_capacity_neither_block_nor_fail() -> None:
    wake = Wake()
    for _ in range(200_000):  # the flag makes most of them free; none may block
        wake.set()
        wake._on = False  # as if a waiter had cleared the flag without reading the pipe
    wake.set()
    assert wake.wait(0)
    wake.clear()
    assert not wake.is_set() and not wake.wait(0)
