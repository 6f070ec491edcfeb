"""``web.screenshot``: a PNG of a web page's viewport, taken by headless Chromium (issue 12).

The legacy contract (LEGACY_ACTIONS.md §2 row 2) with its §5 quirks fixed: the URL is kept as
given (a bare host gets ``https://``), the declared defaults apply and the ``{hostname}`` and
``{username}`` placeholders of ``dest_prefix`` are expanded, the viewport limits are enforced, and
a browser failure is a short message, never a traceback.

Network safety is part of the action: the page's host is vetted before Chromium starts (a refused
one fails the action, and no request leaves the machine), and the browser reaches the network only
through :class:`~src.actions.web.proxy.GuardedProxy`, which vets every redirect and sub-resource
the same way (:mod:`feaas.netpolicy`). A refused sub-resource is left out of the picture
and logged; a main document that ends on a refused destination (a redirect) fails the action.
"""

from __future__ import annotations

import logging
import re
import secrets
import shutil
import struct
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from feaas.actions.base import Action, ActionCancelled, ActionContext, ActionFailed, Param
from feaas.actions.legacy import LegacyInput, LegacyInterface, LegacyOutput, greater_than, less_than
from feaas.errors import NamespaceViolation
from feaas.logs import event
from feaas.namespace import normalise_key
from feaas.netpolicy import DestinationRefused, HostNotFound
from feaas.objects import ParameterType as PT
from src.actions.web import chromium
from src.actions.web.proxy import GuardedProxy, Refusal

WIDTH_RANGE = (51, 1919)  # upstream declares > 50 and < 1920
HEIGHT_RANGE = (51, 1079)  # upstream declares > 50 and < 1080
TIMEOUT_RANGE_S = (1, 120)
DEFAULT_PREFIX = "{hostname}/{username}/screenshots/"
#: Longest URL accepted; it is stored as the object's ``url`` metadata (S3 allows 2 KB in all).
MAX_URL_CHARS = 2000
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):(.*)$", re.DOTALL)
_PORT_AFTER_HOST = re.compile(r"^\d+(?:[/?#]|$)")
_DEFAULT_PORTS = {"http": 80, "https": 443}
#: Characters kept as they are when a URL's path, query or fragment is percent-encoded.
_URL_SAFE = "/:@!$&'()*+,;=-._~%?#[]"


def normalise_url(value: Any) -> str:
    """The URL Chromium is given: ``http``/``https`` only, a bare host gets ``https://``, the host
    lower-cased (IDNA), the rest percent-encoded to ASCII. Raises :class:`ActionFailed`."""
    text = str(value or "").strip()
    if not text:
        raise ActionFailed("missing input: url")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise ActionFailed("url contains control characters")
    scheme_match = _SCHEME.match(text)
    if text.startswith("//"):
        text = "https:" + text
    elif scheme_match and not _PORT_AFTER_HOST.match(scheme_match.group(2)):  # "host:8080/x" has no scheme
        scheme = scheme_match.group(1).lower()
        if scheme not in _DEFAULT_PORTS:
            raise ActionFailed(f"url scheme {scheme!r} is not allowed: "
                               "only http and https pages can be captured")
    else:
        text = "https://" + text
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise ActionFailed(f"url is not valid: {exc}") from None
    if parts.username is not None or parts.password is not None:
        raise ActionFailed("url must not contain a user name or password")
    host = parts.hostname or ""
    if not host:
        raise ActionFailed("url has no host")
    try:
        ascii_host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        raise ActionFailed("url has an invalid host name") from None
    netloc = f"[{ascii_host}]" if ":" in ascii_host else ascii_host
    if port is not None:
        netloc += f":{port}"
    url = urlunsplit((parts.scheme.lower(), netloc, quote(parts.path or "/", safe=_URL_SAFE),
                      quote(parts.query, safe=_URL_SAFE), quote(parts.fragment, safe=_URL_SAFE)))
    if len(url) > MAX_URL_CHARS:
        raise ActionFailed(f"url is too long ({len(url)} characters, at most {MAX_URL_CHARS})")
    return url


def host_and_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "", parts.port or _DEFAULT_PORTS.get(parts.scheme, 80)


def checked_range(name: str, value: int, bounds: tuple[int, int], unit: str) -> int:
    low, high = bounds
    if not low <= value <= high:
        raise ActionFailed(f"{name} must be between {low} and {high} {unit}, got {value}")
    return value


def resolve_prefix(value: Any, namespace: str) -> str:
    """``dest_prefix`` with ``{hostname}``/``{username}`` expanded and a trailing ``/``, inside the
    user's namespace (``{hostname}/{username}/``). Raises :class:`ActionFailed`."""
    text = str(value or "").strip() or DEFAULT_PREFIX
    hostname, username = namespace.split("/")[:2]
    text = text.replace("{hostname}", hostname).replace("{username}", username)
    if not text.endswith("/"):
        text += "/"
    try:
        return normalise_key(text, namespace, prefix=True)
    except NamespaceViolation as exc:
        raise ActionFailed(f"dest_prefix: {exc}") from None


def screenshot_key(prefix: str, now: float | None = None) -> str:
    """``{prefix}{UTC YYYY-MM-DD-at-HH-MM-SS}-{4 hex}.png`` (the legacy key rule)."""
    stamp = time.strftime("%Y-%m-%d-at-%H-%M-%S", time.gmtime(time.time() if now is None else now))
    return f"{prefix}{stamp}-{secrets.token_hex(2)}.png"


