"""What the dashboard knows: sources, poll runs, the current state of services, their history."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

# Only variables meant for this dashboard can be named: a row must not be able to send, say,
# SECRET_KEY or DATABASE_URL to an endpoint of its choosing as a "token".
SECRET_ENV_PREFIXES = ("MODELARTS_", "HUAWEICLOUD_")
ENV_NAME = RegexValidator(
    r"^(MODELARTS|HUAWEICLOUD)_[A-Z0-9_]{1,100}$",
    "Name an environment variable starting with MODELARTS_ or HUAWEICLOUD_.",
)


class Source(models.Model):
    """One ModelArts project (endpoint + project + workspace) to poll, and how.

    Secrets are never stored here: each *_env field names the environment variable that holds
    one, read when a poll starts.
    """

    class AuthKind(models.TextChoices):
        AKSK = "aksk", "AK/SK request signing"
        TOKEN = "token", "IAM token"
        IAM_PASSWORD = "iam-password", "IAM user name and password"
        NONE = "none", "None (simulator only)"

    class OffsetMode(models.TextChoices):
        PAGE = "page", "offset is a page index (as documented)"
        RECORD = "record", "offset is a record offset"

    name = models.SlugField(max_length=64, unique=True)
    endpoint = models.URLField(
        max_length=300, help_text="e.g. https://modelarts.cn-north-4.myhuaweicloud.com"
    )
    project_id = models.CharField(
        max_length=64,
        blank=True,
        help_text="May stay empty with IAM password auth: the token names it.",
    )
    workspace_id = models.CharField(
        max_length=64, blank=True, help_text="Empty: the default workspace."
    )
    auth_kind = models.CharField(max_length=16, choices=AuthKind, default=AuthKind.TOKEN)
    token_env = models.CharField(max_length=128, blank=True, validators=[ENV_NAME])
    ak_env = models.CharField("AK variable", max_length=128, blank=True, validators=[ENV_NAME])
    sk_env = models.CharField("SK variable", max_length=128, blank=True, validators=[ENV_NAME])
    security_token_env = models.CharField(
        max_length=128, blank=True, validators=[ENV_NAME], help_text="Only for temporary AK/SK."
    )
    iam_endpoint = models.URLField(
        max_length=300, blank=True, help_text="e.g. https://iam.cn-north-4.myhuaweicloud.com"
    )
    iam_domain = models.CharField("IAM account (domain) name", max_length=128, blank=True)
    iam_username = models.CharField("IAM user name", max_length=128, blank=True)
    password_env = models.CharField(max_length=128, blank=True, validators=[ENV_NAME])
    region = models.CharField(
        max_length=64,
        blank=True,
        help_text="The IAM project name a password token is scoped to, e.g. cn-north-4.",
    )
    offset_mode = models.CharField(max_length=8, choices=OffsetMode, default=OffsetMode.PAGE)
    interval_seconds = models.PositiveIntegerField(default=30)
    enabled = models.BooleanField(default=True)

    # The poll claim: a poller owns the source until claim_expires_at (see ingest.claims).
    claimed_by = models.CharField(max_length=160, blank=True)
    claim_expires_at = models.DateTimeField(null=True, blank=True)
    # A page asked for a poll now ("Refresh now", or data left stale): the next poller round
    # takes it. Web requests never poll themselves.
    poll_requested_at = models.DateTimeField(null=True, blank=True)

    # Denormalised from PollRun so the freshness strip costs no aggregate query.
    last_poll_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    failures_since_success = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    last_poll_complete = models.BooleanField(default=True)
    # Samples before this are thinned to hourly (see ingest.retention.thin_samples): each pruning
    # thins only what crossed the full-resolution boundary since the previous one.
    samples_thinned_until = models.DateTimeField(null=True, blank=True)
    # The poll its services' windows (ServiceWindow) end at; NULL: work them all out afresh at
    # the next poll (never done, or pruned history may have taken a baseline).
    windows_as_of = models.DateTimeField(null=True, blank=True)
    # The DASHBOARD_RATE_MIN_CALLS they ranked by: another one also works them all out afresh.
    windows_min_calls = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        permissions = [("refresh_source", "Can poll a source on demand (Refresh now)")]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        needed = {
            self.AuthKind.AKSK: ["ak_env", "sk_env"],
            self.AuthKind.TOKEN: ["token_env"],
            self.AuthKind.IAM_PASSWORD: [
                "iam_endpoint",
                "iam_domain",
                "iam_username",
                "password_env",
                "region",
            ],
        }.get(self.auth_kind, [])
        missing = {
            name: "Needed for this kind of authentication."
            for name in needed
            if not getattr(self, name)
        }
        if not self.project_id and self.auth_kind != self.AuthKind.IAM_PASSWORD:
            missing["project_id"] = "Needed unless an IAM password token names the project."
        if missing:
            raise ValidationError(missing)

    def next_poll_at(self) -> datetime | None:
        if self.last_poll_at is None:
            return None
        return self.last_poll_at + timedelta(seconds=self.interval_seconds)

    def is_stale(self, now: datetime | None = None) -> bool:
        """True when no successful poll landed within the expected interval (plus slack)."""
        if self.last_success_at is None:
            return True
        now = now or timezone.now()
        # One missed poll is late, not stale: allow the interval twice plus a little.
        return now - self.last_success_at > timedelta(seconds=2 * self.interval_seconds + 5)

    def is_due(self, now: datetime | None = None) -> bool:
        next_at = self.next_poll_at()
        return next_at is None or next_at <= (now or timezone.now())

    def is_overdue(self, now: datetime | None = None) -> bool:
        """Due for a while: no poller is keeping up, so an open page should ask for a poll.

        The grace lets a running poll_services take its turn first.
        """
        now = now or timezone.now()
        if self.is_polling(now):
            return False  # a poll is running: asking for another would only be refused
        grace = timedelta(seconds=max(5, self.interval_seconds // 2))
        return self.is_due(now - grace)

    def is_polling(self, now: datetime | None = None) -> bool:
        """A poller holds the source's claim (see ingest.claims)."""
        return bool(self.claim_expires_at and self.claim_expires_at > (now or timezone.now()))

    def request_poll(self, now: datetime | None = None) -> bool:
        """Ask the pollers for a poll now; False when one was asked for already (the first
        request's time stays, so a page can tell how long it has waited)."""
        now = now or timezone.now()
        pending = Source.objects.filter(pk=self.pk, poll_requested_at__isnull=True)
        asked = bool(pending.update(poll_requested_at=now))
        if asked:
            self.poll_requested_at = now
        return asked


