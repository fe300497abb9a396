"""Resource metrics (R-MON-2) read with psutil.

Counters (CPU times, disk and network I/O) become rates over the interval, so the first
collection after start reports only gauges. Each sample is (name, labels, value).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psutil

from opsdesk.agent import procnet

Sample = tuple[str, dict[str, str], float]

# Pseudo filesystems say nothing about the host's disks.
SKIP_FSTYPES = {
    "tmpfs",
    "devtmpfs",
    "squashfs",
    "overlay",
    "proc",
    "sysfs",
    "cgroup",
    "cgroup2",
    "nsfs",
    "autofs",
}
TCP_STATES = (
    "ESTABLISHED",
    "SYN_SENT",
    "SYN_RECV",
    "FIN_WAIT1",
    "FIN_WAIT2",
    "TIME_WAIT",
    "CLOSE",
    "CLOSE_WAIT",
    "LAST_ACK",
    "LISTEN",
    "CLOSING",
)


@dataclass
class _Previous:
    at: float = 0.0
    cpu: Any = None
    cores: list[Any] = field(default_factory=list)
    disks: dict[str, Any] = field(default_factory=dict)
    nics: dict[str, Any] = field(default_factory=dict)


def _busy_percent(before: Any, after: Any) -> dict[str, float]:
    """Per-mode share of the CPU time that passed between two cpu_times readings."""
    deltas = {f: max(getattr(after, f) - getattr(before, f), 0.0) for f in after._fields}
    # guest time is already counted in user time on Linux
    total = sum(v for k, v in deltas.items() if k not in ("guest", "guest_nice"))
    if total <= 0:
        return {}
    out = {k: 100.0 * v / total for k, v in deltas.items() if k not in ("guest", "guest_nice")}
    out["total"] = 100.0 - out.get("idle", 0.0) - out.get("iowait", 0.0)
    return out


class ResourceCollector:
    def __init__(self, top_n: int = 5) -> None:
        self.prev = _Previous()
        self.top_n = top_n

    def collect(self) -> list[Sample]:
        now = time.monotonic()
        elapsed = now - self.prev.at if self.prev.at else 0.0
        samples: list[Sample] = []
        samples += self._cpu(elapsed)
        samples += self._memory()
        samples += self._filesystems()
        samples += self._disk_io(elapsed)
        samples += self._network(elapsed)
        samples += self._tcp()
        samples.append(("processes", {}, float(len(psutil.pids()))))
        samples.append(("uptime_seconds", {}, time.time() - psutil.boot_time()))
        self.prev.at = now
        return samples

    def _cpu(self, elapsed: float) -> Iterator[Sample]:
        cpu, cores = psutil.cpu_times(), psutil.cpu_times(percpu=True)
        if elapsed and self.prev.cpu is not None:
            for mode, pct in _busy_percent(self.prev.cpu, cpu).items():
                yield ("cpu_usage_percent", {"mode": mode}, pct)
            for i, (before, after) in enumerate(zip(self.prev.cores, cores, strict=False)):
                busy = _busy_percent(before, after)
                if busy:
                    yield ("cpu_core_usage_percent", {"core": str(i)}, busy["total"])
        self.prev.cpu, self.prev.cores = cpu, cores
        yield ("cpu_count", {}, float(psutil.cpu_count() or 0))
        for name, value in zip(("load1", "load5", "load15"), os.getloadavg(), strict=True):
            yield (name, {}, value)

    def _memory(self) -> Iterator[Sample]:
        mem, swap = psutil.virtual_memory(), psutil.swap_memory()
        yield ("memory_total_bytes", {}, float(mem.total))
        yield ("memory_available_bytes", {}, float(mem.available))
        yield ("memory_used_bytes", {}, float(mem.total - mem.available))
        yield ("memory_used_percent", {}, mem.percent)
        yield ("swap_total_bytes", {}, float(swap.total))
        yield ("swap_used_bytes", {}, float(swap.used))
        yield ("swap_used_percent", {}, swap.percent)

    def _filesystems(self) -> Iterator[Sample]:
        seen: set[str] = set()
        for part in psutil.disk_partitions(all=False):
            if part.fstype in SKIP_FSTYPES or part.mountpoint in seen:
                continue
            seen.add(part.mountpoint)
            try:
                usage = psutil.disk_usage(part.mountpoint)
                st = os.statvfs(part.mountpoint)
            except OSError:
                continue  # a mount that went away or that we may not read
            labels = {"mount": part.mountpoint, "device": part.device, "fstype": part.fstype}
            yield ("fs_size_bytes", labels, float(usage.total))
            yield ("fs_used_bytes", labels, float(usage.used))
            yield ("fs_free_bytes", labels, float(usage.free))
            yield ("fs_used_percent", labels, usage.percent)
            if st.f_files:
                used = st.f_files - st.f_ffree
                yield ("fs_inodes_total", labels, float(st.f_files))
                yield ("fs_inodes_used", labels, float(used))
                yield ("fs_inodes_used_percent", labels, 100.0 * used / st.f_files)

    def _disk_io(self, elapsed: float) -> Iterator[Sample]:
        current = psutil.disk_io_counters(perdisk=True) or {}
        if elapsed:
            for dev, now_c in current.items():
                before = self.prev.disks.get(dev)
                if before is None:
                    continue
                labels = {"device": dev}
                yield (
                    "disk_read_bytes_per_second",
                    labels,
                    max(now_c.read_bytes - before.read_bytes, 0) / elapsed,
                )
                yield (
                    "disk_write_bytes_per_second",
                    labels,
                    max(now_c.write_bytes - before.write_bytes, 0) / elapsed,
                )
                yield (
                    "disk_reads_per_second",
                    labels,
                    max(now_c.read_count - before.read_count, 0) / elapsed,
                )
                yield (
                    "disk_writes_per_second",
                    labels,
                    max(now_c.write_count - before.write_count, 0) / elapsed,
                )
                busy_ms = getattr(now_c, "busy_time", 0) - getattr(before, "busy_time", 0)
                yield ("disk_busy_percent", labels, min(max(busy_ms / 10.0 / elapsed, 0.0), 100.0))
        self.prev.disks = current

    def _network(self, elapsed: float) -> Iterator[Sample]:
        current = psutil.net_io_counters(pernic=True)
        if elapsed:
            for nic, now_c in current.items():
                before = self.prev.nics.get(nic)
                if before is None:
                    continue
                labels = {"interface": nic}
                for field_name, metric in (
                    ("bytes_recv", "net_receive_bytes_per_second"),
                    ("bytes_sent", "net_transmit_bytes_per_second"),
                    ("packets_recv", "net_receive_packets_per_second"),
                    ("packets_sent", "net_transmit_packets_per_second"),
                ):
                    delta = getattr(now_c, field_name) - getattr(before, field_name)
                    yield (metric, labels, max(delta, 0) / elapsed)
                # errors and drops are rare: report the count in the interval, not a rate
                for field_name, metric in (
                    ("errin", "net_receive_errors"),
                    ("errout", "net_transmit_errors"),
                    ("dropin", "net_receive_drops"),
                    ("dropout", "net_transmit_drops"),
                ):
                    yield (
                        metric,
                        labels,
                        float(max(getattr(now_c, field_name) - getattr(before, field_name), 0)),
                    )
        self.prev.nics = current

    def _tcp(self) -> Iterator[Sample]:
        counts = {state.lower(): 0 for state in TCP_STATES}
        if procnet.available():
            for sock in procnet.sockets():
                if sock.state in counts:
                    counts[sock.state] += 1
        else:  # not Linux: psutil's slower way
            try:
                for conn in psutil.net_connections(kind="tcp"):
                    if conn.status.lower() in counts:
                        counts[conn.status.lower()] += 1
            except psutil.AccessDenied:
                return
        for state, n in counts.items():
            yield ("tcp_connections", {"state": state}, float(n))

    def top_processes(self) -> dict[str, list[dict[str, Any]]]:
        """The busiest processes by CPU and by memory (CPU share since the previous call)."""
        procs = []
        for p in psutil.process_iter(["pid", "name", "username", "cpu_percent", "memory_info"]):
            info = p.info
            rss = info["memory_info"].rss if info.get("memory_info") else 0
            procs.append(
                {
                    "pid": info["pid"],
                    "name": info.get("name") or "",
                    "user": info.get("username") or "",
                    "cpu_percent": info.get("cpu_percent") or 0.0,
                    "rss_bytes": rss,
                }
            )
        return {
            "by_cpu": sorted(procs, key=lambda x: x["cpu_percent"], reverse=True)[: self.top_n],
            "by_memory": sorted(procs, key=lambda x: x["rss_bytes"], reverse=True)[: self.top_n],
        }
