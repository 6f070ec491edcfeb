"""Headless Chromium for ``web.screenshot``: start it, drive it over DevTools, always stop it.

Chromium (Debian's ``chromium`` package, installed by ``test_scripts/ensure_chromium.sh`` and the
image) runs as a child process started from an argument list (never a shell) with:

* the minimal environment of :func:`feaas.actions.childenv.child_env` and a fresh profile in the
  action's work directory;
* the action's guarded proxy as its only way out (``--proxy-server``, loopback not bypassed, its
  own DNS disabled, QUIC off, WebRTC limited to proxied connections);
* the DevTools protocol on a pipe (``--remote-debugging-pipe``: the browser reads commands on fd 3
  and writes replies on fd 4, NUL-separated JSON) instead of a debugging port any local process
  could open — and the standard library has no WebSocket client;
* its own session (process group), so the whole tree of browser, zygote and renderer processes
  is killed at the end, on timeout and on cancellation.

:func:`capture` navigates, waits for the ``load`` event (then briefly for the network to go
idle), and captures the viewport as PNG.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import logging
import os
import queue
import shutil
import signal
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from feaas.actions.childenv import child_env, find_executable
from feaas.logs import event

logger = logging.getLogger(__name__)

#: Debian's browser binary behind its ``/usr/bin/chromium`` launcher script (which would source
#: /etc/chromium.d and add flags of its own); the launcher names are the fallback.
CHROMIUM_CANDIDATES = ("/usr/lib/chromium/chromium", "chromium", "chromium-browser")
#: After ``load``, how long to wait for the network to go idle before capturing anyway.
IDLE_WAIT_S = 5.0
#: Time the capture itself may take once the page has loaded.
CAPTURE_TIMEOUT_S = 20.0
#: Time Chromium gets to exit after ``Browser.close`` before its process group is killed.
CLOSE_GRACE_S = 2.0
_POLL_S = 0.1


class BrowserError(Exception):
    """Chromium could not be started or stopped answering (the message is for the user)."""


class PageTimeout(Exception):
    """The page did not load before the deadline."""


class BrowserStopped(Exception):
    """The stop event was set (job cancelled or interrupted)."""


@dataclass
class NavigationFailed(Exception):
    """The main document could not be loaded: ``url`` is the last URL of its redirect chain."""

    url: str
    error: str

    def __str__(self) -> str:
        return f"{self.error} loading {self.url}"


@dataclass
class Capture:
    png: bytes
    url: str  #: the main document's URL after redirects
    status: int | None  #: its HTTP status (None when unknown)
    idle: bool  #: whether the network went idle before the capture


def find_chromium() -> str | None:
    for name in CHROMIUM_CANDIDATES:
        if os.path.isabs(name):
            if os.access(name, os.X_OK):
                return name
        elif (path := find_executable(name)) is not None:
            return path
    return None


def chromium_args(executable: str, *, width: int, height: int, profile_dir: Path,
                  proxy_port: int) -> list[str]:
    """The whole command line. Every switch that matters for safety is here and tested."""
    return [
        executable,
        "--headless",
        "--no-sandbox",  # the container runs as an unprivileged user without user namespaces
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--disable-default-apps",
        "--disable-breakpad",
        "--disable-domain-reliability",
        "--disable-client-side-phishing-detection",
        "--disable-component-extensions-with-background-pages",
        ("--disable-features=Translate,MediaRouter,OptimizationHints,OptimizationGuideModelDownloading,"
         "AutofillServerCommunication,InterestFeedContentSuggestions,CertificateTransparencyComponentUpdater"),
        "--metrics-recording-only",
        "--password-store=basic",
        "--use-mock-keychain",
        "--force-color-profile=srgb",  # colours as the page states them
        "--disable-dev-shm-usage",  # /dev/shm is 64 MB in a container
        "--mute-audio",
        "--hide-scrollbars",
        f"--window-size={width},{height}",
        f"--user-data-dir={profile_dir}",
        f"--proxy-server=http://127.0.0.1:{proxy_port}",
        "--proxy-bypass-list=<-loopback>",  # localhost goes through the proxy too
        # Chromium resolves no name itself: every name is the proxy's to resolve and vet.
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
        "--remote-debugging-pipe",
        "about:blank",
    ]


# ---------------------------------------------------------------------------------------------
# The process
# ---------------------------------------------------------------------------------------------


def _high_fd(fd: int) -> int:
    """``fd`` moved above the descriptors the child's file actions write (0–4), close-on-exec."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return moved


