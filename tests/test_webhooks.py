"""Signed webhooks without a worker: events recorded with the change (an outbox) and queued after the
commit, the sweep of lost deliveries, signatures the reference library accepts, addresses a hostile
HR user may not choose, the failure streak, resending what a disabled subscriber missed, and HR's
pages."""

import json
import re
from datetime import timedelta

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from standardwebhooks.webhooks import WebhookVerificationError

from guidelines import dashboards, publishing, questions, services, tasks, webhook_events, webhooks
from guidelines.models import AuditEvent, Objection, WebhookDelivery, WebhookEvent, WebhookSubscriber

from .factories import make_draft
from .webhook_receiver import Receiver

Event = WebhookSubscriber.Event
Status = WebhookDelivery.Status
ALL_EVENTS = list(Event.values)


@pytest.fixture(autouse=True)
def development(settings):
    """As the worker runs in the tests (DEBUG=1): http on loopback is allowed; pytest-django turns DEBUG
    off in this process. Tests of production set both back."""
    settings.DEBUG, settings.WEBHOOK_ALLOW_PRIVATE = True, True


def subscribe(hilde, url, events=ALL_EVENTS, name="GRC"):
    return webhooks.add_subscriber(by=hilde, name=name, url=url, events=events)


def bodies(event_type):
    return [json.loads(event.body) for event in WebhookEvent.objects.filter(type=event_type).order_by("pk")]


def test_the_secret_is_standard_webhooks_format_shown_once_and_stored_encrypted(hilde):
    subscriber, secret = subscribe(hilde, "https://grc.example.com/hooks")
    assert re.fullmatch(r"whsec_[A-Za-z0-9+/]{43}=", secret)
    assert secret not in subscriber.secret_encrypted and webhooks.secret_of(subscriber) == secret
    assert subscriber.events == sorted(ALL_EVENTS)


def test_publishing_and_acknowledging_record_events_with_the_change(
        hilde, bob, alice, guideline, web_meta, django_capture_on_commit_callbacks):
    subscriber, _secret = subscribe(hilde, "https://grc.example.com/hooks")
    draft = make_draft(guideline, author=hilde)
    publishing.approve_version(version=draft, by=bob.user)
    with django_capture_on_commit_callbacks(execute=True):
        version = publishing.publish_version(version=draft, by=hilde, material=True)
    with django_capture_on_commit_callbacks(execute=True):
        ack, created = services.acknowledge(employee=alice, version=version, language="en", meta=web_meta)
    assert created
    with django_capture_on_commit_callbacks(execute=True):  # acknowledging again creates nothing
        assert services.acknowledge(employee=alice, version=version, language="en", meta=web_meta) == (ack, False)

    [published] = bodies(Event.VERSION_PUBLISHED)
    assert set(published) == {"type", "timestamp", "data"} and published["type"] == "version.published"
    assert published["data"]["guideline"]["slug"] == "social-media"
    assert published["data"]["version"] == {"id": version.pk, "number": "1.0", "material": True,
                                            "published_at": published["timestamp"]}
    [acknowledged] = bodies(Event.ACKNOWLEDGEMENT_CREATED)
    assert acknowledged["data"]["acknowledgement"]["sequence"] == ack.sequence
    assert acknowledged["data"]["acknowledgement"]["seal"] == ack.seal
    assert acknowledged["data"]["employee_number"] == "E0001"
    assert "Alice" not in json.dumps(acknowledged)  # no names, only the number
    assert WebhookDelivery.objects.filter(subscriber=subscriber, status=Status.PENDING).count() == 2


def test_a_rolled_back_acknowledgement_sends_nothing(hilde, alice, version_1, web_meta,
                                                     django_capture_on_commit_callbacks):
    subscribe(hilde, "https://grc.example.com/hooks")
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(RuntimeError), transaction.atomic():
            services.acknowledge(employee=alice, version=version_1, language="en", meta=web_meta)
            raise RuntimeError("the request failed after acknowledging")
    assert not WebhookEvent.objects.filter(type=Event.ACKNOWLEDGEMENT_CREATED).exists()


# An employee's reason and HR's note are free text: they must never leave in an event.
REASON_MARKER, NOTE_MARKER = "reason-marker-5f1e", "note-marker-9c2a"


def object_to(employee, version, meta, kind=Objection.Kind.EXCEPTION):
    return questions.record_objection(employee=employee, version=version, language="en", kind=kind, meta=meta,
                                      reason=f"I am on leave until March. {REASON_MARKER}")


