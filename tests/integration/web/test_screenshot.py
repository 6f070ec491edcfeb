"""web.screenshot with a real headless Chromium, real loopback page servers and the real bucket.

Every server here listens on 127.0.0.1; the forbidden destinations outside loopback
(169.254.169.254, 169.254.170.2, 10.0.0.1) are only ever *named* in URLs, and the tests prove that
nothing tries to connect to them: the action and its proxy refuse them before any socket connects.
"""

from __future__ import annotations

import logging
import re
import socket
import threading
from pathlib import Path
from typing import Any

import pytest

from feaas.actions.base import ActionCancelled, ActionContext, ActionFailed
from feaas.netpolicy import NetworkPolicy
from src.actions.web import chromium, screenshot
from src.actions.web.proxy import GuardedProxy
from src.actions.web.screenshot import Screenshot
from tests.support.scripts import NAMESPACE
from tests.support.webpages import (
    Listener,
    Page,
    PageServer,
    colour_page,
    processes_mentioning,
    read_png,
    redirect,
)

pytestmark = pytest.mark.skipif(chromium.find_chromium() is None,
                                reason="chromium is not installed (test_scripts/ensure_chromium.sh)")

ACTION = Screenshot()
BLUE = (0, 128, 255)
KEY = re.compile(re.escape(NAMESPACE) + r"screenshots/\d{4}-\d\d-\d\d-at-\d\d-\d\d-\d\d-[0-9a-f]{4}\.png")


def inputs(**given: Any) -> dict[str, Any]:
    """The action's inputs as the engine passes them: declared defaults, then what is given."""
    return {**{p.name: p.default for p in ACTION.inputs}, **given}


class Watch:
    """What the action did on the network side: proxies it started, browsers it launched, and
    every TCP connect this process attempted (the local stack is on loopback too)."""

    def __init__(self) -> None:
        self.proxies: list[GuardedProxy] = []
        self.captures = 0
        self.connects: list[Any] = []

    @property
    def upstream(self) -> list[tuple[str, int]]:
        return [pair for proxy in self.proxies for pair in proxy.upstream]

    @property
    def refusals(self) -> list[Any]:
        return [r for proxy in self.proxies for r in proxy.refusals]

    def non_loopback_connects(self) -> list[Any]:
        return [a for a in self.connects
                if isinstance(a, tuple) and not str(a[0]).startswith(("127.", "::1"))]


@pytest.fixture
def watch(monkeypatch) -> Watch:
    seen = Watch()

    class RecordingProxy(GuardedProxy):
        def start(self) -> int:
            seen.proxies.append(self)
            return super().start()

    real_capture = chromium.capture

    def counting_capture(*args: Any, **kwargs: Any) -> Any:
        seen.captures += 1
        return real_capture(*args, **kwargs)

    real_connect = socket.socket.connect

    def recording_connect(self: socket.socket, address: Any) -> Any:
        seen.connects.append(address)
        return real_connect(self, address)

    monkeypatch.setattr(screenshot, "GuardedProxy", RecordingProxy)
    monkeypatch.setattr(chromium, "capture", counting_capture)
    monkeypatch.setattr(socket.socket, "connect", recording_connect)
    return seen


@pytest.fixture
def ctx_for(action_ctx):  # type: ignore[no-untyped-def]
    """``ctx_for(server)``: a context over the real storage that lets exactly ``server`` through
    (the test-only setting); ``ctx_for()``: the default, which refuses every non-public address."""

    def make(server: PageServer | None = None, cancel: threading.Event | None = None) -> ActionContext:
        ctx: ActionContext = action_ctx(cancel=cancel)
        if server is not None:
            ctx.network = NetworkPolicy(allowed=frozenset({("127.0.0.1", server.port)}))
        return ctx

    return make


def assert_no_browser_left(ctx: ActionContext) -> None:
    assert processes_mentioning(str(ctx.tmp_dir)) == []
    assert list(ctx.tmp_dir.iterdir()) == []  # the profile and everything else is gone


# --------------------------------------------------------------------------------------------------
# A page renders
# --------------------------------------------------------------------------------------------------


def test_a_page_renders_to_a_png_of_the_requested_size_stored_under_the_key_rule(ctx_for, user_storage, dao,
                                                                                 watch):
    with PageServer({"/colour": colour_page(BLUE, "<p style='display:none'>hidden</p>")}) as server:
        ctx = ctx_for(server)
        out = ACTION.run(ctx, inputs(url=server.url("/colour"), width=320, height=200))
    key = out["dest_key"]
    assert KEY.fullmatch(key), key  # {hostname}/{username}/screenshots/{UTC …-at-…}-{4 hex}.png
    width, height, rows = read_png(user_storage.get_bytes(key))
    assert (width, height) == (320, 200)
    for x, y in ((0, 0), (319, 0), (160, 100), (0, 199), (319, 199)):
        assert rows[y][x] == BLUE, (x, y)
    head = dao.blobs.client.head_object(Bucket=dao.blobs.bucket, Key=key)
    assert head["ContentType"] == "image/png"
    assert head["Metadata"] == {"url": server.url("/colour")}
    assert server.requests[0] == "/colour"
    assert watch.upstream and set(watch.upstream) == {("127.0.0.1", server.port)}
    assert_no_browser_left(ctx)


