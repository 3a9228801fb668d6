"""The table's Instances and Reason columns, from each service's stored detail."""

from __future__ import annotations

import re

from conftest import names
from django.utils import timezone

from dashboard.models import ServiceDetail


def detail(service, running=None, desired=None, reason=""):
    return ServiceDetail.objects.create(
        service=service,
        fetched_at=timezone.now(),
        running_instances=running,
        desired_instances=desired,
        error_msg=reason,
    )


def test_it_shows_instances_and_why_a_service_failed(client, make_service):
    failed = make_service("broken", "failed")
    detail(failed, 0, 2, "Image pull failed: <manifest unknown> for image " + "x" * 80)
    body = client.get("/").content.decode()
    row = re.search(r"<tr data-service-id=.*?</tr>", body, re.S).group()
    assert '<td class="num hot">0/2</td>' in row
    assert "Image pull failed: &lt;manifest unknown&gt;" in row
    assert 'title="Image pull failed: &lt;manifest unknown&gt; for image xxx' in row


def test_it_filters_services_below_their_desired_instances(client, make_service):
    detail(make_service("short", "concerning"), 1, 3)
    detail(make_service("full", "running"), 2, 2)
    make_service("unknown", "running")
    assert names(client.get("/?below=1")) == ["short"]
    assert "below desired instances" in client.get("/?below=1").content.decode()
    assert client.get("/?below=yes").status_code == 400


def test_it_sorts_by_missing_instances_and_by_reason(client, make_service):
    detail(make_service("one-missing", "concerning"), 2, 3)
    detail(make_service("all-missing", "failed", invocation_times=0), 0, 4, "OOMKilled")
    detail(make_service("none-missing", "running"), 2, 2)
    make_service("never-fetched", "running")
    assert names(client.get("/?sort=-instances")) == [
        "all-missing",
        "one-missing",
        "none-missing",
        "never-fetched",
    ]
    assert names(client.get("/?sort=reason"))[0] == "all-missing"


def test_the_exports_carry_the_detail(client, make_service):
    detail(make_service("broken", "failed"), 0, 2, "health check failed")
    service = client.get("/api/services").json()["services"][0]
    assert service["detail"]["running_instances"] == 0
    assert service["detail"]["reason"] == "health check failed"
    response = client.get("/services.csv")
    lines = b"".join(response.streaming_content).decode().splitlines()
    header, row = lines[0].split(","), lines[1].split(",")
    assert row[header.index("desired_instances")] == "2"
    assert row[header.index("reason")] == "health check failed"