def test_an_objection_and_its_handling_are_events_of_their_own_transactions(
        hilde, alice, version_1, web_meta, monkeypatch, django_capture_on_commit_callbacks):
    subscriber, _secret = subscribe(hilde, "https://grc.example.com/hooks",
                                    events=[Event.OBJECTION_RECORDED, Event.OBJECTION_RESOLVED])
    uninterested, _secret = subscribe(hilde, "https://other.example.com/hooks", name="Other",
                                      events=[Event.ACKNOWLEDGEMENT_CREATED])
    queued = []
    monkeypatch.setattr(tasks.deliver_webhook, "delay", queued.append)
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        request = object_to(alice, version_1, web_meta)
        # Recorded in the objection's own transaction, queued only once it commits.
        [recorded_delivery] = WebhookDelivery.objects.filter(event__key=f"objection.recorded:{request.pk}")
        assert recorded_delivery.subscriber == subscriber and queued == []
    assert queued == [recorded_delivery.pk]
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        resolution = questions.resolve(objection=request, by=hilde, outcome="exempted", note=f"Granted. {NOTE_MARKER}")
        [resolved_delivery] = WebhookDelivery.objects.filter(event__key=f"objection.resolved:{request.pk}")
    assert queued == [recorded_delivery.pk, resolved_delivery.pk]
    assert not uninterested.deliveries.exists()

    [recorded] = bodies(Event.OBJECTION_RECORDED)
    objection = {"id": request.pk, "kind": "exception", "recorded_at": recorded["timestamp"], "language": "en",
                 "content_hash": version_1.texts.get(language="en").content_hash}
    assert recorded == {"type": "objection.recorded", "timestamp": recorded["timestamp"], "data": {
        "guideline": {"id": version_1.guideline_id, "slug": "social-media"},
        "version": {"id": version_1.pk, "number": "1.0"}, "objection": objection, "employee_number": "E0001"}}
    [resolved] = bodies(Event.OBJECTION_RESOLVED)
    assert resolved["data"] == recorded["data"] | {"resolution": {
        "id": resolution.pk, "outcome": "exempted", "resolved_at": resolved["timestamp"],
        "exemption_id": resolution.exemption_id}}
    assert resolution.exemption_id is not None


def test_a_rolled_back_objection_or_handling_sends_nothing(hilde, alice, version_1, web_meta,
                                                         django_capture_on_commit_callbacks):
    subscribe(hilde, "https://grc.example.com/hooks")
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(RuntimeError), transaction.atomic():
            object_to(alice, version_1, web_meta)
            raise RuntimeError("the request failed after the objection")
    assert not Objection.objects.exists() and not WebhookEvent.objects.exists()
    request = object_to(alice, version_1, web_meta)
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(RuntimeError), transaction.atomic():
            questions.resolve(objection=request, by=hilde, outcome="declined", note="No.")
            raise RuntimeError("the request failed after the handling")
    assert list(WebhookEvent.objects.values_list("type", flat=True)) == ["objection.recorded"]
    assert WebhookDelivery.objects.count() == 1


def test_no_delivered_body_carries_the_reason_the_note_the_statement_or_a_name(
        hilde, alice, otto, version_1, web_meta, django_capture_on_commit_callbacks):
    with Receiver() as receiver:
        _subscriber, secret = subscribe(hilde, receiver.url("/hooks"))
        answered = object_to(alice, version_1, web_meta, kind=Objection.Kind.OBJECTION)
        questions.resolve(objection=answered, by=hilde, outcome="answered", note=f"The rule stays. {NOTE_MARKER}")
        declined = object_to(otto, version_1, web_meta)
        questions.resolve(objection=declined, by=hilde, outcome="declined", note=f"Not a reason. {NOTE_MARKER}")
        for delivery in WebhookDelivery.objects.order_by("pk"):
            assert webhooks.deliver(delivery.pk) == Status.DELIVERED
    types = [item.verify(secret)["type"] for item in receiver.received]
    assert types == ["objection.recorded", "objection.resolved"] * 2
    for body in [item.body.decode() for item in receiver.received] + list(
            WebhookEvent.objects.values_list("body", flat=True)):
        for free_text in (REASON_MARKER, NOTE_MARKER, "on leave", "I object", "exempted from", "Alice", "Otto",
                          "Hilde", "Example", "Operations", "Finance"):
            assert free_text not in body


