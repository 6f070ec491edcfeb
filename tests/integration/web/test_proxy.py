"""The guarded proxy on its own, with real loopback sockets (no browser): what it refuses never
gets a connection, and what it allows goes to the address it vetted, resolved once."""

from __future__ import annotations

import http.client
import socket

import pytest

from feaas.netpolicy import HostNotFound, NetworkPolicy
from src.actions.web.proxy import GuardedProxy
from tests.support.webpages import Listener, Page, PageServer


def resolver(table: dict[str, list[str]]):
    calls: list[str] = []

    def resolve(host: str, port: int) -> list[str]:
        calls.append(host)
        if host not in table:
            raise HostNotFound(host)
        return table[host]

    resolve.calls = calls  # type: ignore[attr-defined]
    return resolve


def get_through(proxy: GuardedProxy, url: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
    try:
        conn.request("GET", url)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def connect_through(proxy: GuardedProxy, authority: str) -> tuple[bytes, socket.socket]:
    sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
    sock.sendall(f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            break
        head += chunk
    return head, sock


def test_a_forbidden_destination_is_answered_403_and_never_connected():
    with Listener() as forbidden, GuardedProxy(NetworkPolicy()) as proxy:
        status, body = get_through(proxy, forbidden.url("/secret"))
        head, sock = connect_through(proxy, f"127.0.0.1:{forbidden.port}")
        sock.close()
        status_meta, body_meta = get_through(proxy, "http://169.254.169.254/latest/meta-data/")
    assert status == 403 and b"destination not allowed: 127.0.0.1 (127.0.0.1, loopback)" in body
    assert head.startswith(b"HTTP/1.1 403")
    assert status_meta == 403 and b"169.254.169.254 (169.254.169.254, link-local)" in body_meta
    assert forbidden.connections == 0
    assert proxy.upstream == []  # not one connection was even attempted
    assert [(r.host, r.why) for r in proxy.refusals] == [
        ("127.0.0.1", "loopback"), ("127.0.0.1", "loopback"), ("169.254.169.254", "link-local")]


def test_an_allowed_name_is_resolved_once_and_reached_at_the_vetted_address():
    with PageServer({"/": Page(b"hello")}) as server:
        resolve = resolver({"site.test": ["127.0.0.1"]})
        policy = NetworkPolicy(allowed=frozenset({("127.0.0.1", server.port)}), resolver=resolve)
        with GuardedProxy(policy) as proxy:
            status, body = get_through(proxy, f"http://site.test:{server.port}/")
    assert (status, body) == (200, b"hello")
    assert resolve.calls == ["site.test"]  # type: ignore[attr-defined]
    assert proxy.upstream == [("127.0.0.1", server.port)]
    assert server.hosts == [f"site.test:{server.port}"]  # the page still sees its own name


def test_a_name_with_one_forbidden_address_among_public_ones_is_refused():
    with PageServer({"/": Page(b"hello")}) as server:
        resolve = resolver({"rebind.test": ["127.0.0.1", "169.254.169.254"]})
        policy = NetworkPolicy(allowed=frozenset({("127.0.0.1", server.port)}), resolver=resolve)
        with GuardedProxy(policy) as proxy:
            status, body = get_through(proxy, f"http://rebind.test:{server.port}/")
            head, sock = connect_through(proxy, f"rebind.test:{server.port}")
            sock.close()
    assert status == 403 and b"rebind.test (169.254.169.254, link-local)" in body
    assert head.startswith(b"HTTP/1.1 403")
    assert server.connections == 0 and proxy.upstream == []


def test_an_allowed_tunnel_carries_bytes_both_ways():
    with PageServer({"/t": Page(b"through the tunnel")}) as server:
        policy = NetworkPolicy(allowed=frozenset({("127.0.0.1", server.port)}))
        with GuardedProxy(policy) as proxy:
            head, sock = connect_through(proxy, server.origin)
            with sock:
                sock.sendall(f"GET /t HTTP/1.1\r\nHost: {server.origin}\r\n"
                             "Connection: close\r\n\r\n".encode())
                reply = b""
                while chunk := sock.recv(4096):
                    reply += chunk
    assert head.startswith(b"HTTP/1.1 200")
    assert reply.startswith(b"HTTP/1.1 200") and reply.endswith(b"through the tunnel")


@pytest.mark.parametrize("request_line", [b"GET /relative HTTP/1.1", b"GET ftp://example.com/ HTTP/1.1",
                                          b"CONNECT nohost HTTP/1.1"])
def test_requests_that_are_not_proxy_requests_are_refused(request_line):
    with GuardedProxy(NetworkPolicy()) as proxy, \
            socket.create_connection(("127.0.0.1", proxy.port), 10) as sock:
        sock.sendall(request_line + b"\r\nHost: x\r\n\r\n")
        reply = sock.recv(4096)
    assert reply.startswith(b"HTTP/1.1 400")
    assert proxy.upstream == []
