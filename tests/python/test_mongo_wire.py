"""The local MongoDB-wire TEST server (the `mongo` service of deploy/local/services.sh:
SecantusDB; production is MongoDB) does what a read-model projector relies on, driven with
the official pymongo driver: inserts, conditional upserts guarded by the per-aggregate
sequence (a stale or duplicate write is refused with duplicate key 11000 rather than applied),
ordered bulk upserts, unique compound indexes, find with sort and limit.

Needs MONGODB_URL (mongodb://127.0.0.1:27017/?directConnection=true): eval "$(deploy/local/services.sh env)".
Every test works in a database of its own, dropped afterwards.
"""

from __future__ import annotations

import pytest
from pymongo import ASCENDING, DESCENDING, MongoClient, UpdateOne
from pymongo.errors import BulkWriteError, DuplicateKeyError

from conftest import env_or_fail

DUPLICATE_KEY = 11000


@pytest.fixture(scope="module")
def client():
    url = env_or_fail("MONGODB_URL")
    c = MongoClient(url, serverSelectionTimeoutMS=5000)
    try:
        c.admin.command("ping")
    except Exception as e:  # noqa: BLE001 - any failure means the service is not there
        pytest.fail(f"mongo test server at {url} does not answer ({e}): deploy/local/services.sh up", pytrace=False)
    yield c
    c.close()


@pytest.fixture
def db(client, unique):
    name = f"chaos_t_{unique}"
    yield client[name]
    client.drop_database(name)


def apply(col, aggregate_id: str, seq: int, fields: dict):
    """Applies event `seq` of an aggregate to its document: only if the document is older.
    The filter matches nothing when the document is already at `seq` or newer, so the upsert
    tries to insert a second document with the same _id: duplicate key 11000 = already applied."""
    return col.update_one(
        {"_id": aggregate_id, "seq": {"$lt": seq}},
        {"$set": {"seq": seq, **fields}},
        upsert=True,
    )


def test_insert_and_find_one(db):
    col = db.sheets
    assert col.insert_one({"_id": "c-1", "seq": 1, "name": "Aria"}).inserted_id == "c-1"
    assert col.find_one({"_id": "c-1"}) == {"_id": "c-1", "seq": 1, "name": "Aria"}
    with pytest.raises(DuplicateKeyError) as exc:
        col.insert_one({"_id": "c-1", "seq": 1})
    assert exc.value.code == DUPLICATE_KEY


def test_conditional_upsert_on_sequence(db):
    col = db.sheets
    # Creates the document (nothing matched, upsert inserts).
    r = apply(col, "c-1", 1, {"level": 1})
    assert (r.matched_count, r.upserted_id) == (0, "c-1")
    # A newer event updates it.
    r = apply(col, "c-1", 2, {"level": 2})
    assert (r.matched_count, r.modified_count, r.upserted_id) == (1, 1, None)
    # The same event again, and an older one: refused with duplicate key, document unchanged.
    for seq, level in ((2, 99), (1, 98)):
        with pytest.raises(DuplicateKeyError) as exc:
            apply(col, "c-1", seq, {"level": level})
        assert exc.value.code == DUPLICATE_KEY
    assert col.find_one({"_id": "c-1"}) == {"_id": "c-1", "seq": 2, "level": 2}


def test_ordered_bulk_of_upserts(db):
    col = db.sheets
    ops = [UpdateOne({"_id": f"c-{i}", "seq": {"$lt": 1}}, {"$set": {"seq": 1, "n": i}}, upsert=True) for i in range(50)]
    r = col.bulk_write(ops, ordered=True)
    assert (r.upserted_count, r.matched_count) == (50, 0)
    # Next events for some, in one ordered batch.
    r = col.bulk_write([UpdateOne({"_id": f"c-{i}", "seq": {"$lt": 2}}, {"$set": {"seq": 2}}, upsert=True) for i in range(10)])
    assert (r.matched_count, r.modified_count, r.upserted_count) == (10, 10, 0)
    assert col.count_documents({"seq": 2}) == 10

    # A replayed batch: the first op is already applied -> 11000 at index 0, and an ordered
    # bulk stops there (the rest is not attempted).
    replay = [UpdateOne({"_id": "c-0", "seq": {"$lt": 2}}, {"$set": {"seq": 2, "n": -1}}, upsert=True),
              UpdateOne({"_id": "c-49", "seq": {"$lt": 2}}, {"$set": {"seq": 2}}, upsert=True)]
    with pytest.raises(BulkWriteError) as exc:
        col.bulk_write(replay, ordered=True)
    errors = exc.value.details["writeErrors"]
    assert [(e["index"], e["code"]) for e in errors] == [(0, DUPLICATE_KEY)]
    assert col.find_one({"_id": "c-0"})["n"] == 0
    assert col.find_one({"_id": "c-49"})["seq"] == 1


def test_unique_compound_index(db):
    col = db.names
    assert col.create_index([("realm", ASCENDING), ("name_lower", ASCENDING)], unique=True) == "realm_1_name_lower_1"
    assert col.index_information()["realm_1_name_lower_1"]["unique"] is True
    col.insert_one({"realm": "eu", "name_lower": "aria", "owner": "c-1"})
    col.insert_one({"realm": "us", "name_lower": "aria", "owner": "c-2"})  # other realm: fine
    with pytest.raises(DuplicateKeyError) as exc:
        col.insert_one({"realm": "eu", "name_lower": "aria", "owner": "c-3"})
    assert exc.value.code == DUPLICATE_KEY
    assert col.count_documents({}) == 2


def test_find_with_sort_and_limit(db):
    col = db.leaderboard
    col.insert_many([{"_id": f"c-{i}", "xp": (i * 37) % 100, "zone": "north" if i % 2 else "south"} for i in range(20)])
    top = list(col.find({"zone": "north"}, {"_id": 1, "xp": 1}).sort([("xp", DESCENDING), ("_id", ASCENDING)]).limit(3))
    expected = sorted(
        ({"_id": f"c-{i}", "xp": (i * 37) % 100} for i in range(20) if i % 2),
        key=lambda d: (-d["xp"], d["_id"]),
    )[:3]
    assert top == expected
    assert [d["_id"] for d in col.find().sort("_id", ASCENDING).skip(2).limit(2)] == ["c-10", "c-11"]