def test_hr_s_form_offers_the_objection_events(hilde, client_as):
    client = client_as(hilde)
    page = client.get(reverse("guidelines:hr_webhook_new")).content.decode()
    for event in (Event.OBJECTION_RECORDED, Event.OBJECTION_RESOLVED):
        assert f'value="{event.value}"' in page and str(event.label) in page
    response = client.post(reverse("guidelines:hr_webhook_new"), {
        "name": "GRC", "url": "https://grc.example.com/hooks", "events": ["objection.resolved", "objection.recorded"]})
    assert response.status_code == 200
    subscriber = WebhookSubscriber.objects.get()
    assert subscriber.events == ["objection.recorded", "objection.resolved"]
    detail = client.get(reverse("guidelines:hr_webhook", args=[subscriber.pk])).content.decode()
    assert "an employee objected to a version or asked for an exception" in detail
    assert "HR handled an objection or exception request" in detail


def test_the_event_commits_with_the_change_and_a_broker_outage_loses_nothing(
        hilde, alice, version_1, web_meta, monkeypatch, django_capture_on_commit_callbacks, caplog):
    subscriber, _secret = subscribe(hilde, "https://grc.example.com/hooks")

    def broker_down(*args, **kwargs):
        raise ConnectionRefusedError("the broker does not answer")

    monkeypatch.setattr(tasks.deliver_webhook, "delay", broker_down)
    with transaction.atomic():
        ack, _created = services.acknowledge(employee=alice, version=version_1, language="en", meta=web_meta)
        # Recorded in the acknowledgement's own transaction, not after it: nothing can come in between.
        assert WebhookDelivery.objects.filter(event__key=f"acknowledgement.created:{ack.pk}").exists()
    with django_capture_on_commit_callbacks(execute=True):  # a commit whose queueing fails
        webhook_events.emit(Event.REPORT_READY, "report.ready:9", {})
    delivery = WebhookDelivery.objects.get(event__key="report.ready:9").pk
    assert "the sweep queues it again" in caplog.text
    assert WebhookDelivery.objects.get(pk=delivery).status == Status.PENDING  # the change and its event stand

    # The sweep waits longer than any retry would before it calls a delivery lost.
    later = timezone.now() + timedelta(seconds=webhooks.stall_seconds() + 1)
    assert webhooks.stalled_deliveries() == []
    lost = webhooks.stalled_deliveries(later)
    assert delivery in lost and len(lost) == 2
    queued = []
    monkeypatch.setattr(tasks.deliver_webhook, "delay", queued.append)
    with time_machine.travel(later):
        assert tasks.requeue_stalled_webhooks() == {"queued": 2}
    assert sorted(queued) == sorted(lost)
    # An attempt a minute before: its task waits to retry, it is not lost.
    WebhookDelivery.objects.filter(pk=delivery).update(attempts=1, last_attempt_at=later - timedelta(minutes=1))
    assert webhooks.stalled_deliveries(later) == [pk for pk in lost if pk != delivery]
    assert subscriber.deliveries.count() == 2


def test_enabling_again_resends_what_the_subscriber_missed_under_the_ids_it_had(
        hilde, alice, otto, version_1, web_meta, client_as, django_capture_on_commit_callbacks, monkeypatch):
    with Receiver() as receiver:
        subscriber, secret = subscribe(hilde, receiver.url("/hooks"), events=[Event.ACKNOWLEDGEMENT_CREATED,
                                                                              Event.REPORT_READY])
        [delivered] = webhook_events.record(Event.REPORT_READY, "report.ready:1", {}, None)
        assert webhooks.deliver(delivered) == Status.DELIVERED
        [failed] = webhook_events.record(Event.REPORT_READY, "report.ready:2", {}, None)
        webhooks.give_up(failed, "HTTP 503 Service Unavailable")
        webhooks.disable(subscriber, by=hilde)
        services.acknowledge(employee=alice, version=version_1, language="en", meta=web_meta)  # while disabled
        webhook_events.record(Event.VERSION_PUBLISHED, "version.published:7", {}, None)  # not its kind

        client = client_as(hilde)
        url = reverse("guidelines:hr_webhook_enable", args=[subscriber.pk])
        page = client.get(url).content.decode()
        assert "Also send the 2 events it missed since" in page
        resend = []
        monkeypatch.setattr(tasks.resend_missed_webhooks, "delay", lambda *args: resend.append(args))
        with django_capture_on_commit_callbacks(execute=True):
            assert client.post(url, {"resend_missed": "on"}).status_code == 302
        [(subscriber_pk, since)] = resend
        failed_delivery = WebhookDelivery.objects.get(pk=failed)
        assert since == failed_delivery.event.created_at.isoformat()  # its first undelivered event
        enabled = AuditEvent.objects.filter(action=AuditEvent.Action.WEBHOOK_ENABLED).get()
        assert enabled.details["resend_missed_since"] == since

        queued = []
        monkeypatch.setattr(tasks.deliver_webhook, "delay", queued.append)
        assert tasks.resend_missed_webhooks(subscriber_pk, since) == {"resent": 2}
        for pk in queued:
            assert webhooks.deliver(pk) == Status.DELIVERED
    received = [(item.headers["webhook-id"], item.verify(secret)["type"]) for item in receiver.received]
    again = WebhookDelivery.objects.get(pk=failed)
    new = WebhookDelivery.objects.get(subscriber=subscriber, event__type=Event.ACKNOWLEDGEMENT_CREATED)
    assert received == [(WebhookDelivery.objects.get(pk=delivered).message_id, "report.ready"),
                        (again.message_id, "report.ready"), (new.message_id, "acknowledgement.created")]
    assert again.message_id == failed_delivery.message_id and again.attempts == 1
    assert tasks.resend_missed_webhooks(subscriber_pk, since) == {"resent": 0}  # all arrived: nothing twice
    assert "It missed no events." not in page


