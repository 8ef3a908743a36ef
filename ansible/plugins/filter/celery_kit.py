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
import tarfile
from urllib.parse import parse_qs, quote, unquote, urlsplit
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


def _certificate_names(path: str) -> list[str] | None:
    """The DNS names and IP addresses in a PEM certificate's subjectAltName; None when the file
    cannot be read as one (the Redis role's preflight reports a missing file)."""
    try:
        from cryptography import x509
    except ImportError:
        return None
    try:
        with open(path, "rb") as f:
            cert = x509.load_pem_x509_certificate(f.read())
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    except (OSError, ValueError):
        return None
    return san.get_values_for_type(x509.DNSName) + [str(a) for a in san.get_values_for_type(x509.IPAddress)]


def _tls_query_problems(variable: str, parts, shown: str, ca_path: str) -> list[str]:
    """A rediss:// URL must verify the server against the CA the role installs, as kombu, the
    result backend and redis-py read it from the query."""
    query = {key: values[-1] for key, values in parse_qs(parts.query, keep_blank_values=True).items()}
    problems = []
    if query.get("ssl_cert_reqs") not in ("required", "CERT_REQUIRED"):
        problems.append(f"{variable}: {shown} does not verify Redis' certificate; add ssl_cert_reqs=required "
                        f"(without it kombu connects to whoever answers)")
    if ca_path and query.get("ssl_ca_certs") != ca_path:
        problems.append(f"{variable}: {shown} must name the CA the role installs: ssl_ca_certs={ca_path}")
    if query.get("ssl_check_hostname", "true").lower() in ("false", "0", "no", "off"):
        problems.append(f"{variable}: ssl_check_hostname=false in {shown} would accept any certificate the CA "
                        f"signed, for any host; remove it")
    return problems


