"""Endpoint helpers: which addresses stay on this machine, CLI lists, private ipc:// directories."""

from __future__ import annotations

import pytest

from transport import endpoints
from transport.endpoints import Endpoints, is_loopback, split_list


@pytest.mark.parametrize(("endpoint", "expected"), [
    ("ipc:///tmp/run/ticks.sock", True),
    ("inproc://ticks", True),
    ("tcp://127.0.0.1:5555", True),
    ("tcp://127.4.5.6:5555", True),
    ("tcp://localhost:5555", True),
    ("tcp://LOCALHOST:5555", True),
    ("tcp://[::1]:5555", True),
    ("http://127.0.0.1:8080", True),
    ("http://localhost:8080/path", True),
    ("tcp://0.0.0.0:5555", False),
    ("tcp://*:5555", False),
    ("tcp://[::]:5555", False),
    ("tcp://10.0.0.7:5555", False),
    ("tcp://192.168.1.2:5555", False),
    ("tcp://example.com:5555", False),
    ("tcp://localhost.example.com:5555", False),
    ("tcp://eth0:5555", False),
    ("http://[2001:db8::1]:8080", False),
    ("", False),
    ("garbage", False),
])
def test_is_loopback(endpoint: str, expected: bool) -> None:
    assert is_loopback(endpoint) is expected


def test_defaults_are_loopback() -> None:
    defaults = Endpoints()
    assert defaults.data == (endpoints.DEFAULT_DATA,)
    for endpoint in (defaults.ticks, *defaults.data, defaults.heartbeat, defaults.api_url):
        assert is_loopback(endpoint), endpoint


@pytest.mark.parametrize(("value", "expected"), [
    ("a", ("a",)),
    ("a,b", ("a", "b")),
    (" a , b ", ("a", "b")),
    ("a,,b,", ("a", "b")),
    ("", ()),
    (" , ,", ()),
    ("tcp://127.0.0.1:1, ipc:///tmp/x.sock", ("tcp://127.0.0.1:1", "ipc:///tmp/x.sock")),
])
def test_split_list(value: str, expected: tuple[str, ...]) -> None:
    assert split_list(value) == expected


def test_in_directory_gives_private_ipc_endpoints() -> None:
    e = Endpoints.in_directory("/tmp/run-1", api_port=8123, data_managers=3)
    assert e.ticks == "ipc:///tmp/run-1/ticks.sock"
    assert e.data == tuple(f"ipc:///tmp/run-1/data-{i}.sock" for i in range(3))
    assert e.heartbeat == "ipc:///tmp/run-1/heartbeat.sock"
    assert e.api_url == "http://127.0.0.1:8123"
    assert all(is_loopback(x) for x in (e.ticks, *e.data, e.heartbeat, e.api_url))
    endpoints_used = [e.ticks, *e.data, e.heartbeat]
    assert len(set(endpoints_used)) == len(endpoints_used)


def test_in_directory_defaults_to_one_data_manager_and_differs_per_directory() -> None:
    a = Endpoints.in_directory("/tmp/a", api_port=1)
    b = Endpoints.in_directory("/tmp/b", api_port=1)
    assert len(a.data) == 1
    assert {a.ticks, *a.data, a.heartbeat}.isdisjoint({b.ticks, *b.data, b.heartbeat})
