#!/usr/bin/env python3
"""Who makes the box flush to disk: fsync/fdatasync calls over a window, by process, with
PostgreSQL's backends named by the service at the other end of their connection. Not a test.

    tests/tools/fsyncs_by_service.py --delay 8 --seconds 10    # beside a `bench --spawn` run

A PostgreSQL commit with `synchronous_commit = on` waits for the WAL to reach the disk, and the
backend that commits is the one that flushes it (unless another flushed past it first): the
flushes its backends make say whose transactions paid for one each. Needs root and `perf`
(Debian: linux-perf) on an ext4 file system: it records the `ext4:ext4_sync_file_enter`
tracepoint on every CPU (mounting tracefs if it is not). Backends are named through
`pg_stat_activity`'s client ports (psql on $DATABASE_URL) and the local sockets' owners (`ss`);
the rest by the thread's command name.
"""
import argparse
import collections
import os
import re
import subprocess
import tempfile
import time


def pg_backends(database_url):
    """PostgreSQL backend pid -> the process at the other end of its connection (or its type)."""
    port_owner = {}
    sockets = subprocess.run(["ss", "-tnpH", "state", "established"], capture_output=True,
                             text=True, check=True).stdout
    for line in sockets.splitlines():
        fields = line.split()
        owner = re.search(r'users:\(\("([^"]+)"', line)
        if len(fields) >= 3 and owner:
            port_owner[int(fields[2].rsplit(":", 1)[1])] = owner.group(1)
    rows = subprocess.run(
        ["psql", "-X", "-tA", "-F", " ", database_url, "-c",
         "SELECT pid, coalesce(client_port, 0), backend_type FROM pg_stat_activity"],
        capture_output=True, text=True, check=True).stdout
    backends = {}
    for row in rows.splitlines():
        pid, port, kind = row.split(" ", 2)
        # A local (Unix socket) or background backend has port 0, which no socket owns.
        backends[int(pid)] = port_owner.get(int(port), f"postgres ({kind})")
    return backends


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--delay", type=float, default=0, help="seconds before the window")
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    a = p.parse_args()
    if not os.path.isdir("/sys/kernel/tracing/events"):
        subprocess.run(["mount", "-t", "tracefs", "nodev", "/sys/kernel/tracing"], check=False)
    time.sleep(a.delay)
    backends = pg_backends(a.database_url) if a.database_url else {}
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "perf.data")
        subprocess.run(["perf", "record", "-q", "-o", data, "-e", "ext4:ext4_sync_file_enter",
                        "-a", "--", "sleep", str(a.seconds)], check=True,
                       stdout=subprocess.DEVNULL)
        script = subprocess.run(["perf", "script", "-i", data, "-F", "comm,tid"],
                                capture_output=True, text=True, check=True).stdout
    # Backends that connected during the window are not in `backends`: named by command.
    by_service = collections.Counter()
    for line in script.splitlines():
        comm, _, tid = line.strip().rpartition(" ")
        by_service[backends.get(int(tid), comm.strip())] += 1
    total = sum(by_service.values())
    print(f"fsync/fdatasync calls over {a.seconds:.0f} s: {total} ({total / a.seconds:.0f}/s)")
    for who, n in by_service.most_common():
        print(f"  {who:<32} {n:7d}  {n / a.seconds:7.1f}/s")


if __name__ == "__main__":
    main()
