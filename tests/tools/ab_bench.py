#!/usr/bin/env python3
"""Two builds under the same benchmark, alternating, with the CPU each process spent per command:
whether a change made the backend cheaper, on a box whose speed swings. Not a test.

    tests/tools/ab_bench.py --a /tmp/before --b target/release [--rounds 2] [-- BENCH ARGS]

--a and --b are directories holding the service binaries (`command-api`, `relay`, `projector`,
`query-api`; the bench spawns them from there through CHAOS_BIN_DIR). The bench binary itself
is `--bench` (default target/release/bench), the same for both. Without BENCH ARGS it runs the
contended command benchmark of issue 8: `--spawn --projectors redis,warehouse --clients 64
--duration 30 --contended --characters 2048 --accounts 64 --wrk`.

Rounds run A B, then B A, and so on (ABBA), so a box that slows down or speeds up through the
session, or a run that pays for the one before it, weighs on both builds alike (at stop 30 the
second run of a pair was the slower in 7 of 8 pairs, whichever build it was). One more run of
A goes first and is left out of the figures (--warmup-runs): the first run after Kafka starts
pays for its JIT compiler (stop 31: Kafka's C2 compiler thread took 1.36 of Kafka's 4.69 CPU-s
in 15 s of the first run, 0.09 in the next), and ABBA puts A first. In each run,
once the bench prints its `setup:` line (the load starts), the CPU time of every process is
sampled after --settle seconds and again --window seconds later (cpu_by_process.py's groups),
with each group's major page faults and the box over the same window (disk reads and their
mean time, writes, flushes, the time every task stalled on I/O, steal): whether a slow run
waited on the disk or on the hypervisor.

Prints one row per run (commands/s, p99, how long after the load the projection caught up where
the bench says, CPU microseconds per command by process), then per
build the medians, and each process's CPU as a share of PostgreSQL's in the same run: that
ratio does not move with the box's speed (every process's CPU per command does: measured at
stops 29 and 30, consecutive runs of one build differed by a fifth), so it is the figure that
says whether a process got cheaper.
"""
import argparse
import os
import re
import shlex
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cpu_by_process  # noqa: E402

DEFAULT_ARGS = [
    "--spawn", "--projectors", "redis,warehouse", "--clients", "64", "--duration", "30",
    "--contended", "--characters", "2048", "--accounts", "64", "--wrk",
]
# `wrk: 4034.08 commands/s, p50 13.90ms, p99 69.63ms` or the bench's own clients':
# `=> 2897 commands/s` and `command latency: ... p99=65.1ms`.
WRK = re.compile(r"^wrk: ([\d.]+) commands/s, p50 ([\d.]+)ms, p99 ([\d.]+)ms")
OWN_RATE = re.compile(r"=> ([\d.]+) commands/s")
OWN_LATENCY = re.compile(r"^command latency: .*p50=([\d.]+)ms .*p99=([\d.]+)ms")
# `projection caught up 745ms after wrk ended ...` (or `... after the last command was answered`).
CAUGHT_UP = re.compile(r"^projection caught up (\d+)ms after")


def window_cpu(settle, seconds, out, machine):
    time.sleep(settle)
    start, machine_start = cpu_by_process.sample(), cpu_by_process.machine()
    time.sleep(seconds)
    out.update(cpu_by_process.by_group(start, cpu_by_process.sample()))
    machine.append(cpu_by_process.machine() - machine_start)


def run(label, bin_dir, bench, bench_args, settle, seconds, log_dir, extra_env=None):
    env = dict(os.environ, CHAOS_BIN_DIR=bin_dir, **(extra_env or {}))
    usage, machine = {}, []
    sampler = None
    rate = p50 = p99 = caught_up = None
    log_path = os.path.join(log_dir, f"{label}.log")
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [bench, *bench_args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True,
        )
        for line in proc.stdout:
            log.write(line)
            if line.startswith("setup:") and sampler is None:
                sampler = threading.Thread(target=window_cpu,
                                           args=(settle, seconds, usage, machine))
                sampler.start()
            if m := WRK.match(line):
                rate, p50, p99 = (float(g) for g in m.groups())
            if m := OWN_RATE.search(line):
                rate = float(m.group(1))
            if m := OWN_LATENCY.match(line.strip()):
                p50, p99 = (float(g) for g in m.groups())
            if m := CAUGHT_UP.match(line):
                caught_up = int(m.group(1))
        proc.wait()
    if sampler is not None:
        sampler.join()
    if proc.returncode != 0 or rate is None or not usage:
        sys.exit(f"{label}: the bench failed or printed no figures (exit {proc.returncode}); "
                 f"see {log_path}")
    per_command = {g: 1e6 * u.cpu / seconds / rate for g, u in usage.items() if u.cpu >= 0.05}
    faults = {g: u.majflt for g, u in usage.items() if u.majflt}
    return {"label": label, "rate": rate, "p50": p50, "p99": p99, "caught_up": caught_up,
            "cpu": per_command, "faults": faults, "machine": machine[0], "seconds": seconds}


