"""What the producer refuses: callers without the token, oversized canvases, fetches into the
private network. Read from the environment once, when the module is imported.

``KIT_PRODUCER_TOKEN`` / ``KIT_PRODUCER_TOKEN_FILE`` (default: none)
    bearer token every endpoint but ``/healthz`` requires; required to bind anything but loopback
``KIT_PRODUCER_MAX_CANVAS`` (default: 100)
    most tasks a ``group`` or ``chord`` request may fan out to
``KIT_PRODUCER_FETCH_ALLOW`` (default: none)
    networks ``fetch`` may reach although they are loopback, private or link-local, e.g. ``10.20.0.0/16``
"""
from __future__ import annotations

import hmac
import ipaddress
import os
import socket
from pathlib import Path
from urllib.parse import urlsplit


class Refused(ValueError):
    """A request parameter the producer will not act on (answered with 422)."""


def _token() -> str | None:
    path = os.environ.get("KIT_PRODUCER_TOKEN_FILE", "").strip()
    if path:
        token = Path(path).read_text().strip()
    else:
        token = os.environ.get("KIT_PRODUCER_TOKEN", "").strip()
    if token and len(token) < 16:
        raise SystemExit("kit-producer: the token (KIT_PRODUCER_TOKEN[_FILE]) must have at least 16 characters")
    return token or None


def _positive(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    try:
        value = int(raw) if raw else default
    except ValueError:
        value = 0
    if value < 1:
        raise SystemExit(f"kit-producer: {name}={raw!r} must be a positive integer")
    return value


def _networks(raw: str) -> tuple:
    try:
        return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in raw.split(",") if part.strip())
    except ValueError as exc:
        raise SystemExit(f"kit-producer: KIT_PRODUCER_FETCH_ALLOW: {exc}") from None


TOKEN = _token()
MAX_CANVAS = _positive("KIT_PRODUCER_MAX_CANVAS", 100)
FETCH_ALLOW = _networks(os.environ.get("KIT_PRODUCER_FETCH_ALLOW", ""))


def token_ok(authorization: str | None) -> bool:
    """``Authorization: Bearer <token>``; always true when no token is configured."""
    if TOKEN is None:
        return True
    scheme, _, given = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), TOKEN.encode())


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def canvas_size(params: dict, default: int = 5) -> int:
    n = int(params.get("n", default))
    if not 0 <= n <= MAX_CANVAS:
        raise Refused(f"n={n}: a group or chord may have 0 to {MAX_CANVAS} tasks (KIT_PRODUCER_MAX_CANVAS)")
    return n


def _internal(address) -> bool:
    """Anything but a public unicast address: loopback, private, link-local, shared (CGNAT),
    documentation, multicast, unspecified, and IPv4 addresses in IPv6 clothing."""
    if address.version == 6 and address.ipv4_mapped is not None:
        return _internal(address.ipv4_mapped)
    return not address.is_global or address.is_multicast


def fetch_url(url, allow: tuple = FETCH_ALLOW) -> str:
    """``url`` if ``fetch`` may get it: http(s) to a public address, or to a network in ``allow``.

    Every address the host name resolves to is checked. Redirects the worker follows and DNS
    answers that change between this check and the fetch are not covered here.
    """
    if not isinstance(url, str):
        raise Refused("url must be a string")
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"}:
        raise Refused(f"url scheme {parts.scheme or '(none)'!r}: only http and https")
    if not parts.hostname:
        raise Refused("url has no host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        infos = socket.getaddrinfo(parts.hostname, port, proto=socket.IPPROTO_TCP)
    except (ValueError, OSError) as exc:
        raise Refused(f"url host {parts.hostname!r} does not resolve ({exc.__class__.__name__})") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if _internal(address) and not any(address in net for net in allow):
            raise Refused(f"url host {parts.hostname!r} is {address}, a loopback, private or link-local address "
                          f"(allow its network with KIT_PRODUCER_FETCH_ALLOW)")
    return url
