"""AK/SK signing (SDK-HMAC-SHA256): the two reference vectors of API.md §3b byte for byte, the
canonical forms' edge cases, and signed requests over real HTTP (a stub and the simulator)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from email.message import Message
from urllib.parse import urlsplit

import pytest
from local_http import LocalHTTPServer, QuietHandler

from dashboard.devtools.simulator import Fleet, ManualClock, SimulatorServer
from dashboard.modelarts import (
    AkSkAuth,
    APIError,
    InvalidQueryError,
    ModelArtsClient,
    RetryPolicy,
    ServiceQuery,
    SignatureError,
)
from dashboard.modelarts.signer import (
    EMPTY_BODY_SHA256,
    canonical_query,
    canonical_request,
    canonical_uri,
    encode_query,
    parse_authorization,
    parse_sdk_date,
    sign,
    signed_header_names,
    string_to_sign,
)

PROJECT_ID = "0123456789abcdef0123456789abcdef"


def epoch(sdk_date: str) -> float:
    return datetime.strptime(sdk_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()


# --- vector 1: Huawei's published worked example --------------------------------------------

V1_AK, V1_SK = "QTWAOYTTINDUT2QVKYUC", "MFyfvK41ba2giqM7Uio6PznpdUKGpownRZlmVmHc"
V1_URL = (
    "https://service.region.example.com/v1/77b6a44cba5143ab91d13ab9a8ff44fd/vpcs"
    "?limit=2&marker=13551d6b-755d-4757-b956-536f674975c0"
)
V1_HEADERS = {
    "Content-Type": "application/json",
    "X-Sdk-Date": "20191115T033655Z",
    "Host": "service.region.example.com",
}
V1_CANONICAL = (
    "GET\n"
    "/v1/77b6a44cba5143ab91d13ab9a8ff44fd/vpcs/\n"
    "limit=2&marker=13551d6b-755d-4757-b956-536f674975c0\n"
    "content-type:application/json\n"
    "host:service.region.example.com\n"
    "x-sdk-date:20191115T033655Z\n"
    "\n"
    "content-type;host;x-sdk-date\n"
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
)
V1_HASH = "b25362e603ee30f4f25e7858e8a7160fd36e803bb2dfe206278659d71a9bcd7a"
V1_AUTHORIZATION = (
    "SDK-HMAC-SHA256 Access=QTWAOYTTINDUT2QVKYUC, SignedHeaders=content-type;host;x-sdk-date,"
    " Signature=7be6668032f70418fcc22abc52071e57aff61b84a1d2381bb430d6870f4f6ebe"
)

# --- vector 2: a ListServices request -------------------------------------------------------

V2_AK, V2_SK = "EXAMPLEAK0000000000", "ExampleSecretKey0000000000000000000000000"
V2_URL = (
    f"https://modelarts.cn-north-4.myhuaweicloud.com/v1/{PROJECT_ID}/services"
    "?infer_type=real-time&limit=10&offset=0&service_name=demo%20svc&status=running"
)
V2_HEADERS = {
    "Content-Type": "application/json",
    "Host": "modelarts.cn-north-4.myhuaweicloud.com",
    "X-Project-Id": PROJECT_ID,
    "X-Sdk-Date": "20240101T000000Z",
}
V2_CANONICAL = f"""GET
/v1/{PROJECT_ID}/services/
infer_type=real-time&limit=10&offset=0&service_name=demo%20svc&status=running
content-type:application/json
host:modelarts.cn-north-4.myhuaweicloud.com
x-project-id:{PROJECT_ID}
x-sdk-date:20240101T000000Z

