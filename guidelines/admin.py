"""Admin = configuration. Evidence (acknowledgements, readings and reading progress, comprehension answers,
questions and their threads, objections and HR's handling of them, audit events) is read-only here, for the
superuser too.

The admin is a door like any other: every change to guidelines, versions, employees, users and
groups is an audit event with the fields it changed (old → new) and a security log line; drafts
are read-only here once they are up for review (they are edited on the HR pages); actions declare
their permissions and call the same services, which check them again.
"""

from datetime import timedelta

from allauth.mfa.admin import AuthenticatorAdmin
from allauth.mfa.models import Authenticator
from allauth.socialaccount.admin import SocialAccountAdmin
from allauth.socialaccount.models import SocialAccount
from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from . import api_tokens, publishing, questions
from .accounts import configured_providers
from .models import (
    Acknowledgement,
    ApiToken,
    AuditEvent,
    Department,
    Employee,
    EmployeeHistory,
    Guideline,
    Objection,
    ObjectionResolution,
    Question,
    QuestionMessage,
    QuizAttempt,
    QuizQuestion,
    Reading,
    ReadingProgress,
    Version,
    VersionText,
)
from .organisation import recorded
from .security import security_event
from .services import record_audit_event

ROLE_FIELDS = {"groups", "user_permissions", "permissions", "is_staff", "is_superuser"}
# Never copied into the audit trail: a password hash, an authenticator's secret or recovery codes, and
# what a provider sent about the person.
SECRET_FIELDS = {"password", "data", "extra_data"}


def _value(obj, field):
    if field.many_to_many:
        return sorted(str(item) for item in getattr(obj, field.name).all())
    value = getattr(obj, field.attname)
    return None if value is None else str(value)


def _snapshot(obj):
    if obj is None or obj.pk is None:
        return {}
    fields = [f for f in obj._meta.get_fields() if f.concrete and not f.auto_created or f.many_to_many]
    return {f.name: _value(obj, f) for f in fields if not (f.many_to_many and f.auto_created)}


class AuditedAdmin(admin.ModelAdmin):
    """Records every addition, change and deletion made in the admin as an audit event."""

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        # The state before the form is saved, to record old → new for every changed field.
        request._admin_before = _snapshot(self.get_object(request, object_id)) if object_id else {}
        with recorded(source="admin", by=request.user):  # the organisation's history names who
            return super().changeform_view(request, object_id, form_url, extra_context)

    def delete_view(self, request, object_id, extra_context=None):
        with recorded(source="admin", by=request.user):
            return super().delete_view(request, object_id, extra_context)

    def changelist_view(self, request, extra_context=None):
        with recorded(source="admin", by=request.user):  # bulk actions
            return super().changelist_view(request, extra_context)

    def _record(self, request, obj, operation, changes):
        touches_roles = bool(ROLE_FIELDS & set(changes))
        action = AuditEvent.Action.ROLES_CHANGED if touches_roles else AuditEvent.Action.ADMIN_CHANGED
        guideline = obj if isinstance(obj, Guideline) else getattr(obj, "guideline", None)
        version = obj if isinstance(obj, Version) else None
        if operation == "deleted":
            # The event must not point at (and so protect) the row that is about to go.
            guideline = None if guideline is obj else guideline
            version = None
        record_audit_event(action=action, actor=request.user, guideline=guideline, version=version,
                           operation=operation,
                           model=obj._meta.label_lower, object_id=obj.pk, object=str(obj)[:200], changes=changes)
        security_event("admin_" + operation, request=request, model=obj._meta.label_lower, object_id=obj.pk,
                       fields=sorted(changes), roles_changed=touches_roles)

    def _changes(self, request, obj):
        before, after = getattr(request, "_admin_before", {}), _snapshot(obj)
        return {
            name: ["…", "…"] if name in SECRET_FIELDS else [before.get(name), value]
            for name, value in after.items() if before.get(name) != value
        }

    def log_addition(self, request, obj, message):
        self._record(request, obj, "added", self._changes(request, obj))
        return super().log_addition(request, obj, message)

    def log_change(self, request, obj, message):
        self._record(request, obj, "changed", self._changes(request, obj))
        request._admin_before = _snapshot(obj)
        return super().log_change(request, obj, message)

    def log_deletions(self, request, queryset):
        for obj in queryset:
            self._record(request, obj, "deleted", {name: [value, None] for name, value in _snapshot(obj).items()
                                                   if name not in SECRET_FIELDS})
        return super().log_deletions(request, queryset)


