"""The TLS twins of the local services (deploy/local/services.sh, test CA per state dir):
Kafka's SASL_SSL listener with SCRAM-SHA-512, the password-protected TLS Redis, and PostgreSQL
with TLS on its usual port. They exist so that the services' TLS + SASL client settings can be
tested the way production connects (managed Kafka, Redis and PostgreSQL with TLS and credentials).

Needs the variables of `eval "$(deploy/local/services.sh env)"`: KAFKA_TLS_BOOTSTRAP_SERVERS,
KAFKA_TLS_CA_FILE, KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD, REDIS_TLS_URL,
REDIS_TLS_CA_FILE, DATABASE_TLS_URL, KAFKA_BOOTSTRAP_SERVERS, REDIS_URL.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import time
from urllib.parse import urlparse

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient

from conftest import env_or_fail


# ------------------------------------------------------------------ kafka --


def kafka_tls_conf(**overrides) -> dict:
    conf = {
        "bootstrap.servers": env_or_fail("KAFKA_TLS_BOOTSTRAP_SERVERS"),
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": env_or_fail("KAFKA_SASL_MECHANISM"),
        "sasl.username": env_or_fail("KAFKA_SASL_USERNAME"),
        "sasl.password": env_or_fail("KAFKA_SASL_PASSWORD"),
        "ssl.ca.location": env_or_fail("KAFKA_TLS_CA_FILE"),
    }
    conf.update(overrides)
    return conf


def test_kafka_env_names_scram_over_tls():
    assert env_or_fail("KAFKA_SASL_MECHANISM") == "SCRAM-SHA-512"
    assert env_or_fail("KAFKA_TLS_BOOTSTRAP_SERVERS") != env_or_fail("KAFKA_BOOTSTRAP_SERVERS")


def test_kafka_produce_and_consume_over_sasl_ssl(unique):
    topic = f"tlstest{unique}.events"
    values = [f"event-{i}".encode() for i in range(3)]
    producer = Producer(kafka_tls_conf(**{"enable.idempotence": True}))
    try:
        for i, v in enumerate(values):
            producer.produce(topic, key=f"k{i}".encode(), value=v)
        assert producer.flush(30) == 0

        consumer = Consumer(kafka_tls_conf(**{
            "group.id": f"tlstest-{unique}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }))
        got = []
        try:
            consumer.subscribe([topic])
            deadline = time.monotonic() + 60
            while len(got) < len(values) and time.monotonic() < deadline:
                msg = consumer.poll(0.5)
                if msg is None:
                    continue
                if msg.error():
                    if msg.error().code() == KafkaError._PARTITION_EOF:
                        continue
                    raise KafkaException(msg.error())
                got.append(msg.value())
        finally:
            consumer.close()
        assert sorted(got) == sorted(values)

        # The SASL_SSL listener is a second door to the same broker: the plain one sees the topic.
        plain = AdminClient({"bootstrap.servers": env_or_fail("KAFKA_BOOTSTRAP_SERVERS")})
        assert topic in plain.list_topics(timeout=10).topics
    finally:
        admin = AdminClient(kafka_tls_conf())
        for f in admin.delete_topics([topic], operation_timeout=30).values():
            try:
                f.result()
            except Exception:
                pass


def _kafka_error(conf: dict) -> KafkaError:
    """Connects with `conf` and returns the first error the client reports (fails if none
    within 20 s). The client's own log lines are silenced (log_level 0)."""
    errors: list[KafkaError] = []
    producer = Producer({**conf, "error_cb": errors.append, "log_level": 0})
    try:
        deadline = time.monotonic() + 20
        while not errors and time.monotonic() < deadline:
            producer.poll(0.2)
    finally:
        producer.purge()
    assert errors, "the client connected without an error"
    return errors[0]


def test_kafka_wrong_password_is_refused():
    err = _kafka_error(kafka_tls_conf(**{"sasl.password": "not-the-password"}))
    assert err.code() in (KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED), err
    assert "authentication failed" in err.str().lower(), err


