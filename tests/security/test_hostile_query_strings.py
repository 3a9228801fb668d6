"""Random and malicious query strings on every page: never a 500, never unbounded work.

Hypothesis sends well over a thousand query strings (random keys and values, known parameters
with hostile values, raw strings with broken percent-encoding) to every URL, as full pages
and as HTMX requests, signed in and not; and random form data to the POST endpoints. Runs are
derandomized, so CI sees the same examples every time.
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import URLPattern, get_resolver
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dashboard.models import PollRun, Source
from dashboard.queries.services import PAGE_SIZES
from dashboard.statuses import STYLES
from dashboard.web.accounts import create_user
from dashboard.web.params import ENUM_MAX_LENGTH, MAX_STATUSES, ServiceFilterForm

# What each page may answer, signed in and not: anything else (a 500 above all) fails. Pages
# added later are sent the same query strings, held to OTHER until they are listed here.
SIGNED_IN = {
    "/": {200, 400},
    "/api/services": {200, 400},
    "/services.csv": {200, 400},
    "/polls/": {200, 400},
    "/views/": {200, 400},
    "/healthz": {200, 400, 503},
    "/login/": {302, 400},  # already signed in: sent on, to somewhere on this site
}
ANONYMOUS = {
    **dict.fromkeys(SIGNED_IN, {302, 400}),  # to the login page
    # The JSON API answers 401 (JSON), never a redirect a script cannot follow.
    **{path: {400, 401} for path in SIGNED_IN if path.startswith("/api/")},
    "/healthz": {200, 400, 401, 503},
    "/login/": {200, 400},
}
OTHER = {200, 302, 400, 401, 403, 404, 405, 429, 503}
MAX_BODY = 2 * 1024 * 1024
MAX_QUERIES = 30  # per request, whatever it asks for (about a dozen for a full page)

PARAMETERS = (
    "status", "infer_type", "owner", "source", "q", "sort", "page", "per_page", "outcome", "next",
)  # fmt: skip
SQLISH = (
    "' OR '1'='1",
    "1; DROP TABLE dashboard_service; --",
    '" OR 1=1 --',
    "1 UNION SELECT password FROM auth_user",
    "%' AND 1=1 --",
    "') OR ('a'='a",
    "%",
    "_",
    "\\",
    "%%",
    "[a-z]*",
    "(?i).*",
)
NUMBERS = (
    "9" * 40,
    "9" * 5000,  # past Python's int() digit limit
    str(2**63),
    str(-(2**63) - 1),
    "-1",
    "0",
    "-0",
    "+5",
    " 7 ",
    "2.5",
    "1e3",
    "NaN",
    "nan",
    "Infinity",
    "-inf",
    "1e9999",
    "1e-9999",
    "0x10",
    "1_000",
    "١٢٣",  # Arabic-Indic digits
    "10000001",
    "201",
)
MARKUP = (
    "<script>alert(1)</script>",
    '"><svg onload=alert(1)>',
    "javascript:alert(1)",
    "{{ 7*7 }}",
    "{% debug %}",
    "${7*7}",
)
ODD = (
    "",
    "\x00",
    "%00",
    "\u202e",
    "\u200b\u200d",
    "🔥🚀",
    "\r\nSet-Cookie: pwned=1",
    "../../etc/passwd",
    "/login/",
    "//evil.example/",
    "https://evil.example/",
    "/\\evil.example",
    "\\\\evil.example",
    "a" * 201,
)
VALID = (*STYLES, "-calls", "name", "-rate", "50", "200", "2", "ok", "failed", "fixture", "/")

keys = st.one_of(
    st.sampled_from(PARAMETERS),
    st.sampled_from(PARAMETERS).map(lambda key: f"{key}[]"),
    st.text(max_size=20),
    st.text(max_size=10).map(lambda key: f"{key}[]"),
)
values = st.one_of(
    st.sampled_from(SQLISH + NUMBERS + MARKUP + ODD + VALID),
    st.text(max_size=40),
    st.text(min_size=150, max_size=2000),
    st.integers(5_000, 20_000).map(lambda n: "a" * n),  # very long, cheaply
    st.integers().map(str),
    st.floats().map(str),
)
pairs = st.lists(st.tuples(keys, values), max_size=8)
repeated = st.builds(
    lambda key, value, times: [(key, value)] * times,
    st.sampled_from(PARAMETERS),
    st.sampled_from([v for v in SQLISH + NUMBERS + MARKUP + ODD + VALID if len(v) < 50])
    | st.text(max_size=20),
    st.integers(2, 1500),  # past DATA_UPLOAD_MAX_NUMBER_FIELDS too
)
# Raw query strings: stray and broken percent-escapes, separators, invalid UTF-8 when decoded.
raw = st.text(alphabet=st.sampled_from("qstaue=&;%+?/[]09AFfzZ\\#. \x00é🔥"), max_size=120)
broken_utf8 = st.binary(max_size=40).map(
    lambda data: "q=" + "".join(f"%{byte:02X}" for byte in data)
)
known = st.lists(
    st.tuples(st.sampled_from(PARAMETERS), st.sampled_from(SQLISH + NUMBERS + MARKUP + ODD)),
    min_size=1,
    max_size=4,
)
query_strings = st.one_of(
    pairs.map(urlencode), known.map(urlencode), repeated.map(urlencode), raw, broken_utf8
)


def every_url() -> list[str]:
    """Every URL without a parameter in it (the admin aside): POST-only ones answer GET too."""
    found = [
        f"/{pattern.pattern}"
        for pattern in get_resolver().url_patterns
        if isinstance(pattern, URLPattern) and not pattern.pattern.converters
    ]
    assert set(SIGNED_IN) <= set(found)
    return found


def wsgi(query: str) -> str:
    """A query string as a WSGI server hands it on: its bytes, read as Latin-1."""
    return query.encode("utf-8", "surrogatepass").decode("iso-8859-1")


def body_of(response) -> bytes:
    """The body, streamed or not, read no further than just past the size limit."""
    if not response.streaming:
        return response.content
    read = b""
    for chunk in response.streaming_content:
        read += chunk
        if len(read) > MAX_BODY:
            break
    return read


def assert_answered_sanely(response, body: bytes, allowed: set[int]) -> None:
    assert response.status_code in allowed, response.status_code
    assert b"Traceback" not in body
    assert len(body) < MAX_BODY
    if response.status_code == 302:
        target = urlsplit(response["Location"])
        # Never sent off-site, whatever `next` said.
        assert not target.scheme and not target.netloc, response["Location"]
        assert not response["Location"].startswith(("//", "/\\")), response["Location"]


@pytest.fixture
def seeded(make_service):
    other = Source.objects.create(name="other", endpoint="http://127.0.0.1:9", project_id="p")
    rows = [
        make_service("alpha", "running", owner="owner-a", description="GPU box"),
        make_service("bravo", "failed", owner="owner-b", infer_type="batch"),
        make_service("charlie", "concerning", invocation_times=0),
        make_service("delta", "deploying", progress=40, infer_type="edge"),
        make_service("echo", "rebooting", source=other),
        make_service("<script>alert(1)</script>", "<b>failed</b>", description="{{ 7*7 }}"),
        make_service("🔥 100% _off_", "stopped", owner="' OR '1'='1"),
    ]
    for source, ok in [(other, True), (rows[0].source, False)]:
        PollRun.objects.create(
            source=source,
            started_at=rows[0].first_seen_at,
            ok=ok,
            error_message="" if ok else "ModelArts.0203: The token in X-Auth-Token is invalid.",
        )
    return rows


def test_it_answers_random_and_malicious_query_strings_sanely(seeded, operator):
    clients = {"operator": Client(), "anonymous": Client()}
    clients["operator"].force_login(operator)
    sent: list[str] = []

    @settings(
        max_examples=1600,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
        ],
    )
    @given(
        path=st.sampled_from(every_url()),
        query=query_strings,
        htmx=st.booleans(),
        who=st.sampled_from(["operator", "operator", "operator", "anonymous"]),
        hx_current_url=st.none() | st.sampled_from(MARKUP + ODD[:12]),
    )
    def send(path, query, htmx, who, hx_current_url):
        headers = {"HX-Request": "true"} if htmx else {}
        if htmx and hx_current_url is not None:
            headers["HX-Current-URL"] = wsgi(hx_current_url)
        with CaptureQueriesContext(connection) as queries:
            response = clients[who].get(path, headers=headers, QUERY_STRING=wsgi(query))
            body = body_of(response)
        sent.append(query)
        allowed = (SIGNED_IN if who == "operator" else ANONYMOUS).get(path, OTHER)
        assert_answered_sanely(response, body, allowed)
        assert len(queries) <= MAX_QUERIES, [q["sql"] for q in queries]

    send()
    assert len(set(sent)) >= 1000  # distinct ones, not one string a thousand times


def form_data(names: tuple[str, ...]):
    return st.lists(
        st.tuples(st.one_of(st.sampled_from(names), st.text(max_size=15)), values), max_size=6
    )


def test_it_answers_random_form_data_to_the_post_endpoints_sanely(seeded, operator):
    viewer = create_user("viewer", "viewer-password-for-tests", "viewer")
    posted: list[str] = []
    forms = {
        "/refresh/": form_data(("due", "q", "status", "sort", "csrfmiddlewaretoken")),
        "/views/save": form_data(("name", "query")),
        "/login/": form_data(("username", "password", "next")),
    }
    allowed = {
        "/refresh/": {200, 302, 400, 403},
        "/views/save": {302, 400, 403, 409},  # 409: "replace the view of that name?"
        "/login/": {200, 302, 400, 429},
    }

    @settings(
        max_examples=150,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        path=st.sampled_from(sorted(forms)),
        data=st.data(),
        query=query_strings,
        htmx=st.booleans(),
        who=st.sampled_from(["operator", "viewer", "anonymous"]),
    )
    def post(path, data, query, htmx, who):
        client = Client()
        if who != "anonymous":
            client.force_login(operator if who == "operator" else viewer)
        encoded = urlencode(data.draw(forms[path]))
        response = client.post(
            path,
            data=encoded,
            content_type="application/x-www-form-urlencoded",
            headers={"HX-Request": "true"} if htmx else {},
            QUERY_STRING=wsgi(query),
        )
        posted.append(encoded)
        expected = allowed[path] if who != "anonymous" or path == "/login/" else {302, 400}
        assert_answered_sanely(response, body_of(response), expected)

    post()
    assert len(posted) >= 150


# The caps that keep every request bounded


def service_pages() -> list[str]:
    return ["/", "/api/services", "/services.csv"]


@pytest.mark.parametrize("per_page", [*map(str, PAGE_SIZES)])
def test_it_allows_the_page_sizes_it_offers(client, seeded, per_page):
    for path in service_pages():
        assert client.get(path, {"per_page": per_page}).status_code == 200


@pytest.mark.parametrize(
    "per_page",
    [str(max(PAGE_SIZES) + 1), "1000", "100000", "9" * 30, "0", "-1", "24", "NaN", "1e9999"],
)
def test_it_refuses_a_page_size_it_does_not_offer(client, seeded, per_page):
    for path in service_pages():
        assert client.get(path, {"per_page": per_page}).status_code == 400, path


def test_it_caps_the_length_of_a_search(client, seeded):
    cap = ServiceFilterForm.base_fields["q"].max_length
    assert cap == 200
    for path in service_pages():
        assert client.get(path, {"q": "a" * cap}).status_code == 200
        assert client.get(path, {"q": "a" * (cap + 1)}).status_code == 400
        assert client.get(path, {"q": "a" * 100_000}).status_code == 400


def test_it_caps_every_other_parameter(client, seeded):
    too_many_statuses = [f"s{n}" for n in range(MAX_STATUSES + 1)]
    for path in service_pages():
        ok = client.get(path, {"status": too_many_statuses[:MAX_STATUSES]})
        assert ok.status_code == 200
        for params in [
            {"status": too_many_statuses},
            {"status": "s" * (ENUM_MAX_LENGTH + 1)},
            {"infer_type": "t" * (ENUM_MAX_LENGTH + 1)},
            {"owner": "o" * 65},
            {"source": "s" * 65},
            {"page": "10000001"},
            {"page": "9" * 400},
            {"sort": "service_name; DROP TABLE dashboard_service"},
        ]:
            assert client.get(path, params).status_code == 400, (path, params)
    assert client.get("/polls/", {"page": "10000001"}).status_code == 400
    assert client.get("/polls/", {"outcome": "' OR 1=1"}).status_code == 400


def test_a_far_page_shows_the_last_one_without_counting_further(client, seeded):
    response = client.get("/api/services", {"page": "10000000"})
    assert response.status_code == 200
    assert response.json()["page"] == response.json()["pages"] == 1


def test_a_signed_in_user_asked_to_log_in_again_is_sent_on_not_failed(client):
    for target in ["/login/", "/login/?next=/login/", "/polls/", "//evil.example/"]:
        response = client.get("/login/", {"next": target})
        assert_answered_sanely(response, response.content, {302})
