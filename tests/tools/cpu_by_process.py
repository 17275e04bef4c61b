#!/usr/bin/env python3
"""CPU seconds each process group used over a window, from /proc (Linux): where a benchmark's
box went. Not a test.

    tests/tools/cpu_by_process.py --delay 8 --seconds 15 [--per N]

Waits --delay seconds (a bench's set-up and warm-up), then samples every process's user+system
time at the start and end of --seconds and prints, per group, CPU seconds and the share of the
box (all cores). --per N divides by N (e.g. the commands the bench reported for the window) and
prints microseconds of CPU per unit as well. Groups: our binaries by name and first argument
(`projector redis`), PostgreSQL, Kafka and the schema registry (Java by main class), Redis, the
MongoDB-wire test server (SecantusDB, Python), the rest as "other".

With each group's CPU it prints what the group waited on the disk for: major page faults (a
page of a mapped file, the binary's own code included, read back from the disk) and the bytes
it read from and wrote to the disk (`/proc/<pid>/io`); then the box over the window: its disks
(`/proc/diskstats`: reads, writes and cache flushes, each with its mean time), the time every runnable
task stalled on I/O (`/proc/pressure/io`, "full") and the CPU time the hypervisor gave to
other guests (steal, `/proc/stat`). Reading another user's
`/proc/<pid>/io` needs root; where it cannot be read, those bytes count as 0.
"""
import argparse
import os
import time
from dataclasses import dataclass

TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class Usage:
    """One process's (or group's) counters: CPU seconds, major faults, disk bytes read, written."""
    cpu: float = 0.0
    majflt: int = 0
    read_bytes: int = 0
    write_bytes: int = 0

    def __sub__(self, other):
        return Usage(self.cpu - other.cpu, self.majflt - other.majflt,
                     self.read_bytes - other.read_bytes, self.write_bytes - other.write_bytes)

    def __add__(self, other):
        return Usage(self.cpu + other.cpu, self.majflt + other.majflt,
                     self.read_bytes + other.read_bytes, self.write_bytes + other.write_bytes)