def test_kafka_unknown_user_is_refused():
    err = _kafka_error(kafka_tls_conf(**{"sasl.username": "nobody"}))
    assert err.code() in (KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED), err


def test_kafka_certificate_is_verified():
    # Without the test CA (the system's roots only), the broker's certificate is not trusted.
    err = _kafka_error(kafka_tls_conf(**{"ssl.ca.location": "probe"}))  # probe: the system's CA bundle
    assert err.code() in (KafkaError._SSL, KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN), err
    assert "certificate verify failed" in err.str(), err


# ------------------------------------------------------------------ redis --


class Resp:
    """A minimal RESP client over an already connected (TLS) socket."""

    def __init__(self, sock):
        self.sock = sock
        self.f = sock.makefile("rwb")

    def call(self, *args: str):
        parts = [a.encode() for a in args]
        self.f.write(b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts))
        self.f.flush()
        line = self.f.readline()
        kind, rest = line[:1], line[1:-2].decode()
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self.f.read(n + 2)[:-2].decode()
        if kind == b"-":
            return RuntimeError(rest)
        return rest


def redis_tls(ca_file: str | None = None):
    u = urlparse(env_or_fail("REDIS_TLS_URL"))
    ctx = ssl.create_default_context(cafile=ca_file or env_or_fail("REDIS_TLS_CA_FILE"))
    raw = socket.create_connection((u.hostname, u.port), timeout=10)
    return Resp(ctx.wrap_socket(raw, server_hostname=u.hostname)), u.password


def test_redis_tls_url_shape():
    u = urlparse(env_or_fail("REDIS_TLS_URL"))
    assert (u.scheme, u.username or "", bool(u.password)) == ("rediss", "", True)
    assert u.port != urlparse(env_or_fail("REDIS_URL")).port


def test_redis_tls_needs_auth_then_answers_ping(unique):
    conn, password = redis_tls()
    with conn.sock:
        refused = conn.call("PING")
        assert isinstance(refused, RuntimeError) and str(refused).startswith("NOAUTH"), refused
        wrong = conn.call("AUTH", "not-the-password")
        assert isinstance(wrong, RuntimeError) and "WRONGPASS" in str(wrong), wrong
        assert conn.call("AUTH", password) == "OK"
        assert conn.call("PING") == "PONG"
        key = f"tlstest{unique}:k"
        assert conn.call("SET", key, "v", "EX", "60") == "OK"
        assert conn.call("GET", key) == "v"
        conn.call("DEL", key)


def test_redis_tls_port_speaks_only_tls():
    u = urlparse(env_or_fail("REDIS_TLS_URL"))
    with socket.create_connection((u.hostname, u.port), timeout=5) as s:
        s.sendall(b"*1\r\n$4\r\nPING\r\n")
        try:
            reply = s.recv(64)
        except (ConnectionResetError, socket.timeout):
            reply = b""
        assert not reply.startswith((b"+PONG", b"-NOAUTH")), reply


def test_redis_tls_certificate_is_verified():
    u = urlparse(env_or_fail("REDIS_TLS_URL"))
    ctx = ssl.create_default_context()  # the system's roots only: our test CA is not among them
    with socket.create_connection((u.hostname, u.port), timeout=5) as raw:
        with pytest.raises(ssl.SSLCertVerificationError):
            ctx.wrap_socket(raw, server_hostname=u.hostname)


# --------------------------------------------------------------- postgres --


@pytest.mark.skipif(shutil.which("psql") is None, reason="psql not installed")
def test_postgres_tls_with_verify_full():
    url = env_or_fail("DATABASE_TLS_URL")
    assert "sslmode=verify-full" in url and "sslrootcert=" in url
    out = subprocess.run(
        ["psql", "-X", "-tA", url, "-c", "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()"],
        capture_output=True, text=True, timeout=30,
    )
    assert out.returncode == 0, out.stderr
    ssl_on, version = out.stdout.strip().split("|")
    assert ssl_on == "t" and version.startswith("TLSv1.")
