#!/usr/bin/env python3
"""Read Chaos World events from Kafka the way an analyst would.

Stock tooling only (confluent-kafka + its Avro deserializer + a Confluent-compatible
schema registry); it knows nothing about the game's Rust code. Values are Avro in
the Confluent wire format (magic byte 0, 4-byte schema id, Avro body); the writer
schema is fetched from the registry by id.

  python analyst_consume.py --bootstrap 127.0.0.1:9092 --registry http://127.0.0.1:8081/apis/ccompat/v7 \\
      --topic chaos.character.events --from-beginning --max-messages 10 --timeout 15

Prints one JSON object per line on stdout:
  {"topic": ..., "partition": ..., "offset": ..., "timestamp_ms": ..., "key": ...,
   "headers": {name: value}, "value": {...decoded Avro record...}}
Keys are shown as UTF-8 text (or Avro-decoded if they carry the Confluent framing,
else base64). Avro bytes/fixed values are shown base64-encoded; timestamps and
UUIDs as ISO-8601/str. Diagnostics go to stderr.

Stops after --max-messages messages, or after --timeout seconds without a new
message (counted from when the consumer got its partitions), or on Ctrl-C; exits 0.
Without --group a throwaway group is used and no offsets are committed. With
--group, offsets are committed as usual and --from-beginning only applies when
the group has no committed offsets (like kafka-console-consumer).
"""

from __future__ import annotations

import argparse
import base64
import datetime
import decimal
import json
import signal
import sys
import time
import uuid

from confluent_kafka import Consumer, KafkaError, KafkaException
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext


def to_json(obj):
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(obj)).decode("ascii")
    if isinstance(obj, (datetime.datetime, datetime.date, datetime.time)):
        return obj.isoformat()
    if isinstance(obj, (decimal.Decimal, uuid.UUID)):
        return str(obj)
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    return str(obj)


def decode_key(raw, deserializer, ctx):
    if raw is None:
        return None
    if len(raw) > 5 and raw[0] == 0:
        try:
            return deserializer(raw, ctx)
        except Exception:
            pass
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode("ascii")


def decode_headers(headers):
    out = {}
    for name, value in headers or []:
        if value is None:
            out[name] = None
        elif isinstance(value, (bytes, bytearray)):
            out[name] = bytes(value).decode("utf-8", errors="replace")
        else:
            out[name] = str(value)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Print Avro events from a Kafka topic as JSON lines.")
    ap.add_argument("--bootstrap", required=True, help="Kafka bootstrap servers, e.g. 127.0.0.1:9092")
    ap.add_argument("--registry", required=True, help="schema registry URL, e.g. http://127.0.0.1:8081/apis/ccompat/v7")
    ap.add_argument("--topic", required=True, action="append", help="topic (repeatable)")
    ap.add_argument("--group", help="consumer group id (default: a throwaway group, no commits)")
    ap.add_argument("--max-messages", type=int, default=None, help="stop after N messages")
    ap.add_argument("--timeout", type=float, default=None, help="stop after S seconds without a new message")
    ap.add_argument("--from-beginning", action="store_true", help="start at the earliest offset (default: latest)")
    args = ap.parse_args(argv)

    registry = SchemaRegistryClient({"url": args.registry})
    value_deserializer = AvroDeserializer(registry)
    key_deserializer = AvroDeserializer(registry)

    conf = {
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group or f"analyst-consume-{uuid.uuid4()}",
        "auto.offset.reset": "earliest" if args.from_beginning else "latest",
        "enable.auto.commit": bool(args.group),
        "isolation.level": "read_committed",
        "session.timeout.ms": 10000,
    }
    consumer = Consumer(conf)

    state = {"assigned_at": None}

    def on_assign(c, partitions):
        if state["assigned_at"] is None:
            state["assigned_at"] = time.monotonic()

    stop = {"flag": False}

    def on_signal(signum, frame):
        stop["flag"] = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    consumer.subscribe(args.topic, on_assign=on_assign)
    started = time.monotonic()
    last_activity = None
    count = 0
    try:
        while not stop["flag"]:
            if args.max_messages is not None and count >= args.max_messages:
                break
            now = time.monotonic()
            if args.timeout is not None:
                if last_activity is None and state["assigned_at"] is not None:
                    last_activity = state["assigned_at"]
                if last_activity is not None and now - last_activity >= args.timeout:
                    break
                # never got partitions (broker down, group stuck): give up too
                if last_activity is None and now - started >= args.timeout + 30:
                    print("analyst_consume: no partitions were assigned; giving up", file=sys.stderr)
                    break
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                err = msg.error()
                if err.code() == KafkaError._PARTITION_EOF:
                    continue
                print(f"analyst_consume: {err}", file=sys.stderr)
                if err.fatal():
                    raise KafkaException(err)
                continue
            topic = msg.topic()
            value = value_deserializer(msg.value(), SerializationContext(topic, MessageField.VALUE, msg.headers()))
            key = decode_key(msg.key(), key_deserializer, SerializationContext(topic, MessageField.KEY, msg.headers()))
            ts_type, ts = msg.timestamp()
            line = {
                "topic": topic,
                "partition": msg.partition(),
                "offset": msg.offset(),
                "timestamp_ms": ts if ts_type else None,
                "key": key,
                "headers": decode_headers(msg.headers()),
                "value": value,
            }
            sys.stdout.write(json.dumps(line, default=to_json, ensure_ascii=False) + "\n")
            sys.stdout.flush()
            count += 1
            last_activity = time.monotonic()
    finally:
        consumer.close()
    print(f"analyst_consume: {count} message(s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