User = get_user_model()
admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(User)
class AuditedUserAdmin(AuditedAdmin, UserAdmin):
    def user_change_password(self, request, id, form_url=""):
        request._admin_before = _snapshot(self.get_object(request, id))
        return super().user_change_password(request, id, form_url)


@admin.register(Group)
class AuditedGroupAdmin(AuditedAdmin, GroupAdmin):
    pass


admin.site.unregister(SocialAccount)
admin.site.unregister(Authenticator)


class ProviderLinkForm(forms.ModelForm):
    """A link between an account and a person at a configured identity provider (accounts.configured_providers),
    made by an administrator: the way to a privileged account when there are no passwords."""

    provider = forms.ChoiceField(label=_("identity provider"))
    uid = forms.CharField(label=_("subject at the identity provider"), max_length=191, help_text=_(
        "The person's subject (sub) at the provider, exactly as it sends it. Entra ID's is specific to this "
        "application (not the user's object ID); Keycloak's is the user's ID. After the person has tried to "
        "sign in once, the security log's sso_login_refused event shows it."))

    class Meta:
        model = SocialAccount
        fields = ["user", "provider", "uid"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["provider"].choices = list(configured_providers().items())


@admin.register(SocialAccount)
class AuditedSocialAccountAdmin(AuditedAdmin, SocialAccountAdmin):
    form = ProviderLinkForm


@admin.register(Authenticator)
class AuditedAuthenticatorAdmin(AuditedAdmin, AuthenticatorAdmin):
    """An administrator removes a lost authenticator here (its owner then sets up a new one); nobody
    makes one here, since its secret belongs in its owner's app only."""

    # Never shown: `data` holds the app's secret and the recovery codes' seed.
    fields = readonly_fields = ["user", "type", "created_at", "last_used_at"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Department)
class DepartmentAdmin(AuditedAdmin):
    search_fields = ["name"]


class EmployeeHistoryInline(admin.TabularInline):
    """The employee's organisation history: each record, when, and who or which import made it."""

    model = EmployeeHistory
    fk_name = "pgh_obj"
    # Each record's heading is its local time (the history model's __str__).
    fields = readonly_fields = ["change", "department", "manager", "start_date", "end_date", "made_by"]
    ordering = ["-pgh_created_at", "-pgh_id"]
    extra = 0
    can_delete = False
    verbose_name = _("organisation record")
    verbose_name_plural = _("Organisation history")
    CHANGES = {"created": _("created"), "changed": _("changed"), "recorded": _("recorded when history began")}
    SOURCES = {"import": _("HR import"), "scim": _("provisioning (SCIM)"), "admin": _("admin"),
               "demo": _("demo data")}

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("guidelines.view_employee")  # whoever may see the employee

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description=_("change"))
    def change(self, record):
        return self.CHANGES.get(record.pgh_label, record.pgh_label)

    @admin.display(description=_("made by"))
    def made_by(self, record):
        context = record.pgh_context or {}
        who = User.objects.filter(pk=context["by"]).first() if context.get("by") else None
        source = context.get("source")
        parts = [self.SOURCES.get(source, source) or _("unknown"), who.get_username() if who else ""]
        if context.get("import_run"):
            parts.append(_("import run %(number)s") % {"number": context["import_run"]})
        return ", ".join(str(part) for part in parts if part)


