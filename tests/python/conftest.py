"""Shared pytest helpers for the Python tests. They run against the local services that
deploy/local/services.sh starts, with its venv and environment:

    eval "$(deploy/local/services.sh env)"
    "$CHAOS_VENV/bin/python" -m pytest -q tests/python
"""

from __future__ import annotations

import os
import time
import uuid

import pytest


def env_or_fail(name: str) -> str:
    """The value of environment variable `name`; fails the test with a hint when it is unset."""
    value = os.environ.get(name, "").strip()
    if not value:
        pytest.fail(f'{name} is not set: run eval "$(deploy/local/services.sh env)" first', pytrace=False)
    return value


def wait_until(predicate, timeout: float, what: str, interval: float = 0.05):
    """Poll `predicate` until it returns a truthy value; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


@pytest.fixture
def unique() -> str:
    """A short name part unique to this test run (reruns against the same services pass)."""
    return uuid.uuid4().hex[:12]
