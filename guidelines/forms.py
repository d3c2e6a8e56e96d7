from allauth.account.internal.flows.login import record_authentication
from allauth.core import context as allauth_context
from allauth.mfa.adapter import get_adapter as get_mfa_adapter
from allauth.mfa.totp.forms import ActivateTOTPForm
from allauth.mfa.webauthn.forms import AddWebAuthnForm, AuthenticateWebAuthnForm, ReauthenticateWebAuthnForm
from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.validators import FileExtensionValidator, ProhibitNullCharactersValidator
from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from . import publishing, webhooks
from .access import group_label
from .dashboards import NO_DEPARTMENT
from .models import (
    LANGUAGE_CHOICES,
    LANGUAGES,
    MESSAGE_MAX_LENGTH,
    Department,
    Employee,
    Guideline,
    NotificationLog,
    Objection,
    ObjectionResolution,
    Report,
    Version,
    WebhookSubscriber,
)
from .questions import OUTCOMES, check_characters, normalised
from .services import MAX_SECONDS_PER_REPORT
from .status import Status


class AcknowledgeForm(forms.Form):
    version = forms.IntegerField(widget=forms.HiddenInput, min_value=1, max_value=2**63 - 1)
    language = forms.ChoiceField(choices=LANGUAGE_CHOICES, widget=forms.HiddenInput)
    # The signed reference of the e-mail link the page was opened from, if any (services.channel_for).
    via = forms.CharField(widget=forms.HiddenInput, required=False, max_length=200)
    # "tracked" when js/reading.js reports the reading: a version that requires reading to the end is
    # then held to it (services.acknowledge). Without it the acknowledgement records the opening only.
    reading = forms.CharField(widget=forms.HiddenInput, required=False, max_length=10)
    # The template labels the checkbox with the exact statement that will be stored.
    confirm = forms.BooleanField(
        error_messages={"required": _("Please tick the box to confirm that you have read and understood it.")},
    )

    def __init__(self, *args, questions=(), language="en", **kwargs):
        """`questions`: the version's comprehension check (QuizQuestion), one field `q<pk>` each, in
        the reader's language."""
        super().__init__(*args, **kwargs)
        self.questions = list(questions)
        for number, question in enumerate(self.questions, start=1):
            missing = _("Question %(number)s: choose an answer.") % {"number": number}
            self.fields[f"q{question.pk}"] = forms.TypedChoiceField(
                label=question.text(language), coerce=int, widget=forms.RadioSelect,
                choices=[(position, text) for position, text in enumerate(question.choice_texts(language))],
                error_messages={"required": missing, "invalid_choice": missing})

    def answers(self):
        return {question.pk: self.cleaned_data[f"q{question.pk}"] for question in self.questions}


class ReadingReportForm(forms.Form):
    """What js/reading.js reports while the guideline page is open (services.record_progress)."""

    version = forms.IntegerField(min_value=1, max_value=2**63 - 1)
    seconds = forms.IntegerField(min_value=0, max_value=MAX_SECONDS_PER_REPORT)
    percent = forms.IntegerField(min_value=0, max_value=100)


# Questions and objections (questions.py) --------------------------------------------------------------------


