"""Attacks on the evidence by insiders, through the real interfaces: the four-eyes bypass in the
admin (finding 3), separation of duties around the services (4), the slug and unaudited admin
changes (5), and an acknowledgement that claims to come from an e-mail link (12)."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from guidelines import publishing, services
from guidelines.models import (
    Acknowledgement,
    AuditEvent,
    Department,
    Guideline,
    NotificationLog,
    Version,
    VersionText,
)

from ..factories import make_draft, make_user


@pytest.fixture
def approved_draft(guideline, hilde, bob, version_1):
    draft = make_draft(guideline, author=hilde, bodies={"nl": "# Versie 2\n\nNieuw.\n", "en": "# Version 2\n\nNew.\n"})
    publishing.request_review(version=draft, by=hilde)
    return publishing.approve_version(version=draft, by=bob.user)


def _inline_post(version, body_en):
    texts = list(version.texts.order_by("language"))
    data = {"leading_language": version.leading_language, "effective_date": "",
            "texts-TOTAL_FORMS": "2", "texts-INITIAL_FORMS": "2", "texts-MIN_NUM_FORMS": "0",
            "texts-MAX_NUM_FORMS": "2"}
    for index, text in enumerate(texts):
        data.update({f"texts-{index}-id": text.pk, f"texts-{index}-version": version.pk,
                     f"texts-{index}-language": text.language, f"texts-{index}-title": text.title,
                     f"texts-{index}-body": body_en if text.language == "en" else text.body,
                     f"texts-{index}-change_summary": ""})
    return data


def test_hr_cannot_edit_an_approved_draft_in_the_admin(client_as, hilde, approved_draft):
    client = client_as(hilde)
    url = reverse("admin:guidelines_version_change", args=[approved_draft.pk])
    page = client.get(url).content.decode()
    assert 'name="_save"' not in page  # opens read-only
    response = client.post(url, _inline_post(approved_draft, "# Version 2\n\nSomething nobody approved.\n"))
    assert response.status_code == 403
    assert "nobody approved" not in VersionText.objects.get(version=approved_draft, language="en").body
    assert Version.objects.get(pk=approved_draft.pk).status == "approved"


def test_a_text_changed_after_approval_by_any_route_cannot_be_published(client_as, hilde, approved_draft):
    # As if edited through SQL, the shell or a future door: the approval no longer matches.
    VersionText.objects.filter(version=approved_draft, language="en").update(body="# Version 2\n\nSwapped.\n")
    response = client_as(hilde).post(reverse("guidelines:hr_draft_publish", args=[approved_draft.pk]),
                                     {"change": "editorial", "confirm": "on"})
    assert response.status_code == 400
    assert "changed after it was approved" in response.content.decode()
    assert Version.objects.get(pk=approved_draft.pk).status == "approved"
    assert not AuditEvent.objects.filter(action="version_published", version=approved_draft).exists()


def test_approval_and_publication_record_the_fingerprint_of_what_was_approved(hilde, approved_draft):
    approval = AuditEvent.objects.get(action="version_approved", version=approved_draft)
    assert approval.details["fingerprint"] == approved_draft.approved_fingerprint == publishing.fingerprint_of(
        approved_draft)
    published = publishing.publish_version(version=approved_draft, by=hilde, material=True)
    event = AuditEvent.objects.get(action="version_published", version=published)
    assert event.details["fingerprint"] == approval.details["fingerprint"]


def test_editing_a_draft_on_the_hr_pages_withdraws_the_approval(client_as, hilde, approved_draft):
    texts = {t.language: t for t in approved_draft.texts.all()}
    client_as(hilde).post(reverse("guidelines:hr_draft_edit", args=[approved_draft.pk]), {
        "leading_language": "nl", "effective_date": "",
        "title_nl": texts["nl"].title, "body_nl": texts["nl"].body, "summary_nl": "",
        "title_en": texts["en"].title, "body_en": "# Version 2\n\nChanged after approval.\n", "summary_en": "",
    })
    approved_draft.refresh_from_db()
    assert (approved_draft.status, approved_draft.approved_by, approved_draft.approved_fingerprint) == (
        "draft", None, "")
    saved = AuditEvent.objects.get(action="draft_saved", version=approved_draft)
    assert saved.details["approval_withdrawn"] is True


def test_an_approver_who_edited_the_draft_cannot_approve_it(client_as, guideline, hilde, version_1):
    editor = make_user("dual@example.com", groups=["HR", "Approvers"])
    draft = make_draft(guideline, author=hilde)
    publishing.save_draft(version=draft, by=editor, texts={
        "nl": ("Richtlijn", "# Nieuw\n", ""), "en": ("Guideline", "# New, by the approver\n", "")})
    publishing.request_review(version=draft, by=hilde)
    page = client_as(editor).get(reverse("guidelines:hr_draft", args=[draft.pk])).content.decode()
    assert reverse("guidelines:hr_draft_approve", args=[draft.pk]) not in page  # not offered to an editor
    response = client_as(editor).post(reverse("guidelines:hr_draft_approve", args=[draft.pk]),
                                      {"fingerprint": publishing.fingerprint_of(draft), "confirm": "on"})
    assert response.status_code == 403
    assert Version.objects.get(pk=draft.pk).status == "draft"


def test_an_approval_of_a_draft_that_changed_while_it_was_read_is_refused(client_as, guideline, hilde, bob,
                                                                          version_1):
    draft = make_draft(guideline, author=hilde)
    publishing.request_review(version=draft, by=hilde)
    page = client_as(bob).get(reverse("guidelines:hr_draft", args=[draft.pk])).content.decode()
    link = page.split('/approve/?fingerprint=')[1][:64]
    confirmation = client_as(bob).get(reverse("guidelines:hr_draft_approve", args=[draft.pk]),
                                      {"fingerprint": link}).content.decode()
    fingerprint = confirmation.split('name="fingerprint" value="')[1][:64]
    assert fingerprint == link
    publishing.save_draft(version=draft, by=hilde, texts={"en": ("Guideline", "# Quietly changed\n", "")})
    publishing.request_review(version=draft, by=hilde)
    response = client_as(bob).post(reverse("guidelines:hr_draft_approve", args=[draft.pk]),
                                   {"fingerprint": fingerprint, "confirm": "on"})
    assert response.status_code == 400
    assert Version.objects.get(pk=draft.pk).status == "draft"


# Finding 4: separation of duties holds in the services, whatever calls them ------------------------


def test_an_approver_cannot_publish_through_the_admin_action(client_as, bob, approved_draft):
    bob.user.is_staff = True
    bob.user.save()
    client = client_as(bob)
    changelist = reverse("admin:guidelines_version_changelist")
    page = client.get(changelist).content.decode()
    assert 'value="publish_material"' not in page and 'value="approve"' not in page  # no list actions at all
    client.post(changelist, {"action": "publish_material", "_selected_action": [approved_draft.pk]})
    assert Version.objects.get(pk=approved_draft.pk).status == "approved"


@pytest.mark.parametrize("call", ["publish", "retire", "save_draft", "request_review", "exempt", "nudge"])
def test_services_refuse_an_approver_without_the_hr_role(call, bob, alice, guideline, approved_draft):
    from guidelines import notifications

    actions = {
        "publish": lambda: publishing.publish_version(version=approved_draft, by=bob.user, material=False),
        "retire": lambda: publishing.retire_guideline(guideline=guideline, by=bob.user, reason="because"),
        "save_draft": lambda: publishing.save_draft(version=approved_draft, by=bob.user,
                                                    texts={"en": ("T", "# Mine\n", "")}),
        "request_review": lambda: publishing.request_review(version=approved_draft, by=bob.user),
        "exempt": lambda: services.grant_exemption(employee=alice, guideline=guideline, by=bob.user, reason="x"),
        "nudge": lambda: notifications.plan_nudge(approved_draft, bob.user, enqueue=lambda batch: None),
    }
    with pytest.raises(PermissionDenied):
        actions[call]()
    assert Version.objects.get(pk=approved_draft.pk).status == "approved"
    assert Guideline.objects.get(pk=guideline.pk).retired_at is None


def test_services_refuse_hr_approving_and_nobody_acts_anonymously(hilde, guideline, version_1):
    draft = make_draft(guideline, author=make_user("author@example.com", groups=["HR"]))
    with pytest.raises(PermissionDenied):
        publishing.approve_version(version=draft, by=hilde)
    with pytest.raises(PermissionDenied):
        publishing.publish_version(version=draft, by=None, material=True)


def test_services_refuse_importing_auditor_packs_and_certificates_to_those_without_the_role(
        alice, bob, hilde, arjen, version_1, web_meta, settings, tmp_path):
    from guidelines import imports
    from guidelines.models import ImportRun, Report
    from guidelines.reports import jobs

    settings.MEDIA_ROOT = tmp_path / "media"
    header = ",".join(imports.COLUMNS) + "\n"
    with pytest.raises(PermissionDenied):  # an approver is not HR
        imports.run_import(header.encode(), source="people.csv", by=bob.user)
    assert not ImportRun.objects.exists()
    with pytest.raises(PermissionDenied):  # an employee reads only their own evidence
        jobs.start_audit_pack(user=alice.user, guideline_slug=version_1.guideline.slug)
    ack, _ = services.acknowledge(employee=bob, version=version_1, language="en", meta=web_meta)
    with pytest.raises(PermissionDenied):
        jobs.certificate(acknowledgement=ack, user=alice.user, language="en")
    assert not Report.objects.exists()
    # The people who may: the employee who acknowledged, HR and auditors.
    assert jobs.certificate(acknowledgement=ack, user=bob.user, language="en").status == "done"
    assert jobs.start_audit_pack(user=arjen, guideline_slug=version_1.guideline.slug).pk


# Finding 5: the slug is sealed; admin changes are evidence ---------------------------------------


def _guideline_post(guideline, **overrides):
    return {"title_nl": guideline.title_nl, "title_en": guideline.title_en, "slug": guideline.slug,
            "owner": guideline.owner_id, "audience_everyone": "on", "due_days": guideline.due_days,
            "reacknowledge_days": "", **overrides}


def test_renaming_a_published_slug_in_the_admin_is_refused_and_the_chain_stays_intact(
        client_as, hilde, alice, guideline, version_1, web_meta):
    services.acknowledge(employee=alice, version=version_1, language="en", meta=web_meta)
    client_as(hilde).post(reverse("admin:guidelines_guideline_change", args=[guideline.pk]),
                          _guideline_post(guideline, slug="renamed", title_en="Renamed"))
    guideline.refresh_from_db()
    assert (guideline.slug, guideline.title_en) == ("social-media", "Renamed")
    assert services.verify_evidence().intact
    with pytest.raises(IntegrityError), transaction.atomic():  # and the database refuses it for anyone
        Guideline.objects.filter(pk=guideline.pk).update(slug="renamed")
    with pytest.raises(ValidationError):
        guideline.slug = "renamed"
        publishing.save_guideline(guideline=guideline, by=hilde)


def test_admin_changes_to_a_guideline_are_audit_events_with_old_and_new_values(client_as, hilde, guideline,
                                                                                 version_1):
    owner = make_user("owner@example.com", groups=["HR"])
    client_as(hilde).post(reverse("admin:guidelines_guideline_change", args=[guideline.pk]),
                          _guideline_post(guideline, owner=owner.pk, due_days=5))
    event = AuditEvent.objects.get(action="admin_changed", guideline=guideline)
    assert event.actor == hilde
    assert event.details["changes"]["owner"] == [str(hilde.pk), str(owner.pk)]
    assert event.details["changes"]["due_days"] == ["30", "5"]


def test_granting_a_role_in_the_admin_is_an_audit_event(client_as, nina):
    root = make_user("root@example.com", is_staff=True, is_superuser=True)
    url = reverse("admin:auth_user_change", args=[nina.pk])
    approvers = Group.objects.get(name="Approvers")
    client_as(root).post(url, {
        "username": nina.username, "email": nina.email, "first_name": "Nina", "last_name": "",
        "is_active": "on", "groups": [approvers.pk], "date_joined_0": "2026-01-01", "date_joined_1": "09:00:00",
    })
    assert list(nina.groups.values_list("name", flat=True)) == ["Approvers"]
    event = AuditEvent.objects.get(action="roles_changed")
    assert (event.actor, event.details["model"], event.details["object_id"]) == (root, "auth.user", nina.pk)
    assert event.details["changes"]["groups"] == [[], ["Approvers"]]
    assert "password" not in event.details["changes"]


def test_hr_cannot_relink_an_employee_record_to_another_account_in_the_admin(client_as, hilde, alice, bob):
    url = reverse("admin:guidelines_employee_change", args=[alice.pk])
    client_as(hilde).post(url, {"user": hilde.pk, "employee_number": "E0001", "department": alice.department_id,
                                "manager": bob.pk, "language": "en"})
    alice.refresh_from_db()
    assert alice.user.email == "alice@example.com"


# Finding 12: the channel is decided by the server ------------------------------------------------


@pytest.mark.parametrize("via", ["email", "forged", "colleague"])
def test_a_web_post_claiming_the_email_channel_is_sealed_as_web(client_as, alice, bob, version_1, via):
    """The old form trusted channel=email; a made-up token or a colleague's e-mail link is no better."""
    token = _email_link(bob) if via == "colleague" else via
    client_as(alice).post(reverse("guidelines:acknowledge", args=["social-media"]),
                          {"version": version_1.pk, "language": "en", "confirm": "on", "channel": "email",
                           "via": token})
    ack = Acknowledgement.objects.get(employee=alice)
    assert ack.channel == "web"
    assert services.verify_evidence().intact  # the seal covers the channel


