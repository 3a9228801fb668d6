"""The formatters of web.format, as template filters."""

from __future__ import annotations

from django import template

from dashboard.web import format

register = template.Library()
for name in ("ago", "until", "count", "rate", "iso", "clock"):
    register.filter(name, getattr(format, name))
