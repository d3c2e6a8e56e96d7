"""Reminder rules with a controllable clock: cadence, weekends and holidays, digests, escalations,
nudges, announcements, languages, claims and SMTP failures. Sending runs in this process through
the same functions the Celery tasks call; tests/test_reminder_worker.py runs them on a real worker."""

import re
import uuid
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail, signing
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from guidelines import notifications, services
from guidelines.models import AuditEvent, NotificationItem, NotificationLog

from .factories import make_employee, make_guideline, publish
from .smtp_server import SMTPServer

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
MONDAY = date(2027, 3, 1)
Kind, Status = NotificationLog.Kind, NotificationLog.Status


def at(day, hour=9):
    return datetime(day.year, day.month, day.day, hour, tzinfo=AMSTERDAM)


def published_on(day, guideline, hilde, bob, **options):
    with time_machine.travel(at(day, 8), tick=False):
        return publish(guideline, author=hilde, approver=bob.user, **options)


def run_cycle(day):
    """The day's cycle, as beat + worker run it, at 09:00 that day; returns the e-mails it sent."""
    before = len(mail.outbox)
    with time_machine.travel(at(day), tick=False):
        notifications.plan_cycle(
            day,
            enqueue_reminders=lambda ids: notifications.run_batch(
                notifications.compose_digests(ids, day), day=day, claimed_by=str(uuid.uuid4())),
            enqueue_escalations=lambda ids: notifications.run_batch(
                notifications.compose_escalations(ids, day), day=day, claimed_by=str(uuid.uuid4())),
        )
    return mail.outbox[before:]


def recipients(messages):
    return sorted(message.to[0] for message in messages)


@pytest.fixture
def daan(bob):
    return make_employee("daan@example.com", "E0100", manager=bob, language="nl")


@pytest.fixture
def staff(alice, bob, otto, daan):
    return [alice, bob, otto, daan]


@pytest.fixture
def guideline(hilde):
    return make_guideline(hilde, due_days=14)


@pytest.fixture
def version(staff, guideline, hilde, bob):
    return published_on(MONDAY, guideline, hilde, bob)


EVERYONE = ["alice@example.com", "bob@example.com", "daan@example.com", "otto@example.com"]


# The calendar -----------------------------------------------------------------------------------


def test_cadence_is_day_3_day_7_then_weekly():
    assert [notifications.cadence_day(n) for n in (0, 2, 3, 6, 7, 13, 14, 20, 21, 35)] == [
        None, None, 3, 3, 7, 7, 14, 14, 21, 35
    ]


def test_cadence_without_repeat_stops_after_the_last_day(settings):
    settings.REMINDER_DAYS, settings.REMINDER_REPEAT_DAYS = [2, 5], None
    assert [notifications.cadence_day(n) for n in (1, 2, 5, 40)] == [None, 2, 5, 5]


def test_weekends_and_configured_holidays_are_not_working_days(settings):
    settings.REMINDER_HOLIDAYS = frozenset({date(2027, 4, 27)})  # King's Day
    assert [notifications.is_working_day(day) for day in (
        date(2027, 4, 23), date(2027, 4, 24), date(2027, 4, 25), date(2027, 4, 26), date(2027, 4, 27)
    )] == [True, False, False, True, False]


# The daily cycle -----------------------------------------------------------------------------------


def test_reminders_follow_the_cadence_once_a_day(version):
    sent = {day: recipients(run_cycle(day)) for day in (MONDAY + timedelta(days=n) for n in range(0, 15))}
    reminder_days = [day for day, to in sent.items() if to]
    # Day 3 (Thursday), day 7 (Monday), day 14 (Monday); weekends send nothing.
    assert reminder_days == [date(2027, 3, 4), date(2027, 3, 8), date(2027, 3, 15)]
    assert all(to == EVERYONE for day, to in sent.items() if to)
    assert NotificationLog.objects.filter(kind=Kind.REMINDER, status=Status.SENT).count() == 12