@admin.register(Employee)
class EmployeeAdmin(AuditedAdmin):
    inlines = [EmployeeHistoryInline]
    list_display = ["employee_number", "full_name", "department", "manager", "start_date", "end_date", "language"]
    list_filter = ["department", "language"]
    search_fields = ["employee_number", "user__email", "user__first_name", "user__last_name"]
    list_select_related = ["user", "department", "manager__user"]
    raw_id_fields = ["user", "manager"]

    def get_readonly_fields(self, request, obj=None):
        # Re-linking a record to another account would let that account act (and acknowledge)
        # as this employee; the HR import decides who is who.
        return ["user", "employee_number"] if obj is not None else []


@admin.register(Guideline)
class GuidelineAdmin(AuditedAdmin):
    list_display = ["reader_title", "slug", "owner", "audience_everyone", "due_days", "retired_at"]
    search_fields = ["title_nl", "title_en", "slug"]
    prepopulated_fields = {"slug": ["title_en"]}
    filter_horizontal = ["audience_departments", "audience_groups"]
    raw_id_fields = ["owner"]

    @admin.display(description=_("title"))
    def reader_title(self, guideline):
        return guideline.title

    def get_readonly_fields(self, request, obj=None):
        # The slug is sealed into every acknowledgement (chain.SEALED_FIELDS).
        return ["slug"] if obj is not None and obj.versions.released().exists() else []

    def get_prepopulated_fields(self, request, obj=None):
        return {} if "slug" in self.get_readonly_fields(request, obj) else self.prepopulated_fields


def _editable_here(version):
    """Only a draft nobody was asked to approve yet; after that, the HR pages alone edit it."""
    return version is None or (version.status == Version.Status.DRAFT and version.review_requested_at is None)


class VersionTextInline(admin.StackedInline):
    model = VersionText
    extra = 2
    max_num = 2
    fields = ["language", "title", "body", "change_summary", "content_hash"]
    readonly_fields = ["content_hash"]

    def has_change_permission(self, request, obj=None):
        return _editable_here(obj) and super().has_change_permission(request, obj)

    def has_add_permission(self, request, obj=None):
        return _editable_here(obj) and super().has_add_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return _editable_here(obj) and super().has_delete_permission(request, obj)


class ReadOnlyInline:
    """Rows shown with the record they belong to, never added, changed or deleted here (a forged
    formset in a POST is ignored: Django saves no form of an inline without these permissions)."""

    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class QuizQuestionInline(ReadOnlyInline, admin.TabularInline):
    """The version's comprehension check. HR writes it on the draft's HR page only, where
    comprehension.set_questions checks it and withdraws an approval: the admin is no second door."""

    model = QuizQuestion
    fields = readonly_fields = ["position", "text_nl", "text_en", "choice_list", "right_answer", "hint_nl",
                                "hint_en"]
    ordering = ["position"]

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("guidelines.view_version")  # part of the version, approved with it

    @admin.display(description=_("choices"))
    def choice_list(self, question):
        return format_html("<ol>{}</ol>", format_html_join(
            "", "<li>{} / {}</li>", ((choice.get("nl", ""), choice.get("en", "")) for choice in question.choices)))

    @admin.display(description=_("right answer"))
    def right_answer(self, question):
        return question.correct + 1  # its place in the list above


@admin.register(Version)
class VersionAdmin(AuditedAdmin):
    list_display = ["guideline", "version_number", "status", "leading_language", "published_at", "approved_by"]
    list_filter = ["status", "guideline"]
    readonly_fields = ["version_number", "status", "created_by", "approved_by", "approved_at", "published_by",
                       "published_at", "works_council_consented_on", "works_council_reference", "works_council_note",
                       "works_council_recorded_by", "works_council_recorded_at"]
    inlines = [VersionTextInline, QuizQuestionInline]
    # No approve or publish actions: both are decided on the HR pages, with the text and the changes
    # in view and a confirmation (a list action would approve or publish unread, in bulk).
    actions = None

    @admin.display(description=_("number"))
    def version_number(self, obj):
        return obj.number

    def get_inlines(self, request, obj):
        # A new version has no comprehension questions yet (HR writes them on the draft's HR page).
        return self.inlines if obj is not None else [VersionTextInline]

    def has_change_permission(self, request, obj=None):
        # Published versions are immutable and drafts under review are edited on the HR pages only.
        return super().has_change_permission(request, obj) and _editable_here(obj)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and _editable_here(obj)

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        # Whoever edits a draft here counts as one of its authors (nobody approves their own text).
        publishing.mark_draft_edited(version=form.instance, by=request.user)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Acknowledgement)
