"""The local schema registry (Apicurio Registry, started by deploy/local/services.sh) does what
the product relies on, driven with stock tooling: plain HTTP, the confluent-kafka
SchemaRegistryClient and its AvroSerializer/AvroDeserializer, and the analysts' example
(tests/python/analyst_consume.py) through Kafka.

Needs SCHEMA_REGISTRY_URL (http://127.0.0.1:8081/apis/ccompat/v7, no trailing slash) and
KAFKA_BOOTSTRAP_SERVERS: eval "$(deploy/local/services.sh env)". Every test uses subjects and
topics of its own, so reruns against the same registry pass.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import (
    Schema,
    SchemaRegistryClient,
    topic_record_subject_name_strategy,
)
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext, StringSerializer

from conftest import env_or_fail

ANALYST = Path(__file__).resolve().parent / "analyst_consume.py"
RECORD = "chaos.character.SkillCast"

V1 = {
    "type": "record",
    "name": "SkillCast",
    "namespace": "chaos.character",
    "fields": [
        {"name": "character_id", "type": "string"},
        {"name": "skill", "type": "string"},
        {"name": "mana_cost", "type": "int"},
    ],
}
# Adds a field WITH a default: BACKWARD compatible (new readers fill it in for old data).
V2 = {**V1, "fields": V1["fields"] + [{"name": "target", "type": ["null", "string"], "default": None}]}
# Adds a field WITHOUT a default: new readers cannot read old data.
BAD_NEW_FIELD = {**V1, "fields": V1["fields"] + [{"name": "level", "type": "int"}]}
# Changes a field's type (int -> string): incompatible.
BAD_TYPE_CHANGE = {**V1, "fields": V1["fields"][:2] + [{"name": "mana_cost", "type": "string"}]}


@pytest.fixture(scope="module")
def url() -> str:
    u = env_or_fail("SCHEMA_REGISTRY_URL")
    assert not u.endswith("/"), "no trailing slash: the registry answers 404 to .../v7//subjects"
    try:
        with urllib.request.urlopen(u + "/subjects", timeout=5) as r:
            assert r.status == 200
    except (urllib.error.URLError, OSError) as e:
        pytest.fail(f"schema registry at {u} does not answer ({e}): deploy/local/services.sh up", pytrace=False)
    return u


@pytest.fixture
def topic(unique) -> str:
    return f"chaos.srtest{unique}.events"


@pytest.fixture
def subject(topic, url):
    """The TopicRecordNameStrategy subject of SkillCast on this test's topic; deleted afterwards."""
    s = f"{topic}-{RECORD}"
    yield s
    for query in ("", "?permanent=true"):
        http(url, "DELETE", f"/subjects/{s}{query}")


def client(url) -> SchemaRegistryClient:
    """A fresh client: nothing cached, so every answer comes from the registry."""
    return SchemaRegistryClient({"url": url})


def text(schema: dict) -> str:
    return json.dumps(schema, separators=(",", ":"))


def avro(schema: dict) -> Schema:
    return Schema(text(schema), "AVRO")


