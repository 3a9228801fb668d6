"""The last visit of each signed-in user, kept on the server for "What changed since my last
visit"."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import DatabaseError

from dashboard.models import UserPreference

log = logging.getLogger(__name__)
# A visit ends after this long without a full load of the table: the next load starts a new
# one, and "since my last visit" then means the end of the previous visit.
VISIT_GAP = timedelta(minutes=30)
# Loads closer together than this do not write: a reload costs no write.
SEEN_RESOLUTION = timedelta(minutes=1)


def record_visit(user: AbstractBaseUser | AnonymousUser, now: datetime) -> datetime | None:
    """Note that the user is looking at the table now; the end of their previous visit."""
    if not user.is_authenticated:
        return None
    try:
        preference = UserPreference.objects.filter(user=user).first()
        if preference is None:
            # The first visit: nothing to compare with yet (a rare race on the unique user
            # loses one first visit, never the page).
            UserPreference.objects.bulk_create(
                [UserPreference(user=user, seen_at=now)], ignore_conflicts=True
            )
            return None
        seen = preference.seen_at
        if seen is not None and now - seen < SEEN_RESOLUTION:
            return preference.last_visit_at
        changes = {"seen_at": now}
        if seen is not None and now - seen >= VISIT_GAP:
            changes["last_visit_at"] = seen
        UserPreference.objects.filter(pk=preference.pk).update(**changes)
        return changes.get("last_visit_at", preference.last_visit_at)
    except DatabaseError:
        # The poller holds SQLite's write lock, say: the page is worth more than the note.
        log.warning("the visit of %s could not be saved", user, exc_info=True)
        return None


def last_visit(user: AbstractBaseUser | AnonymousUser) -> datetime | None:
    """The end of the user's previous visit, without noting this one (an auto-refresh)."""
    if not user.is_authenticated:
        return None
    return UserPreference.objects.filter(user=user).values_list("last_visit_at", flat=True).first()
