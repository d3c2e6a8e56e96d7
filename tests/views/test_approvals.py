"""Approvers find their work: the approvals inbox (menu, home), the e-mail when approval is asked, the
draft's text before the decision, confirmations for approving and sending back, and HR's next step."""

import re
from datetime import timedelta
from unittest import mock

import pytest
import time_machine
from django.core import mail
from django.core.exceptions import PermissionDenied
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from guidelines import publishing, tasks
from guidelines.models import NotificationLog, Version

from ..factories import make_draft, make_employee, make_user, sign_in
from .test_error_pattern import assert_error_pattern


@pytest.fixture
def asked(guideline, hilde, version_1):
    """A draft by Hilde (HR) whose approval she asked for."""
    draft = make_draft(guideline, author=hilde)
    publishing.request_review(version=draft, by=hilde)
    return draft


@pytest.fixture
def carol(db):
    return make_employee("carol@example.com", "E0042", groups=["Approvers"], language="nl")


def inbox(client):
    return client.get(reverse("guidelines:approvals"))


# The rule: which drafts wait for whom ----------------------------------------------------------------


def test_the_inbox_holds_the_drafts_asked_for_and_written_by_others(guideline, hilde, bob, version_1, asked):
    not_asked = make_draft(guideline, author=hilde)
    approved = make_draft(guideline, author=hilde)
    publishing.request_review(version=approved, by=hilde)
    publishing.approve_version(version=approved, by=bob.user)
    assert [v.pk for v in publishing.awaiting_approval(bob.user)] == [asked.pk]
    assert not_asked.pk not in {v.pk for v in publishing.awaiting_approval(bob.user)}
    assert publishing.awaiting_approval(bob.user).get().requested_by_id == hilde.pk


def test_nobody_finds_a_draft_they_helped_write_in_their_inbox(guideline, hilde, bob, version_1, asked):
    dual = make_user("dual@example.com", groups=["HR", "Approvers"])
    own = make_draft(guideline, author=dual)
    publishing.request_review(version=own, by=dual)
    edited = make_draft(guideline, author=hilde)
    publishing.save_draft(version=edited, by=dual, texts={"en": ("Guideline", "# Edited by the approver\n", "")})
    publishing.request_review(version=edited, by=hilde)
    assert [v.pk for v in publishing.awaiting_approval(dual)] == [asked.pk]
    assert {v.pk for v in publishing.awaiting_approval(bob.user)} == {asked.pk, own.pk, edited.pk}


def test_only_approvers_have_an_inbox(hilde, alice):
    for user in (hilde, alice.user):
        with pytest.raises(PermissionDenied):
            publishing.awaiting_approval(user)


# The inbox, the menu and the home page ---------------------------------------------------------------


def test_the_approver_sees_title_asker_time_and_link(client_as, bob, asked, django_assert_max_num_queries):
    client = client_as(bob)
    with django_assert_max_num_queries(12):
        response = inbox(client)
    html = response.content.decode()
    assert response.status_code == 200
    assert "Social media guideline" in html and "Asked by Hilde on" in html
    assert f'href="{reverse("guidelines:hr_draft", args=[asked.pk])}"' in html
    assert asked.label in html


@pytest.mark.parametrize("who", ["hilde", "alice", "arjen"])
def test_non_approvers_get_403(request, client_as, asked, who):
    assert inbox(client_as(request.getfixturevalue(who))).status_code == 403


def test_an_empty_inbox_says_so(client_as, bob, version_1):
    assert "Nothing awaits your approval." in inbox(client_as(bob)).content.decode()


def test_the_menu_leads_approvers_to_the_inbox_and_not_to_the_admin(client_as, bob, hilde, alice, asked):
    bob.user.is_staff = True  # as in the demo: the manager is staff
    bob.user.save()
    html = client_as(bob).get(reverse("guidelines:approvals")).content.decode()
    nav = re.search(r'<nav aria-label="Main">.*?</nav>', html, re.S).group(0)
    assert f'<a href="{reverse("guidelines:approvals")}" aria-current="page">Approvals</a>' in nav
    assert "Administration" not in nav and "Manage guidelines" not in nav
    hr_nav = client_as(hilde).get(reverse("guidelines:hr_guidelines")).content.decode()
    assert "Administration" in hr_nav and ">Approvals<" not in hr_nav
    assert ">Approvals<" not in client_as(alice).get(reverse("guidelines:home")).content.decode()


def test_the_home_page_says_how_many_drafts_await_the_approver(client_as, bob, alice, asked, guideline, hilde):
    second = make_draft(guideline, author=hilde)
    publishing.request_review(version=second, by=hilde)
    html = client_as(bob).get(reverse("guidelines:home")).content.decode()
    assert f'<a href="{reverse("guidelines:approvals")}">2 drafts await your approval</a>' in html
    assert "await your approval" not in client_as(alice).get(reverse("guidelines:home")).content.decode()


