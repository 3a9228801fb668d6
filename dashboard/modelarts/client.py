"""HTTP client for the ModelArts service list; plain requests, no Django."""

from __future__ import annotations

import json
import logging
import random
import re
import time
import unicodedata
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar
from urllib.parse import quote, urlsplit

import requests

from .auth import SECRET_HEADERS, Auth, Renewable
from .detail import EVENTS_LIMIT, EventPage, Monitor, ServiceDetail, UpdateLogs, event_params
from .errors import (
    SERVICE_NOT_FOUND,
    APIError,
    AuthError,
    DeadlineError,
    InvalidQueryError,
    ModelArtsError,
    ResponseError,
    ServiceNotFound,
    TransportError,
    excerpt,
)
from .query import MAX_LIMIT, ServiceQuery
from .records import Kept, ServicePage, ServiceRecord, Snapshot
from .retry import RETRY_STATUSES, RetryPolicy, retry_after, retryable
from .signer import encode_query
from .transport import (
    check_endpoint,
    describe_cause,
    header_value,
    scrub,
    seconds,
    secrets_in,
    text,
)

logger = logging.getLogger(__name__)

OFFSET_MODES = ("page", "record")
_PROJECT_ID = re.compile(r"[A-Za-z0-9._~-]{1,128}")
MAX_SERVICE_ID = 256
Parsed = TypeVar("Parsed")


@dataclass(frozen=True)
class _Deadline:
    at: float  # a time.monotonic() value
    seconds: float  # the budget it was given, for messages


