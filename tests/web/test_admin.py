from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from dashboard.models import Source


@pytest.fixture
def admin_client(client, db):
    user = User.objects.create_superuser("root", "root@example.com", "a-long-password-1")
    client.force_login(user)
    return client


def source_form(**changes: str) -> dict[str, str]:
    form = {
        "name": "sg",
        "enabled": "on",
        "endpoint": "https://modelarts.ap-southeast-3.myhuaweicloud.com",
        "project_id": "0123456789abcdef0123456789abcdef",
        "workspace_id": "",
        "interval_seconds": "60",
        "offset_mode": "page",
        "auth_kind": "aksk",
        "ak_env": "MODELARTS_SG_AK",
        "sk_env": "MODELARTS_SG_SK",
        "security_token_env": "",
        "token_env": "",
        "iam_endpoint": "",
        "region": "",
        "iam_domain": "",
        "iam_username": "",
        "password_env": "",
    }
    form.update(changes)
    return form


def test_it_adds_a_source_that_names_its_secrets(admin_client):
    response = admin_client.post("/admin/dashboard/source/add/", source_form())
    assert response.status_code == 302
    source = Source.objects.get(name="sg")
    assert (source.ak_env, source.sk_env) == ("MODELARTS_SG_AK", "MODELARTS_SG_SK")


def test_it_refuses_a_variable_outside_the_dashboards_prefixes(admin_client):
    response = admin_client.post("/admin/dashboard/source/add/", source_form(sk_env="SECRET_KEY"))
    assert response.status_code == 200
    assert "starting with MODELARTS_ or HUAWEICLOUD_" in response.content.decode()
    assert not Source.objects.exists()


def test_it_asks_for_what_the_chosen_sign_in_needs(admin_client):
    response = admin_client.post(
        "/admin/dashboard/source/add/", source_form(auth_kind="iam-password", project_id="")
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert body.count("Needed for this kind of authentication.") == 5
    assert not Source.objects.exists()


def test_it_lets_an_iam_source_learn_its_project_from_the_token(admin_client):
    form = source_form(
        auth_kind="iam-password",
        project_id="",
        ak_env="",
        sk_env="",
        iam_endpoint="https://iam.ap-southeast-3.myhuaweicloud.com",
        region="ap-southeast-3",
        iam_domain="acme",
        iam_username="ops",
        password_env="HUAWEICLOUD_SG_PASSWORD",
    )
    assert admin_client.post("/admin/dashboard/source/add/", form).status_code == 302
