"""Filters of the Celery kit, run on the controller: preflight checks a Jinja test cannot
express, and the content digest that names a release.

Every check returns a list of problems (empty when all is well). A problem names what is
wrong and may quote a value, but never a secret: URLs are shown with the password masked.
"""
from __future__ import annotations

import hashlib
import ipaddress
import os
import re
from urllib.parse import quote, unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MASK = "********"

# Command-line options that carry a credential or a URL with one; they would show in `ps`.
_SECRET_FLAGS = ("--broker", "-b", "--result-backend", "--result_backend", "--password", "--basic-auth",
                 "--basic_auth", "--auth", "--requirepass", "--pass", "--token")
_URL_WITH_CREDENTIALS = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/\s]*@")


def _masked(url: str) -> str:
    """The URL with its user information (everything before the last ``@``) masked. Without an
    ``@``, a ``:`` followed by something other than a port may start a password: scheme only."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return MASK
    at = rest.rfind("@")
    if at >= 0:
        return f"{scheme}://{MASK}@{rest[at + 1:]}"
    authority = rest.partition("/")[0]
    if ":" in authority and not authority.rpartition(":")[2].isdigit():
        return f"{scheme}://{MASK}"
    return url


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def celery_kit_invalid_names(values, pattern: str) -> list[str]:
    """The values that do not match ``pattern`` as a whole (``$`` would let a trailing newline
    through; this uses fullmatch), as Python literals so whitespace and control characters show."""
    if isinstance(values, str):
        values = [values]
    regex = re.compile(pattern)
    return [repr(v) for v in values if not isinstance(v, str) or not regex.fullmatch(v)]


def celery_kit_timezone_problems(name) -> list[str]:
    """``name`` must be an IANA zone this controller's zoneinfo knows."""
    if name is None or name == "":
        return []
    try:
        ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        return [f"{str(name)!r} is no IANA time zone (e.g. UTC, Europe/Berlin, Asia/Seoul)"]
    return []


def celery_kit_broker_problems(url, variable: str, redis: dict) -> list[str]:
    """A Redis URL checked against the Redis role's variables of the fleet's Redis host.

    ``redis``: ``present`` (a ``redis`` group exists), ``host``, ``user`` (the ACL user Celery
    logs in as), ``password``, ``port``, ``addresses`` (what Redis binds, plus the host's
    inventory name and address) and ``same_host`` (the checked host is the Redis host).
    """
    if not url:
        return []
    url = str(url)
    shown = _masked(url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        # Where the password of a URL that does not parse ends is anyone's guess: scheme only.
        shown = f"{url.partition('://')[0]}://{MASK}" if "://" in url else MASK
        return [f"{variable}: {shown} does not parse as a URL; percent-encode the password "
                f"(urlencode | replace('/', '%2F'))"]
    if not redis.get("present"):
        return []
    problems = []
    host = redis.get("host")
    if parts.scheme != "redis":
        problems.append(f"{variable}: scheme {parts.scheme + '://' if parts.scheme else '(none)'} in {shown}: "
                        f"the Redis role on {host} serves only redis:// (no TLS, no unix socket, no AMQP)")
        return problems
    if "#" in url:
        problems.append(f"{variable}: {shown} contains '#'; percent-encode it in the password as %23")
    if not parts.hostname:
        problems.append(f"{variable}: {shown} has no host")
        return problems
    addresses = [str(a) for a in redis.get("addresses") or []]
    if _is_loopback(parts.hostname):
        if not redis.get("same_host"):
            problems.append(f"{variable}: host {parts.hostname} in {shown} is loopback, but Redis runs on {host}")
    elif parts.hostname not in addresses:
        problems.append(f"{variable}: host {parts.hostname} in {shown} is not an address Redis on {host} "
                        f"listens on (celery_redis_bind_addresses: {addresses})")
    expected_port = int(redis.get("port") or 6379)
    if (port or 6379) != expected_port:
        problems.append(f"{variable}: port {port or 6379} in {shown} is not celery_redis_port ({expected_port})")
    user = redis.get("user") or ""
    given_user = unquote(parts.username or "")
    if user and given_user != user:
        if not given_user:
            problems.append(f"{variable}: {shown} names no user; Redis on {host} has no default user, "
                            f"Celery logs in as celery_redis_user: redis://{user}:PASSWORD@...")
        else:
            problems.append(f"{variable}: user {given_user!r} in {shown} is not celery_redis_user of {host} "
                            f"({user!r})")
    password = redis.get("password") or ""
    if password and unquote(parts.password or "") != password:
        problems.append(f"{variable}: the password in {shown} is not celery_redis_password of {host} "
                        f"(values not shown; percent-encode it with urlencode | replace('/', '%2F'))")
    return problems


def celery_kit_env_login_problems(content: str, path: str, user: str, password: str) -> list[str]:
    """The Redis URLs in an environment file (``KEY='value'`` lines, as common.env is written)
    that do not log in as ``user`` with ``password``: what a Celery process started from this
    file would send. Names the variable, never a value."""
    problems = []
    found = False
    for line in str(content).splitlines():
        key, sep, value = line.partition("=")
        if not sep or key.strip() not in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "APP_REDIS_URL"):
            continue
        value = value.strip().strip("'")
        if not value.startswith("redis://"):
            continue
        found = True
        try:
            parts = urlsplit(value)
            given = (unquote(parts.username or ""), unquote(parts.password or ""))
        except ValueError:
            given = ("", "")
        if given != (user, password):
            problems.append(f"{path}: {key.strip()} does not log in as {user!r} with celery_redis_password "
                            f"(values not shown)")
    if not found:
        problems.append(f"{path}: no Redis URL (CELERY_BROKER_URL) found")
    return problems