def http(url, method, path, body=None):
    req = urllib.request.Request(
        url + path,
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"Content-Type": "application/vnd.schemaregistry.v1+json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw or b"null")
        except ValueError:
            return e.code, raw.decode(errors="replace")


def test_register_twice_gives_the_same_id_and_fetch_by_id(url, subject):
    status, body = http(url, "POST", f"/subjects/{subject}/versions", {"schema": text(V1)})
    assert status == 200, body
    sid = body["id"]
    assert isinstance(sid, int) and sid >= 1

    # The same text again (raw HTTP and a fresh stock client): the same id, no new version.
    assert http(url, "POST", f"/subjects/{subject}/versions", {"schema": text(V1)}) == (200, {"id": sid})
    assert client(url).register_schema(subject, avro(V1)) == sid
    assert client(url).get_versions(subject) == [1]
    assert subject in client(url).get_subjects()

    # By id: what a consumer with a cold cache asks for each message's schema id.
    status, body = http(url, "GET", f"/schemas/ids/{sid}")
    assert status == 200 and json.loads(body["schema"]) == V1
    fetched = client(url).get_schema(sid)
    assert fetched.schema_type == "AVRO" and json.loads(fetched.schema_str) == V1

    # Lookup of a registered schema under its subject.
    found = client(url).lookup_schema(subject, avro(V1))
    assert (found.version, found.schema_id) == (1, sid)


def test_unknown_id_and_subject_are_404(url):
    # The Rust codec treats 404 on a schema id as a poison message (not an outage).
    status, _ = http(url, "GET", f"/schemas/ids/{2**31 - 1}")
    assert status == 404
    with pytest.raises(SchemaRegistryError) as exc:
        client(url).get_latest_version("chaos.no-such-topic.events-no.such.Record")
    assert exc.value.http_status_code == 404


def test_backward_compatible_version_is_accepted(url, subject):
    sr = client(url)
    id1 = sr.register_schema(subject, avro(V1))
    id2 = sr.register_schema(subject, avro(V2))
    assert id2 != id1
    assert client(url).get_versions(subject) == [1, 2]
    latest = client(url).get_latest_version(subject)
    assert (latest.subject, latest.version, latest.schema_id) == (subject, 2, id2)
    assert json.loads(latest.schema.schema_str) == V2
    v1 = client(url).get_version(subject, 1)
    assert (v1.version, v1.schema_id) == (1, id1)
    assert client(url).test_compatibility(subject, avro(V2)) is True


@pytest.mark.parametrize("bad", [BAD_TYPE_CHANGE, BAD_NEW_FIELD], ids=["type-change", "new-field-without-default"])
def test_incompatible_version_is_refused_with_409(url, subject, bad):
    sr = client(url)
    sr.register_schema(subject, avro(V1))

    status, body = http(url, "POST", f"/subjects/{subject}/versions", {"schema": text(bad)})
    assert status == 409, body
    with pytest.raises(SchemaRegistryError) as exc:
        client(url).register_schema(subject, avro(bad))
    assert exc.value.http_status_code == 409
    assert client(url).get_versions(subject) == [1]
    assert client(url).test_compatibility(subject, avro(bad)) is False


def test_avro_serializer_deserializer_round_trip(url, topic, subject):
    """As a producer and an analyst use the stock client: TopicRecordNameStrategy subjects, the
    producer writing with the latest registered version, a consumer with a cold cache."""
    sid = client(url).register_schema(subject, avro(V2))
    ctx = SerializationContext(topic, MessageField.VALUE)
    serializer = AvroSerializer(
        client(url),
        text(V2),
        conf={
            "auto.register.schemas": False,
            "use.latest.version": True,
            "subject.name.strategy": topic_record_subject_name_strategy,
        },
    )
    event = {"character_id": "c-42", "skill": "fireball", "mana_cost": 30, "target": "wolf-17"}
    payload = serializer(event, ctx)

    # Confluent wire format: magic byte 0, big-endian schema id, Avro body.
    magic, schema_id = struct.unpack(">bI", payload[:5])
    assert (magic, schema_id) == (0, sid)
    assert AvroDeserializer(client(url))(payload, ctx) == event

    # Registering on first use (the default) lands on the same subject and id.
    auto = AvroSerializer(client(url), text(V2), conf={"subject.name.strategy": topic_record_subject_name_strategy})
    assert auto(event, ctx) == payload


def test_analyst_example_reads_avro_from_kafka(url, topic, subject):
    """Produce Confluent-framed Avro to Kafka, read it back with tests/python/analyst_consume.py
    pointed at this registry URL, exactly as the README tells analysts to."""
    bootstrap = env_or_fail("KAFKA_BOOTSTRAP_SERVERS")
    serializer = AvroSerializer(client(url), text(V2), conf={"subject.name.strategy": topic_record_subject_name_strategy})
    events = [
        {"character_id": "c-1", "skill": "strike", "mana_cost": 0, "target": None},
        {"character_id": "c-1", "skill": "fireball", "mana_cost": 30, "target": "wolf-17"},
    ]
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    key = StringSerializer()
    try:
        for e in events:
            ctx = SerializationContext(topic, MessageField.VALUE)
            producer.produce(topic, key=key("c-1"), value=serializer(e, ctx), headers={"event_type": "SkillCast"})
        assert producer.flush(30) == 0
        out = subprocess.run(
            [sys.executable, str(ANALYST), "--bootstrap", bootstrap, "--registry", url, "--topic", topic,
             "--from-beginning", "--max-messages", str(len(events)), "--timeout", "20"],
            capture_output=True, text=True, timeout=90,
        )
        assert out.returncode == 0, out.stderr
        lines = [json.loads(line) for line in out.stdout.splitlines()]
        assert [line["value"] for line in lines] == events, out.stderr
        assert all(line["key"] == "c-1" and line["headers"] == {"event_type": "SkillCast"} for line in lines)
    finally:
        for f in AdminClient({"bootstrap.servers": bootstrap}).delete_topics([topic], operation_timeout=30).values():
            try:
                f.result()
            except Exception:
                pass