def test_a_rerun_of_the_day_sends_nothing_twice(version):
    thursday = date(2027, 3, 4)
    assert recipients(run_cycle(thursday)) == EVERYONE
    assert run_cycle(thursday) == []
    assert NotificationLog.objects.filter(day=thursday).count() == 4


def test_a_reminder_day_on_a_weekend_or_holiday_moves_to_the_next_working_day(staff, guideline, hilde, bob,
                                                                               settings):
    settings.REMINDER_HOLIDAYS = frozenset({date(2027, 3, 8)})
    published_on(date(2027, 3, 3), guideline, hilde, bob)  # a Wednesday: day 3 is Saturday
    sent = {day: recipients(run_cycle(day)) for day in (date(2027, 3, 3) + timedelta(days=n) for n in range(0, 8))}
    # Saturday and Sunday are weekend days, Monday 8 March a holiday: Tuesday catches up; then day 7 (Wednesday).
    assert [day for day, to in sent.items() if to] == [date(2027, 3, 9), date(2027, 3, 10)]


def test_reminders_stop_the_moment_the_employee_acknowledges(version, alice, web_meta):
    assert "alice@example.com" in recipients(run_cycle(date(2027, 3, 4)))
    with time_machine.travel(at(date(2027, 3, 5)), tick=False):
        services.acknowledge(employee=alice, version=version, language="en", meta=web_meta)
    assert recipients(run_cycle(date(2027, 3, 8))) == ["bob@example.com", "daan@example.com", "otto@example.com"]


def test_exempt_employees_and_leavers_get_no_reminders(version, otto, daan, guideline, hilde):
    services.grant_exemption(employee=otto, guideline=guideline, by=hilde, reason="Long-term leave",
                             starts_on=MONDAY)
    daan.end_date = date(2027, 3, 3)
    daan.save()
    assert recipients(run_cycle(date(2027, 3, 4))) == ["alice@example.com", "bob@example.com"]


def test_one_digest_lists_every_pending_guideline_with_due_date_and_link(version, staff, hilde, bob):
    second = make_guideline(hilde, slug="clean-desk", due_days=5)
    published_on(date(2027, 2, 22), second, hilde, bob)  # overdue since 27 February
    messages = [m for m in run_cycle(date(2027, 3, 4)) if m.to == ["alice@example.com"]]
    assert len(messages) == 1
    message = messages[0]
    assert message.subject == "Reminder: 2 guidelines to acknowledge"
    body = message.body
    assert "Overdue: it was due on 27 February 2027" in body
    assert "Due by 15 March 2027" in body
    log = NotificationLog.objects.get(recipient__user__email="alice@example.com")
    # The link carries a signed reference to this e-mail: the server, not the form, decides the channel.
    link = re.search(r"/guidelines/clean-desk/\?via=(\S+)", body).group(1)
    assert signing.loads(link, salt=services.EMAIL_LINK_SALT) == log.pk
    assert f"http://localhost:8000/guidelines/clean-desk/?via={link}" in body
    assert f"http://localhost:8000/guidelines/social-media/?via={link}" in body
    # The overdue one comes first, in the text and in the HTML alternative.
    assert body.index("clean-desk") < body.index("social-media")
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html" and f'href="http://localhost:8000/guidelines/clean-desk/?via={link}"' in html
    assert sorted(log.items.values_list("version__guideline__slug", flat=True)) == ["clean-desk", "social-media"]
    assert message.extra_headers["Message-ID"] == log.message_id


def test_the_digest_is_in_the_employees_language(version, daan):
    message = next(m for m in run_cycle(date(2027, 3, 4)) if m.to == ["daan@example.com"])
    assert message.subject == "Herinnering: 1 richtlijn om te bevestigen"
    assert "Richtlijn sociale media" in message.body and "uiterlijk 15 maart 2027" in message.body
    html = message.alternatives[0][0]
    assert '<html lang="nl">' in html and "Social media guideline" not in html


