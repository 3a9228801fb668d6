from __future__ import annotations

import pytest
from django.test import Client

from dashboard.models import SavedView
from dashboard.web.accounts import create_user


def test_it_saves_the_current_view_and_opens_it_by_its_short_link(client, make_service):
    make_service("alpha", "failed")
    response = client.post(
        "/views/save", {"name": "prod failures", "query": "status=failed&sort=-calls&page=3"}
    )
    saved = SavedView.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/views/?saved={saved.slug}"
    assert saved.query == "status=failed&sort=-calls"  # the page is not part of a view
    assert saved.created_by.username == "ops"
    opened = client.get(f"/v/{saved.slug}")
    assert (opened.status_code, opened["Location"]) == (302, "/?status=failed&sort=-calls")


def test_it_lists_saved_views_in_the_header_menu(client, db):
    SavedView.objects.create(
        name="batch jobs", slug="abcdefgh", query="infer_type=batch", shared=True
    )
    body = client.get("/").content.decode()
    assert '<a href="/v/abcdefgh">batch jobs</a>' in body


@pytest.mark.parametrize("query", ["sort=nope", "per_page=7", "status=" + "x" * 33])
def test_it_refuses_to_save_a_view_the_table_cannot_show(client, db, query):
    response = client.post("/views/save", {"name": "broken", "query": query})
    assert response.status_code == 400
    assert "parameters the table cannot use" in response.content.decode()
    assert not SavedView.objects.exists()


def test_it_asks_before_replacing_a_view_of_the_same_name(client, db):
    client.post("/views/save", {"name": "mine", "query": ""})
    response = client.post("/views/save", {"name": "mine", "query": "status=failed"})
    assert response.status_code == 409
    assert "exists already" in response.content.decode()
    assert 'name="overwrite" value="on"' in response.content.decode()
    assert SavedView.objects.get().query == ""  # nothing replaced yet


def test_a_broken_saved_view_is_marked_and_never_breaks_a_page(client, operator):
    SavedView.objects.create(
        name="old", slug="oldoldol", query="sort=removed-column", created_by=operator
    )
    assert client.get("/").status_code == 200
    listing = client.get("/views/").content.decode()
    assert "broken" in listing
    assert client.post("/views/oldoldol/delete").status_code == 302
    assert not SavedView.objects.exists()


def test_a_viewer_opens_saved_views_but_cannot_change_them(db):
    SavedView.objects.create(name="shared", slug="sharedvw", query="status=failed", shared=True)
    viewer = Client()
    viewer.force_login(create_user("val", "a-password-for-tests-only", "viewer"))
    assert viewer.get("/v/sharedvw").status_code == 302
    assert viewer.post("/views/save", {"name": "x", "query": ""}).status_code == 403
    assert viewer.post("/views/sharedvw/delete").status_code == 403
    assert "Save this view" not in viewer.get("/").content.decode()


def test_an_unknown_short_link_is_a_404(client, db):
    assert client.get("/v/nosuchvw").status_code == 404


def test_saving_needs_a_post_with_a_csrf_token(db, operator):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(operator)
    assert strict.post("/views/save", {"name": "x", "query": ""}).status_code == 403
    assert strict.get("/views/save").status_code == 405
