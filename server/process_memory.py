"""Peak resident memory of a process and its descendants, read from Linux's /proc."""

from __future__ import annotations

import asyncio
from pathlib import Path

from latentcast.server.load_report import MEMORY_SAMPLE_INTERVAL_S, MemoryPeaks


def read_vm_hwm(pid: int) -> int | None:
    """Return the peak resident memory (VmHWM) of process ``pid`` in bytes, or None if it has exited."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except (FileNotFoundError, ProcessLookupError):
        return None
    for line in lines:
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return None


def child_processes(pid: int) -> dict[int, str]:
    """Return the id and name of every live descendant of process ``pid``, from /proc/*/stat."""
    parents: dict[int, int] = {}
    names: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        # The process name in brackets may contain spaces, so the fields are counted after its closing bracket.
        name, _, fields = stat.partition("(")[2].rpartition(")")
        parents[int(entry.name)] = int(fields.split()[1])
        names[int(entry.name)] = name
    found: list[int] = []
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, parent_id in parents.items() if parent_id == parent]
        found += children
        frontier += children
    return {child: names[child] for child in found}


class MemorySampler:
    """Periodic reader of the VmHWM of process ``pid`` and its descendants, from ``run`` until ``stop``."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.tree_peak = 0
        self.children_seen: dict[int, str] = {}
        self._stopped = asyncio.Event()

    def sample(self) -> None:
        children = child_processes(self.pid)
        self.children_seen.update(children)
        self.tree_peak = max(self.tree_peak, sum(read_vm_hwm(pid) or 0 for pid in [self.pid, *children]))

    async def run(self) -> None:
        while not self._stopped.is_set():
            self.sample()
            try:
                await asyncio.wait_for(self._stopped.wait(), MEMORY_SAMPLE_INTERVAL_S)
            except asyncio.TimeoutError:
                pass

    def stop(self) -> None:
        self._stopped.set()

    def peaks(self) -> MemoryPeaks:
        self.sample()
        names = sorted(set(self.children_seen.values()))
        return MemoryPeaks(read_vm_hwm(self.pid) or 0, self.tree_peak, len(self.children_seen), names)
