"""Admin = configuration. Evidence (acknowledgements, readings, audit events) is read-only here."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils.translation import gettext_lazy as _

from . import publishing
from .models import Acknowledgement, AuditEvent, Department, Employee, Guideline, Reading, Version, VersionText


@admin.register(Department)
class DepartmentAdmin(admin.ModelAdmin):
    search_fields = ["name"]


@admin.register(Employee)
class EmployeeAdmin(admin.ModelAdmin):
    list_display = ["employee_number", "full_name", "department", "manager", "start_date", "end_date", "language"]
    list_filter = ["department", "language"]
    search_fields = ["employee_number", "user__email", "user__first_name", "user__last_name"]
    list_select_related = ["user", "department", "manager__user"]
    raw_id_fields = ["user", "manager"]


@admin.register(Guideline)
class GuidelineAdmin(admin.ModelAdmin):
    list_display = ["title", "slug", "owner", "audience_everyone", "due_days", "retired_at"]
    prepopulated_fields = {"slug": ["title"]}
    filter_horizontal = ["audience_departments", "audience_groups"]
    raw_id_fields = ["owner"]


class VersionTextInline(admin.StackedInline):
    model = VersionText
    extra = 2
    max_num = 2
    fields = ["language", "title", "body", "change_summary", "content_hash"]
    readonly_fields = ["content_hash"]

    def has_change_permission(self, request, obj=None):
        return obj is None or obj.is_editable

    def has_add_permission(self, request, obj=None):
        return obj is None or obj.is_editable

    def has_delete_permission(self, request, obj=None):
        return obj is None or obj.is_editable


@admin.register(Version)
class VersionAdmin(admin.ModelAdmin):
    list_display = ["guideline", "version_number", "status", "leading_language", "published_at", "approved_by"]
    list_filter = ["status", "guideline"]
    readonly_fields = ["version_number", "status", "created_by", "approved_by", "approved_at", "published_by",
                       "published_at"]
    inlines = [VersionTextInline]
    actions = ["approve", "publish_material", "publish_editorial"]

    @admin.display(description=_("number"))
    def version_number(self, obj):
        return obj.number

    def has_change_permission(self, request, obj=None):
        # A published version is immutable: it opens read-only.
        return super().has_change_permission(request, obj) and (obj is None or obj.is_editable)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and (obj is None or obj.is_editable)

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    def _apply(self, request, queryset, action, done_message):
        for version in queryset.select_related("guideline"):
            try:
                action(version)
            except (ValidationError, PermissionDenied) as error:
                message = "; ".join(getattr(error, "messages", [str(error)]))
                self.message_user(request, f"{version.guideline}: {message}", messages.ERROR)
            else:
                self.message_user(request, done_message % {"version": version}, messages.SUCCESS)

    @admin.action(description=_("Approve selected drafts (four-eyes)"))
    def approve(self, request, queryset):
        self._apply(request, queryset, lambda v: publishing.approve_version(version=v, by=request.user),
                    _("%(version)s approved."))

    @admin.action(description=_("Publish as a material change (new major version: everyone acknowledges again)"))
    def publish_material(self, request, queryset):
        self._apply(request, queryset,
                    lambda v: publishing.publish_version(version=v, by=request.user, material=True),
                    _("Published %(version)s."))

    @admin.action(description=_("Publish as an editorial change (new minor version: acknowledgements carry over)"))
    def publish_editorial(self, request, queryset):
        self._apply(request, queryset,
                    lambda v: publishing.publish_version(version=v, by=request.user, material=False),
                    _("Published %(version)s."))


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


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["at", "action", "actor", "guideline", "version"]
    list_filter = ["action"]
    list_select_related = ["actor", "guideline", "version__guideline"]
