"""What the API answers, field by field: these describe the responses in the OpenAPI schema and turn
model instances into JSON. The per-employee, acknowledgement and objection lists build their rows from
`values_list` instead (one query per page, no model instances); their serializers describe them."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ..models import Objection, ObjectionResolution, Report
from ..status import Status


class VersionTextSerializer(serializers.Serializer):
    language = serializers.CharField()
    title = serializers.CharField()
    body = serializers.CharField(help_text="The text as written, in Markdown.")
    change_summary = serializers.CharField()
    content_hash = serializers.CharField(help_text="SHA-256 of the canonical text: what an acknowledgement seals.")


class WorksCouncilConsentSerializer(serializers.Serializer):
    consented_on = serializers.DateField(source="works_council_consented_on",
                                         help_text="The day the works council consented (WOR art. 27).")
    reference = serializers.CharField(source="works_council_reference", help_text="The works council's reference.")
    recorded_at = serializers.DateTimeField(source="works_council_recorded_at")


class VersionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    guideline = serializers.CharField(source="guideline.slug")
    number = serializers.CharField()
    status = serializers.ChoiceField(choices=["published", "superseded", "retired"],
                                     help_text="published: the current one; superseded or retired: no longer.")
    leading_language = serializers.CharField()
    effective_date = serializers.DateField(allow_null=True)
    published_at = serializers.DateTimeField()
    ended_at = serializers.DateTimeField(allow_null=True)
    works_council_consent = serializers.SerializerMethodField(
        help_text="The works council's consent to this text, recorded before publication; null: none recorded.")
    texts = VersionTextSerializer(many=True)

    @extend_schema_field(WorksCouncilConsentSerializer(allow_null=True))
    def get_works_council_consent(self, version):
        return WorksCouncilConsentSerializer(version).data if version.has_works_council_consent else None


class VersionSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.CharField()
    published_at = serializers.DateTimeField()


class GuidelineSerializer(serializers.Serializer):
    slug = serializers.CharField()
    title_nl = serializers.CharField()
    title_en = serializers.CharField()
    audience_everyone = serializers.BooleanField()
    audience_departments = serializers.ListField(child=serializers.CharField())
    audience_groups = serializers.ListField(child=serializers.CharField())
    due_days = serializers.IntegerField()
    reacknowledge_days = serializers.IntegerField(allow_null=True)
    requires_works_council_consent = serializers.BooleanField(
        help_text="A version is published only with the works council's consent to its text (WOR art. 27).")
    retired_at = serializers.DateTimeField(allow_null=True)
    current_version = VersionSummarySerializer(allow_null=True)


class CountsSerializer(serializers.Serializer):
    in_scope = serializers.IntegerField()
    acknowledged = serializers.IntegerField()
    pending = serializers.IntegerField()
    overdue = serializers.IntegerField()
    exempt = serializers.IntegerField()
    acknowledged_percent = serializers.FloatField()


class DepartmentCountsSerializer(serializers.Serializer):
    department_id = serializers.IntegerField(allow_null=True, help_text="null: employees without a department.")
    department = serializers.CharField(allow_null=True)
    counts = CountsSerializer()


class VersionStatusSerializer(serializers.Serializer):
    version = VersionSummarySerializer()
    guideline = serializers.CharField()
    as_of = serializers.DateField()
    scope = serializers.ChoiceField(choices=["everyone", "direct reports"],
                                    help_text="Whose status is counted: a manager's token counts their direct reports.")
    counts = CountsSerializer()
    departments = DepartmentCountsSerializer(many=True)


class EmployeeStatusSerializer(serializers.Serializer):
    employee_number = serializers.CharField()
    name = serializers.CharField()
    email = serializers.CharField()
    department = serializers.CharField(allow_null=True, help_text="As recorded on the as-of date.")
    manager_employee_number = serializers.CharField(allow_null=True)
    status = serializers.ChoiceField(choices=Status.values)
    due_date = serializers.DateField(allow_null=True)
    acknowledged_at = serializers.DateTimeField(allow_null=True)
    version_acknowledged = serializers.CharField(allow_null=True, help_text="e.g. 2.1, of the version's major number.")
    language = serializers.CharField(allow_null=True)
    channel = serializers.CharField(allow_null=True)


class EmployeeStatusPageSerializer(serializers.Serializer):
    as_of = serializers.DateField()
    next = serializers.CharField(allow_null=True, help_text="The address of the next page; null on the last.")
    results = EmployeeStatusSerializer(many=True)


class AcknowledgementSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    sequence = serializers.IntegerField(help_text="The record's position in the evidence chain.")
    guideline = serializers.CharField()
    version = serializers.CharField()
    cycle = serializers.IntegerField()
    employee_number = serializers.CharField()
    employee_name = serializers.CharField()
    department = serializers.CharField()
    language = serializers.CharField()
    content_hash = serializers.CharField()
    statement = serializers.CharField()
    acknowledged_at = serializers.DateTimeField()
    first_opened_at = serializers.DateTimeField(allow_null=True)
    read_to_end_at = serializers.DateTimeField(
        allow_null=True, help_text="When the end of the text had been on screen (seal format 3); null: not reported.")
    seconds_on_text = serializers.IntegerField(
        allow_null=True, help_text="Seconds the page with the text was in view (seal format 3); null: not reported.")
    answers = serializers.CharField(help_text="The comprehension check's answers as canonical JSON; empty without one.")
    channel = serializers.CharField()
    auth_method = serializers.CharField()
    previous_seal = serializers.CharField()
    seal = serializers.CharField(help_text="SHA-256 over the record's sealed values, the previous seal among them.")
    seal_format = serializers.IntegerField()


class AcknowledgementPageSerializer(serializers.Serializer):
    next = serializers.CharField(allow_null=True)
    results = AcknowledgementSerializer(many=True)


class ObjectionResolutionSerializer(serializers.Serializer):
    outcome = serializers.ChoiceField(
        choices=ObjectionResolution.Outcome.values,
        help_text="answered: an objection answered and closed; exempted: the exception granted (see exemption_id); "
                  "declined: the exception refused.")
    note = serializers.CharField(help_text="HR's answer to the employee, in HR's own words.")
    resolved_at = serializers.DateTimeField()
    resolved_by = serializers.CharField(help_text="The name of the HR member who handled it (their e-mail address "
                                                  "if the account has no name).")
    exemption_id = serializers.IntegerField(allow_null=True,
                                            help_text="The exemption granted with it; null for any other outcome.")


class ObjectionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=Objection.Kind.values,
                                   help_text="objection: the employee objects to the version; exception: they ask "
                                             "to be exempted from the guideline.")
    guideline = serializers.CharField(help_text="The guideline's slug.")
    version = serializers.CharField(help_text="The number of the version shown, e.g. 2.1.")
    major = serializers.IntegerField(help_text="Its major number: an acknowledgement of any version of it counts.")
    employee_number = serializers.CharField(help_text="As recorded at that moment.")
    employee_name = serializers.CharField(help_text="As recorded at that moment.")
    department = serializers.CharField(help_text="As recorded at that moment; empty without one.")
    language = serializers.CharField(help_text="The language variant shown (nl or en).")
    content_hash = serializers.CharField(help_text="SHA-256 of the canonical text shown, as in the version's texts.")
    statement = serializers.CharField(help_text="The sentence recorded, in that language.")
    reason = serializers.CharField(help_text="The employee's reason, in their own words.")
    recorded_at = serializers.DateTimeField(help_text="Server time.")
    first_opened_at = serializers.DateTimeField(allow_null=True,
                                                help_text="When the employee first opened the version; null: unknown.")
    resolution = ObjectionResolutionSerializer(allow_null=True, help_text="HR's handling; null while it is open.")


class ObjectionPageSerializer(serializers.Serializer):
    next = serializers.CharField(allow_null=True, help_text="The address of the next page; null on the last.")
    results = ObjectionSerializer(many=True)


class ChainVerificationSerializer(serializers.Serializer):
    verified_at = serializers.DateTimeField(allow_null=True, help_text="When the last check ran; null: never.")
    intact = serializers.BooleanField(allow_null=True)
    checked = serializers.IntegerField(allow_null=True, help_text="Records checked.")
    head_sequence = serializers.IntegerField(allow_null=True)
    head_seal = serializers.CharField(allow_null=True)
    first_break_sequence = serializers.IntegerField(allow_null=True)
    problem = serializers.CharField(allow_null=True)
    checkpoints_checked = serializers.IntegerField(allow_null=True)
    current_head_sequence = serializers.IntegerField(help_text="The chain's last record now.")


class ReportRequestSerializer(serializers.Serializer):
    guideline = serializers.SlugField(max_length=100)
    version = serializers.CharField(required=False, allow_blank=True, default="", max_length=20,
                                    help_text='A number such as 2.0, "all" for every version, empty for the '
                                              'current one.')
    department = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)
    as_of = serializers.DateField(required=False, allow_null=True, default=None)
    language = serializers.ChoiceField(choices=["nl", "en"], default="en")


class ReportSerializer(serializers.Serializer):
    code = serializers.CharField(source="verification_code")
    status = serializers.ChoiceField(choices=Report.Status.values)
    requested_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    parameters = serializers.DictField(child=serializers.CharField(allow_null=True, allow_blank=True))
    language = serializers.CharField()
    rows = serializers.IntegerField()
    progress = serializers.IntegerField()
    progress_total = serializers.IntegerField()
    pages = serializers.IntegerField()
    size = serializers.IntegerField()
    sha256 = serializers.CharField(allow_blank=True)
    error = serializers.CharField(allow_blank=True)
    download = serializers.CharField(allow_null=True, help_text="Where to fetch the PDF once it is ready.")
