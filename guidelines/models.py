from datetime import timedelta

import pghistory
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.validators import MaxValueValidator
from django.db import models
from django.db.models import Q
from django.utils import formats, timezone
from django.utils.translation import get_language, gettext
from django.utils.translation import gettext_lazy as _

from .chain import CURRENT_SEAL_FORMAT

LANGUAGE_CHOICES = [("nl", _("Dutch")), ("en", _("English"))]
# The languages of every version's texts, the pages, the e-mails and the reports.
LANGUAGES = tuple(code for code, _label in LANGUAGE_CHOICES)


def reader_language():
    """The language of the page, e-mail or report being made (translation.override sets it for
    e-mails and reports): one of LANGUAGES, else the first."""
    language = (get_language() or "")[:2]
    return language if language in LANGUAGES else LANGUAGES[0]


def in_language(variants, language=None):
    """`variants` ({language: text}) in `language` (default: the reader's), else in the other language:
    the rule for every text HR writes in both languages."""
    language = language or reader_language()
    for code in (language, *LANGUAGES):
        if variants.get(code):
            return variants[code]
    return ""
# Rows per round trip when streaming or bulk-writing large sets (employees, acknowledgements).
BATCH_ROWS = 5000
# Longest error text kept on a failed report or e-mail (the rest is in the worker's log).
ERROR_TEXT_LIMIT = 2000


class Department(models.Model):
    name = models.CharField(_("name"), max_length=200, unique=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("department")
        verbose_name_plural = _("departments")

    def __str__(self):
        return self.name


# The organisation as it was (organisation.py reads it): on PostgreSQL, triggers (django-pghistory)
# append a row to a history table whenever a tracked field changes, however it is changed (import,
# admin, a script, SQL). The row carries the change's context (who, which import run) when
# organisation.recorded() set one. History rows are never changed (migration 0015's guards).
def _history_record_name(record):
    return f"{timezone.localtime(record.pgh_created_at):%Y-%m-%d %H:%M}"


ORGANISATION_HISTORY = {
    "attrs": {"__str__": _history_record_name},
    "context_field": pghistory.ContextJSONField(),
    "context_id_field": None,
    "app_label": "guidelines",
}


@pghistory.track(
    pghistory.InsertEvent("created"),
    pghistory.UpdateEvent("changed"),
    fields=["department", "manager", "start_date", "end_date"],
    model_name="EmployeeHistory",
    obj_field=pghistory.ObjForeignKey(related_name="history"),
    meta={"verbose_name": _("employee history"), "verbose_name_plural": _("employee history"),
          "indexes": [models.Index(fields=["pgh_obj", "pgh_created_at"], name="employee_history_by_time")]},
    **ORGANISATION_HISTORY,
)
class Employee(models.Model):
    """HR data of a person; the login account is the related user."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="employee")
    employee_number = models.CharField(_("employee number"), max_length=32, unique=True)
    department = models.ForeignKey(
        Department, on_delete=models.PROTECT, null=True, blank=True, related_name="employees",
        verbose_name=_("department"),
    )
    manager = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="direct_reports",
        verbose_name=_("manager"),
    )
    start_date = models.DateField(_("start date"), null=True, blank=True)
    end_date = models.DateField(_("end date"), null=True, blank=True)
    language = models.CharField(_("language"), max_length=2, choices=LANGUAGE_CHOICES, default="nl")

    class Meta:
        ordering = ["employee_number"]
        verbose_name = _("employee")
        verbose_name_plural = _("employees")

    def __str__(self):
        return f"{self.full_name} ({self.employee_number})"

    @property
    def full_name(self):
        return self.user.get_full_name() or self.user.email

    def is_employed_on(self, day):
        started = self.start_date is None or self.start_date <= day
        not_left = self.end_date is None or self.end_date > day
        return self.user.is_active and started and not_left


# Whether the account was active (scope needs an active account) and its role groups (audiences).
# Tracked through proxies, so that the triggers are this app's migrations rather than Django's.
class TrackedAccount(get_user_model()):
    class Meta:
        proxy = True


class TrackedRoleGroup(get_user_model().groups.through):
    class Meta:
        proxy = True


AccountHistory = pghistory.create_event_model(
    TrackedAccount,
    pghistory.InsertEvent("created"),
    pghistory.UpdateEvent("changed"),
    fields=["is_active"],
    model_name="AccountHistory",
    obj_field=pghistory.ObjForeignKey(related_name="account_history"),
    meta={"verbose_name": _("account history"), "verbose_name_plural": _("account history"),
          "indexes": [models.Index(fields=["pgh_obj", "pgh_created_at"], name="account_history_by_time")]},
    abstract=False,
    **ORGANISATION_HISTORY,
)
RoleGroupHistory = pghistory.create_event_model(
    TrackedRoleGroup,
    pghistory.InsertEvent("added"),
    pghistory.DeleteEvent("removed"),
    fields=["user", "group"],
    model_name="RoleGroupHistory",
    obj_field=None,
    meta={"verbose_name": _("role group history"), "verbose_name_plural": _("role group history"),
          "indexes": [models.Index(fields=["user", "group", "pgh_created_at"], name="role_group_history_by_time")]},
    abstract=False,
    **ORGANISATION_HISTORY,
)


class GuidelineQuerySet(models.QuerySet):
    def active(self):
        return self.filter(retired_at__isnull=True)

    def by_title(self):
        """In the order of their titles in the reader's language."""
        return self.order_by(f"title_{reader_language()}", "slug")

    def for_employee(self, employee):
        """Guidelines whose audience includes the employee (by everyone, department or group)."""
        audience = Q(audience_everyone=True) | Q(audience_groups__user=employee.user_id)
        if employee.department_id is not None:
            # Not with None: the ORM would read `= None` as IS NULL, i.e. "has no audience department".
            audience |= Q(audience_departments=employee.department_id)
        return self.active().filter(audience).distinct()


class Guideline(models.Model):
    slug = models.SlugField(
        _("slug"), unique=True,
        help_text=_("The guideline's name in web addresses, e.g. social-media: lowercase letters, digits and "
                    "hyphens. It cannot be changed later."),
    )
    # Named in the reader's language everywhere: `title` below.
    title_nl = models.CharField(_("Title (Dutch)"), max_length=200)
    title_en = models.CharField(_("Title (English)"), max_length=200)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="owned_guidelines",
        help_text=_("Employees' questions about this guideline go to the owner."),
    )
    audience_everyone = models.BooleanField(_("everyone"), default=True)
    audience_departments = models.ManyToManyField(Department, blank=True, verbose_name=_("departments"))
    audience_groups = models.ManyToManyField(Group, blank=True, verbose_name=_("groups"))
    due_days = models.PositiveSmallIntegerField(
        _("due period (days)"),
        default=30,
        help_text=_("Days to acknowledge after publication, or after the start date for joiners."),
    )
    reacknowledge_days = models.PositiveIntegerField(
        _("re-acknowledgement interval (days)"),
        null=True,
        blank=True,
        # A century at most (longer is "never": leave it empty); every moment the status engine
        # counts back from stays within the calendar.
        validators=[MaxValueValidator(36500)],
        help_text=_("Ask again after this many days without a new version, e.g. 365. Empty: never."),
    )
    # Rules on employee conduct need the works council's consent before they take effect (Dutch Works
    # Councils Act, WOR art. 27): publishing.publish_version refuses a version without it.
    requires_works_council_consent = models.BooleanField(
        _("works council's consent required"),
        default=False,
        help_text=_("Rules on employee conduct need the works council's consent (WOR art. 27): a version is "
                    "published only once the works council's consent to exactly its text is recorded."),
    )
    created_at = models.DateTimeField(auto_now_add=True)
    retired_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = GuidelineQuerySet.as_manager()

    class Meta:
        ordering = ["slug"]  # by title: Guideline.objects.by_title(), in the reader's language
        verbose_name = _("guideline")
        verbose_name_plural = _("guidelines")
        permissions = [
            ("manage", _("Can author, publish and retire guidelines and see dashboards")),
            ("approve", _("Can approve guideline versions (four-eyes)")),
            ("audit", _("Can read dashboards, reports and verification results")),
        ]

    def __str__(self):
        return self.title

    @property
    def title(self):
        """The title in the reader's language (models.in_language)."""
        return self.title_in()

    def title_in(self, language=None):
        return in_language({code: getattr(self, f"title_{code}") for code in LANGUAGES}, language)

    def includes(self, employee):
        if self.audience_everyone:
            return True
        if employee.department_id and self.audience_departments.filter(pk=employee.department_id).exists():
            return True
        return self.audience_groups.filter(user=employee.user_id).exists()


