"""HTTP client for the ModelArts service list; plain requests, no Django."""

from __future__ import annotations

import json
import logging
import re
import socket
import ssl
from collections.abc import Mapping
from urllib.parse import quote, urlsplit

import requests
import urllib3.exceptions

from .auth import SECRET_HEADERS, Auth
from .errors import APIError, InvalidQueryError, ResponseError, TransportError, excerpt
from .query import MAX_LIMIT, ServiceQuery
from .records import ServicePage, ServiceRecord, Snapshot

logger = logging.getLogger(__name__)

OFFSET_MODES = ("page", "record")
_PROJECT_ID = re.compile(r"[A-Za-z0-9._~-]{1,128}")
# Parts of a credential header long enough to be a key or signature (an AK is 20 characters).
_SECRET_PART = re.compile(r"[^\s,=;]{16,}")


class ModelArtsClient:
    """Reads GET /v1/{project_id}/services of one ModelArts endpoint.

    Construction errors are InvalidQueryError (a ValueError), like every other bad argument.
    """

    def __init__(
        self,
        endpoint: str,
        project_id: str,
        auth: Auth,
        *,
        timeout: float = 30.0,
        connect_timeout: float = 5.0,
        session: requests.Session | None = None,
        offset_mode: str = "page",
        max_pages: int = 10_000,
        user_agent: str = "modelarts-dashboard/0.1",
    ):
        self.endpoint = _check_endpoint(endpoint)
        self.project_id = _check_project_id(project_id)
        if not callable(getattr(auth, "headers_for", None)):
            # Only the type: a token passed here by mistake must not end up in the message.
            raise InvalidQueryError(
                f"auth must have a headers_for method, not a {type(auth).__name__}"
            )
        if offset_mode not in OFFSET_MODES:
            raise InvalidQueryError(f"offset_mode must be 'page' or 'record', not {offset_mode!r}")
        if not isinstance(max_pages, int) or isinstance(max_pages, bool) or max_pages < 1:
            raise InvalidQueryError(f"max_pages must be a whole number >= 1, not {max_pages!r}")
        self.offset_mode = offset_mode
        self.max_pages = max_pages
        self._auth = auth
        self._timeouts = (
            _seconds("connect_timeout", connect_timeout),
            _seconds("timeout", timeout),
        )
        self._user_agent = _header_value("user_agent", user_agent)
        self._host = urlsplit(self.endpoint).netloc
        self._owns_session = session is None
        self._session = session if session is not None else requests.Session()

    def __repr__(self) -> str:
        return f"ModelArtsClient({self.endpoint!r}, {self.project_id!r}, {self._auth!r})"

    def __enter__(self) -> ModelArtsClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the session if the client made it; a session passed in is the caller's."""
        if self._owns_session:
            self._session.close()

    def list_services(self, query: ServiceQuery | None = None) -> ServicePage:
        """One request: one page of services matching the query."""
        body = self._get_json(self._services_url(query or ServiceQuery()))
        try:
            return ServicePage.from_json(body)
        except ResponseError as exc:
            raise ResponseError(f"{self._host} sent an unusable service list: {exc}") from exc

    def get_service_list(self, **sdk_kwargs: str | int | None) -> ServicePage:
        """list_services with the parameter names of the SDK's Predictor.get_service_list."""
        return self.list_services(ServiceQuery.from_sdk(**sdk_kwargs))

    def fetch_all(self, query: ServiceQuery | None = None, *, page_size: int = 1000) -> Snapshot:
        """Every service matching the query, paging as offset_mode says (API.md §1.7)."""
        _check_page_size(page_size)
        base = query or ServiceQuery()
        seen: dict[str, ServiceRecord] = {}
        duplicates = total_count = pages = 0
        while pages < self.max_pages:
            offset = pages if self.offset_mode == "page" else pages * page_size
            page = self.list_services(base.with_page(offset, page_size))
            pages += 1
            total_count = page.total_count
            before = len(seen)
            duplicates += _merge(seen, page.services)
            if len(seen) >= total_count or not page.services or len(seen) == before:
                break
        return Snapshot(
            services=tuple(seen.values()),
            total_count=total_count,
            pages=pages,
            duplicates=duplicates,
            complete=len(seen) == total_count,
        )

    def _services_url(self, query: ServiceQuery) -> str:
        # Built by hand, not with requests' params=, so that the URL sent is byte for byte the
        # one AK/SK signing covers: percent-encoding with only A-Za-z0-9-_.~ left as is.
        url = f"{self.endpoint}/v1/{self.project_id}/services"
        params = query.to_params()
        if not params:
            return url
        return url + "?" + "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in params)

    def _get_json(self, url: str) -> object:
        response = self._request("GET", url)
        if not 200 <= response.status_code < 300:
            raise self._api_error(response)
        try:
            return json.loads(response.content)
        except (ValueError, RecursionError) as exc:
            raise ResponseError(self._not_json(response)) from exc

    def _request(self, method: str, url: str) -> requests.Response:
        """The one place a request is sent (retries will wrap this)."""
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": self._user_agent,
        }
        headers = self._auth.headers_for(method, url, headers)
        logger.debug("%s %s", method, url)
        try:
            # No redirects: requests would forward X-Auth-Token to whatever host it is sent to.
            return self._session.request(
                method, url, headers=headers, timeout=self._timeouts, allow_redirects=False
            )
        except requests.exceptions.RequestException as exc:
            raise TransportError(self._transport_message(exc)) from exc

    def _transport_message(self, exc: requests.exceptions.RequestException) -> str:
        connect_timeout, read_timeout = self._timeouts
        if isinstance(exc, requests.exceptions.ConnectTimeout):
            cause = f"timed out after {connect_timeout:g} s connecting"
        elif isinstance(exc, requests.exceptions.ReadTimeout):
            cause = f"timed out after {read_timeout:g} s waiting for the response"
        else:
            cause = _describe_cause(exc)
        return f"could not reach {self._host}: {cause}"

    def _api_error(self, response: requests.Response) -> APIError:
        error = APIError.from_body(response.status_code, _text(response), response.headers)
        secrets = _secrets(response.request.headers)
        return APIError(
            status=error.status,
            code=_scrub(error.code, secrets),
            message=_scrub(error.message, secrets),
            request_id=error.request_id,
        )

    def _not_json(self, response: requests.Response) -> str:
        content_type = response.headers.get("Content-Type") or "no Content-Type"
        if not response.content.strip():
            return f"{self._host} answered HTTP {response.status_code} with an empty body"
        sample = _scrub(excerpt(_text(response)), _secrets(response.request.headers))
        return (
            f"{self._host} answered HTTP {response.status_code} with a body that is not JSON"
            f" ({content_type}): {sample}"
        )


