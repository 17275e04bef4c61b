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
"""
import argparse
import os
import time

TICK = os.sysconf("SC_CLK_TCK")


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


def sample():
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the command: state is fields[0]; utime, stime are stat fields 14 and 15.
        out[int(entry)] = (int(fields[11]) + int(fields[12])) / TICK
    return out


def by_group(start, end):
    """CPU seconds per group between two samples."""
    totals = {}
    for pid, cpu in end.items():
        g = group(pid)
        if g is None:
            continue
        totals[g] = totals.get(g, 0.0) + cpu - start.get(pid, 0.0)
    return totals


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--delay", type=float, default=0)
    p.add_argument("--seconds", type=float, default=15)
    p.add_argument("--per", type=float, default=0)
    a = p.parse_args()
    time.sleep(a.delay)
    start, t0 = sample(), time.monotonic()
    time.sleep(a.seconds)
    end, t1 = sample(), time.monotonic()
    wall = t1 - t0
    cores = os.cpu_count() or 1
    totals = by_group(start, end)
    with open("/proc/stat") as f:
        idle_fields = f.readline().split()
    print(f"window {wall:.1f}s on {cores} cores ({wall * cores:.1f} CPU-s)")
    for g, cpu in sorted(totals.items(), key=lambda kv: -kv[1]):
        if cpu < 0.05:
            continue
        line = f"  {g:<28} {cpu:7.2f} CPU-s  {100 * cpu / (wall * cores):5.1f}% of the box"
        if a.per:
            line += f"  {1e6 * cpu / a.per:8.1f} us per unit"
        print(line)
    used = sum(totals.values())
    print(f"  {'(all processes)':<28} {used:7.2f} CPU-s  {100 * used / (wall * cores):5.1f}%")


if __name__ == "__main__":
    main()
