"""AK/SK request signing, SDK-HMAC-SHA256 (API.md §3b), for both ends of a request.

The client signs with sign_headers; a server (the simulator) checks a request by rebuilding
the pieces with parse_authorization, canonical_request and sign. Every function is pure.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from urllib.parse import quote, unquote_to_bytes, urlsplit

from .errors import SignatureError

ALGORITHM = "SDK-HMAC-SHA256"
DATE_FORMAT = "%Y%m%dT%H%M%SZ"
DATE_HEADER = "X-Sdk-Date"
CONTENT_SHA256_HEADER = "X-Sdk-Content-Sha256"
EMPTY_BODY_SHA256 = hashlib.sha256(b"").hexdigest()
_AUTHORIZATION = re.compile(
    rf"{ALGORITHM}\s+Access=([^,\s]+),\s*SignedHeaders=([^,\s]+),\s*Signature=([0-9a-fA-F]+)\s*"
)


def canonical_uri(path: str) -> str:
    """The path decoded, each segment re-encoded, with the trailing '/' signing adds."""
    # Decoded as bytes so that a percent-escape that is not UTF-8 survives the round trip.
    segments = unquote_to_bytes(path).split(b"/")
    uri = "/".join(quote(segment, safe="") for segment in segments)
    return uri if uri.endswith("/") else uri + "/"


def canonical_query(query: str) -> str:
    """The raw query string as sorted name=value pairs, RFC 3986 encoded, space as %20."""
    pairs = []
    for part in query.split("&"):
        name, _, value = part.partition("=")
        if name:
            # unquote, not unquote_plus: this encoding never sends '+' for a space, so a '+'
            # that arrives is a plus sign (as Huawei's APIG signer reads it).
            pairs.append((unquote_to_bytes(name), unquote_to_bytes(value)))
    # Sorting the decoded UTF-8 bytes orders by code point, as the SDK sorts its str pairs.
    return _join(sorted(pairs))


def encode_query(pairs: Iterable[tuple[str, str]]) -> str:
    """The query string to send for these pairs: exactly the canonical one, so sent == signed."""
    return _join(sorted(pairs))


def _join(pairs: Iterable[tuple[str, str] | tuple[bytes, bytes]]) -> str:
    # quote() leaves only A-Z a-z 0-9 - _ . ~ alone when safe is empty: RFC 3986 unreserved.
    return "&".join(f"{quote(name, safe='')}={quote(value, safe='')}" for name, value in pairs)


def signed_header_names(headers: Mapping[str, str]) -> list[str]:
    """Every header name without '_', lower-cased and sorted: what a signature covers."""
    return sorted({name.lower() for name in headers if "_" not in name})


def canonical_headers(headers: Mapping[str, str], signed_headers: Iterable[str]) -> str:
    """One 'name:trimmed value' line per signed header; the block ends with a newline."""
    values = {name.lower(): value.strip() for name, value in headers.items()}
    lines = []
    for name in signed_headers:
        if name not in values:
            raise SignatureError(f"the signed header {name!r} is not in the request")
        lines.append(f"{name}:{values[name]}\n")
    return "".join(lines)


def body_sha256(headers: Mapping[str, str], body: bytes) -> str:
    # The SDK sends X-Sdk-Content-Sha256: UNSIGNED-PAYLOAD for bodies it does not hash.
    declared = _header(headers, CONTENT_SHA256_HEADER)
    return declared if declared is not None else hashlib.sha256(body).hexdigest()


def canonical_request(
    method: str,
    url: str,
    headers: Mapping[str, str],
    signed_headers: Iterable[str] | None = None,
    body: bytes = b"",
) -> str:
    """The canonical request of a full URL or a request target ('/path?query').

    signed_headers defaults to every signable header; a server passes the list it was sent.
    """
    names = signed_header_names(headers) if signed_headers is None else list(signed_headers)
    parts = urlsplit(url)
    return "\n".join(
        [
            method,
            canonical_uri(parts.path),
            canonical_query(parts.query),
            canonical_headers(headers, names),
            ";".join(names),
            body_sha256(headers, body),
        ]
    )


def string_to_sign(canonical: str, sdk_date: str) -> str:
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return f"{ALGORITHM}\n{sdk_date}\n{digest}"


def signature(to_sign: str, sk: str) -> str:
    """Lower-case hex HMAC-SHA256 keyed with the raw SK: no derived key in this mode."""
    return hmac.new(sk.encode("utf-8"), to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def sign(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    sk: str,
    signed_headers: Iterable[str] | None = None,
) -> str:
    """The hex signature of a request whose headers include X-Sdk-Date."""
    sdk_date = _header(headers, DATE_HEADER)
    if sdk_date is None:
        raise SignatureError(f"the request has no {DATE_HEADER} header to sign")
    canonical = canonical_request(method, url, headers, signed_headers, body)
    return signature(string_to_sign(canonical, sdk_date), sk)


def authorization(access: str, signed_headers: Iterable[str], hex_signature: str) -> str:
    return (
        f"{ALGORITHM} Access={access}, SignedHeaders={';'.join(signed_headers)},"
        f" Signature={hex_signature}"
    )


def parse_authorization(value: str) -> tuple[str, list[str], str]:
    """(access key, signed header names, signature) of an Authorization header value."""
    match = _AUTHORIZATION.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise SignatureError(
            f"the Authorization header is not '{ALGORITHM} Access=…, SignedHeaders=…, Signature=…'"
        )
    access, names, hex_signature = match.groups()
    return access, names.split(";"), hex_signature.lower()


def sign_headers(
    method: str, url: str, headers: Mapping[str, str], body: bytes, ak: str, sk: str
) -> dict[str, str]:
    """headers plus the Authorization header that signs every signable one of them."""
    names = signed_header_names(headers)
    hex_signature = sign(method, url, headers, body, sk, names)
    return {**headers, "Authorization": authorization(ak, names, hex_signature)}


def format_sdk_date(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime(DATE_FORMAT)


def parse_sdk_date(value: str) -> float:
    """The epoch seconds of an X-Sdk-Date value; a server rejects dates 15 min off its clock."""
    try:
        return datetime.strptime(value.strip(), DATE_FORMAT).replace(tzinfo=UTC).timestamp()
    except (ValueError, AttributeError) as exc:
        raise SignatureError(f"{DATE_HEADER} must look like 20240101T000000Z") from exc


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value.strip()
    return None