class VersionQuerySet(models.QuerySet):
    def published(self):
        return self.filter(status=Version.Status.PUBLISHED)

    def released(self):
        """Versions that were published at some point, current or not."""
        return self.filter(published_at__isnull=False)


class Version(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", _("draft")
        APPROVED = "approved", _("approved")
        PUBLISHED = "published", _("published")
        SUPERSEDED = "superseded", _("superseded")
        RETIRED = "retired", _("retired")

    EDITABLE_STATUSES = (Status.DRAFT, Status.APPROVED)

    guideline = models.ForeignKey(Guideline, on_delete=models.PROTECT, related_name="versions",
                                  verbose_name=_("guideline"))
    # The number is assigned at publication, when HR decides material (major) or editorial (minor).
    major = models.PositiveIntegerField(null=True, blank=True, editable=False)
    minor = models.PositiveIntegerField(null=True, blank=True, editable=False)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.DRAFT,
                              editable=False)
    leading_language = models.CharField(
        _("legally leading language"), max_length=2, choices=LANGUAGE_CHOICES, default="nl"
    )
    effective_date = models.DateField(_("effective date"), null=True, blank=True)
    require_read_to_end = models.BooleanField(
        _("require reading to the end"), default=False,
        help_text=_("The acknowledge button works once the text was shown to its end. Without JavaScript the "
                    "page cannot tell; the acknowledgement then records only when it was opened."))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, editable=False
    )
    created_at = models.DateTimeField(auto_now_add=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, editable=False,
        verbose_name=_("approved by"),
    )
    approved_at = models.DateTimeField(_("approved at"), null=True, editable=False)
    # SHA-256 of exactly what the approver saw (chain.draft_fingerprint): publication refuses a
    # draft whose texts or settings no longer match it.
    approved_fingerprint = models.CharField(max_length=64, blank=True, editable=False)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, editable=False,
        verbose_name=_("published by"),
    )
    published_at = models.DateTimeField(_("published at"), null=True, editable=False)
    ended_at = models.DateTimeField(null=True, editable=False)
    # Four-eyes review of a draft: asked by the author, answered by an approver.
    review_requested_at = models.DateTimeField(null=True, editable=False)
    review_comment = models.TextField(_("reviewer's comment"), blank=True, editable=False)
    # The works council's consent (WOR art. 27), recorded by HR (publishing.record_works_council_consent):
    # the day it consented, its reference, and the fingerprint of the draft it consented to. A draft whose
    # fingerprint no longer matches has no valid consent. Frozen with the rest of a published version.
    works_council_consented_on = models.DateField(_("works council consented on"), null=True, editable=False)
    works_council_reference = models.CharField(_("works council's reference"), max_length=50, blank=True,
                                               editable=False)
    works_council_note = models.TextField(_("note on the works council's consent"), blank=True, editable=False)
    works_council_recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, editable=False,
        verbose_name=_("works council's consent recorded by"),
    )
    works_council_recorded_at = models.DateTimeField(_("works council's consent recorded at"), null=True,
                                                     editable=False)
    works_council_fingerprint = models.CharField(max_length=64, blank=True, editable=False)

    objects = VersionQuerySet.as_manager()

    class Meta:
        ordering = ["-major", "-minor", "-created_at"]
        verbose_name = _("version")
        verbose_name_plural = _("versions")
        constraints = [
            models.UniqueConstraint(fields=["guideline", "major", "minor"], name="version_number_unique"),
            models.UniqueConstraint(
                fields=["guideline"], condition=Q(status="published"), name="one_published_version_per_guideline"
            ),
            models.CheckConstraint(
                condition=Q(status__in=["draft", "approved"]) | Q(major__isnull=False, minor__isnull=False),
                name="released_version_has_number",
            ),
        ]

    def __str__(self):
        return f"{self.guideline} {self.number}"

    @property
    def title(self):
        """The title of this version's text in the reader's language (models.in_language), else the
        guideline's: what a page, e-mail or report about this one version calls it. Reads
        prefetched texts (prefetch_related("version__texts")) when there are."""
        return in_language({text.language: text.title for text in self.texts.all()}) or self.guideline.title

    @property
    def number(self):
        if self.major is None:
            return _("draft")
        return f"{self.major}.{self.minor}"

    @property
    def is_editable(self):
        return self.status in self.EDITABLE_STATUSES

    @property
    def label(self):
        """Its name wherever it is listed, in the active language: "Version 2.0", or for a draft the minute
        it was started ("Draft of 4 December 2026, 14:05"), so that two drafts of one day differ."""
        if not self.is_editable:
            return gettext("Version %(number)s") % {"number": self.number}
        when = formats.date_format(timezone.localtime(self.created_at), "j F Y, H:i")
        return gettext("Draft of %(when)s") % {"when": when}

    @property
    def is_material(self):
        return self.minor == 0

    @property
    def has_works_council_consent(self):
        """Whether a consent is recorded (for this draft's text or an earlier one: publishing.consent_state)."""
        return self.works_council_consented_on is not None