def group(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
        with open(f"/proc/{pid}/comm") as f:
            comm = f.read().strip()
    except OSError:
        return None
    if not argv:
        return "kernel"
    exe = os.path.basename(argv[0])
    if comm == "postgres" or exe == "postgres" or argv[0].startswith("postgres:"):
        return "postgres"
    if exe == "java":
        joined = " ".join(argv)
        if "kafka.Kafka" in joined:
            return "kafka"
        if "apicurio" in joined.lower() or "quarkus" in joined.lower():
            return "schema registry"
        return "java (other)"
    if exe.startswith("redis-server"):
        return "redis"
    if any("secantus" in a for a in argv[:2]):
        return "mongo test server (SecantusDB)"
    if exe in ("projector", "relay", "command-api", "query-api", "bench", "chaos", "chaosctl"):
        first = next((a for a in argv[1:] if not a.startswith("-")), "")
        return f"{exe} {first}".strip() if exe == "projector" else exe
    return "other"


def io_bytes(pid):
    """Bytes the process read from and wrote to the storage layer; (0, 0) where unreadable."""
    read = write = 0
    try:
        with open(f"/proc/{pid}/io") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key == "read_bytes":
                    read = int(value)
                elif key == "write_bytes":
                    write = int(value)
    except OSError:
        pass
    return read, write


def sample():
    """Every process's Usage so far, by pid."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the command: state is fields[0]; majflt is stat field 12, utime and stime 14
        # and 15.
        out[int(entry)] = Usage((int(fields[11]) + int(fields[12])) / TICK, int(fields[9]),
                                *io_bytes(entry))
    return out


def by_group(start, end):
    """Usage per group between two samples (a process that started in between counts whole)."""
    totals = {}
    for pid, usage in end.items():
        g = group(pid)
        if g is None:
            continue
        totals[g] = totals.get(g, Usage()) + usage - start.get(pid, Usage())
    return totals


@dataclass
class Machine:
    """The box's whole disks (not partitions), I/O pressure and the CPU time its hypervisor
    gave to others (steal): counters since boot."""
    reads: int = 0
    read_ms: int = 0
    writes: int = 0
    write_ms: int = 0
    flushes: int = 0
    flush_ms: int = 0
    stall_us: int = 0
    steal_ticks: int = 0

    def __sub__(self, other):
        return Machine(*(a - b for a, b in zip(vars(self).values(), vars(other).values())))


def machine():
    """Sum over /proc/diskstats' whole disks (those with a /sys/block entry), the "full"
    total of /proc/pressure/io and the steal time in /proc/stat; zeros where the kernel has
    none of them."""
    d = Machine()
    try:
        with open("/proc/diskstats") as f:
            for line in f:
                x = line.split()
                if not os.path.exists(f"/sys/block/{x[2]}") or x[2].startswith(("loop", "ram")):
                    continue
                d.reads += int(x[3])
                d.read_ms += int(x[6])
                d.writes += int(x[7])
                d.write_ms += int(x[10])
                # Flushes completed and the time they took: fields 19 and 20, kernels 5.5 and
                # later.
                if len(x) > 19:
                    d.flushes += int(x[18])
                    d.flush_ms += int(x[19])
    except OSError:
        pass
    try:
        with open("/proc/pressure/io") as f:
            for line in f:
                if line.startswith("full"):
                    d.stall_us = int(line.rsplit("total=", 1)[1])
    except OSError:
        pass
    try:
        with open("/proc/stat") as f:
            # cpu  user nice system idle iowait irq softirq steal ...
            d.steal_ticks = int(f.readline().split()[8])
    except (OSError, IndexError, ValueError):
        pass
    return d


def describe_machine(d, wall):
    """One line on the box's disks, I/O stalls and steal over a window of `wall` seconds."""
    read_mean = d.read_ms / d.reads if d.reads else 0.0
    write_mean = d.write_ms / d.writes if d.writes else 0.0
    flush_mean = d.flush_ms / d.flushes if d.flushes else 0.0
    return (f"disks: {d.reads} reads (mean {read_mean:.1f} ms), {d.writes} writes (mean "
            f"{write_mean:.2f} ms), {d.flushes} flushes (mean {flush_mean:.2f} ms); every task "
            "stalled on I/O "
            f"{d.stall_us / 1000:.0f} ms and the hypervisor stole {d.steal_ticks / TICK:.2f} "
            f"CPU-s, of {wall:.1f} s")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--delay", type=float, default=0)
    p.add_argument("--seconds", type=float, default=15)
    p.add_argument("--per", type=float, default=0)
    a = p.parse_args()
    time.sleep(a.delay)
    start, machine_start, t0 = sample(), machine(), time.monotonic()
    time.sleep(a.seconds)
    end, machine_end, t1 = sample(), machine(), time.monotonic()
    wall = t1 - t0
    cores = os.cpu_count() or 1
    totals = by_group(start, end)
    with open("/proc/stat") as f:
        idle_fields = f.readline().split()
    print(f"window {wall:.1f}s on {cores} cores ({wall * cores:.1f} CPU-s)")
    for g, u in sorted(totals.items(), key=lambda kv: -kv[1].cpu):
        if u.cpu < 0.05 and not (u.majflt or u.read_bytes or u.write_bytes):
            continue
        line = f"  {g:<28} {u.cpu:7.2f} CPU-s  {100 * u.cpu / (wall * cores):5.1f}% of the box"
        if a.per:
            line += f"  {1e6 * u.cpu / a.per:8.1f} us per unit"
        line += (f"  {u.majflt:5d} major faults, read {u.read_bytes / 2**20:6.1f} MiB, wrote "
                 f"{u.write_bytes / 2**20:6.1f} MiB")
        print(line)
    used = sum(u.cpu for u in totals.values())
    print(f"  {'(all processes)':<28} {used:7.2f} CPU-s  {100 * used / (wall * cores):5.1f}%")
    print(describe_machine(machine_end - machine_start, wall))


if __name__ == "__main__":
    main()
