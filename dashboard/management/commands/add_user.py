"""Create (or reset) a dashboard user with one role."""

from __future__ import annotations

import getpass
import os

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from dashboard.web.accounts import ROLES, create_user


class Command(BaseCommand):
    help = "Create or update a user: viewer (read), operator (refresh), admin (sources, users)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")
        parser.add_argument("--role", choices=list(ROLES), default="viewer")
        parser.add_argument(
            "--password-env",
            help="read the password from this environment variable instead of asking",
        )

    def handle(self, *args, username: str, role: str, password_env: str | None, **options):
        if password_env:
            password = os.environ.get(password_env, "")
            if not password:
                raise CommandError(f"environment variable {password_env} is not set")
        else:
            password = getpass.getpass(f"Password for {username}: ")
        try:
            validate_password(password)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        create_user(username, password, role)
        self.stdout.write(f"{username} is now a{'n' if role[0] in 'aeiou' else ''} {role}")
