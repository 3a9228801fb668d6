"""The alerts provisioning file: channels and rules as TOML, checked whole before anything is
written, so a bad file changes nothing and says which field is wrong.

    [[channel]]
    name = "ops-dingtalk"
    kind = "dingtalk"
    url = "https://oapi.dingtalk.com/robot/send?access_token=${DINGTALK_TOKEN}"
    secret = "${DINGTALK_SECRET}"

    [[rule]]
    name = "failed-services"
    statuses = ["failed"]
    channels = ["ops-dingtalk"]

Any string may be ${NAME}, read from the environment when the file is applied.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.validators import validate_slug
from django.db import transaction

from dashboard.alerts.channels import KINDS, ChannelConfig, ChannelConfigError
from dashboard.alerts.conditions import check_rule
from dashboard.models import AlertChannel, AlertRule

VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
DURATION = re.compile(r"^(\d+)\s*(s|m|h|d)?$")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}
CHANNEL_KEYS = {"name", "kind", "url", "secret", "to", "project_id", "topic_urn", "ak", "sk"}
CONDITION_KEYS = {"statuses", "failure_rate", "stale", "detector"}
RULE_KEYS = CONDITION_KEYS | {
    "name",
    "window",
    "min_calls",
    "sources",
    "owners",
    "types",
    "service_name",
    "repeat",
    "channels",
    "enabled",
}


class ProvisioningError(Exception):
    """The file cannot be applied; the message names the bad field."""


@dataclass(frozen=True)
class Applied:
    channels: int
    rules: int
    removed: int


def load(path: str | Path) -> tuple[list[AlertChannel], list[tuple[AlertRule, list[str]]]]:
    """The file's channels and rules (with their channels' names), checked, not yet saved."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProvisioningError(f"{path}: {exc.strerror or exc}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ProvisioningError(f"{path}: not valid TOML: {exc}") from exc
    unknown = set(data) - {"channel", "rule"}
    if unknown:
        raise ProvisioningError(
            f"unknown section {sorted(unknown)[0]!r}: use [[channel]], [[rule]]"
        )
    data = _expand(data, "")
    channels = [
        _channel(entry, f"channel[{i}]") for i, entry in enumerate(_tables(data, "channel"))
    ]
    _unique([c.name for c in channels], "channel")
    known = {c.name for c in channels} | set(AlertChannel.objects.values_list("name", flat=True))
    rules = [_rule(entry, f"rule[{i}]", known) for i, entry in enumerate(_tables(data, "rule"))]
    _unique([r.name for r, _ in rules], "rule")
    return channels, rules


def apply(path: str | Path) -> Applied:
    """Apply the file: its channels and rules replace the ones an earlier file provisioned;
    those made in the admin are left alone."""
    channels, rules = load(path)
    with transaction.atomic():
        saved = {}
        for channel in channels:
            fields = {f: getattr(channel, f) for f in (*CHANNEL_KEYS - {"name"}, "provisioned")}
            saved[channel.name], _ = AlertChannel.objects.update_or_create(
                name=channel.name, defaults=fields
            )
        for rule, channel_names in rules:
            fields = {
                f.name: getattr(rule, f.name)
                for f in AlertRule._meta.concrete_fields
                if f.name not in ("id", "name")
            }
            row, _ = AlertRule.objects.update_or_create(name=rule.name, defaults=fields)
            row.channels.set(AlertChannel.objects.filter(name__in=channel_names))
        kept_rules = [rule.name for rule, _ in rules]
        old_rules = AlertRule.objects.filter(provisioned=True).exclude(name__in=kept_rules)
        old_channels = AlertChannel.objects.filter(provisioned=True).exclude(name__in=saved)
        removed = old_rules.count() + old_channels.count()
        old_rules.delete()
        old_channels.delete()
    return Applied(len(channels), len(rules), removed)


