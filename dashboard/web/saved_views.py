"""Saved views: named bookmarks of the service table with stable short URLs, personal to their
creator unless shared. Everyone sees the shared ones; only a view's creator or an admin may
overwrite or delete it, and saving under a name already taken asks before replacing."""

from __future__ import annotations

import secrets

from django import forms
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext, gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from dashboard.models import SavedView
from dashboard.web.params import parse_filter

SLUG_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no look-alikes: ids get read aloud
# Overwriting or deleting anyone's view: the admin role's (see accounts.ROLES).
MANAGE_ANY = "dashboard.change_savedview"


class SaveViewForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=80, strip=True)
    query = forms.CharField(label=gettext_lazy("Filters"), required=False, max_length=2000)
    shared = forms.BooleanField(label=gettext_lazy("Shared with everyone"), required=False)
    # Set by the confirmation step: yes, replace the view of that name.
    overwrite = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def clean_query(self) -> str:
        """Only a query the table accepts is saved, in its normal form (defaults left out)."""
        view, errors = parse_filter(QueryDict(self.cleaned_data["query"].lstrip("?")))
        if errors:
            names = ", ".join(sorted(errors))
            raise forms.ValidationError(
                gettext("This view has parameters the table cannot use: %(names)s.")
                % {"names": names}
            )
        return view.query_string(page=1)


def visible_to(user) -> QuerySet[SavedView]:
    """The shared views and the user's own."""
    if not user.is_authenticated:
        return SavedView.objects.filter(shared=True)
    return SavedView.objects.filter(Q(shared=True) | Q(created_by=user))


def may_change(user, saved: SavedView) -> bool:
    return user.has_perm(MANAGE_ANY) or (
        saved.created_by_id is not None and saved.created_by_id == user.pk
    )


def menu_entries(user=None) -> list[dict]:
    """The saved views someone sees, for the header menu; a view whose query no longer parses
    is marked broken (and still listed, so it can be deleted) rather than breaking the page."""
    views = visible_to(user) if user is not None else SavedView.objects.filter(shared=True)
    return [_entry(saved) for saved in views]


def _entry(saved: SavedView, user=None) -> dict:
    broken = bool(parse_filter(QueryDict(saved.query))[1])
    # Only the list page asks (a permission check costs queries the menu goes without).
    changeable = user is not None and may_change(user, saved)
    return {"view": saved, "broken": broken, "may_change": changeable}


def _listing(user) -> list[dict]:
    # Admins see everyone's views here, so they can tidy up; the menu shows only their own.
    views = SavedView.objects.all() if user.has_perm(MANAGE_ANY) else visible_to(user)
    return [_entry(saved, user) for saved in views.select_related("created_by")]


@require_GET
def open_saved_view(request: HttpRequest, slug: str) -> HttpResponse:
    views = SavedView.objects if request.user.has_perm(MANAGE_ANY) else visible_to(request.user)
    return HttpResponseRedirect(get_object_or_404(views, slug=slug).url())


@require_GET
def saved_view_list(request: HttpRequest) -> HttpResponse:
    return _render_list(request, SaveViewForm())


def _render_list(request: HttpRequest, form: SaveViewForm, status: int = 200, **extra):
    context = {"entries": _listing(request.user), "section": "views", "form": form, **extra}
    return render(request, "dashboard/saved_views.html", context, status=status)


@require_POST
@permission_required("dashboard.add_savedview", raise_exception=True)
def save_view(request: HttpRequest) -> HttpResponse:
    form = SaveViewForm(request.POST)
    if not form.is_valid():
        return _render_list(request, form, status=400)
    name, shared = form.cleaned_data["name"], form.cleaned_data["shared"]
    existing = _same_name(name, shared, request.user)
    if existing is not None:
        if not may_change(request.user, existing):
            form.add_error(
                "name",
                gettext(
                    "A shared view named “%(name)s” belongs to someone else; pick another name."
                )
                % {"name": name},
            )
            return _render_list(request, form, status=400)
        if not form.cleaned_data["overwrite"]:
            # Never a silent replace: ask, with everything needed to say yes in one click.
            return _render_list(request, form, status=409, confirm=existing)
        existing.query = form.cleaned_data["query"]
        existing.save(update_fields=["query"])
        return redirect(f"/views/?saved={existing.slug}")
    try:
        with transaction.atomic():  # a clash must not spoil the rest of the request
            saved = SavedView.objects.create(
                name=name,
                slug=_new_slug(),
                query=form.cleaned_data["query"],
                created_by=request.user,
                shared=shared,
            )
    except IntegrityError:  # someone saved that name a moment ago
        form.add_error("name", gettext("A saved view with this name exists; pick another name."))
        return _render_list(request, form, status=400)
    return redirect(f"/views/?saved={saved.slug}")


def _same_name(name: str, shared: bool, user) -> SavedView | None:
    """The view a save under this name would replace: the shared one, or the user's own."""
    views = SavedView.objects.filter(name=name, shared=shared)
    if not shared:
        views = views.filter(created_by=user)
    return views.first()


@require_POST
@permission_required("dashboard.add_savedview", raise_exception=True)
def share_view(request: HttpRequest, slug: str) -> HttpResponse:
    """Share a personal view with everyone, or make a shared one personal again."""
    saved = _changeable(request, slug)
    saved.shared = request.POST.get("shared") == "1"
    try:
        with transaction.atomic():
            saved.save(update_fields=["shared"])
    except IntegrityError:
        problem = gettext(
            "A view named “%(name)s” exists there already; rename one of them first."
        ) % {"name": saved.name}
        return _render_list(request, SaveViewForm(), status=400, problem=problem)
    return redirect("/views/")


@require_POST
@permission_required("dashboard.delete_savedview", raise_exception=True)
def delete_view(request: HttpRequest, slug: str) -> HttpResponse:
    _changeable(request, slug).delete()
    return redirect("/views/")


def _changeable(request: HttpRequest, slug: str) -> SavedView:
    views = SavedView.objects if request.user.has_perm(MANAGE_ANY) else visible_to(request.user)
    saved = get_object_or_404(views, slug=slug)
    if not may_change(request.user, saved):
        raise PermissionDenied(gettext("Only its creator or an admin may change this view."))
    return saved


def _new_slug() -> str:
    while True:
        slug = "".join(secrets.choice(SLUG_ALPHABET) for _ in range(8))
        if not SavedView.objects.filter(slug=slug).exists():
            return slug