# The draft's page as approver and as HR --------------------------------------------------------------


def test_an_approver_reads_the_text_before_the_decision(client_as, bob, asked):
    html = client_as(bob).get(reverse("guidelines:hr_draft", args=[asked.pk])).content.decode()
    breadcrumb = re.search(r'<p class="meta">(.*?)</p>', html, re.S).group(1)
    assert reverse("guidelines:approvals") in breadcrumb and "/hr/guidelines/" not in breadcrumb
    assert html.index('class="guideline-body"') < html.index('id="decision"')
    assert html.index('id="decision"') < html.index(reverse("guidelines:hr_draft_approve", args=[asked.pk]))
    assert reverse("guidelines:hr_draft_send_back", args=[asked.pk]) in html
    assert 'name="action" value="approve"' not in html  # no one-click approval


def test_hr_sees_the_next_step_not_a_dead_end(client_as, hilde, bob, guideline, version_1):
    draft = make_draft(guideline, author=hilde)
    client = client_as(hilde)
    page = reverse("guidelines:hr_draft", args=[draft.pk])
    publish = reverse("guidelines:hr_draft_publish", args=[draft.pk])
    html = client.get(page).content.decode()
    assert 'value="request" class="button">Ask for approval' in html and publish not in html
    publishing.request_review(version=draft, by=hilde)
    html = client.get(page).content.decode()
    assert "Waiting for approval by Bob Example" in html and publish not in html
    publishing.approve_version(version=draft, by=bob.user)
    html = client.get(page).content.decode()
    assert f'<a class="button" href="{publish}">Publish…</a>' in html and "Ask for approval" not in html


def test_the_publish_page_of_an_unapproved_draft_offers_no_publish_button(client_as, hilde, asked):
    html = client_as(hilde).get(reverse("guidelines:hr_draft_publish", args=[asked.pk])).content.decode()
    assert "Publish now" not in html and " disabled" not in html
    assert "Approval was asked; you can publish once an approver has approved it." in html


def test_two_drafts_of_one_day_have_different_names(client_as, hilde, guideline, version_1):
    morning = timezone.localtime().replace(hour=9, minute=5)
    with time_machine.travel(morning, tick=False):
        first = make_draft(guideline, author=hilde)
    with time_machine.travel(morning + timedelta(hours=5), tick=False):
        second = make_draft(guideline, author=hilde)
    assert first.label != second.label
    html = client_as(hilde).get(reverse("guidelines:hr_guideline", args=[guideline.slug])).content.decode()
    assert first.label in html and second.label in html
    assert re.search(r"Draft of \d+ \w+ \d{4}, 14:05", html)


# Approving: a confirmation, and only its POST approves ----------------------------------------------


def approve_url(draft):
    return reverse("guidelines:hr_draft_approve", args=[draft.pk])


def test_the_confirmation_page_changes_nothing(client_as, bob, asked):
    response = client_as(bob).get(approve_url(asked))
    html = response.content.decode()
    assert response.status_code == 200
    assert "Approve this draft of the Social media guideline?" in html and asked.label in html
    assert "I have read the text in every language and the changes against the current version." in html
    assert Version.objects.get(pk=asked.pk).status == "draft"