def _expand(value: object, where: str) -> object:
    """${NAME} in every string, from the environment; a missing variable is an error."""
    if isinstance(value, str):

        def variable(match: re.Match) -> str:
            name = match.group(1)
            if name not in os.environ:
                raise ProvisioningError(f"{where}: environment variable {name} is not set")
            return os.environ[name]

        return VARIABLE.sub(variable, value)
    if isinstance(value, list):
        return [_expand(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, dict):
        return {k: _expand(v, f"{where}.{k}" if where else k) for k, v in value.items()}
    return value


def _tables(data: dict, key: str) -> list[dict]:
    entries = data.get(key, [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ProvisioningError(f"{key}: write each one as a [[{key}]] table")
    return entries


def _unique(names: list[str], what: str) -> None:
    seen = set()
    for name in names:
        if name in seen:
            raise ProvisioningError(f"{what} {name!r} is defined twice")
        seen.add(name)


def _text(entry: dict, key: str, where: str, *, required: bool = False) -> str:
    value = entry.get(key, "")
    if not isinstance(value, str):
        raise ProvisioningError(f"{where}.{key}: must be a string")
    if required and not value.strip():
        raise ProvisioningError(f"{where}.{key}: is required")
    return value.strip()


def _strings(entry: dict, key: str, where: str) -> list[str]:
    value = entry.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ProvisioningError(f"{where}.{key}: must be a list of strings")
    return value


def _name(entry: dict, where: str) -> str:
    name = _text(entry, "name", where, required=True)
    try:
        validate_slug(name)
    except ValidationError:
        raise ProvisioningError(
            f"{where}.name: {name!r} must be letters, digits, - and _ only"
        ) from None
    return name


def _channel(entry: dict, where: str) -> AlertChannel:
    unknown = set(entry) - CHANNEL_KEYS
    if unknown:
        raise ProvisioningError(f"{where}: unknown field {sorted(unknown)[0]!r}")
    name = _name(entry, where)
    where = f"channel {name!r}"
    kind = _text(entry, "kind", where, required=True)
    if kind not in KINDS:
        raise ProvisioningError(f"{where}.kind: one of {', '.join(KINDS)}, not {kind!r}")
    fields = {key: _text(entry, key, where) for key in CHANNEL_KEYS - {"name", "kind", "to"}}
    to = _strings(entry, "to", where)
    try:
        ChannelConfig(name=name, kind=kind, to=tuple(to), **fields).validate()
    except ChannelConfigError as exc:
        raise ProvisioningError(str(exc)) from exc
    return AlertChannel(name=name, kind=kind, to=to, provisioned=True, **fields)


def _rule(entry: dict, where: str, channels: set[str]) -> tuple[AlertRule, list[str]]:
    unknown = set(entry) - RULE_KEYS
    if unknown:
        hint = " (a glob of service names is service_name)" if "name_glob" in unknown else ""
        raise ProvisioningError(f"{where}: unknown field {sorted(unknown)[0]!r}{hint}")
    name = _name(entry, where)
    where = f"rule {name!r}"
    given = sorted(CONDITION_KEYS & set(entry))
    if len(given) != 1:
        raise ProvisioningError(
            f"{where}: give exactly one condition of {', '.join(sorted(CONDITION_KEYS))}"
            + (f", not {', '.join(given)}" if given else "")
        )
    rule = AlertRule(
        name=name,
        condition=given[0],
        sources=_strings(entry, "sources", where),
        owners=_strings(entry, "owners", where),
        types=_strings(entry, "types", where),
        name_glob=_text(entry, "service_name", where),
        repeat_seconds=duration(entry.get("repeat", "4h"), f"{where}.repeat"),
        enabled=entry.get("enabled", True) is not False,
        provisioned=True,
    )
    if rule.condition == AlertRule.Condition.STATUSES:
        rule.statuses = _strings(entry, "statuses", where)
    elif rule.condition == AlertRule.Condition.FAILURE_RATE:
        rate = entry["failure_rate"]
        if isinstance(rate, bool) or not isinstance(rate, int | float):
            raise ProvisioningError(f"{where}.failure_rate: a number from 0 to 1")
        rule.failure_rate = float(rate)
        rule.window = _text(entry, "window", where, required=True)
        min_calls = entry.get("min_calls", 20)
        if isinstance(min_calls, bool) or not isinstance(min_calls, int) or min_calls < 1:
            raise ProvisioningError(f"{where}.min_calls: a whole number of at least 1")
        rule.min_calls = min_calls
    elif rule.condition == AlertRule.Condition.STALE:
        if entry["stale"] is not True:
            raise ProvisioningError(f"{where}.stale: write stale = true")
    else:
        rule.detector = _text(entry, "detector", where, required=True)
    problems = check_rule(rule)
    if problems:
        raise ProvisioningError(f"{where}.{problems[0]}")
    names = _strings(entry, "channels", where)
    missing = [n for n in names if n not in channels]
    if missing:
        raise ProvisioningError(f"{where}.channels: no channel named {missing[0]!r}")
    return rule, names


def duration(value: object, where: str) -> int:
    """Seconds of "4h", "30m", "90s", "1d" or "0" (0: never)."""
    match = DURATION.match(str(value).strip()) if isinstance(value, str | int) else None
    if match is None or isinstance(value, bool):
        raise ProvisioningError(f'{where}: a duration like "4h", "30m" or "0", not {value!r}')
    return int(match.group(1)) * UNITS[match.group(2)]
