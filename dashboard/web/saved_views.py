"""Saved views: named, shared bookmarks of the service table with stable short URLs."""

from __future__ import annotations

import secrets

from django import forms
from django.contrib.auth.decorators import permission_required
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from dashboard.models import SavedView
from dashboard.web.params import parse_filter

SLUG_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no look-alikes: ids get read aloud


class SaveViewForm(forms.Form):
    name = forms.CharField(max_length=80, strip=True)
    query = forms.CharField(required=False, max_length=2000)

    def clean_query(self) -> str:
        """Only a query the table accepts is saved, in its normal form (defaults left out)."""
        view, errors = parse_filter(QueryDict(self.cleaned_data["query"].lstrip("?")))
        if errors:
            names = ", ".join(sorted(errors))
            raise forms.ValidationError(f"This view has parameters the table cannot use: {names}.")
        return view.query_string(page=1)


def menu_entries() -> list[dict]:
    """Every saved view for the header menu; a view whose query no longer parses is marked
    broken (and still listed, so it can be deleted) rather than breaking the page."""
    entries = []
    for saved in SavedView.objects.all():
        broken = bool(parse_filter(QueryDict(saved.query))[1])
        entries.append({"view": saved, "broken": broken})
    return entries


@require_GET
def open_saved_view(request: HttpRequest, slug: str) -> HttpResponse:
    return HttpResponseRedirect(get_object_or_404(SavedView, slug=slug).url())


@require_GET
def saved_view_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "dashboard/saved_views.html",
        {"entries": menu_entries(), "section": "views", "form": SaveViewForm()},
    )


@require_POST
@permission_required("dashboard.add_savedview", raise_exception=True)
def save_view(request: HttpRequest) -> HttpResponse:
    form = SaveViewForm(request.POST)
    if form.is_valid():
        try:
            with transaction.atomic():  # a clash must not spoil the rest of the request
                saved = SavedView.objects.create(
                    name=form.cleaned_data["name"],
                    slug=_new_slug(),
                    query=form.cleaned_data["query"],
                    created_by=request.user,
                )
        except IntegrityError:
            form.add_error("name", "A saved view with this name exists; pick another name.")
        else:
            return redirect(f"/views/?saved={saved.slug}")
    context = {"entries": menu_entries(), "section": "views", "form": form}
    return render(request, "dashboard/saved_views.html", context, status=400)


@require_POST
@permission_required("dashboard.delete_savedview", raise_exception=True)
def delete_view(request: HttpRequest, slug: str) -> HttpResponse:
    get_object_or_404(SavedView, slug=slug).delete()
    return redirect("/views/")


def _new_slug() -> str:
    while True:
        slug = "".join(secrets.choice(SLUG_ALPHABET) for _ in range(8))
        if not SavedView.objects.filter(slug=slug).exists():
            return slug