def test_overdue_employees_are_escalated_to_their_manager_once_a_week(version, alice, bob, daan, otto, guideline,
                                                                       hilde):
    services.grant_exemption(employee=otto, guideline=guideline, by=hilde, reason="Not in scope", starts_on=MONDAY)
    # Due 15 March; overdue from the 16th.
    assert not [m for m in run_cycle(date(2027, 3, 15)) if "team" in m.subject.lower()]
    sent = run_cycle(date(2027, 3, 16))
    escalations = [m for m in sent if m.subject.startswith(("Your team", "Uw team"))]
    assert [m.to for m in escalations] == [["bob@example.com"]]
    assert "Alice Example (E0001)" in escalations[0].body and "Daan Example (E0100)" in escalations[0].body
    assert "was due on 15 March 2027" in escalations[0].body
    log = NotificationLog.objects.get(kind=Kind.ESCALATION)
    assert sorted(log.items.values_list("employee__employee_number", flat=True)) == ["E0001", "E0100"]
    # Not again the next days, again a week later.
    assert not [m for day in (17, 18, 19, 22) for m in run_cycle(date(2027, 3, day)) if m.to == ["bob@example.com"]
                and m.subject.startswith("Your team")]
    assert [m.to for m in run_cycle(date(2027, 3, 23)) if m.subject.startswith("Your team")] == [["bob@example.com"]]


def test_a_cycle_records_what_it_planned(version):
    run_cycle(date(2027, 3, 4))
    event = AuditEvent.objects.get(action=AuditEvent.Action.REMINDERS_PLANNED)
    assert event.details == {"day": "2027-03-04", "employees": 4, "managers": 0, "batches": 1}


def test_batches_have_a_fixed_query_budget(version, hilde, bob, settings):
    settings.REMINDER_BATCH_SIZE = 1000
    for n in range(30):
        make_employee(f"extra{n}@example.com", f"X{n:04}", manager=bob)

    def queries(ids):
        with CaptureQueriesContext(connection) as captured:
            notifications.run_batch(notifications.compose_digests(ids, date(2027, 3, 4)), day=date(2027, 3, 4),
                                claimed_by=str(uuid.uuid4()))
        return len(captured)

    from guidelines.models import Employee

    ids = list(Employee.objects.order_by("pk").values_list("pk", flat=True))
    with time_machine.travel(at(date(2027, 3, 4)), tick=False):
        small, large = queries(ids[:3]), queries(ids[3:])
    # One more "mark sent" per 25 e-mails; nothing else grows with the batch.
    assert large - small == len(ids[3:]) // notifications.MARK_SENT_EVERY
    assert small <= 14


# Nudges and announcements --------------------------------------------------------------------------


def nudge(version, by, day):
    with time_machine.travel(at(day, 11), tick=False):
        before = len(mail.outbox)
        notifications.plan_nudge(version, by, enqueue=lambda ids: notifications.run_batch(
            notifications.compose_digests(ids, day, kind=Kind.NUDGE, version=version), day=day,
            claimed_by=str(uuid.uuid4()), requested_by=by))
        return mail.outbox[before:]


def test_a_nudge_reaches_the_outstanding_employees_at_most_once_a_day(version, alice, hilde, web_meta):
    with time_machine.travel(at(MONDAY, 10), tick=False):
        services.acknowledge(employee=alice, version=version, language="en", meta=web_meta)
    tuesday = date(2027, 3, 2)
    first = nudge(version, hilde, tuesday)
    assert recipients(first) == ["bob@example.com", "daan@example.com", "otto@example.com"]
    assert first[0].subject == "Reminder from HR: 1 guideline to acknowledge"
    assert nudge(version, hilde, tuesday) == []
    assert set(NotificationLog.objects.values_list("kind", "requested_by")) == {(Kind.NUDGE, hilde.pk)}
    events = AuditEvent.objects.filter(action=AuditEvent.Action.NUDGE_REQUESTED)
    assert [(event.actor, event.details["employees"]) for event in events] == [(hilde, 3), (hilde, 3)]