def test_a_custom_prefix_gets_its_trailing_slash_and_the_default_size_applies(ctx_for, user_storage, watch):
    with PageServer({"/": colour_page((255, 0, 0))}) as server:
        out = ACTION.run(ctx_for(server),
                         inputs(url=server.url("/"), dest_prefix="{hostname}/{username}/shots"))
    assert out["dest_key"].startswith(NAMESPACE + "shots/") and out["dest_key"].count("/") == 3
    width, height, rows = read_png(user_storage.get_bytes(out["dest_key"]))
    assert (width, height) == (1200, 800) and rows[400][600] == (255, 0, 0)


def test_a_bare_host_is_fetched_over_https(ctx_for, watch):
    # the server speaks plain HTTP, so TLS fails
    with PageServer({"/": colour_page(BLUE)}) as server, pytest.raises(ActionFailed) as err:
        ACTION.run(ctx_for(server), inputs(url=f"127.0.0.1:{server.port}/", timeout_s=20))
    assert f"(https://127.0.0.1:{server.port}/)" in str(err.value)
    assert str(err.value).startswith("page could not be loaded: net::ERR_")
    assert server.first_bytes and server.first_bytes[0][:1] == b"\x16"  # a TLS handshake arrived
    assert "Traceback" not in str(err.value)


@pytest.mark.parametrize("name, value, message", [
    ("width", 50, "width must be between 51 and 1919 pixels, got 50"),
    ("width", 1920, "width must be between 51 and 1919 pixels, got 1920"),
    ("height", 50, "height must be between 51 and 1079 pixels, got 50"),
    ("height", 5000, "height must be between 51 and 1079 pixels, got 5000"),
    ("timeout_s", 0, "timeout_s must be between 1 and 120 seconds, got 0"),
])
def test_viewport_and_timeout_limits_are_enforced_before_anything_starts(ctx_for, watch, name, value,
                                                                         message):
    with PageServer({"/": colour_page(BLUE)}) as server, pytest.raises(ActionFailed, match=f"^{message}$"):
        ACTION.run(ctx_for(server), inputs(url=server.url("/"), **{name: value}))
    assert server.connections == 0 and watch.captures == 0 and watch.proxies == []


# --------------------------------------------------------------------------------------------------
# Refused destinations receive nothing
# --------------------------------------------------------------------------------------------------


def test_by_default_the_loopback_test_server_is_refused_and_receives_nothing(ctx_for, watch):
    with PageServer({"/": colour_page(BLUE)}) as server, pytest.raises(ActionFailed) as err:
        ACTION.run(ctx_for(), inputs(url=server.url("/")))
    assert str(err.value) == "destination not allowed: 127.0.0.1 (127.0.0.1, loopback)"
    assert server.connections == 0
    assert watch.captures == 0 and watch.proxies == []  # refused before Chromium or the proxy started


@pytest.mark.parametrize("url, message", [
    ("http://169.254.169.254/latest/meta-data/",
     "destination not allowed: 169.254.169.254 (169.254.169.254, link-local)"),
    ("169.254.170.2/v2/credentials", "destination not allowed: 169.254.170.2 (169.254.170.2, link-local)"),
    ("http://10.0.0.1/", "destination not allowed: 10.0.0.1 (10.0.0.1, private)"),
    ("http://[fe80::1]/", "destination not allowed: fe80::1 (fe80::1, link-local)"),
    ("http://0.0.0.0:8080/", "destination not allowed: 0.0.0.0 (0.0.0.0, unspecified)"),
    ("http://100.100.1.1/",
     "destination not allowed: 100.100.1.1 (100.100.1.1, shared address space (CGNAT))"),
])
def test_metadata_credentials_and_private_addresses_are_refused_before_any_connect(ctx_for, watch, url,
                                                                                   message):
    # even with the test server allowed
    with PageServer({"/": colour_page(BLUE)}) as allowed, pytest.raises(ActionFailed) as err:
        ACTION.run(ctx_for(allowed), inputs(url=url))
    assert str(err.value) == message
    assert watch.captures == 0 and watch.proxies == []
    assert watch.non_loopback_connects() == []  # no socket in this process tried to reach it


# --------------------------------------------------------------------------------------------------
# Redirects and sub-resources go through the proxy, which refuses them too
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("target, says", [
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 (169.254.169.254, link-local)"),
    ("http://10.0.0.1/admin", "10.0.0.1 (10.0.0.1, private)"),
    ("forbidden-http", "127.0.0.1 (127.0.0.1, loopback)"),
    ("forbidden-https", "127.0.0.1 (127.0.0.1, loopback)"),
])
def test_a_redirect_to_a_forbidden_address_fails_and_the_address_receives_nothing(ctx_for, watch, target,
                                                                                  says):
    with Listener() as forbidden, PageServer() as server:
        location = {"forbidden-http": forbidden.url("/x"),
                    "forbidden-https": forbidden.url("/x", scheme="https")}.get(target, target)
        server.pages["/go"] = redirect(location)
        with pytest.raises(ActionFailed) as err:
            ACTION.run(ctx_for(server), inputs(url=server.url("/go"), timeout_s=20))
    assert str(err.value) == f"destination not allowed: {says} (the page redirected there)"
    assert server.requests[0] == "/go"
    assert forbidden.connections == 0
    assert set(watch.upstream) == {("127.0.0.1", server.port)}  # the proxy connected nowhere else
    assert watch.non_loopback_connects() == []