class SavedView(models.Model):
    """A named bookmark of the service table: /v/<slug> opens its query string. Personal to
    its creator unless shared; only its creator or an admin may overwrite or delete it."""

    # Unique among the shared views, and among each person's own (see Meta.constraints).
    name = models.CharField(max_length=80)
    slug = models.SlugField(max_length=16, unique=True)
    query = models.TextField(blank=True)  # validated when saved; re-checked when listed
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    shared = models.BooleanField(default=False)  # everyone sees it, not only its creator

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["name"], condition=Q(shared=True), name="savedview_shared_name_unique"
            ),
            models.UniqueConstraint(
                fields=["created_by", "name"],
                condition=Q(shared=False),
                name="savedview_personal_name_unique",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def url(self) -> str:
        return f"/?{self.query}" if self.query else "/"


class LoginFailure(models.Model):
    """A failed login, kept for the throttle's window: per user name and per client address,
    shared by every web worker through the database."""

    username = models.CharField(max_length=150)
    address = models.GenericIPAddressField(null=True)
    at = models.DateTimeField(db_index=True)

    class Meta:
        indexes = [
            models.Index(fields=["username", "at"], name="loginfailure_user"),
            models.Index(fields=["address", "at"], name="loginfailure_address"),
        ]


class PollRun(models.Model):
    """One attempt to poll one source. A failed poll is data shown to users."""

    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="runs")
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    ok = models.BooleanField(default=False)
    poller = models.CharField(max_length=160, blank=True)  # the claim token: which process polled
    warnings = models.TextField(blank=True)  # on a successful poll: what it had to leave out
    error_kind = models.CharField(max_length=64, blank=True)
    error_message = models.TextField(blank=True)
    total_count = models.PositiveIntegerField(null=True, blank=True)
    fetched_count = models.PositiveIntegerField(null=True, blank=True)
    pages = models.PositiveIntegerField(default=0)
    complete = models.BooleanField(default=False)
    created_count = models.PositiveIntegerField(default=0)
    updated_count = models.PositiveIntegerField(default=0)
    gone_count = models.PositiveIntegerField(default=0)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        # The polls page and "last run of each source" read newest first per source.
        indexes = [models.Index(fields=["source", "-started_at"], name="pollrun_source_recent")]

    def __str__(self) -> str:
        return (
            f"{self.source} @ {self.started_at:%Y-%m-%d %H:%M:%S} {'ok' if self.ok else 'failed'}"
        )