def _merge(seen: dict[str, ServiceRecord], services: tuple[ServiceRecord, ...]) -> int:
    """Add the services not seen yet, first seen wins; return how many were seen already."""
    duplicates = 0
    for record in services:
        # Services move between pages while we read (new ones sort first by publish_at).
        if record.service_id in seen:
            duplicates += 1
        else:
            seen[record.service_id] = record
    return duplicates


def _check_page_size(page_size: object) -> None:
    if not isinstance(page_size, int) or isinstance(page_size, bool):
        raise InvalidQueryError(f"page_size must be a whole number, not {page_size!r}")
    if not 1 <= page_size <= MAX_LIMIT:
        raise InvalidQueryError(f"page_size must be between 1 and {MAX_LIMIT}, not {page_size}")


def _check_endpoint(endpoint: object) -> str:
    if not isinstance(endpoint, str) or not endpoint.strip():
        raise InvalidQueryError(
            "endpoint is empty; e.g. https://modelarts.cn-north-4.myhuaweicloud.com"
        )
    # Userinfo would be a credential in a string that ends up in logs and error messages, so
    # this check comes first and does not repeat the value.
    if "@" in endpoint:
        raise InvalidQueryError("endpoint must not contain user:password@; use auth instead")
    try:
        parts = urlsplit(endpoint.strip())
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError as exc:
        raise InvalidQueryError(f"endpoint {endpoint!r} is not a valid URL: {exc}") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidQueryError(f"endpoint must be an http(s) URL with a host, not {endpoint!r}")
    if parts.query or parts.fragment or endpoint.strip().endswith(("?", "#")):
        raise InvalidQueryError(f"endpoint must not have a query or fragment: {endpoint!r}")
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def _check_project_id(project_id: object) -> str:
    if not isinstance(project_id, str) or not _PROJECT_ID.fullmatch(project_id):
        raise InvalidQueryError(
            f"project_id must be the IAM project ID (letters, digits, '-', '_', '.', '~'),"
            f" not {project_id!r}"
        )
    return project_id


def _seconds(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise InvalidQueryError(f"{name} must be a positive number of seconds, not {value!r}")
    return float(value)


def _header_value(name: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip() or not value.isprintable():
        raise InvalidQueryError(f"{name} must be non-empty printable text, not {value!r}")
    return value


def _text(response: requests.Response) -> str:
    # Not response.text: without a charset requests guesses, and error bodies are UTF-8 JSON.
    return response.content.decode("utf-8", errors="replace")


def _describe_cause(exc: BaseException) -> str:
    """The root cause a person can act on, dug out of requests' and urllib3's wrappers."""
    chain = _exception_chain(exc)
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


def _exception_chain(exc: BaseException) -> list[BaseException]:
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


def _secrets(headers: Mapping[str, str]) -> list[str]:
    wanted = {name.lower() for name in SECRET_HEADERS}
    values = [value for name, value in headers.items() if name.lower() in wanted and value]
    parts = [part for value in values for part in _SECRET_PART.findall(value)]
    return sorted(set(values + parts), key=len, reverse=True)


def _scrub(text: str, secrets: list[str]) -> str:
    """Error bodies may echo what we sent (the gateway quotes its canonical request)."""
    for secret in secrets:
        text = text.replace(secret, "<hidden>")
    return text