content-type;host;x-project-id;x-sdk-date
e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"""
V2_STRING_TO_SIGN = (
    "SDK-HMAC-SHA256\n20240101T000000Z\n"
    "8ac98617c5f497e5488f5ef0ce21a11921363186d66eeb9615a258f669749783"
)
V2_AUTHORIZATION = (
    "SDK-HMAC-SHA256 Access=EXAMPLEAK0000000000,"
    " SignedHeaders=content-type;host;x-project-id;x-sdk-date,"
    " Signature=569f9e6a0589a4a238c443719e7d572ee3198300f8f7bb4ec3172bf4bdac446e"
)


def test_it_builds_the_canonical_request_of_the_published_example() -> None:
    canonical = canonical_request("GET", V1_URL, V1_HEADERS)

    assert canonical == V1_CANONICAL
    assert hashlib.sha256(canonical.encode()).hexdigest() == V1_HASH


def test_it_signs_the_published_example() -> None:
    auth = AkSkAuth(V1_AK, V1_SK, clock=lambda: epoch("20191115T033655Z"))

    headers = auth.headers_for("GET", V1_URL, {"Content-Type": "application/json"})

    assert headers["Authorization"] == V1_AUTHORIZATION
    assert headers == {**V1_HEADERS, "Authorization": V1_AUTHORIZATION}


def test_it_builds_the_canonical_request_and_string_to_sign_of_the_list_services_example() -> None:
    canonical = canonical_request("GET", V2_URL, V2_HEADERS)

    assert canonical == V2_CANONICAL
    assert string_to_sign(canonical, "20240101T000000Z") == V2_STRING_TO_SIGN


def test_it_signs_the_list_services_example() -> None:
    auth = AkSkAuth(V2_AK, V2_SK, project_id=PROJECT_ID, clock=lambda: epoch("20240101T000000Z"))

    headers = auth.headers_for("GET", V2_URL, {"Content-Type": "application/json"})

    assert headers["Authorization"] == V2_AUTHORIZATION
    assert headers == {**V2_HEADERS, "Authorization": V2_AUTHORIZATION}


def check_signature(
    method: str, url: str, headers: Mapping[str, str], body: bytes, sk: str
) -> bool:
    """What a server does with a signed request: sign it again with the names the
    Authorization header lists, and compare."""
    value = next(v for k, v in headers.items() if k.lower() == "authorization")
    _, names, received = parse_authorization(value)
    return hmac.compare_digest(sign(method, url, headers, body, sk, names), received)


def test_it_checks_both_examples_as_a_server_would() -> None:
    v1 = {**V1_HEADERS, "Authorization": V1_AUTHORIZATION, "User-Agent": "unsigned/1"}
    v2 = {**V2_HEADERS, "Authorization": V2_AUTHORIZATION}
    target = urlsplit(V2_URL)

    assert check_signature("GET", V1_URL, v1, b"", V1_SK)
    # A server sees the request target, not the full URL.
    assert check_signature("GET", f"{target.path}?{target.query}", v2, b"", V2_SK)
    assert not check_signature("GET", V2_URL, v2, b"", V1_SK)
    assert not check_signature("GET", V2_URL.replace("limit=10", "limit=11"), v2, b"", V2_SK)


def test_it_parses_an_authorization_header() -> None:
    access, names, signature = parse_authorization(V2_AUTHORIZATION)

    assert access == V2_AK
    assert names == ["content-type", "host", "x-project-id", "x-sdk-date"]
    assert signature == "569f9e6a0589a4a238c443719e7d572ee3198300f8f7bb4ec3172bf4bdac446e"
    assert sign("GET", V2_URL, V2_HEADERS, b"", V2_SK, names) == signature


@pytest.mark.parametrize(
    "value",
    [
        "",
        "Bearer abc",
        "SDK-HMAC-SHA256 Access=AK, Signature=00",
        "SDK-HMAC-SHA256 Access=AK, SignedHeaders=host, Signature=not-hex",
        "V11-HMAC-SHA256 Access=AK, SignedHeaders=host, Signature=00",
    ],
)
def test_it_rejects_a_malformed_authorization_header(value: str) -> None:
    with pytest.raises(SignatureError, match="Authorization"):
        parse_authorization(value)


# --- canonical forms --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "canonical"),
    [
        ("", ""),
        ("b=2&a=2&a=1", "a=1&a=2&b=2"),  # repeated names sort by value too
        ("a=&b", "a=&b="),  # an empty value keeps its '='
        ("q=a%20b", "q=a%20b"),
        ("q=a+b", "q=a%2Bb"),  # '+' is a plus sign, never a space
        ("q=a%2bb", "q=a%2Bb"),  # escapes are upper-cased
        ("name=é", "name=%C3%A9"),
        ("name=%C3%A9", "name=%C3%A9"),
        ("path=a/b", "path=a%2Fb"),
        ("t=~_.-", "t=~_.-"),
        ("x=%7E", "x=~"),  # unreserved characters are never escaped
        ("&&a=1&", "a=1"),  # empty pairs are no parameters
        ("k=a=b", "k=a%3Db"),
        ("%C3%A9=1&z=1", "z=1&%C3%A9=1"),  # sorted by code point, not by escaped text
    ],
)
def test_it_canonicalises_query_strings(query: str, canonical: str) -> None:
    assert canonical_query(query) == canonical


@pytest.mark.parametrize(
    ("path", "canonical"),
    [
        ("", "/"),
        ("/", "/"),
        ("/v1/p/services", "/v1/p/services/"),
        ("/v1/p/services/", "/v1/p/services/"),  # the added slash is never doubled
        ("/v1/a b/x", "/v1/a%20b/x/"),
        ("/v1/a%20b/x", "/v1/a%20b/x/"),
        ("/v1/é", "/v1/%C3%A9/"),
        ("/v1/a:b@c;d=e", "/v1/a%3Ab%40c%3Bd%3De/"),
        ("/v1/~user_x.y-z", "/v1/~user_x.y-z/"),
        ("/v1/a%2Fb", "/v1/a/b/"),  # decoded before it is split, as the SDK does
        ("/v1/%FF", "/v1/%FF/"),  # an escape that is not UTF-8 survives
    ],
)
def test_it_canonicalises_paths(path: str, canonical: str) -> None:
    assert canonical_uri(path) == canonical


def test_it_sends_exactly_the_query_string_it_signs() -> None:
    pairs = [
        ("service_name", "demo svc/é+&="),
        ("status", "running"),
        ("a", ""),
        ("a", "z"),
        ("b", "~*'()!"),
    ]

    sent = encode_query(pairs)

    assert canonical_query(sent) == sent
    assert (
        sent == "a=&a=z&b=~%2A%27%28%29%21&service_name=demo%20svc%2F%C3%A9%2B%26%3D&status=running"
    )


def test_it_trims_and_lower_cases_headers_and_skips_names_with_underscores() -> None:
    headers = {
        "X-Sdk-Date": "20240101T000000Z",
        "Host": "h.example.com",
        "Content-Type": "  application/json \t",
        "X_Custom_Thing": "unsigned",
    }

    canonical = canonical_request("GET", "https://h.example.com/x", headers)

    assert signed_header_names(headers) == ["content-type", "host", "x-sdk-date"]
    assert "content-type:application/json\n" in canonical
    assert "x_custom_thing" not in canonical.lower()


def test_it_hashes_the_body_unless_told_not_to() -> None:
    headers = {"X-Sdk-Date": "20240101T000000Z", "Host": "h"}

    with_body = canonical_request("POST", "https://h/x", headers, body=b'{"a":1}')
    unsigned = canonical_request(
        "POST", "https://h/x", {**headers, "X-Sdk-Content-Sha256": "UNSIGNED-PAYLOAD"}, body=b"x"
    )

    assert with_body.endswith("\n" + hashlib.sha256(b'{"a":1}').hexdigest())
    assert canonical_request("GET", "https://h/x", headers).endswith("\n" + EMPTY_BODY_SHA256)
    assert unsigned.endswith("\nhost;x-sdk-content-sha256;x-sdk-date\nUNSIGNED-PAYLOAD")


def test_it_refuses_to_sign_without_a_date_or_with_a_signed_header_missing() -> None:
    with pytest.raises(SignatureError, match="X-Sdk-Date"):
        sign("GET", "https://h/x", {"Host": "h"}, b"", "sk")
    with pytest.raises(SignatureError, match="'content-type'"):
        canonical_request("GET", "https://h/x", {"Host": "h"}, ["content-type", "host"])


def test_it_reads_sdk_dates() -> None:
    assert parse_sdk_date("20240101T000000Z") == epoch("20240101T000000Z")
    with pytest.raises(SignatureError):
        parse_sdk_date("2024-01-01T00:00:00Z")


# --- AkSkAuth -------------------------------------------------------------------------------


def test_it_signs_temporary_credentials_with_the_security_token() -> None:
    auth = AkSkAuth(V2_AK, V2_SK, security_token="sts-token-abc", clock=lambda: 0.0)

    headers = auth.headers_for("GET", V2_URL, {"Content-Type": "application/json"})

    _, names, _ = parse_authorization(headers["Authorization"])
    assert headers["X-Security-Token"] == "sts-token-abc"
    assert "x-security-token" in names
    assert "x-project-id" not in names
    assert headers["X-Sdk-Date"] == "19700101T000000Z"
    assert check_signature("GET", V2_URL, headers, b"", V2_SK)


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://m.example.com/v1", "m.example.com"),
        ("https://m.example.com:443/v1", "m.example.com"),
        ("http://m.example.com:80/v1", "m.example.com"),
        ("https://m.example.com:8443/v1", "m.example.com:8443"),
        ("http://127.0.0.1:8000/v1", "127.0.0.1:8000"),
        ("http://[::1]:8000/v1", "[::1]:8000"),
    ],
)
def test_it_signs_the_host_with_a_port_only_when_it_is_not_the_default(url: str, host: str) -> None:
    headers = AkSkAuth("AK", "SK").headers_for("GET", url, {})

    assert headers["Host"] == host


def test_it_replaces_stale_signing_headers_instead_of_signing_them() -> None:
    auth = AkSkAuth(V2_AK, V2_SK, project_id=PROJECT_ID, clock=lambda: epoch("20240101T000000Z"))
    stale = {
        "Content-Type": "application/json",
        "authorization": "SDK-HMAC-SHA256 Access=old, SignedHeaders=host, Signature=00",
        "x-sdk-date": "20000101T000000Z",
        "host": "elsewhere",
    }

    headers = auth.headers_for("GET", V2_URL, stale)

    assert headers == {**V2_HEADERS, "Authorization": V2_AUTHORIZATION}


def test_it_keeps_the_secret_key_and_token_out_of_its_repr() -> None:
    auth = AkSkAuth("AKID1234", "very-secret-key", security_token="temporary-token")

    assert repr(auth) == "AkSkAuth(ak='AKID1234', sk=<hidden>, security_token=<hidden>)"


@pytest.mark.parametrize(
    ("ak", "sk", "token", "problem"),
    [
        ("", "sk", None, "ak"),
        ("AK\r\nX-Evil: 1", "sk", None, "ak"),
        ("AK", "", None, "sk"),
        ("AK", "  ", None, "sk"),
        ("AK", "sk", "pasted\nvalue", "security_token"),
    ],
)
def test_it_rejects_bad_keys_without_repeating_them(
    ak: str, sk: str, token: str | None, problem: str
) -> None:
    with pytest.raises(InvalidQueryError, match=problem) as caught:
        AkSkAuth(ak, sk, security_token=token)

    assert "Evil" not in str(caught.value) and "pasted" not in str(caught.value)


# --- over real HTTP -------------------------------------------------------------------------


class SigningStub(LocalHTTPServer):
    """Records each request as it arrived and checks its signature as a server would."""

    def __init__(self, sk: str) -> None:
        self.seen: list[tuple[str, Message, bool]] = []
        stub = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                valid = check_signature("GET", self.path, self.headers, b"", sk)
                stub.seen.append((self.path, self.headers, valid))
                body = b'{"total_count": 0, "count": 0, "services": []}'
                self.send_response(200 if valid else 401)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        super().__init__(Handler)


@pytest.fixture
def signing_stub() -> Iterator[SigningStub]:
    with SigningStub(V2_SK) as stub:
        yield stub


def test_it_sends_the_url_it_signed(signing_stub: SigningStub) -> None:
    auth = AkSkAuth(V2_AK, V2_SK, project_id=PROJECT_ID)
    client = ModelArtsClient(signing_stub.url, PROJECT_ID, auth, retry=RetryPolicy(attempts=1))
    query = ServiceQuery(service_name="a b/c+d&e=f é ~x", status="running", workspace_id="0")

    client.list_services(query.with_page(2, 7))

    path, headers, valid = signing_stub.seen[0]
    assert valid
    assert path == (
        f"/v1/{PROJECT_ID}/services?limit=7&offset=2"
        "&service_name=a%20b%2Fc%2Bd%26e%3Df%20%C3%A9%20~x&status=running&workspace_id=0"
    )
    assert headers["Host"] == signing_stub.url.removeprefix("http://")
    _, names, _ = parse_authorization(headers["Authorization"])
    assert {"host", "x-sdk-date", "x-project-id", "content-type"} <= set(names)


# --- against the simulator ------------------------------------------------------------------

SIM_AK, SIM_SK = "SIMULATORAK000000001", "simulator-secret-key-0000000000000000000"


@pytest.fixture
def aksk_simulator(fleet: Fleet) -> Iterator[SimulatorServer]:
    with SimulatorServer(
        fleet, project_id=PROJECT_ID, auth="aksk", ak=SIM_AK, sk=SIM_SK, security_token="sts-1"
    ) as server:
        yield server


def aksk_client(
    url: str, clock: ManualClock, sk: str = SIM_SK, **options: object
) -> ModelArtsClient:
    options.setdefault("security_token", "sts-1")
    auth = AkSkAuth(SIM_AK, sk, project_id=PROJECT_ID, clock=clock, **options)
    return ModelArtsClient(url, PROJECT_ID, auth, retry=RetryPolicy(attempts=1))


def test_it_reads_the_whole_fleet_with_signed_requests(
    aksk_simulator: SimulatorServer, fleet: Fleet, clock: ManualClock
) -> None:
    snapshot = aksk_client(aksk_simulator.url, clock).fetch_all(page_size=25)

    assert snapshot.complete
    assert {service.service_id for service in snapshot.services} == {
        item["service_id"] for item in fleet.items()
    }


def test_it_gets_filtered_answers_for_signed_queries_with_odd_characters(
    aksk_simulator: SimulatorServer, clock: ManualClock
) -> None:
    page = aksk_client(aksk_simulator.url, clock).list_services(
        ServiceQuery(service_name="no such / name é+", sort_by="service_name", order="asc")
    )

    assert page.total_count == 0


def test_it_reports_a_wrong_secret_key_with_the_gateways_code_and_no_secrets(
    aksk_simulator: SimulatorServer, clock: ManualClock
) -> None:
    with pytest.raises(APIError) as caught:
        aksk_client(aksk_simulator.url, clock, sk="not-the-right-secret-key").list_services()

    message = str(caught.value)
    assert (caught.value.status, caught.value.code) == (401, "APIGW.0301")
    assert "not-the-right-secret-key" not in message and SIM_SK not in message
    assert "sts-1" not in message


def test_it_is_rejected_without_the_security_token_of_temporary_credentials(
    aksk_simulator: SimulatorServer, clock: ManualClock
) -> None:
    with pytest.raises(APIError) as caught:
        aksk_client(aksk_simulator.url, clock, security_token=None).list_services()

    assert caught.value.code == "APIGW.0301"