class VersionText(models.Model):
    """One language variant of a version. Immutable once the version is published (DB trigger)."""

    version = models.ForeignKey(Version, on_delete=models.PROTECT, related_name="texts")
    language = models.CharField(_("language"), max_length=2, choices=LANGUAGE_CHOICES)
    title = models.CharField(_("title"), max_length=200)
    body = models.TextField(_("text (Markdown)"))
    change_summary = models.TextField(_("summary of changes"), blank=True)
    # Both set at publication from the canonical body; see chain.canonical_text.
    body_html = models.TextField(editable=False, blank=True)
    content_hash = models.CharField(max_length=64, editable=False, blank=True)

    class Meta:
        ordering = ["version", "language"]
        verbose_name = _("language variant")
        verbose_name_plural = _("language variants")
        constraints = [models.UniqueConstraint(fields=["version", "language"], name="one_text_per_language")]

    def __str__(self):
        return f"{self.version} [{self.language}]"


class QuizQuestion(models.Model):
    """A multiple-choice question of a version's comprehension check, in both languages, frozen with
    the version at publication (DB trigger). `choices` is a list of {"nl": …, "en": …}; `correct`
    the position (0-based) of the right one; `hint_*` the passage of the text that answers it, shown
    after a wrong answer."""

    MAX_PER_VERSION = 5

    version = models.ForeignKey(Version, on_delete=models.PROTECT, related_name="quiz_questions")
    position = models.PositiveSmallIntegerField()
    text_nl = models.CharField(_("question (Dutch)"), max_length=300)
    text_en = models.CharField(_("question (English)"), max_length=300)
    choices = models.JSONField(_("choices"))
    correct = models.PositiveSmallIntegerField(_("right answer"))
    hint_nl = models.TextField(_("where the text says so (Dutch)"), max_length=1000)
    hint_en = models.TextField(_("where the text says so (English)"), max_length=1000)

    class Meta:
        ordering = ["version", "position"]
        verbose_name = _("comprehension question")
        verbose_name_plural = _("comprehension questions")
        constraints = [
            models.UniqueConstraint(fields=["version", "position"], name="one_question_per_position"),
            models.CheckConstraint(condition=models.Q(position__gte=1, position__lte=5),
                                   name="question_position_1_to_5"),
        ]

    def __str__(self):
        return f"{self.version} Q{self.position}"

    def text(self, language):
        return self.text_nl if language == "nl" else self.text_en

    def hint(self, language):
        return self.hint_nl if language == "nl" else self.hint_en

    def choice_texts(self, language):
        return [choice[language] for choice in self.choices]


class QuizAttempt(models.Model):
    """One answer an employee gave to a question: append-only (DB trigger), so the number of tries
    and the final answer sealed with the acknowledgement can be traced."""

    employee = models.ForeignKey(Employee, on_delete=models.PROTECT, related_name="quiz_attempts")
    question = models.ForeignKey(QuizQuestion, on_delete=models.PROTECT, related_name="attempts")
    choice = models.PositiveSmallIntegerField()
    correct = models.BooleanField()
    answered_at = models.DateTimeField()

    class Meta:
        ordering = ["answered_at", "pk"]
        verbose_name = _("answer to a comprehension question")
        verbose_name_plural = _("answers to comprehension questions")
        indexes = [models.Index(fields=["question", "employee"], name="quiz_attempt_question_employee")]

    def __str__(self):
        return f"{self.employee_id} answered {self.question_id}: {self.choice}"


class Reading(models.Model):
    """When an employee first opened a version: evidence that precedes the acknowledgement."""

    employee = models.ForeignKey(Employee, on_delete=models.PROTECT, related_name="readings")
    version = models.ForeignKey(Version, on_delete=models.PROTECT, related_name="readings")
    first_opened_at = models.DateTimeField()

    class Meta:
        verbose_name = _("reading")
        verbose_name_plural = _("readings")
        constraints = [models.UniqueConstraint(fields=["employee", "version"], name="one_reading_per_version")]

    def __str__(self):
        return f"{self.employee_id} opened {self.version_id} at {self.first_opened_at:%Y-%m-%d %H:%M}"


class ReadingProgress(models.Model):
    """How far an employee has read a version, as their browser reports it (js/reading.js): working
    state until they acknowledge, when the acknowledgement copies and seals it. The furthest point
    only grows, the time only adds up, and neither can run ahead of the clock (services.record_progress)."""

    employee = models.ForeignKey(Employee, on_delete=models.PROTECT, related_name="reading_progress")
    version = models.ForeignKey(Version, on_delete=models.PROTECT, related_name="reading_progress")
    furthest_percent = models.PositiveSmallIntegerField(default=0)
    seconds_on_text = models.PositiveIntegerField(default=0)
    read_to_end_at = models.DateTimeField(null=True)
    updated_at = models.DateTimeField()

    class Meta:
        verbose_name = _("reading progress")
        verbose_name_plural = _("reading progress")
        constraints = [
            models.UniqueConstraint(fields=["employee", "version"], name="one_reading_progress_per_version"),
            models.CheckConstraint(condition=models.Q(furthest_percent__lte=100), name="reading_percent_at_most_100"),
        ]

    def __str__(self):
        return f"{self.employee_id} read {self.furthest_percent}% of {self.version_id}"


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise TypeError("Acknowledgements are append-only evidence and cannot be updated.")

    def delete(self):
        raise TypeError("Acknowledgements are append-only evidence and cannot be deleted.")

    def for_employee(self, employee):
        return self.filter(employee=employee)