def test_a_subscriber_that_missed_nothing_is_enabled_without_the_offer(hilde, client_as):
    subscriber, _secret = subscribe(hilde, "https://grc.example.com/hooks")
    webhooks.disable(subscriber, by=hilde)
    page = client_as(hilde).get(reverse("guidelines:hr_webhook_enable", args=[subscriber.pk])).content.decode()
    assert "It missed no events." in page and "resend_missed" not in page


def test_an_event_nobody_wants_is_not_recorded_and_a_repeated_key_is_recorded_once(hilde):
    subscribe(hilde, "https://grc.example.com/hooks", events=[Event.REPORT_READY])
    assert webhook_events.record(Event.VERSION_PUBLISHED, "version.published:1", {}, None) == []
    assert len(webhook_events.record(Event.REPORT_READY, "report.ready:1", {}, None)) == 1
    assert webhook_events.record(Event.REPORT_READY, "report.ready:1", {}, None) == []
    assert WebhookEvent.objects.count() == 1


def test_a_delivery_is_signed_as_the_reference_library_verifies_it(hilde, alice, version_1, web_meta,
                                                                    django_capture_on_commit_callbacks):
    with Receiver() as receiver:
        subscriber, secret = subscribe(hilde, receiver.url("/hooks"))
        with django_capture_on_commit_callbacks(execute=True):
            services.acknowledge(employee=alice, version=version_1, language="en", meta=web_meta)
        delivery = WebhookDelivery.objects.get(subscriber=subscriber)
        assert webhooks.deliver(delivery.pk) == Status.DELIVERED
        assert webhooks.deliver(delivery.pk) == Status.DELIVERED  # a redelivered task sends nothing more
    [received] = receiver.received
    payload = received.verify(secret)
    assert payload["type"] == "acknowledgement.created" and payload["data"]["employee_number"] == "E0001"
    assert received.headers["webhook-id"] == delivery.message_id
    assert received.headers["content-type"] == "application/json"
    with pytest.raises(WebhookVerificationError):  # one changed byte
        type(received)(received.path, received.headers, received.body.replace(b"E0001", b"E0002")).verify(secret)
    with pytest.raises(WebhookVerificationError):  # another subscriber's secret
        received.verify(webhooks.new_secret())
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_status) == (Status.DELIVERED, 1, 204)


def test_the_daily_task_announces_each_current_version_with_overdue_employees_with_the_dashboard_counts(
        hilde, bob, alice, otto, guideline, web_meta, django_capture_on_commit_callbacks):
    subscribe(hilde, "https://grc.example.com/hooks", events=[Event.VERSION_OVERDUE])
    long_ago = timezone.now() - timedelta(days=60)
    draft = make_draft(guideline, author=hilde)
    publishing.approve_version(version=draft, by=bob.user, at=long_ago)
    version = publishing.publish_version(version=draft, by=hilde, material=True, at=long_ago)
    services.acknowledge(employee=alice, version=version, language="en", meta=web_meta)
    day = timezone.localdate()
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.announce_overdue_versions.apply(args=[day.isoformat()]).get()["versions"] == 1
        tasks.announce_overdue_versions.apply(args=[day.isoformat()])  # a second beat: nothing new
    [overdue] = bodies(Event.VERSION_OVERDUE)
    counts = dashboards.version_counts([version], day)[version.pk]
    assert overdue["data"]["counts"] == {"in_scope": counts.in_scope, "acknowledged": 1, "pending": 0,
                                         "overdue": counts.overdue, "exempt": 0}
    assert counts.overdue == 2 and overdue["data"]["day"] == day.isoformat()