# The service table's search index (SQLite: an FTS5 trigram table kept by triggers; see the
# 0002 migration). PostgreSQL searches through pg_trgm indexes on the columns instead.
SEARCH_TABLE = "dashboard_service_search"
SEARCHED_COLUMNS = ("service_name", "service_id", "description")


class Service(models.Model):
    """The latest known state of one (source, service_id), plus columns the table sorts on."""

    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="services")
    service_id = models.CharField(max_length=128)
    service_name = models.CharField(max_length=256)
    description = models.TextField(blank=True)
    tenant = models.CharField(max_length=64, blank=True)
    project = models.CharField(max_length=64, blank=True)
    owner = models.CharField(max_length=64, blank=True)
    publish_at = models.DateTimeField(null=True, blank=True)
    infer_type = models.CharField(max_length=32, blank=True)
    workspace_id = models.CharField(max_length=64, blank=True)
    # Open enum: stored exactly as the API sent it.
    status = models.CharField(max_length=32)
    progress = models.IntegerField(null=True, blank=True)
    invocation_times = models.BigIntegerField(null=True, blank=True)
    failed_times = models.BigIntegerField(null=True, blank=True)
    is_shared = models.BooleanField(null=True, blank=True)
    shared_count = models.IntegerField(null=True, blank=True)
    schedule = models.JSONField(default=list, blank=True)
    due_time = models.DateTimeField(null=True, blank=True)
    start_time = models.DateTimeField(null=True, blank=True)
    finished_time = models.DateTimeField(null=True, blank=True)
    operation_time = models.DateTimeField(null=True, blank=True)
    transition_at = models.DateTimeField(null=True, blank=True)
    is_opened_sample_collection = models.BooleanField(null=True, blank=True)
    is_free = models.BooleanField(null=True, blank=True)
    additional_properties = models.JSONField(default=dict, blank=True)
    raw = models.JSONField(default=dict)
    # Hash of the item minus operation_time (which changes on every request): a row is
    # rewritten only when this changes, so an idle fleet costs nothing to poll.
    fingerprint = models.CharField(max_length=32)

    # Derived when polled, so the table can sort on them with an index.
    severity = models.PositiveSmallIntegerField()
    failure_rate = models.FloatField(null=True, blank=True)
    calls_delta = models.BigIntegerField(null=True, blank=True)
    failures_delta = models.BigIntegerField(null=True, blank=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    first_seen_at = models.DateTimeField()
    gone_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["source", "service_id"], name="service_unique_per_source"
            )
        ]
        # One index per sortable column of the table, each ending in id: the table's tie-breaker,
        # so ORDER BY col, id LIMIT n reads the index in order. The table hides gone services.
        indexes = [
            # The default sort: most severe status first, then by name.
            models.Index(
                fields=["severity", "service_name", "id"],
                name="service_severity",
                condition=Q(gone_at=None),
            ),
        ] + [
            models.Index(fields=[field, "id"], name=f"service_{name}", condition=Q(gone_at=None))
            for field, name in [
                ("service_name", "name"),
                ("infer_type", "type"),
                ("owner", "owner"),
                ("invocation_times", "calls"),
                ("failed_times", "failures"),
                ("failure_rate", "rate"),
                ("calls_delta", "delta"),
                ("publish_at", "published"),
            ]
        ]
        # The status tiles (and the table's count) group by status without reading rows.
        indexes.append(
            models.Index(
                fields=["status", "source"], name="service_status", condition=Q(gone_at=None)
            )
        )
        # One index per sort serves both directions: a descending sort on a nullable column
        # reads it in two parts on PostgreSQL (see queries.services.ONE_INDEX_NULLABLE). The
        # search has a table of its own (SEARCH_TABLE, made in migrations).

    def __str__(self) -> str:
        return f"{self.service_name} ({self.service_id})"


