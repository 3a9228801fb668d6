"""What the ModelArts client and the IAM login share: URL checks and reading requests' failures."""

from __future__ import annotations

import math
import re
import socket
import ssl
from collections.abc import Mapping
from urllib.parse import urlsplit

import requests
import urllib3.exceptions

from .errors import InvalidQueryError

# The parts of an SDK-HMAC-SHA256 Authorization value a gateway may quote back on their own;
# SignedHeaders is left readable, it is what a person debugging a signature needs to see.
_SECRET_PART = re.compile(r"\b(?:Access|Signature)=([^\s,;]+)")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def check_endpoint(endpoint: object, *, name: str = "endpoint", example: str) -> str:
    """The endpoint without a trailing slash; InvalidQueryError naming `name` otherwise."""
    if not isinstance(endpoint, str) or not endpoint.strip():
        raise InvalidQueryError(f"{name} is empty; e.g. {example}")
    # Userinfo would be a credential in a string that ends up in logs and error messages, so
    # this check comes first and does not repeat the value.
    if "@" in endpoint:
        raise InvalidQueryError(f"{name} must not contain user:password@; use auth instead")
    try:
        parts = urlsplit(endpoint.strip())
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError as exc:
        raise InvalidQueryError(f"{name} {endpoint!r} is not a valid URL: {exc}") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidQueryError(f"{name} must be an http(s) URL with a host, not {endpoint!r}")
    if parts.query or parts.fragment or endpoint.strip().endswith(("?", "#")):
        raise InvalidQueryError(f"{name} must not have a query or fragment: {endpoint!r}")
    if not endpoint.isascii():
        raise InvalidQueryError(f"{name} must be ASCII (punycode for the host): {endpoint!r}")
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def host_header(url: str) -> str:
    """host[:port] as HTTP sends it: the port only when it is not the scheme's default."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    if parts.port is not None and parts.port == _DEFAULT_PORTS.get(parts.scheme):
        netloc = netloc.rpartition(":")[0]
    return netloc


def seconds(name: str, value: object, *, allow_zero: bool = False) -> float:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not number or not math.isfinite(value) or not (value >= 0 if allow_zero else value > 0):
        kind = "a number of seconds >= 0" if allow_zero else "a positive number of seconds"
        raise InvalidQueryError(f"{name} must be {kind}, not {value!r}")
    return float(value)


def header_value(name: str, value: object) -> str:
    """Text safe to send as a header: http.client encodes Latin-1 and a newline splits headers."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidQueryError(f"{name} must be non-empty printable ASCII text")
    if not (value.isascii() and value.isprintable()):
        # The value itself is not repeated: it may be a credential pasted with a stray newline.
        raise InvalidQueryError(f"{name} must be printable ASCII (no line breaks or accents)")
    return value.strip()


def text(response: requests.Response) -> str:
    # Not response.text: without a charset requests guesses, and error bodies are UTF-8 JSON.
    return response.content.decode("utf-8", errors="replace")


def secrets_in(headers: Mapping[str, str], names: tuple[str, ...]) -> list[str]:
    """The credential values among headers, and their long parts, longest first."""
    wanted = {name.lower() for name in names}
    values = [value for name, value in headers.items() if name.lower() in wanted and value]
    # Also each word of a "Scheme credential" value, as long as a token or key.
    words = [word for value in values for word in value.split() if len(word) >= 16]
    parts = [part for value in values for part in _SECRET_PART.findall(value)]
    parts += [word for word in words if "=" not in word]
    return sorted(set(values + parts), key=len, reverse=True)


def scrub(text: str, secrets: list[str]) -> str:
    """Error bodies may echo what we sent (the gateway quotes its canonical request).

    The mark has no angle brackets: quoting an HTML page strips tags, and would strip it too.
    """
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[hidden]")
    return text


def describe_cause(exc: BaseException) -> str:
    """The root cause a person can act on, dug out of requests' and urllib3's wrappers."""
    chain = exception_chain(exc)
    checks: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], str], ...] = (
        (ConnectionRefusedError, "connection refused"),
        ((socket.gaierror, urllib3.exceptions.NameResolutionError), "host name not found"),
        (ConnectionResetError, "connection reset by the server"),
        (urllib3.exceptions.ProtocolError, "the connection broke off mid-response"),
    )
    for kinds, description in checks:
        if any(isinstance(error, kinds) for error in chain):
            return description
    for error in chain:
        if isinstance(error, ssl.SSLError):
            return f"TLS failed ({error.reason or error})"
        if isinstance(error, TimeoutError | urllib3.exceptions.TimeoutError) and not isinstance(
            error, urllib3.exceptions.NewConnectionError
        ):
            return "timed out"
    for error in reversed(chain):
        if isinstance(error, OSError) and error.strerror:
            return error.strerror.lower()
    return type(exc).__name__


def exception_chain(exc: BaseException) -> list[BaseException]:
    """exc and every exception it wraps (args, urllib3's .reason, __cause__, __context__)."""
    found: list[BaseException] = []
    pending: list[object] = [exc]
    while pending and len(found) < 20:
        error = pending.pop(0)
        if not isinstance(error, BaseException) or any(error is seen for seen in found):
            continue
        found.append(error)
        pending.extend(error.args)
        pending.extend([getattr(error, "reason", None), error.__cause__, error.__context__])
    return found