def test_only_the_confirming_post_approves(client_as, bob, asked):
    client = client_as(bob)
    fingerprint = publishing.fingerprint_of(asked)
    unconfirmed = client.post(approve_url(asked), {"fingerprint": fingerprint})
    assert_error_pattern(unconfirmed, ["confirm"])
    assert Version.objects.get(pk=asked.pk).status == "draft"
    response = client.post(approve_url(asked), {"fingerprint": fingerprint, "confirm": "on"}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("guidelines:approvals")
    assert "You approved the" in response.content.decode()
    assert Version.objects.get(pk=asked.pk).approved_by == bob.user


def test_the_old_one_click_approval_only_leads_to_the_confirmation(client_as, bob, asked):
    response = client_as(bob).post(reverse("guidelines:hr_draft_review", args=[asked.pk]),
                                   {"action": "approve", "fingerprint": publishing.fingerprint_of(asked)})
    assert response.status_code == 302 and response.url == approve_url(asked)
    assert Version.objects.get(pk=asked.pk).status == "draft"


def test_a_draft_changed_since_it_was_read_is_not_approved(client_as, bob, hilde, asked):
    client = client_as(bob)
    read = publishing.fingerprint_of(asked)
    publishing.save_draft(version=asked, by=hilde, texts={"en": ("Guideline", "# Quietly changed\n", "")})
    publishing.request_review(version=asked, by=hilde)
    response = client.post(approve_url(asked), {"fingerprint": read, "confirm": "on"})
    assert response.status_code == 400 and "changed while you were reading it" in response.content.decode()
    assert Version.objects.get(pk=asked.pk).status == "draft"


def test_the_confirmations_need_the_csrf_token(bob, asked):
    client = Client(enforce_csrf_checks=True)
    sign_in(client, bob)
    fingerprint = publishing.fingerprint_of(asked)
    assert client.post(approve_url(asked), {"fingerprint": fingerprint, "confirm": "on"}).status_code == 403
    assert client.post(reverse("guidelines:hr_draft_send_back", args=[asked.pk]),
                       {"comment": "No."}).status_code == 403
    page = client.get(approve_url(asked)).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = client.post(approve_url(asked), {"fingerprint": fingerprint, "confirm": "on",
                                                "csrfmiddlewaretoken": token})
    assert response.status_code == 302 and Version.objects.get(pk=asked.pk).status == "approved"


def test_a_draft_not_waiting_for_approval_has_no_confirmation(client_as, bob, guideline, hilde, version_1):
    draft = make_draft(guideline, author=hilde)
    response = client_as(bob).post(approve_url(draft), {"fingerprint": publishing.fingerprint_of(draft),
                                                        "confirm": "on"})
    assert response.status_code == 302 and response.url == reverse("guidelines:hr_draft", args=[draft.pk])
    assert Version.objects.get(pk=draft.pk).status == "draft"


# Sending back: a comment and a confirmation ----------------------------------------------------------


def test_sending_back_needs_a_comment_in_the_error_pattern(client_as, bob, asked):
    client = client_as(bob)
    url = reverse("guidelines:hr_draft_send_back", args=[asked.pk])
    page = client.get(url)
    assert page.status_code == 200 and "back to its author?" in page.content.decode()
    assert Version.objects.get(pk=asked.pk).review_requested_at is not None
    response = client.post(url, {"comment": "   "})
    assert_error_pattern(response, ["comment"])
    assert "Say what needs to change." in response.content.decode()
    assert Version.objects.get(pk=asked.pk).review_requested_at is not None
    client.post(url, {"comment": "Mention the reporting desk."})
    asked.refresh_from_db()
    assert (asked.review_requested_at, asked.review_comment) == (None, "Mention the reporting desk.")


@pytest.mark.parametrize("who", ["hilde", "alice"])
def test_only_approvers_send_back(request, client_as, asked, who):
    client = client_as(request.getfixturevalue(who))
    url = reverse("guidelines:hr_draft_send_back", args=[asked.pk])
    assert client.get(url).status_code == 403
    assert client.post(url, {"comment": "No."}).status_code == 403
    assert Version.objects.get(pk=asked.pk).review_requested_at is not None


# The e-mail to the approvers -------------------------------------------------------------------------


def ask_through_the_task(client, draft, django_capture_on_commit_callbacks):
    """Ask for approval on the page; the queued task runs (as a worker would) when the request commits."""
    run = lambda *args: tasks.ask_approvers.apply(args=args)  # noqa: E731
    with mock.patch.object(tasks.ask_approvers, "delay", side_effect=run) as delay, \
            django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("guidelines:hr_draft_review", args=[draft.pk]), {"action": "request"},
                               follow=True)
    return response, delay


def test_asking_e_mails_each_approver_once_in_their_language_and_names_them(
        client_as, hilde, bob, carol, guideline, version_1, django_capture_on_commit_callbacks):
    dual = make_employee("dual@example.com", "E0050", groups=["HR", "Approvers"])
    draft = make_draft(guideline, author=dual.user)  # its author is an approver too: not asked
    before = len(mail.outbox)
    response, delay = ask_through_the_task(client_as(hilde), draft, django_capture_on_commit_callbacks)
    assert "Approval requested; we e-mailed Bob Example and Carol Example." in response.content.decode()
    sent = mail.outbox[before:]
    assert sorted(message.to[0] for message in sent) == ["bob@example.com", "carol@example.com"]
    assert delay.call_count == 1  # one task moving ids
    by_address = {message.to[0]: message for message in sent}
    assert by_address["bob@example.com"].subject.startswith("Please approve: Social media guideline")
    # Dutch, her language: the draft's Dutch title (the Dutch wording comes with the lead's translations).
    assert "Richtlijn sociale media" in by_address["carol@example.com"].subject
    assert "Social media" not in by_address["carol@example.com"].body
    assert "Hilde asks you to approve" in by_address["bob@example.com"].body
    assert reverse("guidelines:hr_draft", args=[draft.pk]) in by_address["bob@example.com"].body
    logs = NotificationLog.objects.filter(kind=NotificationLog.Kind.APPROVAL)
    assert sorted(logs.values_list("email", "language", "status")) == [
        ("bob@example.com", "en", "sent"), ("carol@example.com", "nl", "sent")]
    assert set(logs.values_list("requested_by", flat=True)) == {hilde.pk}