def test_forbidden_sub_resources_are_left_out_and_logged_and_the_page_is_still_captured(
        ctx_for, watch, caplog, user_storage):
    with Listener() as forbidden, PageServer() as server:
        hidden = "style='position:absolute;left:-900px;width:10px;height:10px'"
        server.pages["/"] = colour_page(BLUE, (
            f"<img {hidden} src='{forbidden.url('/pixel.png')}'>"
            f"<img {hidden} src='{forbidden.url('/tls.png', scheme='https')}'>"
            f"<script src='{forbidden.url('/app.js')}'></script>"
            f"<link rel='stylesheet' href='http://10.0.0.1/site.css'>"
            f"<iframe {hidden} src='http://169.254.169.254/latest/meta-data/'></iframe>"
            "<script>var x = new XMLHttpRequest();"
            "x.open('GET', 'http://169.254.170.2/v2/credentials', false);"  # synchronous: before load
            "try { x.send(); } catch (e) {}</script>"))
        with caplog.at_level(logging.INFO):
            out = ACTION.run(ctx_for(server),
                             inputs(url=server.url("/"), width=400, height=300, timeout_s=20))
    width, height, rows = read_png(user_storage.get_bytes(out["dest_key"]))
    assert (width, height) == (400, 300) and rows[150][200] == BLUE
    assert forbidden.connections == 0
    assert set(watch.upstream) == {("127.0.0.1", server.port)}
    assert watch.non_loopback_connects() == []
    refused = {(r.host, r.port, r.why) for r in watch.refusals}
    assert {("127.0.0.1", forbidden.port, "loopback"), ("10.0.0.1", 80, "private"),
            ("169.254.169.254", 80, "link-local"), ("169.254.170.2", 80, "link-local")} <= refused
    logged = [r for r in caplog.records if r.getMessage() == "screenshot_request_refused"]
    assert {(r.fields["host"], r.fields["why"]) for r in logged} >= {("10.0.0.1", "private"),  # type: ignore[attr-defined]
                                                                   ("169.254.170.2", "link-local")}


# --------------------------------------------------------------------------------------------------
# Time limit and cancellation: the browser is always gone afterwards
# --------------------------------------------------------------------------------------------------


def test_a_page_that_never_finishes_loading_fails_and_leaves_no_browser(ctx_for, watch):
    with PageServer({"/slow": Page(b"<html><body>still loading", hang=True)}) as server:
        ctx = ctx_for(server)
        with pytest.raises(ActionFailed) as err:
            ACTION.run(ctx, inputs(url=server.url("/slow"), timeout_s=5))
    assert str(err.value) == "page did not load within 5 s"
    assert_no_browser_left(ctx)


def test_cancelling_the_job_stops_the_browser(ctx_for, watch):
    cancel = threading.Event()
    with PageServer({"/slow": Page(b"<html><body>still loading", hang=True)}) as server:
        server.on_request = lambda path: cancel.set()  # the job is cancelled while the page loads
        ctx = ctx_for(server, cancel=cancel)
        with pytest.raises(ActionCancelled):
            ACTION.run(ctx, inputs(url=server.url("/slow"), timeout_s=60))
    assert_no_browser_left(ctx)


def test_a_missing_browser_is_a_clear_failure(ctx_for, watch, monkeypatch):
    monkeypatch.setattr(chromium, "find_chromium", lambda: None)
    with PageServer({"/": colour_page(BLUE)}) as server, \
            pytest.raises(ActionFailed, match=r"^chromium is not installed on this worker$"):
        ACTION.run(ctx_for(server), inputs(url=server.url("/")))
    assert server.connections == 0


def test_the_browser_gets_the_minimal_environment(ctx_for, watch, monkeypatch, tmp_path: Path):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "do-not-pass-me")
    monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/x")
    seen: list[dict[str, str]] = []
    real_spawn = chromium.os.posix_spawn

    def spy(path: str, argv: list[str], env: dict[str, str], **kwargs: Any) -> int:
        seen.append(dict(env))
        return real_spawn(path, argv, env, **kwargs)

    monkeypatch.setattr(chromium.os, "posix_spawn", spy)
    with PageServer({"/": colour_page(BLUE)}) as server:
        ACTION.run(ctx_for(server), inputs(url=server.url("/"), width=100, height=100))
    assert len(seen) == 1 and set(seen[0]) == {"PATH", "HOME", "TMPDIR", "LANG", "LC_ALL"}
