"""The warehouse's Parquet export, read by another engine (pyarrow).

Plays a short game on the embedded backend (`target/debug/chaos`, built by `cargo build --bins`;
test.sh builds it before the Python tests): three characters fight wolves and each other, so the
warehouse gets casts, kills, loot, experience, level-ups, PvP damage, deaths and gold. Stops the
backend (its warehouse file is then free), exports with `projector warehouse export DIR` (the
operators' command), and reads every table with pyarrow as a hive-partitioned dataset:

- the layout: `DIR/<table>/day=YYYY-MM-DD/*.parquet` for facts, `DIR/<table>/*.parquet` otherwise,
  and no temporary directory left where readers look;
- every table's row count equals the DuckDB table's (read with DuckDB's own Python package, the
  version the backend links), and so do a few values: the events' ids, types and sequences, each
  event's day partition against its time, the characters, the gold flows;
- the events equal the embedded event store's rows (SQLite), aggregate by aggregate.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import duckdb  # the warehouse's own engine, pinned to the version the backend links
import pyarrow.dataset as ds  # the other engine reading the export
import pytest

REPO = Path(__file__).resolve().parents[2]


def _binary(name: str) -> Path:
    target = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")
    if not target.is_absolute():
        target = REPO / target
    binary = target / "debug" / name
    if not binary.is_file():
        pytest.fail(f"{binary} does not exist: build the binaries first (cargo build --bins)", pytrace=False)
    return binary


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _request(method: str, url: str, body=None, token: str | None = None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if body is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def _play(command: str) -> None:
    """Three characters in the starting zone (PvP allowed, wolves and boars about)."""
    suffix = uuid.uuid4().hex[:6]
    heroes = []
    for n, class_ in enumerate(["warrior", "mage", "ranger"]):
        credentials = {"username": f"export-{suffix}-{n}", "password": "export test password"}
        assert _request("POST", f"{command}/v1/accounts", credentials)[0] == 201
        status, body = _request("POST", f"{command}/v1/sessions", credentials)
        assert status == 200, body
        token = body["access_token"]
        status, body = _request("POST", f"{command}/v1/characters", {"name": f"Exp{suffix}{n}", "class": class_}, token)
        assert status == 201, body
        heroes.append((token, body["aggregate_id"]))
    # Wolves first (an NPC fight restarts when the target changes, so one NPC until it dies),
    # then each other.
    for round_ in range(40):
        for i, (token, character) in enumerate(heroes):
            if round_ < 24:
                target = {"npc": "wolf"}
            else:
                _, victim = heroes[(i + 1) % len(heroes)]
                target = {"character": victim}
            # Rule refusals (a dead caster, a dead target) are part of play; only errors fail.
            status, body = _request(
                "POST", f"{command}/v1/characters/{character}/cast-skill", {"skill": "strike", "target": target}, token
            )
            assert status in (200, 422), f"cast answered {status}: {body}"
            if status == 422 and "character-dead" in str(body):
                assert _request("POST", f"{command}/v1/characters/{character}/respawn", {}, token)[0] in (200, 422)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    work = tmp_path_factory.mktemp("parquet-export")
    data = work / "data"
    command_port, query_port = _free_port(), _free_port()
    env = {
        **os.environ,
        "CHAOS__COMMAND_API__BIND": f"127.0.0.1:{command_port}",
        "CHAOS__QUERY_API__BIND": f"127.0.0.1:{query_port}",
        "CHAOS__TELEMETRY__LEVEL": "warn",
    }
    log = work / "chaos.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(_binary("chaos")), "--data-dir", str(data)], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    command = f"http://127.0.0.1:{command_port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text(errors="replace")[-3000:]
            try:
                if _request("GET", f"{command}/healthz")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the embedded backend did not start"
            time.sleep(0.1)
        _play(command)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    warehouse = data / "warehouse.duckdb"
    assert warehouse.is_file(), log.read_text(errors="replace")[-3000:]

    out = work / "parquet"
    result = subprocess.run(
        [str(_binary("projector")), "warehouse", "export", str(out)],
        env={**os.environ, "CHAOS__WAREHOUSE__PATH": str(warehouse), "CHAOS__TELEMETRY__LEVEL": "warn"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    printed = {}
    for line in result.stdout.splitlines():
        path, rows = line.split("\t")
        printed[Path(path).name] = int(rows.split()[0])
    db = duckdb.connect(str(warehouse), read_only=True)
    yield {"dir": out, "printed": printed, "db": db, "store": data / "events.db"}
    db.close()


def _uuid(value) -> str:
    """A UUID column's value as pyarrow gives it (16 bytes, or a UUID) in its text form."""
    if isinstance(value, (bytes, bytearray)):
        return str(uuid.UUID(bytes=bytes(value)))
    return str(value)