def test_only_hr_may_manage_subscribers(alice, hilde):
    with pytest.raises(PermissionDenied):
        webhooks.add_subscriber(by=alice.user, name="Mine", url="https://example.com/", events=ALL_EVENTS)
    subscriber, _secret = subscribe(hilde, "https://grc.example.com/hooks")
    with pytest.raises(PermissionDenied):
        webhooks.disable(subscriber, by=alice.user)
    assert WebhookSubscriber.objects.get().is_active


HOSTILE_ADDRESSES = [
    "https://127.0.0.1/hooks", "https://localhost:8000/admin/", "https://10.0.0.5/", "https://192.168.1.1/",
    "https://169.254.169.254/latest/meta-data/", "https://[::1]/", "https://[::ffff:127.0.0.1]/",
    "https://[fe80::1]/", "https://0.0.0.0/", "https://100.64.0.1/",
]


@pytest.mark.parametrize("url", HOSTILE_ADDRESSES)
def test_a_hostile_hr_user_cannot_point_a_webhook_at_an_internal_address_in_production(
        url, hilde, client_as, settings):
    settings.DEBUG, settings.WEBHOOK_ALLOW_PRIVATE = False, False
    client = client_as(hilde)
    response = client.post(reverse("guidelines:hr_webhook_new"),
                           {"name": "Metadata", "url": url, "events": ["version.published"]})
    assert response.status_code == 200
    page = response.content.decode()
    assert "There is a problem" in page and "internal network address" in page
    with pytest.raises(ValidationError):  # nor through the service, past the form
        webhooks.add_subscriber(by=hilde, name="Metadata", url=url, events=["version.published"])
    assert not WebhookSubscriber.objects.exists()


@pytest.mark.parametrize(("url", "message"), [
    ("http://grc.example.com/hooks", "must start with https://"),
    ("https://user:password@grc.example.com/hooks", "may not contain a user name or password"),
    ("ftp://grc.example.com/", "must start with https://"),
])
def test_addresses_in_production_are_https_without_credentials(url, message, hilde, client_as, settings):
    settings.DEBUG, settings.WEBHOOK_ALLOW_PRIVATE = False, True  # so no DNS is needed to reach the check
    response = client_as(hilde).post(reverse("guidelines:hr_webhook_new"),
                                     {"name": "GRC", "url": url, "events": ["version.published"]})
    assert response.status_code == 200 and message in response.content.decode()
    assert not WebhookSubscriber.objects.exists()


def test_a_subscriber_saved_on_loopback_is_not_delivered_to_once_private_addresses_are_forbidden(
        hilde, settings, alice, version_1, web_meta, django_capture_on_commit_callbacks):
    """The address the worker connects to is checked, not only the one saved (DNS can change)."""
    with Receiver() as receiver:
        subscriber, _secret = subscribe(hilde, receiver.url("/hooks"))
        with django_capture_on_commit_callbacks(execute=True):
            services.acknowledge(employee=alice, version=version_1, language="en", meta=web_meta)
        settings.WEBHOOK_ALLOW_PRIVATE = False
        delivery = WebhookDelivery.objects.get(subscriber=subscriber)
        with pytest.raises(webhooks.TransientFailure, match="internal address 127.0.0.1"):
            webhooks.deliver(delivery.pk)
    assert receiver.received == []
    delivery.refresh_from_db()
    assert delivery.status == Status.PENDING and "internal address" in delivery.last_error


def test_redirects_are_not_followed(hilde, alice, version_1, web_meta, django_capture_on_commit_callbacks):
    with Receiver({"/moved": [307]}) as receiver:
        subscriber, _secret = subscribe(hilde, receiver.url("/moved"))
        with django_capture_on_commit_callbacks(execute=True):
            services.acknowledge(employee=alice, version=version_1, language="en", meta=web_meta)
        delivery = WebhookDelivery.objects.get(subscriber=subscriber)
        with pytest.raises(webhooks.TransientFailure, match="HTTP 307"):
            webhooks.deliver(delivery.pk)
    assert len(receiver.received) == 1
    delivery.refresh_from_db()
    assert (delivery.response_status, delivery.attempts) == (307, 1)


