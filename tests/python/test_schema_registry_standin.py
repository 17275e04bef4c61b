"""The schema registry stand-in (deploy/local/schema_registry_standin.py) driven by the
stock confluent-kafka SchemaRegistryClient, AvroSerializer and AvroDeserializer.

Run: "$CHAOS_VENV/bin/python" -m pytest tests/python/test_schema_registry_standin.py
"""

from __future__ import annotations

import importlib.util
import json
import struct
import urllib.error
import urllib.request

import pytest
from confluent_kafka.schema_registry import (
    Schema,
    SchemaRegistryClient,
    topic_record_subject_name_strategy,
)
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

from conftest import STANDIN

SUBJECT = "chaos.character.events-chaos.events.CharacterCreated"

V1 = {
    "type": "record",
    "name": "CharacterCreated",
    "namespace": "chaos.events",
    "fields": [
        {"name": "event_id", "type": "string"},
        {"name": "character_id", "type": "string"},
        {"name": "name", "type": "string"},
    ],
}
# Adds a field WITH a default: BACKWARD compatible.
V2 = {**V1, "fields": V1["fields"] + [{"name": "level", "type": "int", "default": 1}]}
# Adds a field WITHOUT a default: new readers cannot read old data -> incompatible.
V3_BAD = {**V1, "fields": V1["fields"] + [{"name": "level", "type": "int"}]}


def avro(schema_dict, indent=None) -> Schema:
    return Schema(json.dumps(schema_dict, indent=indent), "AVRO")


def client(standin) -> SchemaRegistryClient:
    return SchemaRegistryClient({"url": standin.url})