class MessageField(forms.CharField):
    """A text someone writes to someone else (a question, an answer, a reason): at most
    MESSAGE_MAX_LENGTH characters, line ends as \\n, and no control characters, each refused with a message
    that says which and where."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", MESSAGE_MAX_LENGTH)
        kwargs.setdefault("widget", forms.Textarea(attrs={"rows": 6}))
        super().__init__(**kwargs)
        # check_characters names a NUL like any other control character: not a second message for it.
        self.validators = [validator for validator in self.validators
                           if not isinstance(validator, ProhibitNullCharactersValidator)]
        self.validators.append(check_characters)

    def to_python(self, value):
        return normalised(super().to_python(value))


class QuestionForm(forms.Form):
    # The version and language the employee was reading (the guideline page's link names them).
    version = forms.IntegerField(widget=forms.HiddenInput, min_value=1, max_value=2**63 - 1)
    language = forms.ChoiceField(choices=LANGUAGE_CHOICES, widget=forms.HiddenInput)
    text = MessageField(
        label=_("Your question"),
        help_text=_("Only you, the owner of the guideline and HR can read it. You get the answer by e-mail."),
        error_messages={"required": _("Write your question.")},
    )


class ObjectionForm(forms.Form):
    version = forms.IntegerField(widget=forms.HiddenInput, min_value=1, max_value=2**63 - 1)
    language = forms.ChoiceField(choices=LANGUAGE_CHOICES, widget=forms.HiddenInput)
    kind = forms.ChoiceField(
        label=_("What do you want to record?"), widget=forms.RadioSelect,
        choices=[(Objection.Kind.OBJECTION, _("An objection: I have read this version and I object to it")),
                 (Objection.Kind.EXCEPTION, _("An exception request: I ask to be exempted from it"))],
        error_messages={"required": _("Choose an objection or an exception request.")},
    )
    reason = MessageField(
        label=_("Your reason"),
        help_text=_("In your own words. It is kept as evidence with this version; HR and the owner of the guideline "
                    "read it."),
        error_messages={"required": _("Give your reason.")},
    )


class ReplyForm(forms.Form):
    """An answer of the owner or HR, or the employee's follow-up (the view sets the label)."""

    text = MessageField(label=_("Your answer"), error_messages={"required": _("Write your answer.")})


