"""Server processes: spawned in their own process group, watched through /proc, stopped as a group.

Nothing here knows which server it runs; a server is a PID plus a marker found in its command line,
which guards against signalling a process that reused the PID.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

from tests.support.localstack.stack import HOST, LocalStackError

STOP_TIMEOUT_SECONDS = 15.0
LOG_TAIL_LINES = 40

# Popen objects of servers started by this process, so they can be reaped (no zombies).
_CHILDREN: dict[int, subprocess.Popen] = {}


def free_ports(count: int, exclude: set[int] = frozenset()) -> list[int]:
    """Distinct free TCP ports on the loopback address (held open together so they differ)."""
    socks: list[socket.socket] = []
    ports: list[int] = []
    try:
        while len(ports) < count:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((HOST, 0))
            socks.append(sock)
            port = sock.getsockname()[1]
            # weed derives nothing from these, but stay clear of ports given explicitly.
            if port not in exclude:
                ports.append(port)
    finally:
        for sock in socks:
            sock.close()
    return ports


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def alive(pid: int) -> bool:
    """True when the process exists and is not a zombie (reaps our own children)."""
    if pid <= 0:
        return False
    child = _CHILDREN.get(pid)
    if child is not None:
        if child.poll() is not None:
            _CHILDREN.pop(pid, None)
            return False
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    state = stat.rsplit(")", 1)[-1].split()[0]
    return state not in ("Z", "X")


def ours(pid: int, marker: str) -> bool:
    """The PID still belongs to a server of ours (guards against PID reuse after a reboot)."""
    return alive(pid) and marker in _cmdline(pid)


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def kill_groups(
    targets: list[tuple[int, str]], *, graceful: bool = True, timeout: float = STOP_TIMEOUT_SECONDS
) -> None:
    """Signal each (pid, marker) server's process group and wait until all have exited.

    SIGTERM first (SIGKILL after ``timeout``); with graceful=False, SIGKILL at once.
    """
    owned = [(pid, marker) for pid, marker in targets if ours(pid, marker)]
    for pid, marker in targets:
        if (pid, marker) not in owned:
            _CHILDREN.pop(pid, None)  # gone already (or the PID is someone else's now): leave it
    live = list(owned)
    steps = ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)) if graceful else ((signal.SIGKILL, 10.0),)
    for sig, wait in steps:
        if not live:
            break
        for pid, _ in live:
            _signal_group(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and any(alive(pid) for pid, _ in live):
            time.sleep(0.05)
        live = [(pid, marker) for pid, marker in live if alive(pid)]
    if live:
        raise LocalStackError("did not exit: " + ", ".join(f"{marker} (pid {pid})" for pid, marker in live))
    for pid, _ in owned:
        # Anything left in a group (there should be nothing) goes too.
        _signal_group(pid, signal.SIGKILL)
        _CHILDREN.pop(pid, None)


def kill_group(pid: int, marker: str, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
    kill_groups([(pid, marker)], timeout=timeout)


def spawn(cmd: list[str], *, cwd: Path, log: Path, env: Mapping[str, str] | None = None) -> int:
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            start_new_session=True,
            close_fds=True,
        )
    _CHILDREN[proc.pid] = proc
    return proc.pid


def wait_ready(name: str, pid: int, log: Path, probe, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if not alive(pid):
            raise LocalStackError(
                f"{name} (pid {pid}) exited during start-up. Log tail ({log}):\n{log_tail(log)}"
            )
        try:
            probe()
            return
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready yet"
            last_error = exc
        time.sleep(0.1)
    raise LocalStackError(
        f"{name} (pid {pid}) not ready after {timeout:.0f} s (last probe error: {last_error!r}). "
        f"Log tail ({log}):\n{log_tail(log)}"
    )


def listening_addresses(pid: int) -> list[tuple[str, int]]:
    """(address, port) of every TCP socket the process listens on, read from /proc."""
    inodes: set[str] = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in fd_dir.iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    found: list[tuple[str, int]] = []
    for table, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            local, state, inode = parts[1], parts[3], parts[9]
            if state != "0A" or inode not in inodes:  # 0A = LISTEN
                continue
            hex_addr, hex_port = local.split(":")
            raw = bytes.fromhex(hex_addr)
            # /proc prints the address as 32-bit words in host (little-endian) order.
            raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            found.append((socket.inet_ntop(family, raw), int(hex_port, 16)))
    return found