def test_a_hostile_title_and_name_are_escaped_in_the_e_mail(
        client_as, bob, guideline, version_1, django_capture_on_commit_callbacks):
    author = make_user("mallory@example.com", first_name='<img src=x onerror="alert(1)">',
                       last_name="Evil\nBcc: victim@example.com", groups=["HR"])
    draft = make_draft(guideline, author=author)
    draft.texts.filter(language="en").update(title="<script>alert('t')</script>\nInjected line")
    before = len(mail.outbox)
    ask_through_the_task(client_as(author), draft, django_capture_on_commit_callbacks)
    (message,) = mail.outbox[before:]
    html = message.alternatives[0][0]
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;" in html and "&lt;img src=x" in html
    assert "\nInjected line" not in message.body and "\nBcc:" not in message.body
    assert "Bcc" not in message.message().keys() and "\n" not in message.subject
    assert "<script>alert('t')</script> Injected line" in message.subject  # a header is text, not HTML


def test_asking_when_nobody_else_can_approve_says_so(
        client_as, guideline, hilde, version_1, django_capture_on_commit_callbacks):
    from django.contrib.auth.models import Group

    Group.objects.get(name="Approvers").user_set.clear()
    draft = make_draft(guideline, author=hilde)
    before = len(mail.outbox)
    response, delay = ask_through_the_task(client_as(hilde), draft, django_capture_on_commit_callbacks)
    assert "nobody besides you can approve this draft" in response.content.decode()
    assert not delay.called and len(mail.outbox) == before


def test_the_task_e_mails_nobody_once_the_draft_no_longer_waits(bob, hilde, asked):
    publishing.approve_version(version=asked, by=bob.user)
    before = len(mail.outbox)
    tasks.ask_approvers.apply(args=(asked.pk, hilde.pk, [bob.pk]))
    assert len(mail.outbox) == before
    assert not NotificationLog.objects.filter(kind=NotificationLog.Kind.APPROVAL).exists()


def test_a_hostile_approver_name_and_a_forged_fingerprint_stay_text(
        client_as, hilde, guideline, version_1, django_capture_on_commit_callbacks):
    mallory = make_employee("mallory@example.com", "E0066", groups=["Approvers"])
    mallory.user.first_name, mallory.user.last_name = "<b>Mal", '</p><script>alert("x")</script>'
    mallory.user.save()
    draft = make_draft(guideline, author=hilde)
    client = client_as(hilde)
    response, _delay = ask_through_the_task(client, draft, django_capture_on_commit_callbacks)
    html = response.content.decode()
    assert "<script>alert" not in html and "&lt;script&gt;alert" in html  # the message naming the approvers
    html = client.get(reverse("guidelines:hr_draft", args=[draft.pk])).content.decode()
    assert "<script>alert" not in html and "Waiting for approval by" in html  # the waiting notice
    forged = client_as(mallory).get(approve_url(draft), {"fingerprint": '"><script>alert(1)</script>'})
    assert forged.status_code == 200 and "<script>alert(1)" not in forged.content.decode()
    response = client_as(mallory).post(approve_url(draft), {"fingerprint": '"><script>', "confirm": "on"})
    assert response.status_code == 400 and Version.objects.get(pk=draft.pk).status == "draft"


def test_a_redelivered_task_sends_no_second_e_mail_and_asking_again_does(bob, hilde, asked):
    ids = [bob.pk]
    before = len(mail.outbox)
    tasks.ask_approvers.apply(args=(asked.pk, hilde.pk, ids), task_id="the-same-task")
    tasks.ask_approvers.apply(args=(asked.pk, hilde.pk, ids), task_id="the-same-task")
    tasks.ask_approvers.apply(args=(asked.pk, hilde.pk, ids))  # a duplicate under another id
    assert [message.to for message in mail.outbox[before:]] == [["bob@example.com"]]
    publishing.send_back(version=asked, by=bob.user, comment="Shorter, please.")
    publishing.request_review(version=asked, by=hilde)  # a new request is a new e-mail
    tasks.ask_approvers.apply(args=(asked.pk, hilde.pk, ids))
    assert len(mail.outbox) - before == 2
    assert NotificationLog.objects.filter(kind=NotificationLog.Kind.APPROVAL, recipient=bob).count() == 2
