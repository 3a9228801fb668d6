"""The formatters of web.format, as template filters, and the words for stored values."""

from __future__ import annotations

from django import template
from django.utils.translation import pgettext

from dashboard.statuses import infer_type_label, status_label
from dashboard.web import format
from dashboard.web.accounts import ROLE_LABELS

register = template.Library()
for name in ("ago", "until", "count", "rate", "iso", "clock"):
    register.filter(name, getattr(format, name))
register.filter("status_label", status_label)
register.filter("infer_type_label", infer_type_label)


@register.filter
def html_lang(code: str) -> str:
    """A Django language code as a BCP 47 tag, as <html lang> wants it: zh-hans → zh-Hans."""
    first, *rest = code.split("-")
    subtags = [first.lower()]
    for part in rest:
        if len(part) == 4:
            subtags.append(part.title())  # script
        elif len(part) == 2:
            subtags.append(part.upper())  # region
        else:
            subtags.append(part.lower())
    return "-".join(subtags)


@register.filter
def role_names(user) -> str:
    """The user's roles, as people read them: "operator"; "" for none."""
    names = [str(ROLE_LABELS.get(group.name, group.name)) for group in user.groups.all()]
    return pgettext("list separator", ", ").join(names)