class ServiceSample(models.Model):
    """A service's counters and status as of a poll where any of them changed."""

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="samples")
    poll_run = models.ForeignKey(PollRun, on_delete=models.CASCADE, related_name="samples")
    at = models.DateTimeField()
    status = models.CharField(max_length=32)
    progress = models.IntegerField(null=True, blank=True)
    invocation_times = models.BigIntegerField(null=True, blank=True)
    failed_times = models.BigIntegerField(null=True, blank=True)

    class Meta:
        # Charts read one service's samples over a time range.
        indexes = [models.Index(fields=["service", "at"], name="sample_service_at")]


class ServiceWindow(models.Model):
    """A service's counters over one of the table's windows, ending at its source's
    windows_as_of (its last successful poll): kept by the poller (see ingest.windows), so that a
    windowed view reads and sorts stored numbers instead of working out every service's window
    per request.

    severity and service_name are copies of the service's, so that "failing now" (rate, then
    severity, then name) reads one index in order.
    """

    # No index of its own: the unique (service, window) constraint's index leads with it.
    service = models.ForeignKey(
        Service, on_delete=models.CASCADE, related_name="windows", db_index=False
    )
    window = models.CharField(max_length=8)  # a key of baselines.WINDOWS
    # The counters at the window's start (NULL: unknown, see queries.windows).
    base_calls = models.BigIntegerField(null=True, blank=True)
    base_failures = models.BigIntegerField(null=True, blank=True)
    calls = models.BigIntegerField(null=True, blank=True)
    failures = models.BigIntegerField(null=True, blank=True)
    rate = models.FloatField(null=True, blank=True)
    # The rate over at least DASHBOARD_RATE_MIN_CALLS calls: what "failing now" ranks by.
    rank_rate = models.FloatField(null=True, blank=True)
    severity = models.PositiveSmallIntegerField()
    service_name = models.CharField(max_length=256)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["service", "window"], name="window_unique_per_service")
        ]
        # One index per windowed sort, each ending in the service: the table's tie-breaker.
        # (Either direction reads it, as the service table's; see ONE_INDEX_NULLABLE.)
        indexes = [
            models.Index(
                fields=["window", "-rank_rate", "severity", "service_name", "service"],
                name="window_failing",
            ),
            *(
                models.Index(fields=["window", field, "service"], name=f"window_{field}")
                for field in ("calls", "failures", "rate")
            ),
        ]


class StatusChange(models.Model):
    """A status change seen between two polls: it happened after previous_poll_at, by at."""

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="status_changes")
    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="status_changes")
    poll_run = models.ForeignKey(PollRun, on_delete=models.CASCADE, related_name="status_changes")
    at = models.DateTimeField()
    previous_poll_at = models.DateTimeField(null=True, blank=True)
    from_status = models.CharField(max_length=32, blank=True)
    to_status = models.CharField(max_length=32)
    # The API's own transition_at, when it sent one.
    transition_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        # The events feed reads newest first; a service's timeline reads its own rows.
        indexes = [
            models.Index(fields=["-at", "-id"], name="change_recent"),
            models.Index(fields=["service", "at"], name="change_service_at"),
        ]


