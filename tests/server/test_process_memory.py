"""Peak memory of processes read from /proc, on child processes that the tests start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

from latentcast.server.process_memory import MemorySampler, child_processes, read_vm_hwm

MIB = 1024 * 1024
SLEEP = "import time; time.sleep(60)"
# Allocates 64 MiB and keeps it until killed.
ALLOCATE_AND_SLEEP = "import time; block = bytearray(64 * 1024 * 1024); time.sleep(60)"
START_ALLOCATING_CHILD_AND_SLEEP = (
    f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {ALLOCATE_AND_SLEEP!r}]); time.sleep(60)"
)
START_GRANDCHILD_AND_SLEEP = (
    f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {SLEEP!r}]); time.sleep(60)"
)


def start_child(code: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code])


def wait_until(condition: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_read_vm_hwm_own_process() -> None:
    assert read_vm_hwm(os.getpid()) > 0


def test_read_vm_hwm_exited_process_none() -> None:
    child = start_child("pass")
    child.wait()
    assert read_vm_hwm(child.pid) is None


def test_child_processes_finds_grandchild() -> None:
    with start_child(START_GRANDCHILD_AND_SLEEP) as child:
        try:
            started = wait_until(lambda: len(child_processes(child.pid)) == 1)
            found = child_processes(os.getpid())
            grandchildren = list(child_processes(child.pid))
        finally:
            for pid in child_processes(child.pid):
                os.kill(pid, signal.SIGKILL)
            child.kill()
    assert started
    assert child.pid in found
    assert grandchildren[0] in found


def test_sampler_adds_child_memory() -> None:
    # The sampler watches a child of the test, because pytest may have other children, such as servers.
    with start_child(START_ALLOCATING_CHILD_AND_SLEEP) as child:
        try:
            sampler = MemorySampler(child.pid)
            allocated = wait_until(
                lambda: any((read_vm_hwm(pid) or 0) > 64 * MIB for pid in child_processes(child.pid))
            )
            peaks = sampler.peaks()
        finally:
            for pid in child_processes(child.pid):
                os.kill(pid, signal.SIGKILL)
            child.kill()
    assert allocated
    assert peaks.child_processes_seen == 1
    assert peaks.tree_bytes - peaks.server_bytes > 64 * MIB
    assert peaks.child_names[0].startswith("python")
