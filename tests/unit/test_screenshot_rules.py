"""web.screenshot's pure rules: which addresses are refused, URL handling, the key rule, the setting."""

from __future__ import annotations

import ipaddress
import re

import pytest

from feaas.actions.base import ActionFailed
from feaas.actions.legacy import LegacyAction
from feaas.errors import ConfigError
from feaas.netpolicy import (
    DestinationRefused,
    HostNotFound,
    NetworkPolicy,
    forbidden_reason,
    parse_allow_list,
)
from feaas.objects import ParameterType as PT
from feaas.settings import load_settings
from src.actions import default_registry
from src.actions.web.chromium import chromium_args
from src.actions.web.screenshot import normalise_url, png_size, resolve_prefix, screenshot_key

NAMESPACE = "plus_example_com/alice@example.com/"


@pytest.mark.parametrize("address, why", [
    ("127.0.0.1", "loopback"), ("127.8.9.10", "loopback"), ("::1", "loopback"),
    ("169.254.169.254", "link-local"), ("169.254.170.2", "link-local"), ("fe80::1", "link-local"),
    ("10.0.0.1", "private"), ("172.16.5.4", "private"), ("172.31.255.255", "private"),
    ("192.168.1.1", "private"), ("fc00::1", "private"), ("fd12:3456::1", "private"),
    ("100.64.0.1", "shared address space (CGNAT)"), ("100.127.255.254", "shared address space (CGNAT)"),
    ("0.0.0.0", "unspecified"), ("::", "unspecified"),
    ("224.0.0.1", "multicast"), ("ff02::1", "multicast"),
    ("240.0.0.1", "reserved"), ("255.255.255.255", "reserved"),
    ("::ffff:169.254.169.254", "link-local"), ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
    ("2002:a9fe:a9fe::1", "link-local"),  # 6to4 around 169.254.169.254
    ("64:ff9b::a9fe:a9fe", "link-local"), ("64:ff9b::a00:1", "private"),  # NAT64
    ("198.18.0.1", "private"), ("192.0.2.10", "private"),  # benchmarking, documentation
])
def test_non_public_addresses_are_refused_with_the_reason(address, why):
    assert forbidden_reason(ipaddress.ip_address(address)) == why


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "172.32.0.1", "100.128.0.1",
                                     "2606:4700::6810:85e5", "64:ff9b::808:808"])
def test_public_addresses_pass(address):
    assert forbidden_reason(ipaddress.ip_address(address)) is None


def fake_resolver(table):
    calls = []

    def resolve(host, port):
        calls.append((host, port))
        if host not in table:
            raise HostNotFound(host)
        return table[host]

    resolve.calls = calls  # type: ignore[attr-defined]
    return resolve


def test_a_host_is_refused_when_any_of_its_addresses_is_forbidden():
    resolver = fake_resolver({"mixed.example": ["93.184.216.34", "169.254.169.254"],
                              "public.example": ["93.184.216.34", "2606:4700::6810:85e5"]})
    policy = NetworkPolicy(resolver=resolver)
    with pytest.raises(DestinationRefused) as err:
        policy.vet("mixed.example", 443)
    assert str(err.value) == "destination not allowed: mixed.example (169.254.169.254, link-local)"
    assert policy.vet("public.example", 443) == ["93.184.216.34", "2606:4700::6810:85e5"]
    with pytest.raises(HostNotFound, match=r"host not found: nowhere\.example"):
        policy.vet("nowhere.example", 80)


def test_ip_literals_are_never_resolved_and_only_exact_allowed_pairs_pass():
    resolver = fake_resolver({})
    policy = NetworkPolicy(allowed=frozenset({("127.0.0.1", 8080)}), resolver=resolver)
    assert policy.vet("127.0.0.1", 8080) == ["127.0.0.1"]
    with pytest.raises(DestinationRefused, match=r"127\.0\.0\.1 \(127\.0\.0\.1, loopback\)"):
        policy.vet("127.0.0.1", 8081)  # another port of the same address
    with pytest.raises(DestinationRefused, match="link-local"):
        policy.vet("[::ffff:a9fe:a9fe]", 80)
    assert resolver.calls == []  # type: ignore[attr-defined]


@pytest.mark.parametrize("host", ["2130706433", "0x7f.0.0.1", "0177.0.0.1", "127.1", "localhost"])
def test_other_spellings_of_loopback_are_resolved_and_refused(host):
    # numeric forms are parsed by the C library (no DNS query); localhost comes from /etc/hosts
    with pytest.raises(DestinationRefused, match=r", loopback\)$"):  # localhost may be ::1 first
        NetworkPolicy().vet(host, 80)


def test_by_default_nothing_but_public_addresses_passes():
    policy = NetworkPolicy()
    assert policy.allowed == frozenset()
    for host in ("127.0.0.1", "169.254.169.254", "169.254.170.2", "10.0.0.1", "0.0.0.0", "[::1]"):
        with pytest.raises(DestinationRefused):
            policy.vet(host, 80)


def test_the_allow_list_takes_only_loopback_ip_and_port():
    assert parse_allow_list("") == frozenset()
    assert parse_allow_list("127.0.0.1:8080, [::1]:9000") == {("127.0.0.1", 8080), ("::1", 9000)}
    for bad in ("169.254.169.254:80", "10.0.0.1:80", "0.0.0.0:80", "localhost:80", "127.0.0.1", "127.0.0.1:0",
                "127.0.0.1:99999", "example.com:443"):
        with pytest.raises(ValueError):
            parse_allow_list(bad)