class ResolveForm(forms.Form):
    """HR's handling of an objection or exception request (the outcomes that fit its kind)."""

    outcome = forms.ChoiceField(label=_("Outcome"), widget=forms.RadioSelect,
                                error_messages={"required": _("Choose the outcome.")})
    note = MessageField(label=_("Your answer to the employee"),
                        help_text=_("The employee gets it by e-mail; it is kept with the objection."),
                        error_messages={"required": _("Write your answer to the employee.")})
    ends_on = forms.DateField(label=_("Exempt until (optional)"), required=False,
                              widget=forms.DateInput(attrs={"type": "date"}),
                              help_text=_("Only for an exemption. Empty: until further notice."))

    def __init__(self, *args, kind, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["outcome"].choices = [(outcome, capfirst(ObjectionResolution.Outcome(outcome).label))
                                          for outcome in OUTCOMES[kind]]
        if kind != Objection.Kind.EXCEPTION:
            del self.fields["ends_on"]
        if len(OUTCOMES[kind]) == 1:
            self.fields["outcome"].initial = OUTCOMES[kind][0]

    def clean(self):
        cleaned = super().clean()
        ends_on = cleaned.get("ends_on")
        if ends_on and cleaned.get("outcome") != ObjectionResolution.Outcome.EXEMPTED:
            self.add_error("ends_on", _("An end date is only for an exemption; leave it empty."))
        elif ends_on and ends_on < timezone.localdate():
            self.add_error("ends_on", _("The exemption cannot end in the past."))
        return cleaned


class InboxFilterForm(forms.Form):
    guideline = forms.ModelChoiceField(label=_("Guideline"), queryset=Guideline.objects.none(), required=False,
                                       to_field_name="slug", empty_label=_("all guidelines"))
    show = forms.ChoiceField(label=_("Show"), required=False,
                             choices=[("open", _("open only")), ("all", _("open and answered"))])

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        guidelines = Guideline.objects.by_title()
        self.fields["guideline"].queryset = (guidelines if user.has_perm("guidelines.manage")
                                             else guidelines.filter(owner=user))

    def clean_show(self):
        return self.cleaned_data["show"] or "open"


class GuidelineForm(forms.ModelForm):
    owner_email = forms.EmailField(
        label=_("Owner (e-mail address)"),
        help_text=_("Employees' questions about this guideline go to the owner."),
    )

    class Meta:
        model = Guideline
        fields = ["title_nl", "title_en", "slug", "audience_everyone", "audience_departments", "audience_groups",
                  "due_days", "reacknowledge_days", "requires_works_council_consent"]
        widgets = {
            "audience_departments": forms.CheckboxSelectMultiple,
            "audience_groups": forms.CheckboxSelectMultiple,
        }
        labels = {"audience_everyone": _("Everyone must acknowledge it"),
                  "requires_works_council_consent": _("Publish a version only with the works council's consent")}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["audience_groups"].label_from_instance = lambda group: group_label(group.name)
        if self.instance.pk:
            self.fields["owner_email"].initial = self.instance.owner.email
            self.fields["slug"].disabled = True  # links in e-mails and evidence refer to it
        self.fields["due_days"].min_value = 1

    def clean_owner_email(self):
        email = self.cleaned_data["owner_email"].lower()
        owner = get_user_model().objects.filter(email__iexact=email, is_active=True).first()
        if owner is None:
            raise forms.ValidationError(_("There is no active account with this e-mail address."))
        return owner

    def clean(self):
        cleaned = super().clean()
        everyone = cleaned.get("audience_everyone")
        if not everyone and not cleaned.get("audience_departments") and not cleaned.get("audience_groups"):
            raise forms.ValidationError(_("Choose everyone, or at least one department or group."))
        if cleaned.get("due_days") is not None and cleaned["due_days"] < 1:
            self.add_error("due_days", _("Give at least one day to acknowledge."))
        return cleaned


class DraftForm(forms.Form):
    leading_language = forms.ChoiceField(label=_("Legally leading language"), choices=LANGUAGE_CHOICES)
    effective_date = forms.DateField(
        label=_("Effective date (optional)"), required=False, widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("Leave empty to take effect on publication."),
    )
    require_read_to_end = forms.BooleanField(
        label=_("Employees must scroll to the end of the text before they can acknowledge"), required=False,
        help_text=_("The acknowledgement then records when the end was reached and how long the text was open. "
                    "Without JavaScript the page cannot tell; it then records only when the text was opened."))
    title_nl = forms.CharField(label=_("Title (Dutch)"), max_length=200)
    body_nl = forms.CharField(label=_("Text in Dutch (Markdown)"), widget=forms.Textarea(attrs={"rows": 18}))
    summary_nl = forms.CharField(label=_("Summary of changes (Dutch)"), required=False,
                                 widget=forms.Textarea(attrs={"rows": 3}))
    title_en = forms.CharField(label=_("Title (English)"), max_length=200)
    body_en = forms.CharField(label=_("Text in English (Markdown)"), widget=forms.Textarea(attrs={"rows": 18}))
    summary_en = forms.CharField(label=_("Summary of changes (English)"), required=False,
                                 widget=forms.Textarea(attrs={"rows": 3}))

    def clean_effective_date(self):
        day = self.cleaned_data.get("effective_date")
        if day and day < timezone.localdate():
            raise forms.ValidationError(_("The effective date cannot lie in the past."))
        return day

    def texts(self):
        return {
            language: (self.cleaned_data[f"title_{language}"].strip(), self.cleaned_data[f"body_{language}"],
                       self.cleaned_data[f"summary_{language}"].strip())
            for language in LANGUAGES
        }


class QuestionsForm(forms.Form):
    """A draft's comprehension check: up to five questions, each in both languages with two to four
    answers, the right one marked, and the passage of the text that answers it. A question left
    empty is no question; comprehension.set_questions checks the rest."""

    SLOTS, CHOICES = 5, 4

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for n in range(1, self.SLOTS + 1):
            for lang, language in (("nl", _("Dutch")), ("en", _("English"))):
                self.fields[f"q{n}_text_{lang}"] = forms.CharField(
                    label=_("Question %(number)s (%(language)s)") % {"number": n, "language": language},
                    max_length=300, required=False)
            for i in range(1, self.CHOICES + 1):
                for lang, language in (("nl", _("Dutch")), ("en", _("English"))):
                    self.fields[f"q{n}_choice{i}_{lang}"] = forms.CharField(
                        label=_("Answer %(letter)s (%(language)s)") % {"letter": "ABCD"[i - 1], "language": language},
                        max_length=200, required=False)
            self.fields[f"q{n}_correct"] = forms.TypedChoiceField(
                label=_("Right answer"), coerce=int, required=False, empty_value=None, widget=forms.RadioSelect,
                choices=[(i, "ABCD"[i - 1]) for i in range(1, self.CHOICES + 1)])
            for lang, language in (("nl", _("Dutch")), ("en", _("English"))):
                self.fields[f"q{n}_hint_{lang}"] = forms.CharField(
                    label=_("Where the text answers it (%(language)s)") % {"language": language}, max_length=1000,
                    required=False, widget=forms.Textarea(attrs={"rows": 2}),
                    help_text=_("Shown after a wrong answer: quote the passage.") if lang == "nl" else "")

    @classmethod
    def initial_for(cls, questions):
        initial = {}
        for n, question in enumerate(questions, start=1):
            initial.update({f"q{n}_text_nl": question.text_nl, f"q{n}_text_en": question.text_en,
                            f"q{n}_hint_nl": question.hint_nl, f"q{n}_hint_en": question.hint_en,
                            f"q{n}_correct": question.correct + 1})
            for i, choice in enumerate(question.choices, start=1):
                initial.update({f"q{n}_choice{i}_nl": choice["nl"], f"q{n}_choice{i}_en": choice["en"]})
        return initial

    def slots(self):
        """Per slot, its bound fields, for the template."""
        return [{"number": n, "text": [self[f"q{n}_text_{lang}"] for lang in LANGUAGES],
                 "choices": [[self[f"q{n}_choice{i}_{lang}"] for lang in LANGUAGES]
                             for i in range(1, self.CHOICES + 1)],
                 "correct": self[f"q{n}_correct"], "hint": [self[f"q{n}_hint_{lang}"] for lang in LANGUAGES]}
                for n in range(1, self.SLOTS + 1)]

    def questions(self):
        """The filled slots, in order, as comprehension.set_questions reads them; with the slot each came from."""
        data, found = self.cleaned_data, []
        for n in range(1, self.SLOTS + 1):
            names = [name for name in self.fields if name.startswith(f"q{n}_") and name != f"q{n}_correct"]
            if not any(data.get(name) for name in names):
                continue
            correct = data.get(f"q{n}_correct")
            found.append((n, {
                "text": {lang: data[f"q{n}_text_{lang}"] for lang in LANGUAGES},
                "choices": [{lang: data[f"q{n}_choice{i}_{lang}"] for lang in LANGUAGES}
                            for i in range(1, self.CHOICES + 1)],
                "correct": None if correct is None else correct - 1,
                "hint": {lang: data[f"q{n}_hint_{lang}"] for lang in LANGUAGES},
            }))
        return found


class PublishForm(forms.Form):
    change = forms.ChoiceField(
        label=_("What kind of change is this?"),
        choices=[("material", _("Material: everyone in the audience must acknowledge again (new major version)")),
                 ("editorial", _("Editorial: acknowledgements carry over, nobody is asked again (new minor version)"))],
        widget=forms.RadioSelect,
    )
    confirm = forms.BooleanField(label=_("I have checked the text and the audience."))


class ApproveForm(forms.Form):
    """The confirmation of an approval: the draft as the approver read it (its fingerprint), and their word."""

    fingerprint = forms.CharField(widget=forms.HiddenInput, required=False)
    confirm = forms.BooleanField(
        label=_("I have read the text in every language and the changes against the current version."),
        error_messages={"required": _("Confirm that you have read the text and the changes.")},
    )


class WorksCouncilConsentForm(forms.Form):
    """HR records the works council's consent to a draft (publishing.record_works_council_consent, whose
    rules these fields apply): the draft as HR saw it (its fingerprint), the day, the reference, a note."""

    fingerprint = forms.CharField(widget=forms.HiddenInput, required=False, max_length=64)
    consented_on = forms.DateField(
        label=_("Day of the works council's consent"), widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("The day the works council consented, as its decision or letter says."),
        error_messages={"required": _("Give the day the works council consented."),
                        "invalid": _("Give the day of consent as a date.")},
    )
    # The lengths are checked by publishing's rules (whose messages name the field); the browser's
    # maxlength only stops the typing.
    reference = forms.CharField(
        label=_("The works council's reference"), strip=True,
        widget=forms.TextInput(attrs={"maxlength": publishing.REFERENCE_MAX_LENGTH}),
        help_text=_("The number of its decision or letter, e.g. OR-2026-14."),
        error_messages={"required": _("Give the works council's reference, e.g. the number of its decision.")},
    )
    note = forms.CharField(label=_("Note (optional)"), required=False,
                           widget=forms.Textarea(attrs={"rows": 3, "maxlength": publishing.NOTE_MAX_LENGTH}),
                           help_text=_("For instance the conditions the works council attached to its consent."))
    confirm = forms.BooleanField(
        label=_("The works council consented to this text, in both languages."),
        error_messages={"required": _("Confirm that the works council consented to this text.")},
    )

    def clean_consented_on(self):
        return publishing.clean_consent_day(self.cleaned_data["consented_on"])

    def clean_reference(self):
        return publishing.clean_consent_reference(self.cleaned_data["reference"])

    def clean_note(self):
        return publishing.clean_consent_note(self.cleaned_data["note"])


class SendBackForm(forms.Form):
    comment = forms.CharField(
        label=_("What needs to change?"), widget=forms.Textarea(attrs={"rows": 4}), max_length=2000,
        help_text=_("The author reads this on the draft's page."),
        error_messages={"required": _("Say what needs to change.")},
    )


class ReasonForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), widget=forms.Textarea(attrs={"rows": 3}), max_length=2000)