def celery_kit_broker_problems(url, variable: str, redis: dict, ca_path: str = "") -> list[str]:
    """A Redis URL checked against the Redis role's variables of the fleet's Redis host.

    ``redis``: ``present`` (a ``redis`` group exists), ``host``, ``user`` (the ACL user Celery
    logs in as), ``password``, ``port``, ``addresses`` (what Redis binds, plus the host's
    inventory name and address), ``same_host`` (the checked host is the Redis host), ``tls``
    (celery_redis_tls) and ``tls_cert`` (celery_redis_tls_cert_src, on the controller).
    ``ca_path``: where the CA a rediss:// URL must name as ssl_ca_certs is installed.
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
    problems = _tls_query_problems(variable, parts, shown, ca_path) if parts.scheme == "rediss" else []
    if not redis.get("present"):
        return problems
    host = redis.get("host")
    tls = bool(redis.get("tls"))
    if parts.scheme == "redis" and tls:
        problems.append(f"{variable}: {shown} is plaintext, but Redis on {host} accepts TLS only (celery_redis_tls: "
                        f"true): use rediss://...?ssl_cert_reqs=required&ssl_ca_certs={ca_path or 'CA'}")
        return problems
    if parts.scheme == "rediss" and not tls:
        problems.append(f"{variable}: {shown} uses TLS, but Redis on {host} serves plaintext only "
                        f"(celery_redis_tls: false): use redis://, or turn TLS on there")
        return problems
    if parts.scheme not in ("redis", "rediss"):
        problems.append(f"{variable}: scheme {parts.scheme + '://' if parts.scheme else '(none)'} in {shown}: "
                        f"the Redis role on {host} serves only {'rediss' if tls else 'redis'}:// "
                        f"(no unix socket, no AMQP)")
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
    names = _certificate_names(str(redis.get("tls_cert"))) if tls and redis.get("tls_cert") else None
    if names is not None and parts.hostname not in names:
        problems.append(f"{variable}: host {parts.hostname} in {shown} is not named by Redis' certificate "
                        f"(celery_redis_tls_cert_src of {host}, subjectAltName: {names or 'none'}); clients check it")
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
        if not value.startswith(("redis://", "rediss://")):
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


def celery_kit_release_digest(wheelhouse, packages, install_source: str = "wheelhouse", python: str = "") -> str:
    """A digest of what a release installs: the package specs and, for a wheelhouse, every
    wheel's name and content (a directory) or the archive's bytes. Two builds that differ in
    any wheel get different release directories; the same content always gets the same one.
    ``python`` (the host interpreter's tag, e.g. cp313) is part of it when given: a virtual
    environment belongs to one interpreter, so a host upgraded to another Python gets a new
    release even from a wheelhouse of pure wheels."""
    h = hashlib.sha256()
    h.update(f"source={install_source}\n".encode())
    if python:
        h.update(f"python={python}\n".encode())
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


# Legacy manylinux names and the glibc they stand for (PEP 600).
_LEGACY_MANYLINUX = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}


def _wheel_names(path: str) -> list[str]:
    if os.path.isdir(path):
        return sorted(name for _, _, files in os.walk(path) for name in files if name.endswith(".whl"))
    with tarfile.open(path) as tar:
        return sorted(os.path.basename(m.name) for m in tar.getmembers() if m.isfile() and m.name.endswith(".whl"))


def _target_tags(python: str, glibc: str, machine: str) -> set:
    """Every wheel tag the target's pip accepts: its CPython (own ABI, abi3, none), pure wheels,
    and manylinux platforms up to its glibc. Not linux_* (built for one machine) nor musllinux."""
    from packaging import tags

    version = tuple(int(part) for part in python.split(".")[:2])
    glibc_minor = int(glibc.split(".")[1])
    platforms = []
    for minor in range(glibc_minor, 4, -1):
        platforms.append(f"manylinux_2_{minor}_{machine}")
        if minor in _LEGACY_MANYLINUX:
            platforms.append(f"{_LEGACY_MANYLINUX[minor]}_{machine}")
    accepted = set(tags.cpython_tags(version, platforms=platforms))
    return accepted | set(tags.compatible_tags(version, platforms=platforms))


def celery_kit_wheelhouse_tags(wheelhouse) -> list[str]:
    """The CPython ABI tags (cp311, cp313, ...) of a wheelhouse's interpreter-specific wheels; empty
    when every wheel is pure or abi3."""
    from packaging.utils import parse_wheel_filename

    found = set()
    for name in _wheel_names(str(wheelhouse)):
        try:
            found |= {t.abi for t in parse_wheel_filename(name)[3] if re.fullmatch(r"cp3\d+", t.abi)}
        except ValueError:
            continue
    return sorted(found)


def celery_kit_wheelhouse_problems(wheelhouse, target: dict, host: str = "") -> list[str]:
    """Wheels of ``wheelhouse`` (a directory or a .tar of one) that the target cannot install.

    ``target`` describes the host's /usr/bin/python3 as the preflight probe read it: ``python``
    (3.13.5), ``python_tag`` (cp313), ``glibc`` (2.41), ``machine`` (x86_64) and ``os``. A
    wheelhouse built for another Python (pydantic_core-...-cp311-cp311-manylinux...) or with a
    wheel that is neither pure nor manylinux for this glibc is refused here, before anything is
    installed, rather than by pip halfway through a release."""
    from packaging.utils import InvalidWheelFilename, parse_wheel_filename

    path = str(wheelhouse)
    python = str(target.get("python", ""))
    python_tag = str(target.get("python_tag", ""))
    where = f"{host} runs Python {python} ({python_tag}"
    where += f", glibc {target.get('glibc')}, {target.get('machine')}" if target.get("glibc") else ""
    where += f", {target['os']})" if target.get("os") else ")"
    try:
        names = _wheel_names(path)
    except (OSError, tarfile.TarError) as exc:
        return [f"celery_common_wheelhouse_src: {path} cannot be read as a wheelhouse (a .tar or a directory "
                f"of wheels): {exc}"]
    if not names:
        return [f"celery_common_wheelhouse_src: {path} holds no wheel (.whl)"]
    if target.get("implementation", "cpython") != "cpython" or not re.fullmatch(r"\d+\.\d+(\.\d+)?.*", python):
        return [f"celery_common_wheelhouse_src: {where}; the kit installs wheelhouses on CPython only"]
    if target.get("libc", "glibc") != "glibc" or not re.fullmatch(r"2\.\d+", str(target.get("glibc", ""))):
        return [f"celery_common_wheelhouse_src: {where}; manylinux wheels need glibc, found "
                f"{target.get('libc') or 'none'} {target.get('glibc') or ''}".rstrip()]
    accepted = _target_tags(python, str(target["glibc"]), str(target.get("machine") or "x86_64"))
    refused = []
    for name in names:
        try:
            wheel_tags = parse_wheel_filename(name)[3]
        except InvalidWheelFilename:
            refused.append(name)
            continue
        if not wheel_tags & accepted:
            refused.append(name)
    if not refused:
        return []
    built_for = ", ".join(celery_kit_wheelhouse_tags(path)) or "no one Python (pure and platform wheels)"
    shown = ", ".join(refused[:5]) + (f" and {len(refused) - 5} more" if len(refused) > 5 else "")
    return [f"celery_common_wheelhouse_src: {path} is built for {built_for}, but {where}: "
            f"{len(refused)} of its {len(names)} wheels cannot install there ({shown}). Build one for "
            f"{python_tag} (`make wheelhouse` builds build/wheelhouse-cp311.tar for Debian 12 and "
            f"build/wheelhouse-cp313.tar for Debian 13; {{python_tag}} in celery_common_wheelhouse_src "
            f"picks each host's)"]


_SPECIFIER = re.compile(r"%(.)")
_VARIABLE = re.compile(r"\$(?:\$|\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


def celery_kit_supervisor_command(command, environment=None, instance="") -> str:
    """A systemd command line (ExecStart=, a path with %i) as supervisor's configuration takes it.

    The service layer (celery_common tasks/service.yml) builds each command once, for systemd;
    supervisor expands neither systemd's specifiers nor environment variables, and reads ``%`` as
    the start of its own expansions. So: ``%i`` becomes ``instance`` and ``%%`` a percent sign;
    ``${NAME}`` and ``$NAME`` become the value ``environment`` gives NAME (a name it does not give
    stays as written) and ``$$`` a dollar sign; then every ``%`` is doubled."""
    values = {str(k): str(v) for k, v in (environment or {}).items()}

    def specifier(match):
        return {"%": "%", "i": str(instance)}.get(match.group(1), match.group(0))

    def variable(match):
        name = match.group(1) or match.group(2)
        if name is None:
            return "$"
        return values.get(name, match.group(0))

    text = _SPECIFIER.sub(specifier, str(command))
    return _VARIABLE.sub(variable, text).replace("%", "%%")


class FilterModule:
    def filters(self):
        return {
            "celery_kit_invalid_names": celery_kit_invalid_names,
            "celery_kit_timezone_problems": celery_kit_timezone_problems,
            "celery_kit_broker_problems": celery_kit_broker_problems,
            "celery_kit_secret_args": celery_kit_secret_args,
            "celery_kit_env_login_problems": celery_kit_env_login_problems,
            "celery_kit_release_digest": celery_kit_release_digest,
            "celery_kit_wheelhouse_tags": celery_kit_wheelhouse_tags,
            "celery_kit_wheelhouse_problems": celery_kit_wheelhouse_problems,
            "celery_kit_supervisor_command": celery_kit_supervisor_command,
        }