def http(standin, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        standin.url + path,
        data=data,
        method=method,
        headers={"Content-Type": "application/vnd.schemaregistry.v1+json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


# ------------------------------------------------------------------ client --


def test_register_get_by_id_and_reregister_same_id(standin):
    sr = client(standin)
    sid = sr.register_schema(SUBJECT, avro(V1))
    assert isinstance(sid, int) and sid >= 1

    fetched = client(standin).get_schema(sid)  # fresh client: no cache
    assert fetched.schema_type == "AVRO"
    assert json.loads(fetched.schema_str) == V1

    # Same schema, different whitespace, fresh client -> same id, no new version.
    assert client(standin).register_schema(SUBJECT, avro(V1, indent=4)) == sid
    assert client(standin).get_versions(SUBJECT) == [1]

    # Ids are global: the same schema in another subject gets the same id.
    assert client(standin).register_schema("other-subject", avro(V1)) == sid
    assert sorted(client(standin).get_subjects()) == sorted([SUBJECT, "other-subject"])


def test_latest_version_versions_and_lookup(standin):
    sr = client(standin)
    id1 = sr.register_schema(SUBJECT, avro(V1))
    id2 = sr.register_schema(SUBJECT, avro(V2))
    assert id2 != id1

    latest = client(standin).get_latest_version(SUBJECT)
    assert (latest.subject, latest.version, latest.schema_id) == (SUBJECT, 2, id2)
    assert json.loads(latest.schema.schema_str) == V2
    assert client(standin).get_versions(SUBJECT) == [1, 2]

    v1 = client(standin).get_version(SUBJECT, 1)
    assert (v1.version, v1.schema_id) == (1, id1)

    found = client(standin).lookup_schema(SUBJECT, avro(V1, indent=2))
    assert (found.version, found.schema_id) == (1, id1)


def test_compatibility_check_true_and_false(standin):
    sr = client(standin)
    sr.register_schema(SUBJECT, avro(V1))
    assert sr.get_compatibility() == "BACKWARD"

    assert sr.test_compatibility(SUBJECT, avro(V2)) is True
    assert sr.test_compatibility(SUBJECT, avro(V3_BAD)) is False

    status, body = http(
        standin,
        "POST",
        f"/compatibility/subjects/{SUBJECT}/versions/latest?verbose=true",
        {"schema": json.dumps(V3_BAD)},
    )
    assert status == 200 and body["is_compatible"] is False
    assert any("READER_FIELD_MISSING_DEFAULT_VALUE" in m for m in body["messages"])


def test_incompatible_registration_rejected_with_409(standin):
    sr = client(standin)
    sr.register_schema(SUBJECT, avro(V1))
    with pytest.raises(SchemaRegistryError) as exc:
        sr.register_schema(SUBJECT, avro(V3_BAD))
    assert exc.value.http_status_code == 409
    assert client(standin).get_versions(SUBJECT) == [1]

    # A compatible evolution is accepted as version 2.
    sr.register_schema(SUBJECT, avro(V2))
    assert client(standin).get_versions(SUBJECT) == [1, 2]


def test_subject_level_config(standin):
    sr = client(standin)
    sr.register_schema(SUBJECT, avro(V1))
    sr.set_compatibility(subject_name=SUBJECT, level="NONE")
    assert sr.get_compatibility(SUBJECT) == "NONE"
    assert sr.get_compatibility() == "BACKWARD"
    sr.register_schema(SUBJECT, avro(V3_BAD))  # allowed under NONE
    assert client(standin).get_versions(SUBJECT) == [1, 2]

    status, body = http(standin, "PUT", "/config", {"compatibility": "SIDEWAYS"})
    assert (status, body["error_code"]) == (422, 42203)


def test_errors_look_like_confluent(standin):
    sr = client(standin)
    with pytest.raises(SchemaRegistryError) as exc:
        sr.get_schema(4242)
    assert (exc.value.http_status_code, exc.value.error_code) == (404, 40403)
    with pytest.raises(SchemaRegistryError) as exc:
        sr.get_latest_version("no-such-subject")
    assert (exc.value.http_status_code, exc.value.error_code) == (404, 40401)
    with pytest.raises(SchemaRegistryError) as exc:
        sr.register_schema(SUBJECT, Schema('{"type": "record", "name": "X"}', "AVRO"))
    assert (exc.value.http_status_code, exc.value.error_code) == (422, 42201)
    with pytest.raises(SchemaRegistryError) as exc:
        sr.register_schema(SUBJECT, Schema('{"type": "object"}', "JSON"))
    assert exc.value.http_status_code == 422
    sr.register_schema(SUBJECT, avro(V1))
    with pytest.raises(SchemaRegistryError) as exc:
        sr.get_version(SUBJECT, 7)
    assert (exc.value.http_status_code, exc.value.error_code) == (404, 40402)

    status, body = http(standin, "GET", "/schemas/ids/1")
    assert status == 200 and json.loads(body["schema"]) == V1


def test_delete_subject(standin):
    sr = client(standin)
    sid = sr.register_schema(SUBJECT, avro(V1))
    assert sr.delete_subject(SUBJECT) == [1]
    assert SUBJECT not in client(standin).get_subjects()
    # The id still resolves (Confluent keeps schemas after a soft delete).
    assert json.loads(client(standin).get_schema(sid).schema_str) == V1
    assert sr.delete_subject(SUBJECT, permanent=True) == [1]


def test_restart_keeps_ids_and_versions(standin):
    sr = client(standin)
    id1 = sr.register_schema(SUBJECT, avro(V1))
    id2 = sr.register_schema(SUBJECT, avro(V2))
    sr.set_compatibility(subject_name="other", level="FULL")

    standin.restart()

    sr2 = client(standin)
    assert json.loads(sr2.get_schema(id2).schema_str) == V2
    assert sr2.get_versions(SUBJECT) == [1, 2]
    assert sr2.register_schema(SUBJECT, avro(V1)) == id1
    assert sr2.get_compatibility("other") == "FULL"
    # The next new schema gets a fresh id, not a reused one.
    id3 = sr2.register_schema("another", Schema('"string"', "AVRO"))
    assert id3 not in (id1, id2)


def test_avro_serializer_deserializer_round_trip(standin):
    topic = "chaos.character.events"
    serializer = AvroSerializer(
        client(standin),
        json.dumps(V2),
        conf={"subject.name.strategy": topic_record_subject_name_strategy},
    )
    event = {"event_id": "e-1", "character_id": "c-42", "name": "Zed", "level": 7}
    ctx = SerializationContext(topic, MessageField.VALUE)
    payload = serializer(event, ctx)

    # Confluent wire format: magic byte 0, big-endian schema id, Avro body.
    magic, schema_id = struct.unpack(">bI", payload[:5])
    assert magic == 0
    latest = client(standin).get_latest_version(f"{topic}-chaos.events.CharacterCreated")
    assert latest.schema_id == schema_id

    deserializer = AvroDeserializer(client(standin))  # fresh client fetches by id
    assert deserializer(payload, ctx) == event


# ------------------------------------------------------ compatibility rules --


def _load_standin_module():
    spec = importlib.util.spec_from_file_location("schema_registry_standin", STANDIN)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


SR = _load_standin_module()


def problems(new, old, level="BACKWARD"):
    new_m = SR.AvroParser().parse(new)
    old_m = SR.AvroParser().parse(old)
    return [p.error_type for p in SR.incompatibilities(new_m, old_m, level)]


def rec(fields, name="R"):
    return {"type": "record", "name": name, "fields": fields}


@pytest.mark.parametrize(
    "old,new,ok",
    [
        ("int", "long", True),
        ("int", "double", True),
        ("long", "float", True),
        ("float", "double", True),
        ("string", "bytes", True),
        ("bytes", "string", True),
        ("long", "int", False),
        ("double", "float", False),
        ("string", "int", False),
        ("string", ["null", "string"], True),
        (["null", "string"], "string", False),
        (["null", "int"], ["null", "long"], True),
        ({"type": "array", "items": "int"}, {"type": "array", "items": "long"}, True),
        ({"type": "map", "values": "long"}, {"type": "map", "values": "int"}, False),
        ({"type": "enum", "name": "E", "symbols": ["A", "B"]}, {"type": "enum", "name": "E", "symbols": ["A", "B", "C"]}, True),
        ({"type": "enum", "name": "E", "symbols": ["A", "B"]}, {"type": "enum", "name": "E", "symbols": ["A"]}, False),
        (
            {"type": "enum", "name": "E", "symbols": ["A", "B"]},
            {"type": "enum", "name": "E", "symbols": ["A", "U"], "default": "U"},
            True,
        ),
        ({"type": "fixed", "name": "F", "size": 4}, {"type": "fixed", "name": "F", "size": 8}, False),
        (rec([{"name": "a", "type": "int"}]), rec([{"name": "a", "type": "int"}], name="Other"), False),
        (rec([{"name": "a", "type": "int"}]), rec([]), True),  # dropping a field
        (rec([{"name": "a", "type": "int"}]), rec([{"name": "b", "type": "int", "aliases": ["a"]}]), True),
        (rec([{"name": "a", "type": "int"}]), rec([{"name": "b", "type": "int"}]), False),
        (
            rec([{"name": "a", "type": "int"}]),
            rec([{"name": "a", "type": "int"}, {"name": "o", "type": ["null", "string"], "default": None}]),
            True,
        ),
    ],
)
def test_backward_rules(old, new, ok):
    assert (problems(new, old) == []) is ok


def test_forward_full_and_transitive():
    a = rec([{"name": "a", "type": "int"}])
    ab = rec([{"name": "a", "type": "int"}, {"name": "b", "type": "int"}])
    # Adding a required field: fine FORWARD (old readers ignore it), not BACKWARD/FULL.
    assert problems(ab, a, "FORWARD") == []
    assert problems(ab, a, "BACKWARD") == ["READER_FIELD_MISSING_DEFAULT_VALUE"]
    assert problems(ab, a, "FULL") == ["READER_FIELD_MISSING_DEFAULT_VALUE"]
    assert problems(ab, a, "NONE") == []


def test_transitive_level_checks_all_versions(standin):
    sr = client(standin)
    sr.set_compatibility(subject_name="t", level="BACKWARD_TRANSITIVE")
    v1 = rec([{"name": "a", "type": "int"}])
    v2 = rec([])  # drops a
    v3 = rec([{"name": "a", "type": "string", "default": ""}])  # reads v2, not v1's int 'a'
    sr.register_schema("t", avro(v1))
    sr.register_schema("t", avro(v2))
    assert problems(v3, v2) == []
    with pytest.raises(SchemaRegistryError) as exc:
        sr.register_schema("t", avro(v3))
    assert exc.value.http_status_code == 409
    sr.set_compatibility(subject_name="t", level="BACKWARD")
    sr.register_schema("t", avro(v3))


def test_recursive_and_named_references():
    node = {
        "type": "record",
        "name": "Node",
        "namespace": "x",
        "fields": [
            {"name": "value", "type": "int"},
            {"name": "next", "type": ["null", "Node"], "default": None},
        ],
    }
    node2 = json.loads(json.dumps(node))
    node2["fields"][0]["type"] = "long"
    assert problems(node2, node) == []
    assert problems(node, node2) == ["TYPE_MISMATCH"]
    with pytest.raises(SR.AvroSchemaError):
        SR.AvroParser().parse(rec([{"name": "a", "type": "Missing"}]))
    with pytest.raises(SR.AvroSchemaError):  # union defaults must match the first branch
        SR.AvroParser().parse(rec([{"name": "a", "type": ["string", "null"], "default": None}]))


def test_schema_references(standin):
    address = {"type": "record", "name": "Address", "namespace": "chaos", "fields": [{"name": "city", "type": "string"}]}
    person = {
        "type": "record",
        "name": "Person",
        "namespace": "chaos",
        "fields": [{"name": "home", "type": "chaos.Address"}],
    }
    status, body = http(standin, "POST", "/subjects/address/versions", {"schema": json.dumps(address)})
    assert status == 200
    ref = [{"name": "chaos.Address", "subject": "address", "version": 1}]
    status, body = http(standin, "POST", "/subjects/person/versions", {"schema": json.dumps(person), "references": ref})
    assert status == 200, body
    status, got = http(standin, "GET", f"/schemas/ids/{body['id']}")
    assert got["references"] == ref
    status, body = http(standin, "POST", "/subjects/person2/versions", {"schema": json.dumps(person)})
    assert (status, body["error_code"]) == (422, 42201)
