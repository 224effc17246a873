"""Names on the NATS side: server URLs, subject prefixes, engine ids and the subjects they form.

Pure and checked at the edge (config, flags), so a typo is one line and exit status 2 before
anything connects. Engine ids and prefix tokens are restricted to letters, digits, ``_`` and
``-``: NATS gives ``.``, ``*`` and ``>`` a meaning inside subjects, and a relay puts the id in a
URL path, where the narrow alphabet needs no escaping.
"""

from __future__ import annotations

import re
import socket
from urllib.parse import urlsplit

DEFAULT_PORT = 4222
DEFAULT_PREFIX = "phase4"
_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,64}")


def parse_url(text: str) -> str:
    """One ``nats://[USER:PASSWORD@]HOST[:PORT]`` URL, normalised with its port; ValueError else."""
    stripped = text.strip()
    try:
        parts = urlsplit(stripped)
        port = parts.port
    except ValueError:
        raise ValueError(f"expected nats://HOST:PORT, got {text!r}") from None
    if parts.scheme != "nats" or not parts.hostname:
        raise ValueError(f"expected nats://HOST:PORT, got {text!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"a NATS URL has no path or query, got {text!r}")
    if port == 0:
        raise ValueError(f"port must be within 1-65535, got {text!r}")
    netloc = parts.netloc.rsplit("@", 1)
    host = netloc[-1] if port is not None else f"{netloc[-1]}:{DEFAULT_PORT}"
    return f"nats://{netloc[0]}@{host}" if len(netloc) == 2 else f"nats://{host}"


def parse_servers(value: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """A comma-separated string (``--publish a,b``) or a list: every URL parsed, duplicates gone."""
    items = value.split(",") if isinstance(value, str) else list(value)
    urls: list[str] = []
    for item in items:
        for piece in item.split(","):
            if not piece.strip():
                raise ValueError(f"empty server in {value!r}")
            url = parse_url(piece)
            if url not in urls:
                urls.append(url)
    return tuple(urls)


def check_engine_id(text: str) -> str:
    if not _TOKEN.fullmatch(text):
        raise ValueError(
            f"an engine id is 1-64 letters, digits, '_' or '-' (it names a NATS subject and a"
            f" URL path), got {text!r}"
        )
    return text


def check_prefix(text: str) -> str:
    if not all(_TOKEN.fullmatch(token) for token in text.split(".")):
        raise ValueError(
            f"a subject prefix is dot-separated tokens of letters, digits, '_' or '-'"
            f" (e.g. 'phase4' or 'venue.phase4'), got {text!r}"
        )
    return text


def default_engine_id() -> str:
    """The host name's first label, made safe; ``phase4`` if nothing usable is left."""
    label = socket.gethostname().split(".", 1)[0]
    safe = re.sub(r"[^A-Za-z0-9_-]", "-", label)[:64].strip("-")
    return safe or "phase4"


def spectra_subject(prefix: str, engine_id: str) -> str:
    """Every spectrum of one engine, one P4SP message each."""
    return f"{prefix}.{engine_id}.spectra"


def meta_subject(prefix: str, engine_id: str) -> str:
    """The stream's metadata: announced on connect, and the reply to a request on it."""
    return f"{prefix}.{engine_id}.meta"


def display_url(url: str) -> str:
    """The URL without its password, for logs and metrics labels."""
    scheme, _, rest = url.partition("://")
    if "@" not in rest:
        return url
    user, _, host = rest.rpartition("@")
    return f"{scheme}://{user.split(':', 1)[0]}:***@{host}"