class _Process:
    """Chromium in its own session with the DevTools pipe on fds 3 (commands) and 4 (replies).

    ``os.posix_spawn`` places the pipe ends at fixed descriptor numbers without running Python
    code in the child (``subprocess``'s ``preexec_fn`` is unsafe in a threaded worker).
    """

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        commands_r, commands_w = (_high_fd(fd) for fd in os.pipe())
        replies_r, replies_w = (_high_fd(fd) for fd in os.pipe())
        log_fd = _high_fd(os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
        null_fd = _high_fd(os.open(os.devnull, os.O_RDONLY))
        try:
            self.pid = os.posix_spawn(
                args[0], args, env,
                file_actions=[(os.POSIX_SPAWN_DUP2, null_fd, 0), (os.POSIX_SPAWN_DUP2, log_fd, 1),
                              (os.POSIX_SPAWN_DUP2, log_fd, 2), (os.POSIX_SPAWN_DUP2, commands_r, 3),
                              (os.POSIX_SPAWN_DUP2, replies_w, 4)],
                setsid=True, setsigmask=(), setsigdef=(signal.SIGPIPE, signal.SIGXFSZ),
            )
        except OSError:
            for fd in (commands_w, replies_r):
                os.close(fd)
            raise
        finally:
            for fd in (commands_r, replies_w, log_fd, null_fd):
                os.close(fd)
        self.commands_fd, self.replies_fd = commands_w, replies_r
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout_s: float) -> int | None:
        end = time.monotonic() + timeout_s
        while self.poll() is None and time.monotonic() < end:
            time.sleep(0.02)
        return self.returncode

    def kill_group(self) -> None:
        """SIGKILL the browser's whole session (browser, zygote, renderers, utilities) and reap it."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        if self.returncode is None:
            _, status = os.waitpid(self.pid, 0)
            self.returncode = os.waitstatus_to_exitcode(status)

    def close_pipes(self, *, replies_too: bool) -> None:
        """Close our pipe ends; the replies end only once its reader has stopped reading it (closing
        a descriptor another thread still reads could hand its number to an unrelated file)."""
        for fd in (self.commands_fd, self.replies_fd) if replies_too else (self.commands_fd,):
            with contextlib.suppress(OSError):
                os.close(fd)


# ---------------------------------------------------------------------------------------------
# DevTools over the pipe
# ---------------------------------------------------------------------------------------------


class _Deadline(Exception):
    pass


class _Closed(Exception):
    pass


class DevToolsError(Exception):
    """A DevTools command answered with an error."""


@dataclass
class _DevTools:
    """Commands and events on the browser's pipe. One reader thread fills a queue; the action's
    thread sends commands and consumes replies and events."""

    commands_fd: int
    replies_fd: int
    stopped: Callable[[], bool]
    _inbox: queue.Queue[dict[str, Any] | None] = field(default_factory=queue.Queue)
    _events: deque[dict[str, Any]] = field(default_factory=deque)
    _next_id: int = 0
    _closed: bool = False

    def __post_init__(self) -> None:
        self._reader = threading.Thread(target=self._read, name="chromium-devtools", daemon=True)
        self._reader.start()

    def reader_done(self, timeout_s: float) -> bool:
        """Whether the reader saw the end of the pipe (every browser process is gone) in time."""
        self._reader.join(timeout_s)
        return not self._reader.is_alive()

    def _read(self) -> None:
        buffer = b""
        try:
            while True:
                chunk = os.read(self.replies_fd, 1 << 20)
                if not chunk:
                    break
                buffer += chunk
                *messages, buffer = buffer.split(b"\0")
                for raw in messages:
                    with contextlib.suppress(ValueError):
                        self._inbox.put(json.loads(raw))
        except OSError:
            pass
        finally:
            self._inbox.put(None)

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> int:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        data = json.dumps(message).encode("utf-8") + b"\0"
        try:
            while data:
                data = data[os.write(self.commands_fd, data):]
        except OSError as exc:
            raise _Closed() from exc
        return self._next_id

    def _receive(self, deadline: float) -> dict[str, Any]:
        while True:
            if self.stopped():
                raise BrowserStopped()
            if self._closed:
                raise _Closed()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _Deadline()
            try:
                message = self._inbox.get(timeout=min(_POLL_S, remaining))
            except queue.Empty:
                continue
            if message is None:
                self._closed = True
                raise _Closed()
            return message

    def call(self, method: str, params: dict[str, Any] | None = None, session: str | None = None, *,
             deadline: float) -> dict[str, Any]:
        """Send a command and wait for its reply; events that arrive meanwhile are kept in order."""
        wanted = self.send(method, params, session)
        while True:
            message = self._receive(deadline)
            if message.get("id") == wanted:
                if "error" in message:
                    raise DevToolsError(f"{method}: {message['error'].get('message', message['error'])}")
                result: dict[str, Any] = message.get("result") or {}
                return result
            if "method" in message:
                self._events.append(message)

    def event(self, deadline: float) -> dict[str, Any]:
        """The next event (replies to commands nobody waits for are dropped)."""
        while not self._events:
            message = self._receive(deadline)
            if "method" in message:
                return message
        return self._events.popleft()


# ---------------------------------------------------------------------------------------------
# One capture
# ---------------------------------------------------------------------------------------------


@dataclass
class _MainDocument:
    """What the events say about the main frame's document."""

    frame_id: str
    url: str
    status: int | None = None
    error: str = ""
    loaded: bool = False
    idle: bool = False

    def observe(self, event: dict[str, Any]) -> None:
        method, params = event.get("method"), event.get("params") or {}
        if method == "Network.requestWillBeSent" and params.get("type") == "Document" \
                and params.get("frameId") == self.frame_id:
            self.url = str((params.get("request") or {}).get("url") or self.url)  # each redirect too
        elif method == "Network.responseReceived" and params.get("type") == "Document" \
                and params.get("frameId") == self.frame_id:
            self.status = (params.get("response") or {}).get("status")
        elif method == "Page.lifecycleEvent" and params.get("frameId") == self.frame_id:
            if params.get("name") == "load":
                self.loaded = True
            elif params.get("name") == "networkIdle":
                self.idle = True


