from __future__ import annotations

import csv
import io

import pytest
from django.test import Client

from dashboard.models import OwnerName
from dashboard.web.accounts import create_user

ALICE = "b575785b0ff94e5a9b6e5b0c9d6a7f10"
BOB = "0c6f0f3d7f2b4a0e8c4a1e6b8b2c9d3e"


@pytest.fixture
def owned(make_service):
    make_service("ocr-prod", owner=ALICE)
    make_service("asr-prod", owner=BOB)
    OwnerName.objects.create(owner_id=ALICE, name="Alice Zhang")


def test_the_table_shows_the_owners_name_and_keeps_the_id_on_hover(client, owned):
    body = client.get("/").content.decode()
    assert f'<td class="owner" title="{ALICE}">Alice Zhang</td>' in body
    # An owner nobody named shows its id, cut short.
    assert f'<td class="owner" title="{BOB}"><code>0c6f0f3d7…</code></td>' in body


def test_the_owner_filter_lists_names_and_filters_by_id(client, owned):
    body = client.get("/").content.decode()
    assert f'<option value="{ALICE}">Alice Zhang (b575785b)</option>' in body
    assert f'<option value="{BOB}">{BOB}</option>' in body
    assert body.index("Alice Zhang (b575785b)") < body.index(f'<option value="{BOB}"')
    filtered = client.get(f"/?owner={ALICE}").content.decode()
    assert "ocr-prod" in filtered and "asr-prod" not in filtered
    assert f'<option value="{ALICE}" selected>' in filtered


def test_the_api_gives_the_owners_name_beside_the_id(client, owned):
    services = client.get("/api/services?sort=name").json()["services"]
    assert [(s["owner"], s["owner_name"]) for s in services] == [
        (BOB, None),
        (ALICE, "Alice Zhang"),
    ]


def test_the_csv_has_an_owner_name_column(client, owned):
    text = b"".join(client.get("/services.csv?sort=name").streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["owner"], r["owner_name"]) for r in rows] == [(BOB, ""), (ALICE, "Alice Zhang")]


def test_a_name_is_escaped_like_everything_else(client, make_service):
    make_service("x", owner=ALICE)
    OwnerName.objects.create(owner_id=ALICE, name='<script>alert("x")</script>')
    body = client.get("/").content.decode()
    assert "<script>alert" not in body
    assert "&lt;script&gt;" in body


def test_admins_edit_owner_names_in_the_admin(db):
    admin = Client()
    admin.force_login(create_user("boss", "a-password-for-tests-only", "admin"))
    response = admin.post(
        "/admin/dashboard/ownername/add/", {"owner_id": ALICE, "name": "Alice Zhang"}
    )
    assert response.status_code == 302
    assert OwnerName.objects.get().name == "Alice Zhang"
    assert admin.get("/admin/dashboard/ownername/").status_code == 200


def test_operators_cannot_edit_owner_names(client, db):
    assert client.get("/admin/dashboard/ownername/").status_code in (302, 403)
