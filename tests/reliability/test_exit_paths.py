"""Every way a program ends writes what is queued; a hanging sink cannot hold exit hostage.

Return, an unhandled exception and ``sys.exit`` are pinned in
``tests/test_recorder.py``; here: SIGINT, SIGTERM (with and without the host's
own handler, installed before or after agentlog's), how long a healthy exit
takes, and exit with a sink that never returns.
"""

from __future__ import annotations

import re
import signal
import threading
import time
from pathlib import Path

import pytest

from harness import start_py, stored

# flush_interval=30: without the exit path, nothing would be written.
PROGRAM = """
import signal, sys, time, agentlog
mode = sys.argv[2]
def host_handler(signum, frame):
    sys.exit(7)
if mode == "host-before":
    signal.signal(signal.SIGTERM, host_handler)
agentlog.configure(sys.argv[1], flush_interval=30)
if mode == "host-after":
    signal.signal(signal.SIGTERM, host_handler)
with agentlog.run("exit"):
    for i in range(2000):
        agentlog.log("m", i=i)
    print("ready", flush=True)
    time.sleep(60)
"""


@pytest.mark.parametrize(("sig", "mode", "status"), [
    (signal.SIGINT, "plain", {-signal.SIGINT, 1}),  # KeyboardInterrupt unwinds, then exits as by SIGINT
    (signal.SIGTERM, "plain", {-signal.SIGTERM}),  # written first, then the default: death by SIGTERM
    (signal.SIGTERM, "host-before", {7}),  # the host's handler still runs (after a bounded flush)
    (signal.SIGTERM, "host-after", {7}),  # the host replaced ours; its sys.exit goes through atexit
], ids=["sigint", "sigterm", "sigterm-host-handler-first", "sigterm-host-handler-later"])
def test_a_signal_writes_everything_queued(db: Path, sig: int, mode: str, status: set[int]) -> None:
    proc = start_py(PROGRAM, str(db), mode)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    t0 = time.monotonic()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    elapsed = time.monotonic() - t0
    assert proc.returncode in status, err
    assert stored(db, "SELECT count(*) FROM events WHERE type = 'log'")[0][0] == 2000
    assert elapsed < 2.0, f"exit took {elapsed:.2f}s"


HEALTHY = """
import sys, time, agentlog
agentlog.configure(sys.argv[1], flush_interval=30)
with agentlog.run("exit"):
    for i in range(2000):
        agentlog.log("m", i=i)
print(time.monotonic(), flush=True)
"""


def test_a_healthy_exit_adds_a_fraction_of_a_second(db: Path) -> None:
    proc = start_py(HEALTHY, str(db))
    out, err = proc.communicate(timeout=30)
    ended = time.monotonic()
    assert proc.returncode == 0, err
    added = ended - float(out.strip())
    print(f"\nwriting 2000 queued events at exit added {added * 1000:.0f} ms (interpreter teardown included)")
    assert added < 1.0  # ~0.13 s on an idle machine; generous for a shared 2-core one
    assert stored(db, "SELECT count(*) FROM events WHERE type = 'log'")[0][0] == 2000


HANGING = """
import sys, threading, time, agentlog
class Hang(agentlog.MemorySink):
    def write(self, events):
        threading.Event().wait()   # a remote store that never answers
agentlog.configure(sys.argv[1], sinks=[Hang("remote")], shutdown_timeout=1.0)
for i in range(100):
    agentlog.log("m", i=i)
print(time.monotonic(), flush=True)
"""


def test_exit_with_a_hanging_sink_ends_within_shutdown_timeout_and_counts_the_unsent(db: Path) -> None:
    proc = start_py(HANGING, str(db))
    out, err = proc.communicate(timeout=30)
    ended = time.monotonic()
    assert proc.returncode == 0, err
    took = ended - float(out.strip())
    m = re.search(r"(\d+) event\(s\) were not written \(counted as dropped: shutdown_timeout\)", err)
    assert m is not None, err
    assert int(m.group(1)) == 102  # the implicit run's start and end, and 100 logs
    print(f"\nexit with a hanging sink took {took:.2f} s (shutdown_timeout=1.0)")
    assert took < 1.5


# SIGTERM comes while the main thread is already closing (a multiprocessing worker's own
# exit, a program's shutdown()): the close finishes, then the process dies of SIGTERM.
DURING_CLOSE = """
import os, signal, sys, threading, time, agentlog
rec = agentlog.configure(sys.argv[1], flush_interval=30)
for i in range(3000):
    agentlog.log("m", i=i, pad="x" * 200)
threading.Timer(0.01, os.kill, (os.getpid(), signal.SIGTERM)).start()  # lands inside close()
rec.close()
time.sleep(5)
print("survived", flush=True)
"""


def test_sigterm_during_a_close_on_the_main_thread_lets_it_finish_then_ends_the_process(db: Path) -> None:
    proc = start_py(DURING_CLOSE, str(db))
    t0 = time.monotonic()
    out, err = proc.communicate(timeout=60)
    elapsed = time.monotonic() - t0
    assert proc.returncode == -signal.SIGTERM, err
    assert "survived" not in out
    assert stored(db, "SELECT count(*) FROM events WHERE type = 'log'")[0][0] == 3000
    assert elapsed < 4.0, f"exit took {elapsed:.2f}s"  # a close never waits for another close


def test_agentlogs_threads_leave_the_hosts_signals_to_the_hosts_threads(db: Path) -> None:
    """A process-directed signal must reach a thread that can run its Python handler's
    trigger: if our writer took it while the main thread waits in C, the handler never runs."""
    import agentlog

    agentlog.configure(db, writer="process")
    agentlog.log("start the writer process and its reader thread")
    assert agentlog.flush(30)
    names = {t.native_id: t.name for t in threading.enumerate()}
    blocked: dict[str, bool] = {}
    for task in Path("/proc/self/task").iterdir():
        name = names.get(int(task.name))
        if name is None or not name.startswith("agentlog"):
            continue
        mask = int(re.search(r"SigBlk:\s*([0-9a-f]+)", (task / "status").read_text()).group(1), 16)
        blocked[name] = bool(mask & (1 << (signal.SIGTERM - 1))) and bool(mask & (1 << (signal.SIGINT - 1)))
    agentlog.shutdown()
    assert set(blocked) >= {"agentlog-writer", "agentlog-writer-reader"}
    assert all(blocked.values()), blocked


# SIGTERM taken by a thread of the host's while the main thread waits in C: the interpreter
# notes it, but nothing interrupts the wait (as a pool worker going back to its semaphore).
NOTED_NOT_RUN = """
import signal, sys, threading, time, agentlog
agentlog.configure(sys.argv[1], flush_interval=30)
for i in range(500):
    agentlog.log("m", i=i)
lock = threading.Lock()
lock.acquire()
def other():
    time.sleep(0.3)
    signal.pthread_kill(threading.get_ident(), signal.SIGTERM)  # to this thread, not the main one
    time.sleep(60)
threading.Thread(target=other, daemon=True).start()
print("ready", flush=True)
lock.acquire()  # never released: only a handled signal ends this process
"""


def test_a_sigterm_noted_while_the_main_thread_waits_in_c_is_still_handled(db: Path) -> None:
    proc = start_py(NOTED_NOT_RUN, str(db))
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    try:
        _, err = proc.communicate(timeout=20)
    except Exception:
        proc.kill()
        raise
    assert proc.returncode == -signal.SIGTERM, err
    assert stored(db, "SELECT count(*) FROM events WHERE type = 'log'")[0][0] == 500