def test_a_link_from_an_email_to_this_employee_is_sealed_as_email(client_as, alice, version_1):
    link = _email_link(alice)
    client = client_as(alice)
    page = client.get(reverse("guidelines:detail", args=["social-media"]) + f"?via={link}").content.decode()
    assert f'name="via" value="{link}"' in page
    client.post(reverse("guidelines:acknowledge", args=["social-media"]),
                {"version": version_1.pk, "language": "en", "confirm": "on", "via": link})
    assert Acknowledgement.objects.get(employee=alice).channel == "email"


def _email_link(employee):
    log = NotificationLog.objects.create(idempotency_key=f"digest:{employee.pk}:test", kind="reminder",
                                         recipient=employee, email=employee.user.email, language="en",
                                         day=timezone.localdate(), claimed_by="test")
    return services.email_link_token(log.pk)


def test_deletions_in_the_admin_are_recorded_and_protected_rows_stay(client_as, hilde, guideline, version_1):
    unused = Department.objects.create(name="Closed down")
    client = client_as(hilde)
    hilde.user_permissions.add(Permission.objects.get(codename="delete_department"))
    response = client.post(reverse("admin:guidelines_department_delete", args=[unused.pk]), {"post": "yes"})
    assert response.status_code == 302 and not Department.objects.filter(pk=unused.pk).exists()
    event = AuditEvent.objects.get(action="admin_changed", details__operation="deleted")
    assert (event.actor, event.details["model"], event.details["object"]) == (hilde, "guidelines.department",
                                                                            "Closed down")
    # A draft's texts (and its audit events) protect it: the admin says so instead of failing.
    draft = make_draft(guideline, author=hilde)
    response = client.post(reverse("admin:guidelines_version_delete", args=[draft.pk]), {"post": "yes"})
    assert response.status_code == 200 and Version.objects.filter(pk=draft.pk).exists()