class ModelArtsClient:
    """Reads GET /v1/{project_id}/services of one ModelArts endpoint, and the per-service APIs
    under it: one service's detail, events, monitoring figures and update logs.

    Construction errors are InvalidQueryError (a ValueError), like every other bad argument.
    Everything a call raises is a ModelArtsError.
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
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], object] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ):
        self.endpoint = check_endpoint(
            endpoint, example="https://modelarts.cn-north-4.myhuaweicloud.com"
        )
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
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise InvalidQueryError(f"retry must be a RetryPolicy, not {type(retry).__name__}")
        self.offset_mode = offset_mode
        self.max_pages = max_pages
        self.retry = retry or RetryPolicy()
        self._auth = auth
        self._timeouts = (
            seconds("connect_timeout", connect_timeout),
            seconds("timeout", timeout),
        )
        self._user_agent = header_value("user_agent", user_agent)
        self._host = urlsplit(self.endpoint).netloc
        self._owns_session = session is None
        self._session = session if session is not None else requests.Session()
        self._sleep = sleep
        self._monotonic = monotonic
        self._rng = rng or random.Random()

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
        """One page of services matching the query (retried as the RetryPolicy allows)."""
        return self._list(query or ServiceQuery(), page=1, deadline=None)

    def get_service_list(self, **sdk_kwargs: str | int | None) -> ServicePage:
        """list_services with the parameter names of the SDK's Predictor.get_service_list."""
        return self.list_services(ServiceQuery.from_sdk(**sdk_kwargs))

    def get_service(self, service_id: str, *, deadline: float | None = None) -> ServiceDetail:
        """ShowService: one service's state, error_msg and models (their env names only).

        ServiceNotFound if ModelArts does not know the service (any more). deadline, here and
        in the other per-service calls, is a time.monotonic() value as for fetch_all.
        """
        return self._detail(
            service_id, "", [], deadline, lambda body: ServiceDetail.from_json(body, owned=True)
        )

    def list_events(
        self,
        service_id: str,
        *,
        event_type: str | None = None,
        start_time: datetime | None = None,
        end_time: datetime | None = None,
        offset: int = 0,
        limit: int = EVENTS_LIMIT,
        order: str | None = None,
        deadline: float | None = None,
    ) -> EventPage:
        """One page of ModelArts' event log of a service (API.md §2.3), newest first by default.

        event_type is normal or abnormal; start_time and end_time must be timezone-aware.
        offset is sent as given: like the list's, the docs call it the "start page".
        """
        params = event_params(
            event_type=event_type,
            start_time=start_time,
            end_time=end_time,
            offset=offset,
            limit=limit,
            order=order,
        )
        return self._detail(service_id, "events", params, deadline, EventPage.from_json)

    def get_monitor(self, service_id: str, *, deadline: float | None = None) -> Monitor:
        """Instances running against those asked for, requests per minute, each model's use."""
        return self._detail(service_id, "monitor", [], deadline, Monitor.from_json)

    def list_update_logs(self, service_id: str, *, deadline: float | None = None) -> UpdateLogs:
        """The deployment history of a service: each update's result and models (env names
        only)."""
        return self._detail(service_id, "logs", [], deadline, UpdateLogs.from_json)

    def fetch_all(
        self,
        query: ServiceQuery | None = None,
        *,
        page_size: int = 1000,
        deadline: float | None = None,
        keep: Callable[[ServiceRecord], Kept] | None = None,
    ) -> Snapshot[Kept]:
        """Every service matching the query, paging as offset_mode says (API.md §1.7).

        deadline is a time.monotonic() value: no page or retry starts after it, no back-off
        sleeps past it, and no request waits past it for an answer. Missing it raises the last
        error (or DeadlineError if nothing failed) saying so.

        keep, if given, turns each new record into what the snapshot holds instead, as its page
        arrives: a caller that needs a compact form of 100,000 services never holds them all
        as records.
        """
        _check_page_size(page_size)
        budget = self._budget(deadline)
        base = query or ServiceQuery()
        seen: set[str] = set()
        kept: list = []
        rejected: list[str] = []
        totals: list[int] = []
        duplicates = total_count = pages = 0

        def request(number: int) -> Future[ServicePage]:
            if budget is not None and self._monotonic() >= budget.at:
                raise DeadlineError(
                    f"{self._host}: poll deadline of {budget.seconds:.3g} s reached on page"
                    f" {number}, after reading {len(seen)} of {total_count} services"
                )
            offset = number - 1 if self.offset_mode == "page" else (number - 1) * page_size
            paged = base.with_page(offset, page_size)
            return pages_in.submit(self._list, paged, page=number, deadline=budget)

        # The next page is asked for before this one's records are kept, so the API answers
        # while this process converts them: the same requests in the same order, overlapped.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="modelarts-pages") as pages_in:
            pending: Future[ServicePage] | None = request(1)
            while pending is not None:
                page = pending.result()
                pages += 1
                total_count = page.total_count
                totals.append(total_count)
                rejected += [f"page {pages}: {why}" for why in page.rejected]
                fresh, repeated = _unseen(seen, page.services)
                duplicates += repeated
                # A page that adds nothing new would repeat forever.
                more = fresh and len(seen) + len(rejected) < total_count
                pending = request(pages + 1) if more and pages < self.max_pages else None
                kept += fresh if keep is None else map(keep, fresh)
        return Snapshot(
            services=tuple(kept),
            total_count=total_count,
            pages=pages,
            duplicates=duplicates,
            # A total that moved while paging means the pages shifted under us: a service may
            # have slid between two pages unseen, so this listing cannot prove anything gone.
            complete=len(seen) == total_count and not rejected and len(set(totals)) == 1,
            rejected=tuple(rejected),
            totals=tuple(totals),
        )

    def _budget(self, deadline: object) -> _Deadline | None:
        if deadline is None:
            return None
        if isinstance(deadline, bool) or not isinstance(deadline, int | float):
            raise InvalidQueryError(
                f"deadline must be a time.monotonic() value, not {type(deadline).__name__}"
            )
        return _Deadline(at=float(deadline), seconds=max(0.0, deadline - self._monotonic()))

    def _list(self, query: ServiceQuery, *, page: int, deadline: _Deadline | None) -> ServicePage:
        body = self._get_json(self._services_url(query), what=f"page {page}", deadline=deadline)
        try:
            return ServicePage.from_json(body, owned=True)
        except ResponseError as exc:
            raise ResponseError(f"{self._host} sent an unusable service list: {exc}") from exc

    def _detail(
        self,
        service_id: str,
        api: str,
        params: list[tuple[str, str]],
        deadline: float | None,
        parse: Callable[[object], Parsed],
    ) -> Parsed:
        """GET one per-service API (api: "" for ShowService, else events, monitor or logs) and
        parse its body, with the list's retries, deadline and errors."""
        service_id = _check_service_id(service_id)
        budget = self._budget(deadline)
        # The ID is user data: escaped whole, so "/", "?" or "#" cannot change the path.
        url = f"{self.endpoint}/v1/{self.project_id}/services/{quote(service_id, safe='')}"
        url += f"/{api}" if api else ""
        if params:
            url = f"{url}?{encode_query(params)}"
        what = f"{api or 'detail'} of service {service_id!r}"
        body = self._get_json(url, what=what, deadline=budget, service_id=service_id)
        answered_for = body.get("service_id") if isinstance(body, dict) else None
        # A caching proxy or a routing mistake must not show one service's state as another's.
        if isinstance(answered_for, str) and answered_for != service_id:
            raise ResponseError(
                f"{self._host} sent the {api or 'detail'} of service {answered_for!r}"
                f" when asked for {service_id!r}"
            )
        try:
            return parse(body)
        except ResponseError as exc:
            raise ResponseError(f"{self._host} sent an unusable {what}: {exc}") from exc

    def _services_url(self, query: ServiceQuery) -> str:
        # Built by hand, not with requests' params=, so that the URL sent is byte for byte the
        # one AK/SK signing covers (encode_query is the canonical query string).
        url = f"{self.endpoint}/v1/{self.project_id}/services"
        params = query.to_params()
        return f"{url}?{encode_query(params)}" if params else url

    def _get_json(
        self, url: str, *, what: str, deadline: _Deadline | None, service_id: str | None = None
    ) -> object:
        response = self._request("GET", url, what=what, deadline=deadline)
        if not 200 <= response.status_code < 300:
            raise self._api_error(response, service_id=service_id)
        try:
            return json.loads(response.content)
        except (ValueError, RecursionError) as exc:
            # ValueError covers UnicodeDecodeError and ints too long to convert.
            raise ResponseError(self._not_json(response)) from exc

    def _request(
        self, method: str, url: str, *, what: str = "page 1", deadline: _Deadline | None = None
    ) -> requests.Response:
        """The one place a request is sent: credentials, one renewal on 401, retries.

        Returns any answer that is not worth repeating (2xx, most 4xx) for the caller to read;
        raises the last error, with a note on what was tried, once retrying has to stop.
        """
        started = self._monotonic()
        attempts, renewed = 0, False
        while True:
            attempts += 1
            wait: float | None = None
            try:
                response = self._attempt(method, url, deadline)
                if response.status_code == 401 and not renewed and self._renew(response):
                    renewed, attempts = True, attempts - 1
                    continue
                if response.status_code not in RETRY_STATUSES:
                    return response
                error: ModelArtsError = self._api_error(response)
                wait = retry_after(response.status_code, response.headers)
            except (TransportError, APIError) as exc:  # APIError: IAM's, from headers_for
                if not retryable(exc):
                    raise
                error = exc
            delay = self.retry.delay(attempts, self._rng, wait)
            self._stop_if_out_of_tries(error, attempts, started, delay, what, deadline)
            logger.info(
                "%s %s from %s failed (%s); retrying in %.2f s, attempt %d of %d",
                method,
                what,
                self._host,
                error,
                delay,
                attempts + 1,
                self.retry.attempts,
            )
            self._sleep(delay)

    def _stop_if_out_of_tries(
        self,
        error: ModelArtsError,
        attempts: int,
        started: float,
        delay: float,
        what: str,
        deadline: _Deadline | None,
    ) -> None:
        now = self._monotonic()
        tries = f"{attempts} attempt{'s' if attempts > 1 else ''} in {now - started:.1f} s"
        if attempts >= self.retry.attempts:
            if attempts > 1:
                raise error.with_note(f"gave up after {tries}") from error
            raise error
        if deadline is not None and now + delay >= deadline.at:
            note = f"poll deadline of {deadline.seconds:.3g} s reached on {what} after {tries}"
            raise error.with_note(note) from error

    def _attempt(self, method: str, url: str, deadline: _Deadline | None) -> requests.Response:
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": self._user_agent,
        }
        headers = self._auth.headers_for(method, url, headers)
        timeouts = self._timeouts_before(deadline)
        logger.debug("%s %s", method, url)
        try:
            # No redirects: requests would forward X-Auth-Token to whatever host it is sent to.
            response = self._session.request(
                method, url, headers=headers, timeout=timeouts, allow_redirects=False
            )
        except requests.exceptions.RequestException as exc:
            raise TransportError(self._transport_message(exc, timeouts)) from exc
        self._check_complete(response)
        return response

    def _timeouts_before(self, deadline: _Deadline | None) -> tuple[float, float]:
        """The usual timeouts, shortened so that no request waits past the deadline."""
        if deadline is None:
            return self._timeouts
        left = deadline.at - self._monotonic()
        if left <= 0:
            raise DeadlineError(f"{self._host}: poll deadline of {deadline.seconds:.3g} s reached")
        connect_timeout, read_timeout = self._timeouts
        return min(connect_timeout, left), min(read_timeout, left)

    def _renew(self, response: requests.Response) -> bool:
        """Ask a renewable auth (IAM password) for fresh credentials after a 401."""
        if not isinstance(self._auth, Renewable):
            return False
        error = self._api_error(response)
        if not self._auth.invalidate(response.request.headers):
            return False
        logger.info(
            "%s rejected the credentials (%s); renewing them and retrying once", self._host, error
        )
        return True

    def _check_complete(self, response: requests.Response) -> None:
        # urllib3 normally raises on a short body itself; this catches a Content-Length that
        # slipped through (a proxy that mangles it, a lenient adapter) before the JSON parser
        # reports a cut-off body as "not JSON".
        declared = response.headers.get("Content-Length", "")
        encoded = response.headers.get("Content-Encoding", "identity").lower() != "identity"
        if response.request.method == "HEAD" or encoded or not declared.isdigit():
            return
        if len(response.content) < int(declared):
            raise TransportError(
                f"could not read the whole answer from {self._host}: the body was cut off"
                f" after {len(response.content)} of {declared} bytes"
            )

    def _transport_message(
        self, exc: requests.exceptions.RequestException, timeouts: tuple[float, float]
    ) -> str:
        connect_timeout, read_timeout = timeouts
        if isinstance(exc, requests.exceptions.ConnectTimeout):
            cause = f"timed out after {connect_timeout:.3g} s connecting"
        elif isinstance(exc, requests.exceptions.ReadTimeout):
            cause = f"timed out after {read_timeout:.3g} s waiting for the response"
        else:
            cause = describe_cause(exc)
        return f"could not reach {self._host}: {cause}"

    def _api_error(self, response: requests.Response, service_id: str | None = None) -> APIError:
        secrets = secrets_in(response.request.headers, SECRET_HEADERS)
        # Scrubbed whole, before any excerpt: a secret cut in two would no longer match.
        body = scrub(text(response), secrets)
        error = APIError.from_body(response.status_code, body, response.headers)
        fields = {
            "status": error.status,
            "code": scrub(error.code, secrets),
            "message": scrub(error.message, secrets),
            "request_id": error.request_id,
            "host": self._host,
        }
        # Only the documented code: a bare 404 may as well be a wrong endpoint path.
        if service_id is not None and error.code == SERVICE_NOT_FOUND:
            return ServiceNotFound(**fields, service_id=service_id)
        if error.status == 401:
            return AuthError(**fields)
        return APIError(**fields)

    def _not_json(self, response: requests.Response) -> str:
        content_type = response.headers.get("Content-Type") or "no Content-Type"
        if not response.content.strip():
            return f"{self._host} answered HTTP {response.status_code} with an empty body"
        if b"envs" in response.content:
            # A cut-off service detail: its excerpt could quote an environment variable's value.
            return (
                f"{self._host} answered HTTP {response.status_code} with a body that is not JSON"
                f" ({content_type}, {len(response.content)} bytes, not quoted: it names envs)"
            )
        sample = excerpt(
            scrub(text(response), secrets_in(response.request.headers, SECRET_HEADERS))
        )
        return (
            f"{self._host} answered HTTP {response.status_code} with a body that is not JSON"
            f" ({content_type}): {sample}"
        )


