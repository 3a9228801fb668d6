"""The words of an alert message, in each receiver's markup, with the data made harmless.

Service names, owners and the like are typed by anyone who may create a service, and end up in
group chats: a name must never mention everyone, become a link, or restyle the message. Each
markup gets its own escaping; the message's own markup (titles, links to the dashboard) is
added around the escaped values.

Messages go to channels, not to one person: they are written in the server's language,
settings.LANGUAGE_CODE, whichever page or process sends them.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, ParamSpec, TypeVar
from urllib.parse import quote

from django.conf import settings
from django.utils import translation
from django.utils.html import escape, format_html
from django.utils.translation import gettext as _

from dashboard.statuses import STYLES

if TYPE_CHECKING:
    from dashboard.alerts.channels import AlertLine, Notification

SHOWN = 10  # alerts a chat message lists before "… and N more"
VALUE_LIMIT = 120  # characters of one value: a pasted essay must not push the rest out
FIRING = "firing"

# The characters that make a mention (@all, <@id>), a tag (<at …>, <font>), a link ([x](y)),
# code or emphasis, swapped for full-width look-alikes: the text reads the same, no renderer
# sees markup in it. '#' and '-' need nothing: newlines are collapsed, so a value never starts
# a line. '_' stays so names copied from a chat still match on the dashboard.
_NEUTRAL = str.maketrans(
    {
        "@": "＠",
        "<": "＜",
        ">": "＞",
        "[": "［",
        "]": "］",
        "(": "（",
        ")": "）",
        "`": "｀",
        "*": "＊",
    }
)
# Chat apps turn a bare scheme://… into a link; a full-width colon keeps it readable text.
_SCHEME = re.compile(r":(?=//)")
# Characters a link target keeps as they are; the rest (brackets, quotes, spaces) are
# percent-encoded so a URL cannot close the markup around it.
_URL_SAFE = "/?:&=%#+,;~.-_"


def clean(value: object) -> str:
    """One line of visible text: whitespace runs (newlines too) collapsed, control and
    direction-changing characters dropped, cut to VALUE_LIMIT."""
    text = " ".join(str(value).split())
    text = "".join(ch for ch in text if unicodedata.category(ch) not in ("Cc", "Cf"))
    return text if len(text) <= VALUE_LIMIT else text[: VALUE_LIMIT - 1] + "…"


def neutral(value: object) -> str:
    """A value for DingTalk/WeCom markdown, Feishu text and SMN (which forwards to them)."""
    return _SCHEME.sub("：", clean(value).translate(_NEUTRAL))


def slack_escaped(value: object) -> str:
    """Slack's own three escapes: without them <!channel> or <url|label> in data would work."""
    text = clean(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _SCHEME.sub("：", text)


def html_escaped(value: object) -> str:
    return escape(clean(value))


def safe_url(url: str) -> str:
    """An http(s) link of ours, encoded so it cannot break out of the markup; else ""."""
    if not url.startswith(("http://", "https://")):
        return ""
    visible = "".join(ch for ch in url if not ch.isspace() and unicodedata.category(ch)[0] != "C")
    return quote(visible, safe=_URL_SAFE)


@dataclass(frozen=True)
class Style:
    """How one markup writes a value, a link and the title."""

    escape: Callable[[object], str]
    link: Callable[[str, str], str]  # (url, label) -> markup
    heading: Callable[[str], str]
    bullet: str = "- "


def _markdown_link(url: str, label: str) -> str:
    return f"[{label}]({url})"


def _slack_link(url: str, label: str) -> str:
    return f"<{url}|{label}>"


def _bare_link(url: str, label: str) -> str:
    return url


P = ParamSpec("P")
R = TypeVar("R")


def in_server_language(function: Callable[P, R]) -> Callable[P, R]:
    """Write the message in settings.LANGUAGE_CODE, not in the language of the request (an
    admin's "send a test message") that happens to send it."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with translation.override(settings.LANGUAGE_CODE):
            return function(*args, **kwargs)

    return wrapper


def status_words(status: str) -> str:
    """A status as the dashboard's pages name it; one it does not know, as the API sent it."""
    known = STYLES.get(status)
    return status if known is None else str(known.label)


MARKDOWN = Style(neutral, _markdown_link, lambda title: f"### {title}")
SLACK = Style(slack_escaped, _slack_link, lambda title: f"*{title}*", bullet="• ")
CHAT_TEXT = Style(neutral, _bare_link, lambda title: title)  # Feishu text, SMN
PLAIN = Style(clean, _bare_link, lambda title: title)  # the email's text part


def counts(notification: Notification) -> tuple[int, int]:
    firing = sum(alert.state == FIRING for alert in notification.alerts)
    return firing, len(notification.alerts) - firing


@in_server_language
def title(notification: Notification, write: Callable[[object], str] = clean) -> str:
    """Like [FIRING 3] rule, [RESOLVED 2] rule or [FIRING 3, RESOLVED 2] rule; `write`
    escapes the rule's name for the markup."""
    firing, resolved = counts(notification)
    parts = []
    if firing:
        parts.append(_("FIRING %(count)d") % {"count": firing})
    if resolved:
        parts.append(_("RESOLVED %(count)d") % {"count": resolved})
    return f"[{', '.join(parts)}] {write(notification.rule)}"


def facts(alert: AlertLine) -> list[tuple[str, dict[str, str]]]:
    """What a reader needs of one alert: fixed words, each with the data values they name."""
    labels, notes = alert.labels, alert.annotations
    name = labels.get("service_name") or labels.get("service_id") or labels.get("source", "")
    state = _("FIRING: %(name)s") if alert.state == FIRING else _("RESOLVED: %(name)s")
    found = [(state, {"name": name})]
    if labels.get("service_id"):
        found.append((_("id %(id)s"), {"id": labels["service_id"]}))
    status, previous = labels.get("status", ""), _previous(alert)
    if status and previous and previous != status:
        found.append(
            (
                _("%(previous)s → %(status)s"),
                {"previous": status_words(previous), "status": status_words(status)},
            )
        )
    elif status:
        found.append((_("status %(status)s"), {"status": status_words(status)}))
    if labels.get("service_id") and labels.get("source"):
        found.append((_("source %(source)s"), {"source": labels["source"]}))
    if labels.get("owner"):
        found.append((_("owner %(owner)s"), {"owner": labels["owner"]}))
    if notes.get("failure_rate"):
        found.append((_("failure rate %(rate)s"), {"rate": notes["failure_rate"]}))
    if not labels.get("service_id") and notes.get("summary"):
        found.append(("%(summary)s", {"summary": notes["summary"]}))  # a source's alert
    return found


def _previous(alert: AlertLine) -> str:
    return alert.labels.get("previous_status") or alert.annotations.get("previous_status", "")


def line(alert: AlertLine, style: Style) -> str:
    parts = [
        words % {key: style.escape(value) for key, value in values.items()}
        for words, values in facts(alert)
    ]
    url = safe_url(alert.url)
    if url:
        parts.append(style.link(url, _("open")))
    return style.bullet + " · ".join(parts)


def more(notification: Notification, shown: int) -> str:
    hidden = len(notification.alerts) - shown
    return _("… and %(count)d more") % {"count": hidden} if hidden > 0 else ""


@in_server_language
def render(notification: Notification, style: Style, shown: int = SHOWN) -> str:
    """The whole message: title, up to `shown` alert lines, how many more, the dashboard."""
    shown = min(shown, len(notification.alerts))
    lines = [style.heading(title(notification, style.escape)), ""]
    lines += [line(alert, style) for alert in notification.alerts[:shown]]
    if more(notification, shown):
        lines += ["", more(notification, shown)]
    home = safe_url(notification.external_url)
    if home:
        lines += ["", style.link(home, _("Open the dashboard"))]
    return "\n".join(lines)


@in_server_language
def fit(notification: Notification, style: Style, limit: int) -> str:
    """The message in at most `limit` UTF-8 bytes: fewer alert lines first, then a cut that
    never splits a character."""
    for shown in range(min(SHOWN, len(notification.alerts)), -1, -1):
        text = render(notification, style, shown)
        if len(text.encode()) <= limit:
            return text
    return text.encode()[:limit].decode("utf-8", "ignore")


@in_server_language
def html(notification: Notification, shown: int = SHOWN) -> str:
    """The email's HTML part, listing what the text part lists, every value escaped."""
    style = Style(html_escaped, _html_link, html_escaped, bullet="")
    items = "".join(f"<li>{line(alert, style)}</li>" for alert in notification.alerts[:shown])
    parts = [format_html("<h2>{}</h2>", title(notification)), f"<ul>{items}</ul>"]
    if more(notification, shown):
        parts.append(format_html("<p>{}</p>", more(notification, shown)))
    home = safe_url(notification.external_url)
    if home:
        parts.append(format_html("<p>{}</p>", _html_link(home, _("Open the dashboard"))))
    return "\n".join(parts)


def _html_link(url: str, label: str) -> str:
    return format_html('<a href="{}">{}</a>', url, label)