def png_size(data: bytes) -> tuple[int, int] | None:
    """``(width, height)`` from a PNG's IHDR chunk, or ``None`` when ``data`` is not a PNG."""
    if len(data) < 24 or data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _log(ctx: ActionContext, name: str, **fields: Any) -> None:
    """An event on the action's logger, keeping the node the engine bound to it."""
    logger = ctx.log
    if isinstance(logger, logging.LoggerAdapter):  # the runner binds ``{"fields": {"node": …}}``
        bound: Mapping[str, Any] = logger.extra or {}
        fields = {**(bound.get("fields") or {}), **fields}
        logger = logger.logger
    event(logger, name, **fields)


class Screenshot(Action):
    id = "web.screenshot"
    description = ("A PNG of a web page's viewport (headless Chromium); only public internet addresses "
                   "are reached, also for redirects and every resource the page loads.")
    inputs = (
        Param("url", PT.URL, hint="http(s) URL; a bare host gets https://"),
        Param("width", PT.INTEGER, default=1200, hint="viewport width in pixels, 51–1919"),
        Param("height", PT.INTEGER, default=800, hint="viewport height in pixels, 51–1079"),
        Param("dest_prefix", PT.PREFIX, default=DEFAULT_PREFIX,
              hint="where the PNG goes (inside your namespace)"),
        Param("timeout_s", PT.INTEGER, default=30, hint="seconds the page may take to load, 1–120"),
    )
    outputs = (Param("dest_key", PT.KEY),)
    #: Upstream declared these defaults and limits and applied neither; both apply here (its §5).
    legacy = LegacyInterface(
        "web.screenshot.Screenshot",
        inputs=(LegacyInput("url", PT.URL, "url", required=True),
                LegacyInput("width", PT.INTEGER, "width", 1200,
                            validations=(greater_than(WIDTH_RANGE[0] - 1), less_than(WIDTH_RANGE[1] + 1))),
                LegacyInput("height", PT.INTEGER, "height", 800,
                            validations=(greater_than(HEIGHT_RANGE[0] - 1), less_than(HEIGHT_RANGE[1] + 1))),
                LegacyInput("dest_prefix", PT.PREFIX, "dest_prefix", DEFAULT_PREFIX)),
        outputs=(LegacyOutput("dest_key", PT.KEY, "dest_key"),),
    )

    def run(self, ctx: ActionContext, inputs: dict[str, Any]) -> dict[str, Any]:
        url = normalise_url(inputs.get("url"))
        width = checked_range("width", inputs["width"], WIDTH_RANGE, "pixels")
        height = checked_range("height", inputs["height"], HEIGHT_RANGE, "pixels")
        timeout_s = checked_range("timeout_s", inputs["timeout_s"], TIMEOUT_RANGE_S, "seconds")
        prefix = resolve_prefix(inputs.get("dest_prefix"), ctx.storage.namespace)
        ctx.check_cancelled()
        host, port = host_and_port(url)
        try:  # before Chromium starts: a refused page sends nothing anywhere
            ctx.network.vet(host, port)
        except (DestinationRefused, HostNotFound) as exc:
            raise ActionFailed(str(exc)) from None
        ctx.tmp_dir.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="screenshot-", dir=ctx.tmp_dir))
        try:
            png = self._capture(ctx, url, width, height, timeout_s, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        ctx.check_cancelled()
        key = screenshot_key(prefix)
        while ctx.storage.exists(key):  # same second and same 4 hex digits: never overwrite
            key = screenshot_key(prefix)
        ctx.storage.put_bytes(key, png, "image/png", metadata={"url": url})
        return {"dest_key": key}

    def _capture(self, ctx: ActionContext, url: str, width: int, height: int, timeout_s: int,
                 work: Path) -> bytes:
        with GuardedProxy(ctx.network) as proxy:
            try:
                shot = chromium.capture(url, width=width, height=height, work_dir=work, proxy_port=proxy.port,
                                        timeout_s=timeout_s, stopped=ctx.cancel.is_set)
            except chromium.PageTimeout:
                raise ActionFailed(f"page did not load within {timeout_s} s") from None
            except chromium.BrowserStopped:
                raise ActionCancelled("action stopped: the job was cancelled or interrupted") from None
            except chromium.NavigationFailed as exc:
                refused = _refusal_for(proxy.refusals, exc.url)
                if refused is not None:
                    raise ActionFailed(_refused_page(refused, exc.url, url)) from None
                raise ActionFailed(f"page could not be loaded: {exc.error} ({exc.url})") from None
            except chromium.BrowserError as exc:
                raise ActionFailed(str(exc)) from None
            finally:
                for refusal in proxy.refusals:
                    _log(ctx, "screenshot_request_refused", host=refusal.host, port=refusal.port,
                         ip=refusal.ip, why=refusal.why, request=refusal.what)
        refused = _refusal_for(proxy.refusals, shot.url)
        if refused is not None:  # the proxy answered the main document itself (plain http)
            raise ActionFailed(_refused_page(refused, shot.url, url))
        size = png_size(shot.png)
        if size != (width, height):
            raise ActionFailed(f"the browser returned a {size} image instead of {width}×{height}")
        _log(ctx, "screenshot_taken", status=shot.status, network_idle=shot.idle, refused=len(proxy.refusals),
             bytes=len(shot.png))
        return shot.png


def _refusal_for(refusals: list[Refusal], url: str) -> Refusal | None:
    host, port = host_and_port(url)
    return next((r for r in refusals if (r.host, r.port) == (host, port)), None)


def _refused_page(refusal: Refusal, final_url: str, url: str) -> str:
    return refusal.message + ("" if final_url == url else " (the page redirected there)")