def test_a_nudge_and_the_daily_reminder_make_one_email_a_day(version, hilde):
    thursday = date(2027, 3, 4)
    assert len(nudge(version, hilde, thursday)) == 4
    assert run_cycle(thursday) == []


def test_a_subject_is_plain_text_not_html(version, alice, guideline, hilde, bob):
    """A title with "&" or "<" reaches the Subject header as typed, not HTML-escaped ("&amp;")."""
    from guidelines import publishing

    from .factories import make_draft

    draft = make_draft(guideline, author=hilde)
    draft.texts.filter(language="en").update(title="R&D <rules>")
    with time_machine.travel(at(date(2027, 3, 2), 8), tick=False):
        publishing.approve_version(version=draft, by=bob.user)
        editorial = publishing.publish_version(version=draft, by=hilde, material=False)
        notifications.run_batch(notifications.compose_announcements(editorial, [alice.pk], date(2027, 3, 2)),
                                day=date(2027, 3, 2), claimed_by="announce")
    (message,) = mail.outbox
    assert message.subject.startswith("New: R&D <rules> (version 1.1)")
    assert "R&amp;D &lt;rules&gt;" in message.alternatives[0][0]  # the HTML part stays escaped


def test_the_announcement_tells_who_must_act_and_who_need_not(version, alice, daan, guideline, hilde, bob, web_meta):
    with time_machine.travel(at(MONDAY, 10), tick=False):
        services.acknowledge(employee=alice, version=version, language="en", meta=web_meta)
    editorial = published_on(date(2027, 3, 2), guideline, hilde, bob, material=False)
    with time_machine.travel(at(date(2027, 3, 2)), tick=False):
        drafts = notifications.compose_announcements(editorial, [alice.pk, daan.pk], date(2027, 3, 2))
        notifications.run_batch(drafts, day=date(2027, 3, 2), claimed_by="announce-1")
        notifications.run_batch(notifications.compose_announcements(editorial, [alice.pk, daan.pk], date(2027, 3, 2)),
                            day=date(2027, 3, 2), claimed_by="announce-2")
    by_recipient = {m.to[0]: m for m in mail.outbox}
    assert sorted(by_recipient) == ["alice@example.com", "daan@example.com"] and len(mail.outbox) == 2
    assert by_recipient["alice@example.com"].subject == "Updated: Social media guideline (version 1.1)"
    assert "do not need to acknowledge again" in by_recipient["alice@example.com"].body
    assert by_recipient["daan@example.com"].subject.startswith("Nieuw: Richtlijn sociale media (versie 1.1)")
    # The editorial 1.1 does not move the due date: it counts from 1.0's publication on 1 March.
    assert "uiterlijk 15 maart 2027" in by_recipient["daan@example.com"].body


def test_an_announcement_of_a_version_that_is_no_longer_current_is_dropped(version, alice, guideline, hilde, bob):
    published_on(date(2027, 3, 2), guideline, hilde, bob)
    assert notifications.compose_announcements(version, [alice.pk], date(2027, 3, 2)) == []


# Claims, retries and failures -------------------------------------------------------------------------