class Acknowledgement(models.Model):
    """One employee's acknowledgement of a major version: append-only, sealed and chained.

    Created only by services.acknowledge (and bulk seeding); database triggers refuse
    UPDATE and DELETE. The snapshot fields keep what was true at that moment.
    """

    class Channel(models.TextChoices):
        WEB = "web", _("web")
        EMAIL = "email", _("e-mail link")

    employee = models.ForeignKey(Employee, on_delete=models.PROTECT, related_name="acknowledgements",
                                 verbose_name=_("employee"))
    guideline = models.ForeignKey(Guideline, on_delete=models.PROTECT, related_name="acknowledgements",
                                  verbose_name=_("guideline"))
    version = models.ForeignKey(Version, on_delete=models.PROTECT, related_name="acknowledgements",
                                verbose_name=_("version"))
    major = models.PositiveIntegerField()
    # 1 for the first acknowledgement of a major version; higher after a periodic re-acknowledgement.
    cycle = models.PositiveIntegerField(default=1)
    language = models.CharField(_("language read"), max_length=2, choices=LANGUAGE_CHOICES)
    content_hash = models.CharField(_("content hash"), max_length=64)
    statement = models.TextField()
    acknowledged_at = models.DateTimeField(_("acknowledged at"))
    first_opened_at = models.DateTimeField(null=True)
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    auth_method = models.CharField(max_length=40)
    ip_address = models.GenericIPAddressField(null=True)
    user_agent = models.CharField(max_length=512, blank=True)
    employee_number = models.CharField(_("employee number"), max_length=32)
    employee_name = models.CharField(_("employee name"), max_length=300)
    department_name = models.CharField(max_length=200, blank=True)
    manager_employee_number = models.CharField(max_length=32, blank=True)
    manager_name = models.CharField(max_length=300, blank=True)
    # A sign-in through an identity provider (auth_method "sso:<provider>"): the provider's subject
    # (its stable identifier of the person), and its `amr` (space-separated) and `acr` claims: how it
    # authenticated them, its second factor included. Empty after a password sign-in. Seal format 2.
    sso_subject = models.CharField(_("subject at the identity provider"), max_length=255, blank=True)
    sso_amr = models.CharField(_("authentication methods at the identity provider"), max_length=200, blank=True)
    sso_acr = models.CharField(_("authentication context at the identity provider"), max_length=200, blank=True)
    # Proof of reading (seal format 3), as the reading page reported it up to the acknowledgement
    # (ReadingProgress): when the text was shown to its end, and for how many seconds the page was in
    # view. Empty when the browser reported nothing (no JavaScript): then only first_opened_at stands.
    read_to_end_at = models.DateTimeField(_("read to the end at"), null=True)
    seconds_on_text = models.PositiveIntegerField(_("seconds on the text"), null=True)
    # The comprehension check's answers, as canonical JSON (empty without a check). Seal format 3.
    answers = models.TextField(_("answers"), blank=True)
    sequence = models.PositiveBigIntegerField(_("record number"), unique=True)
    previous_seal = models.CharField(max_length=64)
    seal = models.CharField(max_length=64, unique=True)
    # Which fields the seal covers (chain.SEAL_FORMATS): a later change of the sealed fields adds a
    # format instead of breaking the seals already on record.
    seal_format = models.PositiveSmallIntegerField(_("seal format"), default=CURRENT_SEAL_FORMAT, editable=False)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["-acknowledged_at"]
        verbose_name = _("acknowledgement")
        verbose_name_plural = _("acknowledgements")
        constraints = [
            models.UniqueConstraint(
                fields=["employee", "guideline", "major", "cycle"], name="one_acknowledgement_per_major_version"
            ),
        ]
        indexes = [models.Index(fields=["guideline", "major"], name="ack_guideline_major")]

    def __str__(self):
        return f"{self.employee_number} · {self.guideline_id} {self.major} · {self.acknowledged_at:%Y-%m-%d}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise TypeError("Acknowledgements are append-only evidence and cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("Acknowledgements are append-only evidence and cannot be deleted.")

    def is_valid_on(self, moment):
        """False once a periodic re-acknowledgement interval has passed."""
        interval = self.guideline.reacknowledge_days
        return interval is None or self.acknowledged_at + timedelta(days=interval) > moment


class Checkpoint(models.Model):
    """A statement of the acknowledgement chain at a moment (its head, its length), made every day
    and kept where rewriting the chain cannot reach it: an RFC 3161 timestamp from an outside
    authority binds its digest to the time, and a copy of the statement may be written outside the
    database. Checkpoints link to each other by digest. Append-only (database triggers);
    guidelines.checkpoints makes and checks them."""

    made_at = models.DateTimeField(_("made at"))
    head_sequence = models.PositiveBigIntegerField(_("last record"))
    head_seal = models.CharField(_("seal of the last record"), max_length=64)
    record_count = models.PositiveBigIntegerField(_("records"))
    previous_digest = models.CharField(max_length=64)
    digest = models.CharField(_("digest"), max_length=64, unique=True)
    # The DER TimeStampToken (RFC 3161) over the digest, and who gave it when; empty without a TSA.
    timestamp_token = models.BinaryField(null=True, editable=False)
    timestamp_authority = models.CharField(_("timestamp authority"), max_length=300, blank=True)
    timestamped_at = models.DateTimeField(_("timestamped at"), null=True)
    copy_path = models.CharField(_("copy outside the database"), max_length=500, blank=True)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["head_sequence", "made_at"]
        verbose_name = _("checkpoint")
        verbose_name_plural = _("checkpoints")

    def __str__(self):
        return f"{self.made_at:%Y-%m-%d %H:%M} #{self.head_sequence}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise TypeError("Checkpoints are append-only evidence and cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("Checkpoints are append-only evidence and cannot be deleted.")