class AcknowledgementAdmin(ReadOnlyAdmin):
    list_display = ["sequence", "employee_number", "employee_name", "guideline", "version_number", "language",
                    "acknowledged_at", "channel"]
    list_filter = ["guideline", "channel", "language"]
    search_fields = ["employee_number", "employee_name"]
    list_select_related = ["guideline", "version"]

    @admin.display(description=_("version"))
    def version_number(self, obj):
        return obj.version.number


@admin.register(Reading)
class ReadingAdmin(ReadOnlyAdmin):
    list_display = ["employee", "version", "first_opened_at"]
    list_select_related = ["employee__user", "version__guideline"]


@admin.register(ReadingProgress)
class ReadingProgressAdmin(ReadOnlyAdmin):
    list_display = ["employee", "version", "furthest_percent", "seconds_on_text", "read_to_end_at", "updated_at"]
    list_filter = ["version__guideline"]
    search_fields = ["employee__employee_number", "employee__user__first_name", "employee__user__last_name"]
    list_select_related = ["employee__user", "version__guideline"]


@admin.register(QuizAttempt)
class QuizAttemptAdmin(ReadOnlyAdmin):
    list_display = ["answered_at", "employee", "question", "choice_number", "correct"]
    list_filter = ["correct", "question__version__guideline"]
    search_fields = ["employee__employee_number", "employee__user__first_name", "employee__user__last_name"]
    list_select_related = ["employee__user", "question__version__guideline"]

    @admin.display(description=_("answer"))
    def choice_number(self, attempt):
        return attempt.choice + 1  # as the question's list of choices numbers it


class QuestionMessageInline(ReadOnlyInline, admin.TabularInline):
    model = QuestionMessage
    fields = readonly_fields = ["written_at", "role", "author", "text"]
    ordering = ["written_at", "pk"]

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("guidelines.view_question")  # whoever may see the question, its thread

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("author")


@admin.register(Question)
class QuestionAdmin(ReadOnlyAdmin):
    inlines = [QuestionMessageInline]
    list_display = ["asked_at", "employee_number", "employee_name", "guideline", "version_number", "language",
                    "state"]
    list_filter = ["guideline", "language"]
    search_fields = ["employee__employee_number", "employee__user__first_name", "employee__user__last_name"]
    list_select_related = ["employee__user", "guideline", "version"]

    def get_queryset(self, request):
        return questions.with_state(super().get_queryset(request))

    @admin.display(description=_("employee number"), ordering="employee__employee_number")
    def employee_number(self, question):
        return question.employee.employee_number

    @admin.display(description=_("employee name"))
    def employee_name(self, question):
        return question.employee.full_name

    @admin.display(description=_("version"))
    def version_number(self, question):
        return question.version.number

    @admin.display(description=_("status"))
    def state(self, question):
        return _("waiting for an answer") if questions.is_open(question) else _("answered")


class ObjectionResolutionInline(ReadOnlyInline, admin.StackedInline):
    model = ObjectionResolution
    fields = readonly_fields = ["outcome", "note", "exemption", "resolved_by", "resolved_at"]

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("guidelines.view_objection")  # whoever may see the objection, its handling