def _secret_forms(secrets) -> list[str]:
    forms = set()
    for secret in secrets or []:
        if not secret:
            continue
        secret = str(secret)
        if "://" in secret:
            try:
                password = urlsplit(secret).password
            except ValueError:
                password = None
            if password:
                forms.update({password, unquote(password)})
            continue
        forms.update({secret, quote(secret, safe="")})
    return sorted(f for f in forms if len(f) >= 4)


def celery_kit_secret_args(args, variable: str, secrets) -> list[str]:
    """Command-line arguments that would put a secret into argv (visible in `ps`, the journal)."""
    problems = []
    forms = _secret_forms(secrets)
    for index, arg in enumerate(args or []):
        arg = str(arg)
        flag = arg.split("=", 1)[0]
        if flag in _SECRET_FLAGS:
            problems.append(f"{variable}[{index}]: {flag} puts a credential or broker URL on the command line; "
                            f"set it in an environment file (celery_common_broker_url, ..._environment)")
        elif any(form in arg for form in forms):
            problems.append(f"{variable}[{index}]: the argument contains a password (not shown)")
        elif _URL_WITH_CREDENTIALS.search(arg):
            problems.append(f"{variable}[{index}]: a URL with credentials ({_masked(arg)}) on the command line")
    return problems


def _file_digest(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def celery_kit_release_digest(wheelhouse, packages, install_source: str = "wheelhouse") -> str:
    """A digest of what a release installs: the package specs and, for a wheelhouse, every
    wheel's name and content (a directory) or the archive's bytes. Two builds that differ in
    any wheel get different release directories; the same content always gets the same one."""
    h = hashlib.sha256()
    h.update(f"source={install_source}\n".encode())
    for spec in packages or []:
        h.update(f"package={spec}\n".encode())
    if install_source == "wheelhouse":
        path = str(wheelhouse)
        if os.path.isdir(path):
            for root, dirs, files in os.walk(path):
                dirs.sort()
                for name in sorted(files):
                    full = os.path.join(root, name)
                    h.update(f"file={os.path.relpath(full, path)} {_file_digest(full)}\n".encode())
        elif os.path.isfile(path):
            h.update(f"archive={_file_digest(path)}\n".encode())
        else:
            raise ValueError(f"celery_common_wheelhouse_src: {path} is neither a file nor a directory")
    return h.hexdigest()


class FilterModule:
    def filters(self):
        return {
            "celery_kit_invalid_names": celery_kit_invalid_names,
            "celery_kit_timezone_problems": celery_kit_timezone_problems,
            "celery_kit_broker_problems": celery_kit_broker_problems,
            "celery_kit_secret_args": celery_kit_secret_args,
            "celery_kit_env_login_problems": celery_kit_env_login_problems,
            "celery_kit_release_digest": celery_kit_release_digest,
        }