class ChainHead(models.Model):
    """The last seal of the acknowledgement chain. Its row lock serialises appends."""

    sequence = models.PositiveBigIntegerField(default=0)
    seal = models.CharField(max_length=64)

    def __str__(self):
        return f"#{self.sequence} {self.seal}"


class ExemptionQuerySet(models.QuerySet):
    def active_on(self, day):
        return self.filter(models.Q(ends_on__isnull=True) | models.Q(ends_on__gte=day), revoked_at__isnull=True,
                           starts_on__lte=day)


class Exemption(models.Model):
    """An employee does not need to acknowledge a guideline (e.g. long-term leave). Evidence."""

    employee = models.ForeignKey(Employee, on_delete=models.PROTECT, related_name="exemptions",
                                 verbose_name=_("employee"))
    guideline = models.ForeignKey(Guideline, on_delete=models.PROTECT, related_name="exemptions",
                                  verbose_name=_("guideline"))
    reason = models.TextField(_("reason"))
    starts_on = models.DateField(_("from"))
    ends_on = models.DateField(_("until"), null=True, blank=True)
    granted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    granted_at = models.DateTimeField(default=timezone.now)
    revoked_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True)
    revoked_at = models.DateTimeField(null=True)

    objects = ExemptionQuerySet.as_manager()

    class Meta:
        ordering = ["-granted_at"]
        verbose_name = _("exemption")
        verbose_name_plural = _("exemptions")

    def __str__(self):
        return f"{self.employee_id} exempt from {self.guideline_id} since {self.starts_on}"


class DueDateExtension(models.Model):
    """A later due date for one employee and one major version. The latest one counts. Evidence."""

    employee = models.ForeignKey(Employee, on_delete=models.PROTECT, related_name="extensions",
                                 verbose_name=_("employee"))
    guideline = models.ForeignKey(Guideline, on_delete=models.PROTECT, related_name="extensions",
                                  verbose_name=_("guideline"))
    major = models.PositiveIntegerField()
    due_date = models.DateField(_("new due date"))
    reason = models.TextField(_("reason"))
    granted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    granted_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-granted_at"]
        verbose_name = _("due date extension")
        verbose_name_plural = _("due date extensions")
        indexes = [models.Index(fields=["guideline", "major", "employee"], name="extension_lookup")]

    def __str__(self):
        return f"{self.employee_id} due {self.due_date} for {self.guideline_id} {self.major}"


class ImportRun(models.Model):
    """One employee import from the HR system, applied or rejected; auditors ask when the last one ran."""

    class Outcome(models.TextChoices):
        APPLIED = "applied", _("applied")
        DRY_RUN = "dry_run", _("dry run")
        REJECTED = "rejected", _("rejected")

    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+")
    source = models.CharField(max_length=255)
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    rows = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    leavers = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-started_at"]
        verbose_name = _("employee import")
        verbose_name_plural = _("employee imports")

    def __str__(self):
        return f"{self.started_at:%Y-%m-%d %H:%M} {self.source} ({self.outcome})"


class ImportChange(models.Model):
    """One employee created or changed by an applied import, field by field: {field: [old, new]}."""

    class Action(models.TextChoices):
        CREATED = "created", _("created")
        UPDATED = "updated", _("updated")

    run = models.ForeignKey(ImportRun, on_delete=models.PROTECT, related_name="changes")
    employee_number = models.CharField(_("employee number"), max_length=32)
    action = models.CharField(max_length=10, choices=Action.choices)
    fields = models.JSONField(default=dict)

    class Meta:
        ordering = ["run", "pk"]
        verbose_name = _("imported change")
        verbose_name_plural = _("imported changes")

    def __str__(self):
        return f"{self.run_id}: {self.employee_number} {self.action}"