def test_a_temporary_smtp_failure_keeps_the_claims_for_the_retry_of_the_same_task(version, settings):
    thursday = date(2027, 3, 4)
    with SMTPServer(refuse_first=1) as server, time_machine.travel(at(thursday), tick=False):
        settings.MAILERS = server.mailers()
        drafts = notifications.compose_digests(_all_ids(), thursday)
        with pytest.raises(notifications.TransientFailure, match="451"):
            notifications.run_batch(drafts, day=thursday, claimed_by="task-1")
        claimed = NotificationLog.objects.filter(status=Status.CLAIMED)
        assert claimed.count() == 4 and {log.attempts for log in claimed} == {1}
        assert "451" in claimed.first().last_error
        # A duplicate task (another id) leaves the claims alone; the retry (same id) sends them.
        assert notifications.run_batch(notifications.compose_digests(_all_ids(), thursday), day=thursday,
                                   claimed_by="task-2") == 0
        assert notifications.run_batch(notifications.compose_digests(_all_ids(), thursday), day=thursday,
                                   claimed_by="task-1") == 4
    assert sorted(server.handler.recipients()) == EVERYONE
    assert set(NotificationLog.objects.values_list("status", "attempts")) == {(Status.SENT, 2)}


def _all_ids():
    from guidelines.models import Employee

    return list(Employee.objects.values_list("pk", flat=True))


def test_claims_of_a_task_that_vanished_are_taken_over_after_the_lease(version):
    thursday = date(2027, 3, 4)
    with time_machine.travel(at(thursday), tick=False):
        notifications.claim(notifications.compose_digests(_all_ids(), thursday), day=thursday, claimed_by="lost-task")
    with time_machine.travel(at(thursday) + notifications.CLAIM_LEASE - timedelta(minutes=1), tick=False):
        assert notifications.run_batch(notifications.compose_digests(_all_ids(), thursday), day=thursday,
                                   claimed_by="other") == 0
    with time_machine.travel(at(thursday) + notifications.CLAIM_LEASE + timedelta(minutes=1), tick=False):
        assert notifications.run_batch(notifications.compose_digests(_all_ids(), thursday), day=thursday,
                                   claimed_by="other") == 4
    assert recipients(mail.outbox) == EVERYONE


def test_a_retry_after_an_acknowledgement_cancels_that_claim(version, alice, web_meta):
    thursday = date(2027, 3, 4)
    with time_machine.travel(at(thursday), tick=False):
        notifications.claim(notifications.compose_digests(_all_ids(), thursday), day=thursday, claimed_by="task-1")
        services.acknowledge(employee=alice, version=version, language="en", meta=web_meta)
        assert notifications.run_batch(notifications.compose_digests(_all_ids(), thursday), day=thursday,
                                   claimed_by="task-1") == 3
    assert NotificationLog.objects.get(recipient=alice).status == Status.CANCELLED
    assert "alice@example.com" not in recipients(mail.outbox)


def test_an_address_the_server_refuses_for_good_is_recorded_as_failed_and_the_rest_are_sent(version, settings):
    thursday = date(2027, 3, 4)
    with SMTPServer(unknown={"bob@example.com"}) as server, time_machine.travel(at(thursday), tick=False):
        settings.MAILERS = server.mailers()
        assert notifications.run_batch(notifications.compose_digests(_all_ids(), thursday), day=thursday,
                                   claimed_by="t") == 3
    failed = NotificationLog.objects.get(status=Status.FAILED)
    assert failed.email == "bob@example.com" and "550" in failed.last_error
    assert sorted(server.handler.recipients()) == ["alice@example.com", "daan@example.com", "otto@example.com"]


def test_giving_up_marks_the_remaining_claims_failed(version):
    thursday = date(2027, 3, 4)
    with time_machine.travel(at(thursday), tick=False):
        drafts = notifications.compose_digests(_all_ids(), thursday)
        notifications.claim(drafts, day=thursday, claimed_by="t")
    notifications.give_up("t", [draft.key for draft in drafts], "SMTPDataError: (451, 'try later')")
    assert set(NotificationLog.objects.values_list("status", flat=True)) == {Status.FAILED}


def test_retry_delays_grow_and_stay_below_the_visibility_timeout(settings):
    settings.EMAIL_RETRY_BACKOFF, settings.EMAIL_RETRY_BACKOFF_MAX = 30, 600
    delays = [notifications.retry_delay(n) for n in range(10)]
    assert 15 <= delays[0] <= 30 and 240 <= delays[4] <= 480
    assert max(delays) <= 600 < settings.CELERY_VISIBILITY_TIMEOUT


