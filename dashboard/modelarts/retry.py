"""When and how long to wait before asking ModelArts again (API.md §4: no documented limits)."""

from __future__ import annotations

import random
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime

from .errors import APIError, DeadlineError, InvalidQueryError, ModelArtsError, TransportError
from .transport import seconds

# Safe to repeat for a GET: the server failed, was overloaded, or a gateway lost the backend.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# The statuses RFC 9110 gives Retry-After a meaning for.
RETRY_AFTER_STATUSES = frozenset({429, 503})
MAX_ATTEMPTS = 100


@dataclass(frozen=True)
class RetryPolicy:
    """attempts counts the first request too, so RetryPolicy(attempts=1) never retries."""

    attempts: int = 4
    backoff: float = 0.5
    max_backoff: float = 8.0
    retry_after_cap: float = 30.0

    def __post_init__(self) -> None:
        attempts = self.attempts
        if not isinstance(attempts, int) or isinstance(attempts, bool):
            raise InvalidQueryError(f"attempts must be a whole number, not {attempts!r}")
        if not 1 <= attempts <= MAX_ATTEMPTS:
            raise InvalidQueryError(
                f"attempts must be between 1 and {MAX_ATTEMPTS}, not {attempts}"
            )
        for name in ("backoff", "max_backoff", "retry_after_cap"):
            seconds(name, getattr(self, name), allow_zero=True)
        if self.max_backoff < self.backoff:
            raise InvalidQueryError(
                f"max_backoff ({self.max_backoff:g} s) must not be below backoff"
                f" ({self.backoff:g} s)"
            )

    def delay(self, failures: int, rng: random.Random, retry_after: float | None = None) -> float:
        """Seconds to wait after the failures-th failed attempt.

        Full jitter (a uniform draw up to the exponential step) keeps many pollers that failed
        together from coming back together; a server's Retry-After wins, up to the cap.
        """
        if retry_after is not None:
            return min(retry_after, self.retry_after_cap)
        step = self.backoff * 2 ** min(failures - 1, 32)
        return rng.uniform(0.0, min(step, self.max_backoff))


def retryable(error: ModelArtsError) -> bool:
    if isinstance(error, APIError):
        return error.status in RETRY_STATUSES
    # A missed deadline is final: retrying is exactly what it forbids.
    return isinstance(error, TransportError) and not isinstance(error, DeadlineError)


def retry_after(status: int, headers: Mapping[str, str]) -> float | None:
    """The seconds a 429 or 503 asks us to wait, or None if it does not say (or says nonsense).

    An HTTP date is measured against the response's own Date header when there is one, so a
    skewed local clock does not stretch or cancel the wait.
    """
    value = (headers.get("Retry-After") or "").strip()
    if status not in RETRY_AFTER_STATUSES or not value:
        return None
    if re.fullmatch(r"\d{1,9}(\.\d*)?", value):
        # RFC 9110 says whole seconds; a fraction costs nothing to honour.
        return float(value)
    when = _http_date(value)
    if when is None:
        return None
    now = _http_date(headers.get("Date") or "") or time.time()
    return max(0.0, when - now)


def _http_date(value: str) -> float | None:
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    # An HTTP date is GMT; a date without a zone is read as such rather than as local time.
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