@admin.register(Objection)
class ObjectionAdmin(ReadOnlyAdmin):
    """Objections and exception requests; HR handles them on the objection's page (questions.resolve)."""

    inlines = [ObjectionResolutionInline]
    list_display = ["recorded_at", "kind", "employee_number", "employee_name", "guideline", "version_number",
                    "handled"]
    list_filter = ["kind", "guideline"]
    search_fields = ["employee_number", "employee_name"]
    list_select_related = ["guideline", "version", "resolution"]

    @admin.display(description=_("version"))
    def version_number(self, objection):
        return objection.version.number

    @admin.display(description=_("handled"), boolean=True)
    def handled(self, objection):
        return questions.resolution_of(objection) is not None


@admin.register(ObjectionResolution)
class ObjectionResolutionAdmin(ReadOnlyAdmin):
    list_display = ["resolved_at", "employee_number", "kind", "outcome", "resolved_by"]
    list_filter = ["outcome"]
    search_fields = ["objection__employee_number", "objection__employee_name"]
    list_select_related = ["objection", "resolved_by"]

    @admin.display(description=_("employee number"), ordering="objection__employee_number")
    def employee_number(self, resolution):
        return resolution.objection.employee_number

    @admin.display(description=_("kind"))
    def kind(self, resolution):
        return resolution.objection.get_kind_display()


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["at", "action", "actor", "guideline", "version"]
    list_filter = ["action"]
    list_select_related = ["actor", "guideline", "version__guideline"]


class ApiTokenForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(label=_("scopes"), choices=ApiToken.Scope.choices,
                                       widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = ApiToken
        fields = ["name", "account", "scopes", "expires_at"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "expires_at" not in self.fields:  # a token's own page: everything is read-only there
            return
        self.fields["expires_at"].initial = timezone.now() + timedelta(days=90)
        self.fields["expires_at"].help_text = _("At most %(days)d days from now.") % {
            "days": settings.API_TOKEN_MAX_DAYS}

    def clean(self):
        data = super().clean()
        checks = [(api_tokens.check_scopes, "scopes"), (api_tokens.check_expiry, "expires_at"),
                  (api_tokens.check_account, "account")]
        for check, field in checks:
            if data.get(field):
                try:
                    check(data[field])
                except ValidationError as error:
                    self.add_error(None, error)
        return data


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Superusers issue tokens (api_tokens.issue checks it again) and revoke them; nothing else changes a
    token, and none is deleted: the security log refers to them by key."""

    form = ApiTokenForm
    list_display = ["name", "key_id", "account", "scope_list", "expires_at", "revoked_at", "last_used_at"]
    list_filter = ["revoked_at"]
    search_fields = ["name", "key_id", "account__username"]
    list_select_related = ["account"]
    actions = ["revoke"]
    readonly_fields = ["name", "account", "scope_list", "key_id", "created_by", "created_at", "expires_at",
                       "revoked_by", "revoked_at", "last_used_at"]

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else []

    def get_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else ApiTokenForm.Meta.fields

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    has_view_permission = has_add_permission = lambda self, request, obj=None: request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser and obj is None  # the list's revoke action; a token itself never changes

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("scopes"))
    def scope_list(self, obj):
        return ", ".join(obj.scopes)  # the codes the API documentation uses; the form shows what each means

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        token, self._plain_text = api_tokens.issue(by=request.user, name=data["name"], account=data["account"],
                                                   scopes=data["scopes"], expires_at=data["expires_at"])
        form.instance = token
        obj.pk = token.pk

    def response_add(self, request, obj, post_url_continue=None):
        # Shown once, on this page only: the database keeps its hash.
        return TemplateResponse(request, "admin/guidelines/apitoken/issued.html", {
            **self.admin_site.each_context(request), "opts": self.opts, "token": obj,
            "plain_text": self._plain_text, "title": _("API token issued"),
        })

    @admin.action(description=_("Revoke the selected tokens"), permissions=["change"])
    def revoke(self, request, queryset):
        for token in queryset:
            api_tokens.revoke(token, by=request.user)
        self.message_user(request, _("Revoked %(count)d tokens.") % {"count": queryset.count()})