class AuditEvent(models.Model):
    class Action(models.TextChoices):
        REVIEW_REQUESTED = "review_requested", _("approval requested")
        VERSION_SENT_BACK = "version_sent_back", _("draft sent back")
        VERSION_APPROVED = "version_approved", _("version approved")
        VERSION_PUBLISHED = "version_published", _("version published")
        GUIDELINE_CREATED = "guideline_created", _("guideline created")
        GUIDELINE_CHANGED = "guideline_changed", _("guideline settings changed")
        GUIDELINE_RETIRED = "guideline_retired", _("guideline retired")
        EXEMPTION_GRANTED = "exemption_granted", _("exemption granted")
        EXEMPTION_REVOKED = "exemption_revoked", _("exemption revoked")
        DUE_DATE_EXTENDED = "due_date_extended", _("due date extended")
        EMPLOYEES_IMPORTED = "employees_imported", _("employees imported")
        CHAIN_VERIFIED = "chain_verified", _("evidence chain verified")
        CHECKPOINT_MADE = "checkpoint_made", _("evidence checkpoint made")
        DEMO_LOADED = "demo_loaded", _("demo data loaded")
        REMINDERS_PLANNED = "reminders_planned", _("reminder cycle planned")
        NUDGE_REQUESTED = "nudge_requested", _("reminders sent by HR")
        ANNOUNCEMENT_PLANNED = "announcement_planned", _("publication announced")
        REPORT_GENERATED = "report_generated", _("report generated")
        REPORT_DOWNLOADED = "report_downloaded", _("report downloaded")
        REPORT_VERIFIED = "report_verified", _("report verified")
        DRAFT_SAVED = "draft_saved", _("draft saved")
        ADMIN_CHANGED = "admin_changed", _("changed in the admin")
        ROLES_CHANGED = "roles_changed", _("roles changed")
        API_TOKEN_ISSUED = "api_token_issued", _("API token issued")
        API_TOKEN_REVOKED = "api_token_revoked", _("API token revoked")
        WEBHOOK_ADDED = "webhook_added", _("webhook subscriber added")
        WEBHOOK_DISABLED = "webhook_disabled", _("webhook subscriber disabled")
        WEBHOOK_ENABLED = "webhook_enabled", _("webhook subscriber enabled")
        WORKS_COUNCIL_CONSENT_RECORDED = "works_council_consent_recorded", _("works council's consent recorded")
        WORKS_COUNCIL_CONSENT_WITHDRAWN = "works_council_consent_withdrawn", _("works council's consent withdrawn")
        OBJECTION_RECORDED = "objection_recorded", _("objection or exception request recorded")
        OBJECTION_RESOLVED = "objection_resolved", _("objection or exception request handled")

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    at = models.DateTimeField(_("at"), default=timezone.now)
    action = models.CharField(_("action"), max_length=40, choices=Action.choices)
    guideline = models.ForeignKey(Guideline, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    version = models.ForeignKey(Version, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at"]
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M} {self.get_action_display()}"


class NotificationLog(models.Model):
    """One e-mail we send (or tried to): announcement, reminder digest, nudge, manager escalation or a
    request to the approvers.

    The idempotency key is claimed (inserted) before anything is sent, and is unique, so a retried
    task, a redelivered message, a second beat or a rerun of the day finds it taken and sends nothing.
    Rows are evidence (reports print the reminder history): the database refuses deletes.
    """

    class Kind(models.TextChoices):
        ANNOUNCEMENT = "announcement", _("announcement")
        REMINDER = "reminder", _("reminder")
        NUDGE = "nudge", _("reminder sent by HR")
        ESCALATION = "escalation", _("escalation to the manager")
        APPROVAL = "approval", _("approval request")
        # Questions and objections (questions.py): to the guideline's owner, and back to the employee.
        QUESTION = "question", _("question to the owner")
        ANSWER = "answer", _("answer to a question")
        OBJECTION = "objection", _("objection to the owner")
        RESOLUTION = "resolution", _("objection handled")

    class Status(models.TextChoices):
        CLAIMED = "claimed", _("being sent")
        SENT = "sent", _("sent")
        FAILED = "failed", _("failed")
        CANCELLED = "cancelled", _("not needed any more")

    idempotency_key = models.CharField(max_length=120, unique=True)
    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices)
    recipient = models.ForeignKey(Employee, on_delete=models.PROTECT, related_name="notifications",
                                  verbose_name=_("recipient"))
    email = models.EmailField(_("e-mail address"))
    language = models.CharField(_("language"), max_length=2, choices=LANGUAGE_CHOICES)
    day = models.DateField(_("day"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.CLAIMED)
    # The Celery task that claimed the row; a redelivery of that task (same id) may send it again.
    claimed_by = models.CharField(max_length=64)
    claimed_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(_("sent at"), null=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(_("error"), blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True,
                                     related_name="+")

    class Meta:
        ordering = ["-claimed_at"]
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        indexes = [
            models.Index(fields=["status", "day"], name="notification_status_day"),
            models.Index(fields=["recipient", "day"], name="notification_recipient_day"),
        ]

    def __str__(self):
        return f"{self.idempotency_key} ({self.status})"

    @property
    def message_id(self):
        """Stable per log row, so a duplicate that slipped out after a crash can be recognised."""
        domain = settings.DEFAULT_FROM_EMAIL.rsplit("@", 1)[-1].strip(">") or "localhost"
        return f"<notification-{self.pk}@{domain}>"


class NotificationItem(models.Model):
    """A version a notification was about, and whose acknowledgement it concerned: for a reminder
    the recipient's own, for an escalation the overdue report's. Append-only (database triggers)."""

    notification = models.ForeignKey(NotificationLog, on_delete=models.PROTECT, related_name="items")
    version = models.ForeignKey(Version, on_delete=models.PROTECT, related_name="+")
    employee = models.ForeignKey(Employee, on_delete=models.PROTECT, related_name="notification_items")
    due_date = models.DateField(null=True)

    class Meta:
        indexes = [models.Index(fields=["employee", "version"], name="notification_item_lookup")]

    def __str__(self):
        return f"{self.notification_id}: {self.employee_id} / {self.version_id}"


class Report(models.Model):
    """A generated PDF: the auditor pack or a personal certificate. The SHA-256 of the file and a
    short verification code printed on it let anyone check later that a PDF is one we made."""

    class Kind(models.TextChoices):
        AUDIT_PACK = "audit_pack", _("auditor pack")
        CERTIFICATE = "certificate", _("acknowledgement certificate")

    class Status(models.TextChoices):
        QUEUED = "queued", _("waiting")
        RUNNING = "running", _("being generated")
        DONE = "done", _("ready")
        FAILED = "failed", _("failed")

    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices)
    verification_code = models.CharField(_("verification code"), max_length=16, unique=True)
    # Empty when generated on the command line (manage.py audit_report).
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+",
                                     null=True, verbose_name=_("requested by"))
    requested_at = models.DateTimeField(_("requested at"), default=timezone.now)
    language = models.CharField(_("language"), max_length=2, choices=LANGUAGE_CHOICES)
    # What the report covers, as chosen: guideline slug, version number or EVERY_VERSION, department,
    # as-of date.
    parameters = models.JSONField(default=dict)
    guideline = models.ForeignKey(Guideline, on_delete=models.PROTECT, null=True, related_name="+")
    acknowledgement = models.ForeignKey(Acknowledgement, on_delete=models.PROTECT, null=True, related_name="+")
    status = models.CharField(_("status"), max_length=8, choices=Status.choices, default=Status.QUEUED)
    progress = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    rows = models.PositiveIntegerField(default=0)
    pages = models.PositiveIntegerField(default=0)
    file = models.CharField(max_length=255, blank=True)
    size = models.PositiveBigIntegerField(default=0)
    sha256 = models.CharField(_("SHA-256"), max_length=64, blank=True, db_index=True)
    finished_at = models.DateTimeField(_("finished at"), null=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-requested_at"]
        verbose_name = _("report")
        verbose_name_plural = _("reports")

    # parameters["version"] of a pack with a section for each major version.
    EVERY_VERSION = "all"

    def __str__(self):
        return f"{self.get_kind_display()} {self.verification_code}"

    @property
    def covered_versions(self):
        """The versions a pack covers, in words: "every version" or "version 2.0"."""
        choice = (self.parameters or {}).get("version", "")
        if choice == self.EVERY_VERSION:
            return _("every version")
        return _("version %(number)s") % {"number": choice} if choice else ""


class ApiToken(models.Model):
    """A client's key to the API (/api/v1/) and to provisioning (/scim/v2/), issued by an admin for one
    service account (api_tokens.py). The account's roles decide what the client may see, as they would
    on the pages; the scopes narrow that further. Only a SHA-256 of the secret is stored: the token is
    shown once, when it is issued."""

    class Scope(models.TextChoices):
        READ_STATUS = "status:read", _("read guidelines, versions and status")
        READ_EVIDENCE = "evidence:read", _("read acknowledgements, objections and the chain's verification")
        REQUEST_REPORTS = "reports:request", _("request and download auditor packs")
        PROVISION = "scim:provision", _("provision employees (SCIM)")

    name = models.CharField(_("client"), max_length=100, help_text=_("Which system uses it, e.g. the GRC tool."))
    account = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="api_tokens",
                                verbose_name=_("service account"))
    scopes = models.JSONField(_("scopes"), default=list)
    # Public: the first part of the token, shown in lists and the security log.
    key_id = models.CharField(_("key"), max_length=16, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+",
                                   editable=False, verbose_name=_("issued by"))
    created_at = models.DateTimeField(_("issued at"), default=timezone.now, editable=False)
    expires_at = models.DateTimeField(_("expires at"))
    revoked_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+",
                                   null=True, editable=False, verbose_name=_("revoked by"))
    revoked_at = models.DateTimeField(_("revoked at"), null=True, editable=False)
    last_used_at = models.DateTimeField(_("last used"), null=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")

    def __str__(self):
        return f"{self.name} ({self.key_id})"


class WebhookSubscriber(models.Model):
    """A system that wants to hear about events (webhooks.py): HR adds it with the address and the
    events; we make the secret (Standard Webhooks' `whsec_…`), show it once and keep it encrypted,
    because every delivery is signed with it. Never deleted: the delivery log refers to it."""

    class Event(models.TextChoices):
        VERSION_PUBLISHED = "version.published", _("a version was published")
        ACKNOWLEDGEMENT_CREATED = "acknowledgement.created", _("an employee acknowledged a version")
        VERSION_OVERDUE = "version.overdue", _("daily: a current version has overdue employees")
        REPORT_READY = "report.ready", _("an auditor pack is ready")
        OBJECTION_RECORDED = "objection.recorded", _("an employee objected to a version or asked for an exception")
        OBJECTION_RESOLVED = "objection.resolved", _("HR handled an objection or exception request")

    name = models.CharField(_("name"), max_length=100, help_text=_("Which system receives it, e.g. the GRC tool."))
    url = models.URLField(_("address"), max_length=500)
    events = models.JSONField(_("events"), default=list)
    # Fernet-encrypted (accounts.second_factor_cipher): a database copy holds no usable secret.
    secret_encrypted = models.TextField(editable=False)
    is_active = models.BooleanField(_("active"), default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+",
                                   editable=False, verbose_name=_("added by"))
    created_at = models.DateTimeField(_("added at"), default=timezone.now, editable=False)
    # Deliveries given up on in a row; a delivered one starts again from zero.
    failure_streak = models.PositiveIntegerField(default=0, editable=False)
    disabled_at = models.DateTimeField(_("disabled at"), null=True, editable=False)
    # None when the subscriber was disabled automatically after failed deliveries.
    disabled_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+",
                                    null=True, editable=False, verbose_name=_("disabled by"))
    disabled_reason = models.CharField(_("why it was disabled"), max_length=500, blank=True, editable=False)

    class Meta:
        ordering = ["name", "pk"]
        verbose_name = _("webhook subscriber")
        verbose_name_plural = _("webhook subscribers")

    def __str__(self):
        return self.name

    def event_labels(self):
        return [str(self.Event(event).label) for event in self.events if event in self.Event.values]