def test_the_setting_is_read_once_and_refuses_non_loopback_entries():
    base = {"RUN_MODE": "RUN_ACTION", "ACTION_ID": "web.screenshot", "JOB_ID": "h/u/job.1", "USERNAME": "u",
            "REGION": "r", "DYNAMO_TABLE": "t", "DYNAMO_STREAMS_TABLE": "s", "PRIMARY_BUCKET": "b"}
    assert load_settings(base).screenshot_allowed == frozenset()
    assert load_settings({**base, "SCREENSHOT_ALLOW_HOSTS": "127.0.0.1:4321"}).screenshot_allowed == {
        ("127.0.0.1", 4321)}
    with pytest.raises(ConfigError) as err:
        load_settings({**base, "SCREENSHOT_ALLOW_HOSTS": "169.254.169.254:80"})
    assert "SCREENSHOT_ALLOW_HOSTS" in str(err.value) and "169.254" not in str(err.value)


@pytest.mark.parametrize("given, expected", [
    ("example.com", "https://example.com/"),
    ("example.com/a/b?q=1#top", "https://example.com/a/b?q=1#top"),
    ("localhost:8080/x", "https://localhost:8080/x"),
    ("//example.com/p", "https://example.com/p"),
    # the upstream worker kept only 'page.html' of a deep path
    ("http://example.com/deep/path/page.html", "http://example.com/deep/path/page.html"),
    ("HTTPS://Example.COM:8443/Path", "https://example.com:8443/Path"),
    ("  https://example.com  ", "https://example.com/"),
    ("https://bücher.example/straße", "https://xn--bcher-kva.example/stra%C3%9Fe"),
    ("https://[2606:4700::1]:8443/", "https://[2606:4700::1]:8443/"),
    ("https://example.com/a b", "https://example.com/a%20b"),
])
def test_urls_are_kept_and_a_bare_host_gets_https(given, expected):
    assert normalise_url(given) == expected


@pytest.mark.parametrize("given, message", [
    ("", "missing input: url"),
    ("file:///etc/passwd", "url scheme 'file' is not allowed"),
    ("data:text/html,<h1>x</h1>", "url scheme 'data' is not allowed"),
    ("javascript:alert(1)", "url scheme 'javascript' is not allowed"),
    ("chrome://settings", "url scheme 'chrome' is not allowed"),
    ("ftp://example.com/f", "url scheme 'ftp' is not allowed"),
    ("ws://example.com/socket", "url scheme 'ws' is not allowed"),
    ("view-source:https://example.com", "url scheme 'view-source' is not allowed"),
    ("http://", "url has no host"),
    ("https://user:pw@example.com/", "must not contain a user name or password"),
    ("https://example.com:99999/", "url is not valid"),
    ("https://example.com/\nx", "control characters"),
    ("https://example.com/" + "a" * 2000, "url is too long"),
])
def test_bad_urls_fail_clearly(given, message):
    with pytest.raises(ActionFailed, match=re.escape(message)):
        normalise_url(given)


def test_dest_prefix_placeholders_are_expanded_and_the_namespace_is_enforced():
    assert resolve_prefix("{hostname}/{username}/screenshots/", NAMESPACE) == NAMESPACE + "screenshots/"
    assert resolve_prefix("", NAMESPACE) == NAMESPACE + "screenshots/"  # the declared default
    assert resolve_prefix(NAMESPACE + "shots", NAMESPACE) == NAMESPACE + "shots/"  # trailing / ensured
    for bad in ("screenshots/", "other_host/bob@example.com/x/", "{hostname}/{username}/../../bob/"):
        with pytest.raises(ActionFailed, match=r"dest_prefix: .*outside your namespace"):
            resolve_prefix(bad, NAMESPACE)


def test_the_key_follows_the_legacy_rule():
    key = screenshot_key(NAMESPACE + "screenshots/", now=1_700_000_000)
    assert re.fullmatch(re.escape(NAMESPACE) + r"screenshots/2023-11-14-at-22-13-20-[0-9a-f]{4}\.png", key)


def test_png_size_reads_the_header():
    size = (640).to_bytes(4, "big") + (480).to_bytes(4, "big")
    header = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + size
    assert png_size(header + b"\x08\x02\x00\x00\x00") == (640, 480)
    assert png_size(b"GIF89a...") is None


def test_chromium_is_confined_to_the_proxy(tmp_path):
    args = chromium_args("/usr/lib/chromium/chromium", width=800, height=600, profile_dir=tmp_path,
                         proxy_port=4321)
    for switch in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                   "--disable-background-networking", "--disable-component-update", "--disable-sync",
                   "--hide-scrollbars", "--window-size=800,600", f"--user-data-dir={tmp_path}",
                   "--proxy-server=http://127.0.0.1:4321", "--proxy-bypass-list=<-loopback>",
                   "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
                   "--force-webrtc-ip-handling-policy=disable_non_proxied_udp", "--remote-debugging-pipe"):
        assert switch in args
    assert not any(a.startswith(("--remote-debugging-port", "--proxy-bypass-list=*")) for a in args)


def test_the_action_is_registered_under_its_legacy_ids_with_the_declared_defaults():
    registry = default_registry()
    action = registry.get("web.screenshot")
    defaults = {p.name: p.default for p in action.inputs}
    assert defaults == {"url": None, "width": 1200, "height": 800,
                        "dest_prefix": "{hostname}/{username}/screenshots/", "timeout_s": 30}
    assert [p.name for p in action.outputs] == ["dest_key"]
    legacy = registry.get("web.screenshot.Screenshot")  # upstream's interface: the same action behind it
    assert isinstance(legacy, LegacyAction) and legacy.target is action
    assert registry.get("src.actions.web.screenshot.Screenshot") is legacy
    assert {p.name: p.default for p in legacy.inputs} == {k: v for k, v in defaults.items()
                                                          if k != "timeout_s"}
    assert [(p.name, p.ptype) for p in legacy.outputs] == [("dest_key", PT.KEY)]