class AlertChannel(models.Model):
    """Where alerts go: a receiver and how to reach it. Secrets (keys, signing secrets, SK) are
    stored here, never shown again once saved and never logged; a provisioning file may name
    them as ${VARIABLE} so they are read from the environment when it is applied."""

    class Kind(models.TextChoices):
        WEBHOOK = "webhook", "Webhook (Alertmanager payload)"
        ALERTMANAGER = "alertmanager", "Alertmanager API v2"
        SLACK = "slack", "Slack incoming webhook"
        WECOM = "wecom", "WeCom group robot"
        DINGTALK = "dingtalk", "DingTalk robot"
        FEISHU = "feishu", "Feishu / Lark bot"
        SMN = "smn", "Huawei Cloud SMN topic"
        EMAIL = "email", "Email"

    name = models.SlugField(max_length=64, unique=True)
    kind = models.CharField(max_length=16, choices=Kind)
    url = models.TextField(blank=True)  # WeCom's key and DingTalk's token ride in its query
    secret = models.TextField(blank=True)
    to = models.JSONField(default=list, blank=True)  # email addresses
    project_id = models.CharField(max_length=64, blank=True)
    topic_urn = models.CharField(max_length=256, blank=True)
    ak = models.CharField("AK", max_length=128, blank=True)
    sk = models.TextField("SK", blank=True)
    enabled = models.BooleanField(default=True)
    # Written by `manage.py apply_alerts`: a later file that leaves it out removes it.
    provisioned = models.BooleanField(default=False)

    class Meta:
        ordering = ["name"]
        permissions = [("test_alertchannel", "Can send a test message through a channel")]

    def __str__(self) -> str:
        return self.name


