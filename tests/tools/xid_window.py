#!/usr/bin/env python3
"""Holds an event append in the instant between PostgreSQL assigning its transaction id and
taking the id's lock, and asks the append horizon what a reader may read then (decision 39).
A demonstration run on demand, not a test: it attaches gdb to a PostgreSQL backend.

    eval "$(deploy/local/services.sh env)"
    python3 tests/tools/xid_window.py                       # the horizon in eventstore/src/pg.rs
    python3 tests/tools/xid_window.py --source <(git show 6be2841:eventstore/src/pg.rs)

In a scratch database it installs `chaos_append_horizon` as written in --source, then:
1. session W takes the append lock and inserts an event; gdb stops W's backend at
   XactLockTableInsert, after its id is visible to snapshots and before pg_locks shows it;
2. session F appends and commits (a later id);
3. the reader computes the horizon: it must not be above W's id, or a reader would hand out F's
   event and move its cursor past W's, which commits a moment later and is never read.
Prints the ids and the verdict; exits 1 if the horizon passes W. Needs gdb and the right to
trace the backend (root, or the server's own user). Drops the scratch database at the end.
XID_WINDOW_DEBUG=1 echoes gdb's output.
"""
import argparse
import os
import re
import subprocess
import sys
import time
import uuid

LOCK = (1667785075, 1)


def horizon_sql(source):
    text = open(source).read()
    m = re.search(r'"(CREATE OR REPLACE FUNCTION chaos_append_horizon.*?END \$\$)"', text, re.S)
    if not m:
        sys.exit(f"no chaos_append_horizon in {source}")
    return m.group(1)


def psql(url, sql):
    return subprocess.run(
        ["psql", url, "-v", "ON_ERROR_STOP=1", "-Atq", "-c", sql],
        check=True, capture_output=True, text=True,
    ).stdout.strip()


class Session:
    """A psql process kept open: statements go in one by one, answers read line by line."""

    def __init__(self, url):
        self.p = subprocess.Popen(
            ["psql", url, "-Atq", "-v", "ON_ERROR_STOP=1"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
        )

    def send(self, sql):
        self.p.stdin.write(sql.rstrip().rstrip(";") + ";\n")
        self.p.stdin.flush()

    def ask(self, sql):
        self.send(sql)
        return self.p.stdout.readline().strip()

    def close(self):
        self.p.stdin.close()
        self.p.wait(timeout=30)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", default=os.path.join(os.path.dirname(__file__), "../../eventstore/src/pg.rs"))
    ap.add_argument("--database-url", default=os.environ.get("DATABASE_URL", "postgres://chaos:chaos@127.0.0.1:5432/chaos"))
    args = ap.parse_args()
    function = horizon_sql(args.source)
    scratch = f"chaos_xid_window_{uuid.uuid4().hex[:8]}"
    psql(args.database_url, f"CREATE DATABASE {scratch}")
    url = args.database_url.rsplit("/", 1)[0] + f"/{scratch}"
    gdb = None
    try:
        psql(url, "CREATE TABLE events (n int, tx_id xid8 NOT NULL DEFAULT pg_current_xact_id())")
        psql(url, function)
        w, f, r = Session(url), Session(url), Session(url)
        w_pid = w.ask("SELECT pg_backend_pid()")
        w.ask(f"BEGIN; SELECT pg_advisory_xact_lock_shared({LOCK[0]}, {LOCK[1]}) IS NULL")
        gdb = subprocess.Popen(
            ["gdb", "-q", "-nx", "-p", w_pid],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
        )
        gdb.stdin.write("set pagination off\nbreak XactLockTableInsert\ncontinue\n")
        gdb.stdin.flush()
        time.sleep(1.0)  # gdb attached and continuing (it prints nothing until the breakpoint)
        w.send("INSERT INTO events (n) VALUES (1);")
        deadline = time.time() + 30
        for line in gdb.stdout:
            if os.environ.get("XID_WINDOW_DEBUG"):
                print("gdb:", line.rstrip())
            if "Breakpoint 1," in line:
                break
            if time.time() > deadline:
                sys.exit("gdb never stopped W at XactLockTableInsert")
        w_xid = psql(url, f"SELECT backend_xid FROM pg_stat_activity WHERE pid = {w_pid}")
        w_lock = psql(url, f"SELECT count(*) FROM pg_locks WHERE pid = {w_pid} AND locktype = 'transactionid'")
        # F commits with a later id: the snapshot's xmax then lies above W, so only the check
        # of in-flight appends can hold the reader back.
        f.ask("BEGIN; INSERT INTO events (n) VALUES (2); COMMIT; SELECT 1")
        f_xid = psql(url, "SELECT max(tx_id)::text FROM events")
        horizon = r.ask(f"SELECT chaos_append_horizon({LOCK[0]}, {LOCK[1]})::text")
        print(f"W (stopped at XactLockTableInsert): xid {w_xid}, transactionid locks in pg_locks: {w_lock}")
        print(f"F (committed after W got its id): xid {f_xid}")
        print(f"append horizon: {horizon}")
        gdb.stdin.write("detach\nquit\n")
        gdb.stdin.flush()
        gdb.wait(timeout=30)
        gdb = None
        w.ask("COMMIT; SELECT 1")
        for s in (w, f, r):
            s.close()
        if int(horizon) > int(w_xid):
            print(f"FAIL: a reader may read F ({f_xid}) and move past W ({w_xid}), which commits later")
            return 1
        print("ok: W holds the reader back until it commits")
        return 0
    finally:
        if gdb is not None:
            gdb.kill()
        psql(args.database_url, f"DROP DATABASE IF EXISTS {scratch} WITH (FORCE)")


if __name__ == "__main__":
    sys.exit(main())