def short(group):
    return group.replace("projector ", "proj-").replace("process-managers", "pms").replace(" ", "-")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--a", required=True, help="directory of build A's service binaries")
    p.add_argument("--b", required=True, help="directory of build B's service binaries")
    p.add_argument("--a-args", default="", help="more bench arguments for A's runs only, "
                   "e.g. \"--env relay:CHAOS__RELAY__BATCH_INTERVAL_MS=0\"")
    p.add_argument("--b-args", default="", help="more bench arguments for B's runs only")
    p.add_argument("--a-env", action="append", default=[], metavar="KEY=VALUE",
                   help="the bench's environment for A's runs only (repeatable), e.g. "
                   "\"DATABASE_URL=postgres://...?sslmode=disable\": what the spawned services "
                   "inherit from it, such as the database URL")
    p.add_argument("--b-env", action="append", default=[], metavar="KEY=VALUE",
                   help="the bench's environment for B's runs only (repeatable)")
    p.add_argument("--rounds", type=int, default=2,
                   help="runs of each build; even, so that each build runs first as often")
    p.add_argument("--warmup-runs", type=int, default=1,
                   help="runs of A before the rounds, left out of the figures")
    p.add_argument("--bench", default="target/release/bench")
    p.add_argument("--settle", type=float, default=8, help="seconds after the load starts")
    p.add_argument("--window", type=float, default=12, help="seconds of CPU sampled")
    p.add_argument("--logs", default=None, help="where each run's output goes (default: a temp dir)")
    p.add_argument("bench_args", nargs="*", help="after --: the bench's arguments")
    a = p.parse_args()
    bench_args = a.bench_args or DEFAULT_ARGS
    log_dir = a.logs or subprocess.check_output(["mktemp", "-d"], text=True).strip()
    os.makedirs(log_dir, exist_ok=True)
    builds = {"A": a.a, "B": a.b}
    extra = {"A": shlex.split(a.a_args), "B": shlex.split(a.b_args)}
    envs = {}
    for build, pairs in (("A", a.a_env), ("B", a.b_env)):
        if bad := [kv for kv in pairs if "=" not in kv]:
            p.error(f"--{build.lower()}-env takes KEY=VALUE, not {bad[0]}")
        envs[build] = dict(kv.split("=", 1) for kv in pairs)
    print(f"bench {a.bench} {' '.join(bench_args)}; A = {a.a} {a.a_args} {' '.join(a.a_env)}, "
          f"B = {a.b} {a.b_args} {' '.join(a.b_env)}; logs in {log_dir}")

    for w in range(a.warmup_runs):
        result = run(f"W{w + 1}", builds["A"], a.bench, bench_args + extra["A"], a.settle,
                     a.window, log_dir, envs["A"])
        print(f"{result['label']:>4} {result['rate']:8.0f}/s  p99 {result['p99']:6.2f} ms  "
              "(warm-up, left out)", flush=True)

    runs = []
    for r in range(a.rounds):
        order = "AB" if r % 2 == 0 else "BA"
        for build in order:
            result = run(f"{build}{r + 1}", builds[build], a.bench, bench_args + extra[build],
                         a.settle, a.window, log_dir, envs[build])
            runs.append(result)
            cells = " ".join(f"{short(g)}={v:.0f}" for g, v in
                             sorted(result["cpu"].items(), key=lambda kv: -kv[1]))
            caught_up = ("" if result["caught_up"] is None
                         else f"  caught up {result['caught_up']} ms after")
            print(f"{result['label']:>4} {result['rate']:8.0f}/s  p50 {result['p50']:6.2f} ms  "
                  f"p99 {result['p99']:6.2f} ms{caught_up}  total "
                  f"{sum(result['cpu'].values()):4.0f} us  ({cells})", flush=True)
            faults = " ".join(f"{short(g)}={n}" for g, n in
                              sorted(result["faults"].items(), key=lambda kv: -kv[1]))
            print(f"     major faults: {faults or 'none'}; "
                  f"{cpu_by_process.describe_machine(result['machine'], result['seconds'])}",
                  flush=True)

    groups = sorted({g for r in runs for g in r["cpu"]},
                    key=lambda g: -statistics.median(r["cpu"].get(g, 0) for r in runs))
    print("\nmedians (us of CPU per command; in brackets, as a share of PostgreSQL's)")
    print(f"{'':28} " + "  ".join(f"{b:>16}" for b in builds))
    for what in ("commands/s", "p99 ms", "total us", *groups):
        cells = []
        for b in builds:
            mine = [r for r in runs if r["label"].startswith(b)]
            if what == "commands/s":
                cells.append(f"{statistics.median(r['rate'] for r in mine):16.0f}")
            elif what == "p99 ms":
                cells.append(f"{statistics.median(r['p99'] for r in mine):16.2f}")
            elif what == "total us":
                cells.append(f"{statistics.median(sum(r['cpu'].values()) for r in mine):16.0f}")
            else:
                us = statistics.median(r["cpu"].get(what, 0) for r in mine)
                share = statistics.median(
                    r["cpu"].get(what, 0) / r["cpu"]["postgres"] for r in mine
                    if r["cpu"].get("postgres"))
                cells.append(f"{us:8.1f} [{share:5.3f}]")
        print(f"{what:28} " + "  ".join(cells))


if __name__ == "__main__":
    main()