def test_the_log_is_evidence_rows_cannot_be_deleted_and_items_not_changed(version):
    from django.db import IntegrityError, InternalError, transaction

    run_cycle(date(2027, 3, 4))
    with pytest.raises((IntegrityError, InternalError)), transaction.atomic():
        NotificationLog.objects.all().delete()
    with pytest.raises((IntegrityError, InternalError)), transaction.atomic():
        NotificationItem.objects.update(due_date=date(2030, 1, 1))


# The command -------------------------------------------------------------------------------------


def test_send_reminders_dry_run_prints_and_sends_nothing_then_sends_once(version, capsys):
    thursday = date(2027, 3, 4)
    with time_machine.travel(at(thursday), tick=False):
        call_command("send_reminders", "--dry-run")
        out = capsys.readouterr().out
        assert out.count("would send") == 4 and "Dry run: nothing was sent." in out and mail.outbox == []
        call_command("send_reminders")
        assert "Sent 4 e-mail(s)." in capsys.readouterr().out and len(mail.outbox) == 4
        call_command("send_reminders")
        out = capsys.readouterr().out
        assert "sending" not in out and "Sent 0 e-mail(s)." in out and len(mail.outbox) == 4


@pytest.mark.parametrize(("arguments", "message"), [
    (["--date", "2027-02-30"], "--date must be a date as YYYY-MM-DD"),
    (["--date", "2027-03-03"], "has passed"),
    (["--date", "2027-03-05"], "use --dry-run"),
])
def test_send_reminders_refuses_bad_dates(version, arguments, message):
    with time_machine.travel(at(date(2027, 3, 4)), tick=False), pytest.raises(CommandError, match=message):
        call_command("send_reminders", *arguments)
    assert mail.outbox == [] and not NotificationLog.objects.exists()


def test_send_reminders_on_a_weekend_says_so(version, capsys):
    with time_machine.travel(at(date(2027, 3, 6)), tick=False):
        call_command("send_reminders")
    assert "weekend day or a configured holiday" in capsys.readouterr().out


def test_shared_renderings_still_greet_each_recipient_by_name_escaped_in_html(version, alice, otto):
    otto.user.first_name = "Otto & <Co>"
    otto.user.save()
    messages = {m.to[0]: m for m in run_cycle(date(2027, 3, 4))}
    assert "Dear Alice," in messages["alice@example.com"].body
    assert "Dear Otto & <Co>," in messages["otto@example.com"].body
    html = messages["otto@example.com"].alternatives[0][0]
    assert "Dear Otto &amp; &lt;Co&gt;," in html and "[[recipient-name]]" not in html


def test_messages_over_smtp_decode_to_the_same_subject_text_and_html(version, daan, settings):
    from email.header import decode_header, make_header

    thursday = date(2027, 3, 4)
    with SMTPServer() as server, time_machine.travel(at(thursday), tick=False):
        settings.MAILERS = server.mailers()
        drafts = [d for d in notifications.compose_announcements(version, [daan.pk], thursday)]
        assert notifications.run_batch(drafts, day=thursday, claimed_by="t") == 1
    message = server.messages[0]
    assert str(make_header(decode_header(message["Subject"]))) == (
        "Nieuw: Richtlijn sociale media (versie 1.0) — graag bevestigen")
    assert message["To"] == "daan@example.com" and message["Auto-Submitted"] == "auto-generated"
    assert message["Message-ID"] == NotificationLog.objects.get().message_id
    text, html = (part.get_payload(decode=True).decode() for part in message.get_payload())
    assert "Beste Daan," in text and "uiterlijk 15 maart 2027" in text
    assert '<html lang="nl">' in html and "Lees en bevestig" in html