def _unseen(seen: set[str], services: tuple[ServiceRecord, ...]) -> tuple[list[ServiceRecord], int]:
    """The services not seen yet (first seen wins), and how many were seen already."""
    fresh = []
    for record in services:
        # Services move between pages while we read (new ones sort first by publish_at).
        if record.service_id not in seen:
            seen.add(record.service_id)
            fresh.append(record)
    return fresh, len(services) - len(fresh)


def _check_page_size(page_size: object) -> None:
    if not isinstance(page_size, int) or isinstance(page_size, bool):
        raise InvalidQueryError(f"page_size must be a whole number, not {page_size!r}")
    if not 1 <= page_size <= MAX_LIMIT:
        raise InvalidQueryError(f"page_size must be between 1 and {MAX_LIMIT}, not {page_size}")


def _check_service_id(service_id: object) -> str:
    if not isinstance(service_id, str) or not service_id.strip():
        raise InvalidQueryError(f"service_id must be non-empty text, not {service_id!r}")
    if len(service_id) > MAX_SERVICE_ID:
        raise InvalidQueryError(
            f"service_id is {len(service_id)} characters long; at most {MAX_SERVICE_ID}"
        )
    # "." and ".." survive escaping and would be resolved away as dot segments.
    if service_id in (".", "..") or any(unicodedata.category(char) == "Cc" for char in service_id):
        raise InvalidQueryError(f"{service_id!r} is not a service ID")
    return service_id


def _check_project_id(project_id: object) -> str:
    # "." and ".." would be dot segments that requests resolves away, changing the path.
    if (
        not isinstance(project_id, str)
        or not _PROJECT_ID.fullmatch(project_id)
        or project_id in (".", "..")
    ):
        raise InvalidQueryError(
            f"project_id must be the IAM project ID (letters, digits, '-', '_', '.', '~'),"
            f" not {project_id!r}"
        )
    return project_id