def capture(url: str, *, width: int, height: int, work_dir: Path, proxy_port: int, timeout_s: float,
            stopped: Callable[[], bool]) -> Capture:
    """Load ``url`` in a fresh headless Chromium and return a ``width`` × ``height`` PNG of the viewport.

    Raises :class:`PageTimeout` when the page has not loaded ``timeout_s`` after the start,
    :class:`NavigationFailed` when the main document failed, :class:`BrowserStopped` when
    ``stopped()`` became true, :class:`BrowserError` when Chromium is missing or failed. In every
    case the browser's whole process group is gone when this returns.
    """
    executable = find_chromium()
    if executable is None:
        raise BrowserError("chromium is not installed on this worker")
    profile = work_dir / "profile"
    profile.mkdir(parents=True, exist_ok=True)
    args = chromium_args(executable, width=width, height=height, profile_dir=profile, proxy_port=proxy_port)
    logger.debug("chromium %s", args)
    deadline = time.monotonic() + timeout_s
    # Chromium's single-instance socket lives in TMPDIR and a socket path has at most 107 bytes,
    # so TMPDIR is a short private directory rather than the (arbitrarily deep) work directory.
    runtime = Path(tempfile.mkdtemp(prefix="chromium-", dir=_short_tmp()))
    env = {**child_env(work_dir), "TMPDIR": str(runtime)}
    try:
        process = _Process(args, env, work_dir / "chromium.log")
    except OSError as exc:
        shutil.rmtree(runtime, ignore_errors=True)
        raise BrowserError(f"chromium could not be started: {exc.strerror or exc}") from exc
    devtools = _DevTools(process.commands_fd, process.replies_fd, stopped)
    grace_s = 0.0  # a timed-out, cancelled or failed browser is killed at once
    try:
        shot = _drive(devtools, url, width, height, deadline)
        grace_s = CLOSE_GRACE_S
        return shot
    except _Deadline:
        raise PageTimeout() from None
    except (_Closed, DevToolsError) as exc:
        code = process.wait(0.5)
        event(logger, "chromium_failed", exit_code=code, error=str(exc)[:300])
        exited = f" (exit code {code})" if code is not None else ""
        raise BrowserError(f"the browser stopped unexpectedly{exited}") from None
    except (KeyError, TypeError, ValueError) as exc:  # a reply without the fields DevTools documents
        event(logger, "chromium_unexpected_reply", error=repr(exc)[:300])
        raise BrowserError("the browser gave an unexpected answer") from None
    finally:
        if grace_s:
            with contextlib.suppress(_Closed):
                devtools.send("Browser.close")
            process.wait(grace_s)
        process.kill_group()
        process.close_pipes(replies_too=devtools.reader_done(CLOSE_GRACE_S))
        shutil.rmtree(runtime, ignore_errors=True)