class EmployeeSearchForm(forms.Form):
    q = forms.CharField(label=_("Name, employee number or e-mail address"), max_length=100, required=False)


# Where an exemption or extension form returns to once it is saved: the guideline or the employee.
RETURN_TO = [("guideline", "guideline"), ("employee", "employee")]


class ExemptionForm(forms.Form):
    employee_number = forms.CharField(label=_("Employee number"), max_length=32)
    return_to = forms.ChoiceField(choices=RETURN_TO, required=False, widget=forms.HiddenInput)
    reason = forms.CharField(label=_("Reason"), widget=forms.Textarea(attrs={"rows": 2}), max_length=2000)
    starts_on = forms.DateField(label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    ends_on = forms.DateField(label=_("Until (optional)"), required=False,
                              widget=forms.DateInput(attrs={"type": "date"}))

    def clean_employee_number(self):
        number = self.cleaned_data["employee_number"].strip()
        employee = Employee.objects.select_related("user").filter(employee_number=number).first()
        if employee is None:
            raise forms.ValidationError(_("No employee has this number."))
        return employee


class ExtensionForm(forms.Form):
    employee_number = forms.CharField(label=_("Employee number"), max_length=32)
    return_to = forms.ChoiceField(choices=RETURN_TO, required=False, widget=forms.HiddenInput)
    due_date = forms.DateField(label=_("New due date"), widget=forms.DateInput(attrs={"type": "date"}))
    reason = forms.CharField(label=_("Reason"), widget=forms.Textarea(attrs={"rows": 2}), max_length=2000)

    clean_employee_number = ExemptionForm.clean_employee_number


# Filters and uploads of the dashboards, the e-mail log, the reports and the import ------------------


class ListFilterForm(forms.Form):
    status = forms.ChoiceField(label=_("Status"), choices=[("", "")] + Status.choices, required=False)
    department = forms.RegexField(
        label=_("Department"), regex=rf"^(\d{{1,9}}|{NO_DEPARTMENT})$", required=False,
        error_messages={"invalid": _("Choose a department from the list.")},
    )
    search = forms.CharField(label=_("Search"), max_length=100, required=False)
    sort = forms.ChoiceField(
        label=_("Sort by"), required=False,
        choices=[("name", _("name")), ("due_date", _("due date"))],
    )

    def clean_sort(self):
        return self.cleaned_data["sort"] or "name"


class LogFilterForm(forms.Form):
    status = forms.ChoiceField(label=_("Status"), required=False,
                               choices=[("", _("all"))] + NotificationLog.Status.choices)
    kind = forms.ChoiceField(label=_("Kind"), required=False,
                             choices=[("", _("all"))] + NotificationLog.Kind.choices)


class VersionSelect(forms.Select):
    """The versions grouped by guideline. Each option says which guideline it belongs to
    (data-guideline), so that js/pack-form.js offers only the chosen guideline's versions; without
    the script, a version of another guideline is refused with a message on the field."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.group_guidelines, self.chosen_guideline = [], None

    def optgroups(self, name, value, attrs=None):
        groups = super().optgroups(name, value, attrs)
        for _group, options, index in groups:
            slug = self.group_guidelines[index] if index < len(self.group_guidelines) else None
            for option in options:
                if slug:
                    option["attrs"]["data-guideline"] = slug
                    # Version numbers repeat across guidelines: only the chosen guideline's is selected.
                    option["selected"] = option["selected"] and slug == self.chosen_guideline
                    if not option["selected"]:
                        option["attrs"].pop("selected", None)
        return groups


class PackForm(forms.Form):
    guideline = forms.ModelChoiceField(label=_("Guideline"), queryset=Guideline.objects.by_title(),
                                       to_field_name="slug", empty_label=None)
    version = forms.ChoiceField(label=_("Versions"), required=False, widget=VersionSelect)
    department = forms.ModelChoiceField(label=_("Department"), queryset=Department.objects.order_by("name"),
                                        required=False, empty_label=_("all departments"))
    as_of = forms.DateField(label=_("As of"), required=False,
                            widget=forms.DateInput(attrs={"type": "date"}),
                            help_text=_("The state at the end of this day; empty: now."))
    language = forms.ChoiceField(label=_("Language"), choices=settings.LANGUAGES)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        choices = [("", _("The current version")),
                   (Report.EVERY_VERSION, _("Every version (a section per major version)"))]
        group_guidelines = [None, None]
        released = Version.objects.released().select_related("guideline").order_by("-major", "-minor")
        by_guideline = {}
        for version in released:
            by_guideline.setdefault(version.guideline, []).append(version)
        for guideline in sorted(by_guideline, key=str):
            choices.append((str(guideline), [
                (version.number, _("%(number)s, published %(date)s") % {
                    "number": version.number, "date": date_format(timezone.localtime(version.published_at), "j F Y")})
                for version in by_guideline[guideline]]))
            group_guidelines.append(guideline.slug)
        self.fields["version"].choices = choices
        widget = self.fields["version"].widget
        widget.group_guidelines = group_guidelines
        widget.chosen_guideline = self.data.get("guideline") if self.is_bound else None

    def clean(self):
        cleaned = super().clean()
        guideline, number = cleaned.get("guideline"), cleaned.get("version")
        if guideline and number and number != Report.EVERY_VERSION and not guideline.versions.released().filter(
                major=number.split(".")[0], minor=number.split(".")[1]).exists():
            self.add_error("version", _("%(title)s has no published version %(number)s: choose one of its own "
                                        "versions.") % {"title": guideline, "number": number})
        return cleaned


class VerifyForm(forms.Form):
    code = forms.CharField(label=_("Verification code"), required=False, max_length=20)
    file = forms.FileField(label=_("PDF file"), required=False)


class PublicVerifyForm(forms.Form):
    """The public verification page: a PDF, its SHA-256, or the code printed on it."""

    file = forms.FileField(label=_("PDF file"), required=False)
    sha256 = forms.RegexField(
        label=_("or its SHA-256"), required=False, max_length=64, strip=True, regex=r"^[0-9a-fA-F]{64}$",
        help_text=_("64 hexadecimal characters, as sha256sum prints them."),
        error_messages={"invalid": _("A SHA-256 is 64 characters 0–9 and a–f.")})
    code = forms.CharField(label=_("or the verification code printed on it"), required=False, max_length=20)

    def clean_sha256(self):
        return self.cleaned_data["sha256"].strip().lower()

    def clean(self):
        cleaned = super().clean()
        if not self.errors and not (cleaned.get("file") or cleaned.get("sha256") or cleaned.get("code", "").strip()):
            raise forms.ValidationError(_("Upload a PDF, enter its SHA-256, or enter its verification code."))
        return cleaned


class EmployeeImportForm(forms.Form):
    file = forms.FileField(
        label=_("CSV file from the HR system"),
        validators=[FileExtensionValidator(["csv"], message=_("Choose a .csv file."))],
        error_messages={
            "required": _("Choose a CSV file to upload."),
            "empty": _("The file is empty."),
            "invalid": _("Choose a CSV file to upload."),
        },
    )
    dry_run = forms.BooleanField(
        label=_("Dry run only: show what would change, change nothing"), required=False, initial=True
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        # The middleware refuses a larger body before it is read; this catches a multipart body whose
        # Content-Length was within the limit only by a boundary's width.
        if upload.size > settings.IMPORT_MAX_BYTES:
            raise forms.ValidationError(
                _("The file is larger than %(size)s.") % {"size": filesizeformat(settings.IMPORT_MAX_BYTES)})
        return upload


class ActivateAuthenticatorForm(ActivateTOTPForm):
    """allauth's set-up of an authenticator app (settings.MFA_FORMS). The code that proves the new
    authenticator is this session's second factor too (middleware.SecondFactorMiddleware): recorded
    the moment it is accepted, as allauth records a code entered at sign-in."""

    def clean_code(self):
        code = super().clean_code()
        record_authentication(allauth_context.request, self.user, "mfa", type="totp", activated=True)
        return code


# allauth turns only some malformed WebAuthn credentials into a form error: a posted credential that
# misses a field, is not an object, or whose binary parts are cut short raised KeyError, TypeError,
# IndexError, struct.error … inside allauth and fido2, a 500. These forms make every failure to read
# or check a credential the error a wrong code gets, and refuse a credential too big (or too deeply
# nested) to be one before it is parsed at all.
CREDENTIAL_LIMIT = 64 * 1024


def _wrong_credential():
    return get_mfa_adapter().validation_error("incorrect_code")


class CredentialField(forms.JSONField):
    def to_python(self, value):
        if isinstance(value, str) and len(value) > CREDENTIAL_LIMIT:
            raise _wrong_credential()
        try:
            return super().to_python(value)
        except RecursionError as error:
            raise _wrong_credential() from error

    def bound_data(self, data, initial):
        return None  # never shown again: the browser makes a new credential for every try


def _checked(check):
    """Run allauth's reading and checking of a credential; any failure but its own form error is a
    wrong credential."""
    try:
        return check()
    except forms.ValidationError:
        raise
    except Exception as error:  # noqa: BLE001 - whatever the parsers raise on hostile bytes
        raise _wrong_credential() from error


class SecurityKeySignInForm(AuthenticateWebAuthnForm):
    """allauth's second step of a sign-in with a security key (settings.MFA_FORMS)."""

    credential = CredentialField(required=True, widget=forms.HiddenInput)

    def clean_credential(self):
        return _checked(super().clean_credential)


class SecurityKeyConfirmationForm(SecurityKeySignInForm):
    """allauth's confirmation of a sign-in with a security key (settings.MFA_FORMS): its
    ReauthenticateWebAuthnForm, which is the sign-in form with these two flags."""

    reauthenticated = ReauthenticateWebAuthnForm.reauthenticated
    passwordless = ReauthenticateWebAuthnForm.passwordless


class AddSecurityKeyForm(AddWebAuthnForm):
    """allauth's adding of a security key (settings.MFA_FORMS). As with the authenticator app, the key
    just proven is this session's second factor too; a credential the browser did not really make is
    refused (a form error) before anything is recorded."""

    credential = CredentialField(required=True, widget=forms.HiddenInput)

    def clean(self):
        cleaned_data = _checked(super().clean)
        if cleaned_data.get("credential") and not self.errors:
            record_authentication(allauth_context.request, self.user, "mfa", type="webauthn", activated=True)
        return cleaned_data


class WebhookSubscriberForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100,
                           help_text=_("Which system receives the events, e.g. the GRC tool."))
    url = forms.URLField(label=_("Address"), max_length=500, assume_scheme="https",
                         help_text=_("Where we send the events (https://…). Each one is signed; the receiver "
                                     "checks the signature with the secret shown after saving."))
    events = forms.MultipleChoiceField(label=_("Events"), choices=WebhookSubscriber.Event.choices,
                                       widget=forms.CheckboxSelectMultiple)

    def clean_url(self):
        url = self.cleaned_data["url"]
        webhooks.check_url(url)
        return url