class WebhookEvent(models.Model):
    """Something that happened, as the exact JSON body every subscriber receives (signed as stored)."""

    type = models.CharField(_("event"), max_length=40, choices=WebhookSubscriber.Event.choices)
    # What the event is about ("acknowledgement.created:42", "version.overdue:7:2027-03-01"): a task
    # that runs twice, or a second beat, finds it taken and records nothing new.
    key = models.CharField(max_length=100, unique=True)
    body = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self):
        return self.key


class WebhookDelivery(models.Model):
    """One event for one subscriber. `message_id` is the `webhook-id` header: the same on every
    attempt, so a receiver recognises a repeat (delivery is at least once)."""

    class Status(models.TextChoices):
        PENDING = "pending", _("being delivered")
        DELIVERED = "delivered", _("delivered")
        FAILED = "failed", _("failed")
        CANCELLED = "cancelled", _("not sent: subscriber disabled")

    event = models.ForeignKey(WebhookEvent, on_delete=models.PROTECT, related_name="deliveries")
    subscriber = models.ForeignKey(WebhookSubscriber, on_delete=models.PROTECT, related_name="deliveries")
    message_id = models.CharField(max_length=40, unique=True)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    created_at = models.DateTimeField(default=timezone.now)
    last_attempt_at = models.DateTimeField(_("last attempt"), null=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True)
    response_status = models.PositiveSmallIntegerField(_("response"), null=True)
    last_error = models.TextField(_("error"), blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [models.UniqueConstraint(fields=["event", "subscriber"], name="one_delivery_per_subscriber")]
        indexes = [models.Index(fields=["subscriber", "-created_at"], name="webhook_delivery_log")]

    def __str__(self):
        return self.message_id


# Questions and objections (questions.py) ---------------------------------------------------------------

# The longest question, answer, reason or note anyone may write (a page of text).
MESSAGE_MAX_LENGTH = 4000


class RecordQuerySet(models.QuerySet):
    """The queryset of a record that is only ever added: no bulk update or delete (database triggers
    refuse them too)."""

    def update(self, **kwargs):
        raise TypeError(f"{self.model.__name__} rows are append-only and cannot be updated.")

    def delete(self):
        raise TypeError(f"{self.model.__name__} rows are append-only and cannot be deleted.")


class AppendOnlyRecord(models.Model):
    """A row that is written once: saving it again or deleting it is refused."""

    objects = RecordQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise TypeError(f"{type(self).__name__} rows are append-only and cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError(f"{type(self).__name__} rows are append-only and cannot be deleted.")


class Question(AppendOnlyRecord):
    """An employee's question to a guideline's owner about the version they were reading, in the
    language they read it in. Its text and everything said after it are the thread's messages
    (QuestionMessage). Append-only: a thread grows, nothing in it changes."""

    employee = models.ForeignKey(Employee, on_delete=models.PROTECT, related_name="questions",
                                 verbose_name=_("employee"))
    guideline = models.ForeignKey(Guideline, on_delete=models.PROTECT, related_name="questions",
                                  verbose_name=_("guideline"))
    version = models.ForeignKey(Version, on_delete=models.PROTECT, related_name="questions",
                                verbose_name=_("version"))
    language = models.CharField(_("language read"), max_length=2, choices=LANGUAGE_CHOICES)
    asked_at = models.DateTimeField(_("asked at"), default=timezone.now)

    class Meta:
        ordering = ["-asked_at", "-pk"]
        verbose_name = _("question")
        verbose_name_plural = _("questions")
        indexes = [models.Index(fields=["employee", "guideline"], name="question_of_employee"),
                   models.Index(fields=["guideline", "version"], name="question_of_version")]

    def __str__(self):
        # Ids only: a title must not cost a query per row (the admin's lists, its inlines).
        return _("Question %(number)s") % {"number": self.pk}


class QuestionMessage(AppendOnlyRecord):
    """One message of a question's thread: the question itself, a follow-up of the employee, or an
    answer of the owner or HR. Append-only."""

    class Role(models.TextChoices):
        EMPLOYEE = "employee", _("employee")
        OWNER = "owner", _("owner of the guideline")
        HR = "hr", _("HR")

    question = models.ForeignKey(Question, on_delete=models.PROTECT, related_name="messages")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+",
                               verbose_name=_("written by"))
    role = models.CharField(_("as"), max_length=10, choices=Role.choices)
    text = models.TextField(_("text"), max_length=MESSAGE_MAX_LENGTH)
    written_at = models.DateTimeField(_("written at"), default=timezone.now)

    class Meta:
        ordering = ["written_at", "pk"]
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        indexes = [models.Index(fields=["question", "written_at"], name="question_message_thread"),
                   models.Index(fields=["author", "written_at"], name="question_message_author")]

    def __str__(self):
        return _("Message %(number)s of question %(question)s") % {"number": self.pk, "question": self.question_id}

    @property
    def from_employee(self):
        return self.role == self.Role.EMPLOYEE


class Objection(AppendOnlyRecord):
    """An employee saw a version and disagreed: an objection ("I have read this version and I object,
    because …") or an exception request ("I ask to be exempted, because …"). Evidence like an
    acknowledgement: the exact version and language variant shown with its SHA-256, the statement,
    the reason, the server time, when the version was first opened, how the employee signed in and
    from where, and who they were then. It does not count as an acknowledgement. Append-only; HR's
    handling is an ObjectionResolution of its own."""

    class Kind(models.TextChoices):
        OBJECTION = "objection", _("objection")
        EXCEPTION = "exception", _("exception request")

    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    employee = models.ForeignKey(Employee, on_delete=models.PROTECT, related_name="objections",
                                 verbose_name=_("employee"))
    guideline = models.ForeignKey(Guideline, on_delete=models.PROTECT, related_name="objections",
                                  verbose_name=_("guideline"))
    version = models.ForeignKey(Version, on_delete=models.PROTECT, related_name="objections",
                                verbose_name=_("version"))
    major = models.PositiveIntegerField()
    language = models.CharField(_("language read"), max_length=2, choices=LANGUAGE_CHOICES)
    content_hash = models.CharField(_("content hash"), max_length=64)
    statement = models.TextField(_("statement"))
    reason = models.TextField(_("reason"), max_length=MESSAGE_MAX_LENGTH)
    recorded_at = models.DateTimeField(_("recorded at"))
    first_opened_at = models.DateTimeField(_("first opened at"), null=True)
    auth_method = models.CharField(_("sign-in"), max_length=40)
    ip_address = models.GenericIPAddressField(_("IP address"), null=True)
    user_agent = models.CharField(_("browser"), max_length=512, blank=True)
    sso_subject = models.CharField(max_length=255, blank=True)
    sso_amr = models.CharField(max_length=200, blank=True)
    sso_acr = models.CharField(max_length=200, blank=True)
    employee_number = models.CharField(_("employee number"), max_length=32)
    employee_name = models.CharField(_("employee name"), max_length=300)
    department_name = models.CharField(_("department"), max_length=200, blank=True)

    class Meta:
        ordering = ["-recorded_at", "-pk"]
        verbose_name = _("objection or exception request")
        verbose_name_plural = _("objections and exception requests")
        indexes = [models.Index(fields=["guideline", "major", "employee"], name="objection_lookup"),
                   models.Index(fields=["employee", "guideline"], name="objection_of_employee")]

    def __str__(self):
        return f"{self.get_kind_display()} {self.pk} · {self.employee_number}"

    @property
    def handling(self):
        """HR's ObjectionResolution, or None while it is open."""
        try:
            return self.resolution
        except models.ObjectDoesNotExist:
            return None


class ObjectionResolution(AppendOnlyRecord):
    """HR's handling of an objection or exception request, recorded beside it (the objection itself
    never changes): answered and closed, an exemption granted (services.grant_exemption, linked), or
    the exception declined, with HR's answer to the employee. One per objection. Append-only."""

    class Outcome(models.TextChoices):
        ANSWERED = "answered", _("answered and closed")
        EXEMPTED = "exempted", _("exemption granted")
        DECLINED = "declined", _("exception declined")

    objection = models.OneToOneField(Objection, on_delete=models.PROTECT, related_name="resolution")
    outcome = models.CharField(_("outcome"), max_length=10, choices=Outcome.choices)
    note = models.TextField(_("answer to the employee"), max_length=MESSAGE_MAX_LENGTH)
    exemption = models.ForeignKey(Exemption, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
                                  verbose_name=_("exemption"))
    resolved_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+",
                                    verbose_name=_("handled by"))
    resolved_at = models.DateTimeField(_("handled at"), default=timezone.now)

    class Meta:
        ordering = ["-resolved_at", "-pk"]
        verbose_name = _("handling of an objection")
        verbose_name_plural = _("handling of objections")

    def __str__(self):
        return _("Handling of %(objection)s: %(outcome)s") % {"objection": self.objection_id,
                                                               "outcome": self.get_outcome_display()}