def test_failed_deliveries_in_a_row_disable_the_subscriber_and_a_success_ends_the_streak(hilde, settings):
    settings.WEBHOOK_DISABLE_AFTER = 2
    subscriber, _secret = subscribe(hilde, "https://grc.example.com/hooks", events=[Event.REPORT_READY])
    [first] = webhook_events.record(Event.REPORT_READY, "report.ready:1", {}, None)
    [second] = webhook_events.record(Event.REPORT_READY, "report.ready:2", {}, None)
    [third] = webhook_events.record(Event.REPORT_READY, "report.ready:3", {}, None)
    webhooks.give_up(first, "HTTP 503 Service Unavailable")
    webhooks._mark_delivered(WebhookDelivery.objects.get(pk=second), 200)
    subscriber.refresh_from_db()
    assert subscriber.is_active and subscriber.failure_streak == 0
    webhooks.give_up(third, "HTTP 503 Service Unavailable")
    [fourth] = webhook_events.record(Event.REPORT_READY, "report.ready:4", {}, None)
    webhooks.give_up(fourth, "ConnectionError: refused")
    subscriber.refresh_from_db()
    assert not subscriber.is_active and subscriber.disabled_by is None
    assert subscriber.disabled_reason == "ConnectionError: refused"
    event = AuditEvent.objects.get(action=AuditEvent.Action.WEBHOOK_DISABLED)
    assert event.actor is None and event.details["automatic"] is True
    assert webhook_events.record(Event.REPORT_READY, "report.ready:5", {}, None) == []  # nothing new for it


def test_hr_adds_sees_the_secret_once_disables_and_enables_with_audit_events_and_security_log(
        hilde, client_as, security_log):
    client = client_as(hilde)
    assert "Add a subscriber" in client.get(reverse("guidelines:hr_webhooks")).content.decode()
    response = client.post(reverse("guidelines:hr_webhook_new"), {
        "name": "GRC tool", "url": "https://grc.example.com/hooks?tenant=bank",
        "events": ["acknowledgement.created", "version.overdue"]})
    assert response.status_code == 200
    page = response.content.decode()
    secret = re.search(r"data-webhook-secret>(whsec_[^<]+)<", page).group(1)
    subscriber = WebhookSubscriber.objects.get()
    assert webhooks.secret_of(subscriber) == secret
    detail = client.get(reverse("guidelines:hr_webhook", args=[subscriber.pk])).content.decode()
    assert secret not in detail and "GRC tool" in detail and "Nothing was sent" in detail

    confirm = client.get(reverse("guidelines:hr_webhook_disable", args=[subscriber.pk])).content.decode()
    assert "Disable GRC tool?" in confirm
    subscriber.refresh_from_db()
    assert subscriber.is_active  # a GET only asks
    response = client.post(reverse("guidelines:hr_webhook_disable", args=[subscriber.pk]))
    assert response.status_code == 302
    subscriber.refresh_from_db()
    assert not subscriber.is_active and subscriber.disabled_by == hilde
    assert "Disabled by Hilde" in client.get(reverse("guidelines:hr_webhook", args=[subscriber.pk])).content.decode()
    client.post(reverse("guidelines:hr_webhook_enable", args=[subscriber.pk]))
    subscriber.refresh_from_db()
    assert subscriber.is_active

    actions = list(AuditEvent.objects.filter(action__startswith="webhook_").order_by("pk")
                   .values_list("action", "actor"))
    assert actions == [("webhook_added", hilde.pk), ("webhook_disabled", hilde.pk), ("webhook_enabled", hilde.pk)]
    [added] = security_log("webhook_added")
    assert added["details"] == {"subscriber": subscriber.pk, "host": "grc.example.com",
                                "events": ["acknowledgement.created", "version.overdue"]}
    assert "tenant" not in json.dumps(added) and secret not in json.dumps(security_log("webhook_added"))
    assert security_log("webhook_disabled")[0]["details"]["automatic"] is False
    assert len(security_log("webhook_enabled")) == 1


def test_the_form_says_what_is_missing(hilde, client_as):
    response = client_as(hilde).post(reverse("guidelines:hr_webhook_new"), {"name": "", "url": "", "events": []})
    page = response.content.decode()
    assert response.status_code == 200 and page.count('href="#id_') == 3 and "There is a problem" in page
