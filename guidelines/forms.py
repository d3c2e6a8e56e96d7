from django import forms
from django.contrib.auth import get_user_model
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .models import LANGUAGE_CHOICES, LANGUAGES, Employee, Guideline


class AcknowledgeForm(forms.Form):
    version = forms.IntegerField(widget=forms.HiddenInput, min_value=1)
    language = forms.ChoiceField(choices=LANGUAGE_CHOICES, widget=forms.HiddenInput)
    # The signed reference of the e-mail link the page was opened from, if any (services.channel_for).
    via = forms.CharField(widget=forms.HiddenInput, required=False, max_length=200)
    # The template labels the checkbox with the exact statement that will be stored.
    confirm = forms.BooleanField(
        error_messages={"required": _("Please tick the box to confirm that you have read and understood it.")},
    )


class GuidelineForm(forms.ModelForm):
    owner_email = forms.EmailField(
        label=_("Owner (e-mail address)"),
        help_text=_("Employees' questions about this guideline go to the owner."),
    )

    class Meta:
        model = Guideline
        fields = ["title", "slug", "audience_everyone", "audience_departments", "audience_groups", "due_days",
                  "reacknowledge_days"]
        widgets = {
            "audience_departments": forms.CheckboxSelectMultiple,
            "audience_groups": forms.CheckboxSelectMultiple,
        }
        labels = {"audience_everyone": _("Everyone must acknowledge it")}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
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


class PublishForm(forms.Form):
    change = forms.ChoiceField(
        label=_("What kind of change is this?"),
        choices=[("material", _("Material: everyone in the audience must acknowledge again (new major version)")),
                 ("editorial", _("Editorial: acknowledgements carry over, nobody is asked again (new minor version)"))],
        widget=forms.RadioSelect,
    )
    confirm = forms.BooleanField(label=_("I have checked the text and the audience."))


class ReasonForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), widget=forms.Textarea(attrs={"rows": 3}), max_length=2000)


class ExemptionForm(forms.Form):
    employee_number = forms.CharField(label=_("Employee number"), max_length=32)
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
    due_date = forms.DateField(label=_("New due date"), widget=forms.DateInput(attrs={"type": "date"}))
    reason = forms.CharField(label=_("Reason"), widget=forms.Textarea(attrs={"rows": 2}), max_length=2000)

    clean_employee_number = ExemptionForm.clean_employee_number