def _dataset(path: Path):
    return ds.dataset(str(path), format="parquet", partitioning="hive")


def test_every_table_has_the_duckdb_tables_rows(exported):
    out, db = exported["dir"], exported["db"]
    tables = [name for (name,) in db.execute("SELECT table_name FROM duckdb_tables() WHERE NOT temporary").fetchall()]
    views = ["sessions", "dates"]
    for table in tables + views:
        if table in ("store_positions", "warehouse_meta"):
            assert not (out / table).exists(), f"{table} is not for analysts"
            continue
        assert (out / table).is_dir(), f"{table} was not exported"
        rows = _dataset(out / table).count_rows()
        (expected,) = db.execute(f"SELECT count(*) FROM {table}").fetchone()
        assert rows == expected, f"{table}: {rows} rows in Parquet, {expected} in DuckDB"
        assert exported["printed"][table] == expected
    # The game made rows in the modelled tables, not only in `events`.
    for table in ("events", "characters", "skill_casts", "cast_hits", "npc_kills", "pvp_damage", "currency_flows", "sessions"):
        assert _dataset(out / table).count_rows() > 0, table
    # Readers list the table directories only: the export's own directories are hidden.
    visible = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    assert visible == sorted(exported["printed"])


def test_facts_are_partitioned_by_their_day(exported):
    events = _dataset(exported["dir"] / "events").to_table()
    days = {d.name for d in (exported["dir"] / "events").iterdir()}
    assert days and all(d.startswith("day=") for d in days)
    occurred = events.column("occurred_at").to_pylist()
    partition = events.column("day").to_pylist()
    assert all(str(p) == t.strftime("%Y-%m-%d") for p, t in zip(partition, occurred))


def test_values_equal_the_duckdb_tables_and_the_event_store(exported):
    out, db = exported["dir"], exported["db"]
    events = _dataset(out / "events").to_table().to_pylist()
    parquet = sorted((_uuid(e["event_id"]), e["event_type"], e["aggregate_id"], e["sequence"]) for e in events)
    duck = sorted(
        (str(i), t, a, s)
        for i, t, a, s in db.execute("SELECT event_id, event_type, aggregate_id, sequence FROM events").fetchall()
    )
    assert parquet == duck

    store = sqlite3.connect(exported["store"])
    stored = {(a, s, t) for a, s, t in store.execute("SELECT aggregate_id, sequence, event_type FROM events")}
    store.close()
    in_parquet = {(e["aggregate_id"], e["sequence"], e["event_type"]) for e in events}
    assert in_parquet <= stored
    # The warehouse followed the store up to the shutdown: everything but at most a last batch.
    assert len(in_parquet) > 0.9 * len(stored)

    characters = _dataset(out / "characters").to_table().to_pylist()
    assert sorted((c["character_id"], c["name"], c["class"]) for c in characters) == sorted(
        db.execute("SELECT character_id, name, class FROM characters").fetchall()
    )
    flows = _dataset(out / "currency_flows").to_table()
    by_reason = {}
    for reason, amount in zip(flows.column("reason").to_pylist(), flows.column("amount").to_pylist()):
        by_reason[reason] = by_reason.get(reason, 0) + amount
    assert by_reason == dict(db.execute("SELECT reason, sum(amount)::BIGINT FROM currency_flows GROUP BY reason").fetchall())
    kills = _dataset(out / "npc_kills").to_table()
    assert sum(kills.column("xp_reward").to_pylist()) == db.execute("SELECT sum(xp_reward) FROM npc_kills").fetchone()[0]