class AlertRule(models.Model):
    """When to alert: a condition over each service (or each source, for staleness), narrowed
    by selectors, sent to channels, repeated while it holds."""

    class Condition(models.TextChoices):
        STATUSES = "statuses", "Status is one of"
        FAILURE_RATE = "failure_rate", "Failure rate over a window"
        STALE = "stale", "Source data is stale"
        DETECTOR = "detector", "A detector fires"

    name = models.SlugField(max_length=64, unique=True)
    condition = models.CharField(max_length=16, choices=Condition)
    statuses = models.JSONField(default=list, blank=True)
    failure_rate = models.FloatField(null=True, blank=True)
    window = models.CharField(max_length=8, blank=True)
    min_calls = models.PositiveIntegerField(default=20)
    detector = models.CharField(max_length=16, blank=True)
    # Selectors: empty means any.
    sources = models.JSONField(default=list, blank=True)
    owners = models.JSONField(default=list, blank=True)
    types = models.JSONField(default=list, blank=True)
    name_glob = models.CharField("name (glob)", max_length=200, blank=True)
    repeat_seconds = models.PositiveIntegerField(default=4 * 3600)  # 0: never repeat
    channels = models.ManyToManyField(AlertChannel, blank=True, related_name="rules")
    enabled = models.BooleanField(default=True)
    provisioned = models.BooleanField(default=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Alert(models.Model):
    """One rule firing for one service (or one source): from when it started to when it
    resolved. The open ones are what /alerts/ lists as firing."""

    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="alerts")
    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="alerts")
    service = models.ForeignKey(
        "Service", null=True, blank=True, on_delete=models.CASCADE, related_name="alerts"
    )
    # Stable per rule and subject: Alertmanager's identity of the alert, and the dedup key.
    fingerprint = models.CharField(max_length=32)
    labels = models.JSONField(default=dict)
    annotations = models.JSONField(default=dict)
    started_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    # The last firing message enqueued for it (None: silenced so far, so never announced).
    notified_at = models.DateTimeField(null=True, blank=True)
    silenced = models.BooleanField(default=False)  # as of the last evaluation
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            # One open alert per rule and subject, whatever several pollers do.
            models.UniqueConstraint(
                fields=["rule", "fingerprint"],
                condition=Q(resolved_at=None),
                name="alert_open_once",
            )
        ]
        indexes = [
            # The header's count, the table's bells and /alerts/ read the open ones.
            models.Index(
                fields=["service"], name="alert_open_service", condition=Q(resolved_at=None)
            ),
            models.Index(fields=["-resolved_at"], name="alert_resolved_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.rule.name}: {self.labels.get('service_name') or self.labels.get('source')}"


class Silence(models.Model):
    """A maintenance window: alerts it matches are shown as silenced and send nothing. Every
    filled matcher must match (service id, source name, owner, rule name)."""

    service_id = models.CharField(max_length=128, blank=True)
    source = models.CharField(max_length=64, blank=True)
    owner = models.CharField(max_length=64, blank=True)
    rule = models.CharField(max_length=64, blank=True)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    comment = models.TextField()
    author = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-starts_at", "-id"]

    def __str__(self) -> str:
        return f"silence {self.pk}: {self.comment[:40]}"

    def matches(self, labels: dict[str, str], rule: str) -> bool:
        wanted = {
            "service_id": self.service_id,
            "source": self.source,
            "owner": self.owner,
        }
        if self.rule and self.rule != rule:
            return False
        return all(labels.get(key) == value for key, value in wanted.items() if value)


class Notification(models.Model):
    """The outbox: one message for one channel, written in the same transaction as the alert
    transitions it announces, sent (and retried) by the pollers' dispatcher."""

    class State(models.TextChoices):
        PENDING = "pending"
        SENT = "sent"
        FAILED = "failed"  # gave up after its last attempt

    channel = models.ForeignKey(AlertChannel, on_delete=models.CASCADE, related_name="messages")
    rule = models.CharField(max_length=64)  # the rule's name (or "test")
    # Stable across retries: the receiver's dedup key (Standard Webhooks' webhook-id).
    message_id = models.CharField(max_length=64, unique=True)
    payload = models.JSONField()
    created_at = models.DateTimeField()
    state = models.CharField(max_length=8, choices=State, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    claimed_by = models.CharField(max_length=160, blank=True)
    claim_expires_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_answer = models.TextField(blank=True)  # the receiver's, scrubbed of the channel's secrets
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The dispatcher's queue: pending messages by when they are due.
            models.Index(
                fields=["next_attempt_at"],
                name="notification_due",
                condition=Q(state="pending"),
            ),
            models.Index(fields=["channel", "-sent_at"], name="notification_channel_sent"),
        ]

    def __str__(self) -> str:
        return f"{self.rule} → {self.channel.name} ({self.state})"


class ExpositionPart(models.Model):
    """One family's /metrics lines for a slice of a source's services, as the last poll that
    wrote them left them (see ingest.exposition): a scrape concatenates these instead of
    rendering every service again. A poll replaces all of its source's parts at once, in its
    write transaction."""

    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="exposition_parts")
    family = models.CharField(max_length=64)  # a name of exposition.FAMILIES
    part = models.PositiveIntegerField()
    # The poll that rendered it (its started_at), and the source's name in its lines: a scrape
    # renders the source's rows instead when a later poll wrote rows without rendering them,
    # or the source has another name now (see exposition.current_parts).
    rendered_at = models.DateTimeField()
    source_name = models.CharField(max_length=64)
    # Last in the table: SQLite reads a column after a long text through its overflow pages.
    text = models.TextField()

    class Meta:
        # A scrape reads them in this order, family after family: from the index, unsorted.
        constraints = [
            models.UniqueConstraint(
                fields=["family", "source", "part"], name="exposition_part_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.source} {self.family} #{self.part}"


class ServiceDetail(models.Model):
    """What ModelArts says of one service beyond its list item: why it failed, its instances,
    models, events and deployments, as last fetched by a poller (for unhealthy services,
    within a budget per poll; for any service whose page asks)."""

    service = models.OneToOneField(
        Service, on_delete=models.CASCADE, primary_key=True, related_name="detail"
    )
    fetched_at = models.DateTimeField(null=True, blank=True)  # the last successful fetch
    attempted_at = models.DateTimeField(null=True, blank=True)  # the last try, ok or not
    # A page asked for a fresh fetch; the next poller round takes it.
    requested_at = models.DateTimeField(null=True, blank=True)
    # The last try's failure: its code (ModelArts.3505, unreachable, …) and message, shown as
    # an error rather than as empty data. not_found: ModelArts no longer knows the service.
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.TextField(blank=True)
    not_found = models.BooleanField(default=False)
    # As of fetched_at.
    error_msg = models.TextField(blank=True)  # ModelArts' own reason for a failure
    running_instances = models.IntegerField(null=True, blank=True)
    desired_instances = models.IntegerField(null=True, blank=True)
    requests_per_minute = models.IntegerField(null=True, blank=True)
    access_address = models.TextField(blank=True)
    # Each model: name, version, flavor, instances, weight, status, usage, env names only.
    model_configs = models.JSONField(default=list, blank=True)
    # ModelArts' event log, newest first: [{"type", "info", "at"}].
    events = models.JSONField(default=list, blank=True)
    # The deployment history, newest first: [{"at", "result", "models", "success", "failed"}].
    update_logs = models.JSONField(default=list, blank=True)

    class Meta:
        indexes = [
            # The poller's queue of pages waiting for a fetch.
            models.Index(
                fields=["requested_at"],
                name="detail_requested",
                condition=Q(requested_at__isnull=False),
            )
        ]

    def __str__(self) -> str:
        return f"detail of {self.service_id}"

    @property
    def below_desired(self) -> bool:
        running, desired = self.running_instances, self.desired_instances
        return running is not None and desired is not None and running < desired

    @classmethod
    def request(cls, service: Service, now: datetime | None = None) -> bool:
        """Ask the pollers for a fresh fetch of the service's detail; False when one is
        already asked for (the first request's time stays)."""
        now = now or timezone.now()
        cls.objects.get_or_create(service=service)
        pending = cls.objects.filter(service=service, requested_at__isnull=True)
        return bool(pending.update(requested_at=now))


class UserPreference(models.Model):
    """What a person chose for themselves, kept on the server so it follows them to every
    browser they sign in with."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="preference"
    )
    # A code of settings.LANGUAGES; "" for none chosen (the browser's language then).
    language = models.CharField(max_length=16, blank=True)
    # "What changed since my last visit": when this user last loaded the service table, and
    # when their previous visit ended (a visit ends after web.visits.VISIT_GAP without a load).
    # Kept here, not in the browser, so it follows them from laptop to phone.
    seen_at = models.DateTimeField(null=True, blank=True)
    last_visit_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"preferences of {self.user}"


class ApiToken(models.Model):
    """A person's token for scripts calling /api/*: it acts with its user's role. Only a hash
    of the secret is kept; the secret is shown once, when the token is made."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=80)
    # The token's first characters, shown in lists so people can tell their tokens apart.
    prefix = models.CharField(max_length=16)
    # SHA-256 of the whole token, hex: what a request's token is looked up by.
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


class OwnerName(models.Model):
    """A person's name for a ModelArts owner (the API sends only the IAM user's hex id),
    kept by admins; the table, its filter, the API and the CSV show it beside the id."""

    owner_id = models.CharField(max_length=64, unique=True)  # as Service.owner holds it
    name = models.CharField(max_length=150)

    class Meta:
        ordering = ["name", "owner_id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.owner_id})"
