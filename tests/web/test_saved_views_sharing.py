from __future__ import annotations

import pytest
from django.apps import apps as django_apps
from django.db import IntegrityError, transaction
from django.test import Client

from dashboard.models import SavedView
from dashboard.web.accounts import create_user

PASSWORD = "a-password-for-tests-only"


def signed_in(username: str, role: str) -> tuple[Client, object]:
    user = create_user(username, PASSWORD, role)
    client = Client()
    client.force_login(user)
    return client, user


@pytest.fixture
def ann(db):
    return signed_in("ann", "operator")


@pytest.fixture
def bob(db):
    return signed_in("bob", "operator")


@pytest.fixture
def boss(db):
    return signed_in("boss", "admin")


def save(client: Client, name: str, query: str = "", **extra):
    return client.post("/views/save", {"name": name, "query": query, **extra})


def test_a_saved_view_is_personal_unless_shared(ann, bob):
    save(ann[0], "mine", "status=failed")
    save(ann[0], "ours", "status=running", shared="on")
    assert SavedView.objects.get(name="mine").shared is False
    assert SavedView.objects.get(name="ours").shared is True
    menu = bob[0].get("/").content.decode()
    assert ">ours</a>" in menu and ">mine</a>" not in menu
    assert ">mine</a>" in ann[0].get("/").content.decode()
    listing = bob[0].get("/views/").content.decode()
    assert "ours" in listing and ">mine<" not in listing


def test_nobody_else_opens_a_personal_views_short_link(ann, bob):
    save(ann[0], "mine", "status=failed")
    slug = SavedView.objects.get().slug
    assert ann[0].get(f"/v/{slug}").status_code == 302
    assert bob[0].get(f"/v/{slug}").status_code == 404


def test_two_people_keep_personal_views_of_the_same_name(ann, bob):
    assert save(ann[0], "failing", "status=failed").status_code == 302
    assert save(bob[0], "failing", "status=concerning").status_code == 302
    assert SavedView.objects.filter(name="failing").count() == 2


def test_saving_under_a_taken_name_asks_then_replaces_on_confirmation(ann):
    save(ann[0], "mine", "status=failed")
    slug = SavedView.objects.get().slug
    asked = save(ann[0], "mine", "status=running")
    assert asked.status_code == 409
    assert SavedView.objects.get().query == "status=failed"
    replaced = save(ann[0], "mine", "status=running", overwrite="on")
    assert replaced.status_code == 302
    saved = SavedView.objects.get()
    assert (saved.query, saved.slug) == ("status=running", slug)  # the short link stays


def test_only_the_creator_or_an_admin_overwrites_a_shared_view(ann, bob, boss):
    save(ann[0], "ours", "status=failed", shared="on")
    refused = save(bob[0], "ours", "status=running", shared="on", overwrite="on")
    assert refused.status_code == 400
    assert "belongs to someone else" in refused.content.decode()
    assert SavedView.objects.get().query == "status=failed"
    assert save(boss[0], "ours", "status=running", shared="on").status_code == 409
    assert save(boss[0], "ours", "status=running", shared="on", overwrite="on").status_code == 302
    saved = SavedView.objects.get()
    assert saved.query == "status=running" and saved.created_by == ann[1]


def test_only_the_creator_or_an_admin_deletes_a_view(ann, bob, boss):
    save(ann[0], "ours", "status=failed", shared="on")
    save(ann[0], "mine", "status=failed")
    ours = SavedView.objects.get(name="ours")
    mine = SavedView.objects.get(name="mine")
    assert bob[0].post(f"/views/{ours.slug}/delete").status_code == 403
    assert bob[0].post(f"/views/{mine.slug}/delete").status_code == 404
    assert 'action="/views/' + ours.slug + '/delete"' not in bob[0].get("/views/").content.decode()
    assert boss[0].post(f"/views/{mine.slug}/delete").status_code == 302
    assert ann[0].post(f"/views/{ours.slug}/delete").status_code == 302
    assert not SavedView.objects.exists()


def test_the_creator_shares_a_view_and_makes_it_personal_again(ann, bob):
    save(ann[0], "mine", "status=failed")
    saved = SavedView.objects.get()
    assert bob[0].post(f"/views/{saved.slug}/share", {"shared": "1"}).status_code == 404
    assert ann[0].post(f"/views/{saved.slug}/share", {"shared": "1"}).status_code == 302
    assert ">mine</a>" in bob[0].get("/").content.decode()
    assert bob[0].post(f"/views/{saved.slug}/share", {"shared": "0"}).status_code == 403
    assert ann[0].post(f"/views/{saved.slug}/share", {"shared": "0"}).status_code == 302
    saved.refresh_from_db()
    assert saved.shared is False


def test_sharing_refuses_a_name_already_shared(ann, bob):
    save(bob[0], "failing", shared="on")
    save(ann[0], "failing")
    mine = SavedView.objects.get(created_by=ann[1])
    response = ann[0].post(f"/views/{mine.slug}/share", {"shared": "1"})
    assert response.status_code == 400
    mine.refresh_from_db()
    assert mine.shared is False


def test_the_database_keeps_names_unique_per_owner_and_among_shared_views(ann, bob):
    SavedView.objects.create(name="x", slug="aaaaaaaa", created_by=ann[1])
    SavedView.objects.create(name="x", slug="bbbbbbbb", created_by=bob[1])
    SavedView.objects.create(name="x", slug="cccccccc", created_by=ann[1], shared=True)
    with pytest.raises(IntegrityError), transaction.atomic():
        SavedView.objects.create(name="x", slug="dddddddd", created_by=ann[1])
    with pytest.raises(IntegrityError), transaction.atomic():
        SavedView.objects.create(name="x", slug="eeeeeeee", created_by=bob[1], shared=True)


@pytest.mark.django_db(transaction=True)
def test_the_migration_keeps_earlier_views_shared():
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    before = [("dashboard", "0012_userpreference_visits")]
    after = [("dashboard", "0013_tokens_saved_views_owner_names")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old = executor.loader.project_state(before).apps.get_model("dashboard", "SavedView")
    old.objects.create(name="prod failures", slug="abcdefgh", query="status=failed")
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(after)
    new = executor.loader.project_state(after).apps.get_model("dashboard", "SavedView")
    kept = new.objects.get()
    assert (kept.name, kept.slug, kept.query, kept.shared) == (
        "prod failures",
        "abcdefgh",
        "status=failed",
        True,
    )
    # From here on a view is personal unless its creator shares it.
    assert (
        django_apps.get_model("dashboard", "SavedView")._meta.get_field("shared").default is False
    )
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes("dashboard"))
