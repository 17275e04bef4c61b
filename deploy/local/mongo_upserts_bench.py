#!/usr/bin/env python3
"""Upserts per second on the local MongoDB-wire TEST server (the `mongo` service: SecantusDB;
production is MongoDB), the way a read-model projector writes: conditional upserts guarded by
the per-aggregate sequence ({_id: id, seq: {$lt: n}} + upsert).

    eval "$(deploy/local/services.sh env)"
    "$CHAOS_VENV/bin/python" deploy/local/mongo_upserts_bench.py [--docs 200] [--events 5] [--batch 100]

Prints single upserts/s (one update_one round trip each) and bulk upserts/s (ordered
bulk_write of --batch UpdateOne upserts), over --docs documents x --events sequence numbers,
in a throwaway database it drops at the end. Bounded: docs x events operations per mode.
"""

from __future__ import annotations

import argparse
import os
import time
import uuid

from pymongo import MongoClient, UpdateOne


def op(i: int, seq: int):
    return {"_id": f"c-{i}", "seq": {"$lt": seq}}, {"$set": {"seq": seq, "level": seq, "zone": "north"}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", default=os.environ.get("MONGODB_URL", "mongodb://127.0.0.1:27017/?directConnection=true"))
    ap.add_argument("--docs", type=int, default=200)
    ap.add_argument("--events", type=int, default=5)
    ap.add_argument("--batch", type=int, default=100)
    args = ap.parse_args()

    client = MongoClient(args.url, serverSelectionTimeoutMS=5000)
    db_name = f"chaos_bench_{uuid.uuid4().hex[:8]}"
    db = client[db_name]
    n = args.docs * args.events
    try:
        col = db.single
        t0 = time.perf_counter()
        for seq in range(1, args.events + 1):
            for i in range(args.docs):
                col.update_one(*op(i, seq), upsert=True)
        single = n / (time.perf_counter() - t0)

        col = db.bulk
        ops = [UpdateOne(*op(i, seq), upsert=True) for seq in range(1, args.events + 1) for i in range(args.docs)]
        t0 = time.perf_counter()
        for k in range(0, len(ops), args.batch):
            col.bulk_write(ops[k:k + args.batch], ordered=True)
        bulk = n / (time.perf_counter() - t0)
        assert db.single.count_documents({"seq": args.events}) == args.docs
        assert db.bulk.count_documents({"seq": args.events}) == args.docs
        info = client.server_info()
        print(f"server {info.get('version')} at {args.url}: {n} upserts per mode "
              f"({args.docs} docs x {args.events} events)")
        print(f"single upserts/s: {single:,.0f}")
        print(f"bulk upserts/s (ordered, {args.batch} per bulk_write): {bulk:,.0f}")
    finally:
        client.drop_database(db_name)
        client.close()


if __name__ == "__main__":
    main()