def _short_tmp() -> str:
    """The system's temporary directory when its path is short, else ``/tmp``."""
    system = tempfile.gettempdir()
    return system if len(system) <= 40 else "/tmp"


def _drive(devtools: _DevTools, url: str, width: int, height: int, deadline: float) -> Capture:
    target = devtools.call("Target.createTarget", {"url": "about:blank"}, deadline=deadline)["targetId"]
    session = devtools.call("Target.attachToTarget", {"targetId": target, "flatten": True},
                            deadline=deadline)["sessionId"]
    for method, params in (
        ("Page.enable", {}),
        ("Network.enable", {}),
        ("Page.setLifecycleEventsEnabled", {"enabled": True}),
        ("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1,
                                                "mobile": False}),
        ("Emulation.setScrollbarsHidden", {"hidden": True}),
    ):
        devtools.call(method, params, session, deadline=deadline)
    frame_id = devtools.call("Page.getFrameTree", {}, session, deadline=deadline)["frameTree"]["frame"]["id"]
    document = _MainDocument(frame_id, url)
    navigation = devtools.call("Page.navigate", {"url": url}, session, deadline=deadline)
    loader = navigation.get("loaderId")

    def drain(until: float, done: Callable[[], bool]) -> None:
        while not done():
            event = devtools.event(until)
            if event.get("sessionId") != session:
                continue
            params = event.get("params") or {}
            if event.get("method") == "Page.lifecycleEvent" and loader and params.get("loaderId") != loader:
                continue  # the about:blank document that was there before
            document.observe(event)

    with contextlib.suppress(_Deadline):
        drain(time.monotonic(), lambda: False)  # what arrived with the navigation's reply
    if navigation.get("errorText"):
        raise NavigationFailed(document.url, str(navigation["errorText"]))
    drain(deadline, lambda: document.loaded)
    with contextlib.suppress(_Deadline):
        drain(min(deadline, time.monotonic() + IDLE_WAIT_S), lambda: document.idle)
    shot = devtools.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": False}, session,
                         deadline=time.monotonic() + CAPTURE_TIMEOUT_S)
    return Capture(png=base64.b64decode(shot["data"]), url=document.url, status=document.status,
                   idle=document.idle)
