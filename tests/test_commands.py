import pytest
from django.contrib.auth import authenticate
from django.core.management import CommandError, call_command
from django.utils import timezone

from guidelines import comprehension, publishing
from guidelines.models import (
    Acknowledgement,
    Employee,
    Guideline,
    Objection,
    Question,
    QuestionMessage,
    QuizAttempt,
    Version,
)


def test_load_demo_creates_the_accounts_the_guideline_and_a_history(db, capsys, settings):
    call_command("load_demo")
    assert "Demo data loaded" in capsys.readouterr().out
    for email in ("employee@example.com", "manager@example.com", "hr@example.com", "auditor@example.com"):
        assert authenticate(username=email, password="demo-password") is not None, email
    guideline = Guideline.objects.get(slug="social-media")
    assert [v.number for v in guideline.versions.released()] == ["2.0", "1.0"]
    # The works council consented to both versions, each time to the text that was published.
    assert guideline.requires_works_council_consent
    for version in guideline.versions.released():
        assert version.works_council_reference.startswith("OR-")
        assert version.works_council_consented_on < timezone.localdate(version.published_at)
        assert version.works_council_fingerprint == publishing.fingerprint_of(version)
    assert Employee.objects.count() >= 50
    emma = Employee.objects.get(user__email="employee@example.com")
    assert emma.acknowledgements.filter(major=1).exists() and not emma.acknowledgements.filter(major=2).exists()
    v2_acks = Acknowledgement.objects.filter(major=2).count()
    assert 0 < v2_acks < Employee.objects.count()
    # Version 2 requires reading to the end and has a comprehension check: every acknowledgement of it
    # seals a read-to-end moment and the final answers that the stored attempts give.
    v2 = guideline.versions.get(major=2)
    assert v2.require_read_to_end and len(comprehension.questions_of(v2)) == 3
    for ack in Acknowledgement.objects.filter(major=2).select_related("employee"):
        assert ack.first_opened_at < ack.read_to_end_at < ack.acknowledged_at
        assert ack.answers == comprehension.final_answers(ack.employee, v2)
        assert QuizAttempt.objects.filter(employee=ack.employee, answered_at__gt=ack.acknowledged_at).count() == 0
    rates = comprehension.pass_rates(v2)
    assert [row["answered"] for row in rates] == [v2_acks] * 3
    assert min(rates, key=lambda row: row["percent"])["question"].position == 2  # the reporting deadline
    # A question answered by HR, an open one and an open objection, for the inbox and the dashboard.
    assert Question.objects.filter(version=v2).count() == 2 and QuestionMessage.objects.count() == 3
    objection = Objection.objects.get(version=v2)
    assert objection.handling is None and objection.first_opened_at is not None
    hr = authenticate(username="hr@example.com", password="demo-password")
    assert hr.has_perm("guidelines.manage") and not hr.has_perm("guidelines.audit")
    assert authenticate(username="auditor@example.com", password="demo-password").has_perm("guidelines.audit")
    call_command("verify_evidence")


def test_load_demo_twice_changes_nothing(db, capsys):
    call_command("load_demo")
    count = Acknowledgement.objects.count()
    call_command("load_demo")
    assert "already loaded" in capsys.readouterr().out
    assert Acknowledgement.objects.count() == count


def test_seed_scale_creates_employees_versions_and_a_valid_chain(db, capsys):
    call_command("seed_scale", employees=60, versions=4)
    assert "60 employees, 4 versions" in capsys.readouterr().out
    assert Employee.objects.filter(employee_number__startswith="S").count() == 60
    guideline = Guideline.objects.get(slug="scale-1")
    assert guideline.versions.published().get().number == "4.0"
    assert Version.objects.filter(guideline=guideline).count() == 4
    acks = Acknowledgement.objects.filter(guideline=guideline)
    assert 0 < acks.filter(major=4).count() < 60
    assert Employee.objects.filter(employee_number__startswith="S", manager__isnull=False).count() == 40
    call_command("verify_evidence")


@pytest.mark.parametrize(
    "args",
    [["--employees", "0", "--versions", "2"], ["--employees", "x", "--versions", "2"], ["--versions", "2"],
     ["--employees", "5", "--versions", "-1"]],
)
def test_seed_scale_rejects_bad_arguments(db, args):
    with pytest.raises(CommandError):
        call_command("seed_scale", *args)
    assert not Employee.objects.exists()


def test_seed_scale_refuses_absurd_sizes(db):
    with pytest.raises(CommandError, match="At most"):
        call_command("seed_scale", employees=2_000_000, versions=2)


def test_seeded_and_demo_acknowledgements_lie_in_the_past(db):
    from django.utils import timezone

    call_command("load_demo")
    call_command("seed_scale", employees=30, versions=3)
    assert not Acknowledgement.objects.filter(acknowledged_at__gt=timezone.now()).exists()
