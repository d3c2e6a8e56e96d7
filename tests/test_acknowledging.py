import threading
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.utils import timezone

from guidelines import chain, services
from guidelines.models import Acknowledgement

from .factories import make_draft, publish


def test_acknowledging_records_every_evidence_field(alice, bob, version_1, web_meta):
    services.record_reading(employee=alice, version=version_1)
    ack, created = services.acknowledge(employee=alice, version=version_1, language="nl", meta=web_meta)
    text = version_1.texts.get(language="nl")
    assert created
    assert (ack.version, ack.major, ack.cycle, ack.language) == (version_1, 1, 1, "nl")
    assert ack.content_hash == text.content_hash == chain.content_hash(text.body)
    assert ack.statement == "Ik heb de Richtlijn sociale media, versie 1.0, gelezen en begrepen."
    assert ack.first_opened_at is not None and ack.first_opened_at <= ack.acknowledged_at
    assert (ack.channel, ack.auth_method, ack.ip_address, ack.user_agent) == ("web", "password", "10.1.2.3", "pytest")
    assert (ack.employee_number, ack.department_name) == ("E0001", "Operations")
    assert (ack.manager_employee_number, ack.manager_name) == ("E0002", bob.full_name)
    assert ack.seal == chain.compute_seal(ack, guideline_slug="social-media", version_number="1.0")


def test_statement_is_in_the_language_read(alice, version_1, web_meta):
    ack, _ = services.acknowledge(employee=alice, version=version_1, language="en", meta=web_meta)
    assert ack.statement == "I have read and understood the Social media guideline, version 1.0."


def test_acknowledging_twice_keeps_one_record(alice, version_1, web_meta):
    first, created_first = services.acknowledge(employee=alice, version=version_1, language="en", meta=web_meta)
    second, created_second = services.acknowledge(employee=alice, version=version_1, language="nl", meta=web_meta)
    assert (created_first, created_second) == (True, False)
    assert first.pk == second.pk
    assert Acknowledgement.objects.count() == 1


def test_draft_cannot_be_acknowledged(alice, guideline, hilde, version_1, web_meta):
    draft = make_draft(guideline, author=hilde)
    with pytest.raises(ValidationError):
        services.acknowledge(employee=alice, version=draft, language="en", meta=web_meta)
    assert not Acknowledgement.objects.exists()


def test_superseded_version_cannot_be_acknowledged(alice, guideline, hilde, bob, version_1, web_meta):
    publish(guideline, author=hilde, approver=bob.user)
    version_1.refresh_from_db()
    with pytest.raises(ValidationError, match="not the current version"):
        services.acknowledge(employee=alice, version=version_1, language="en", meta=web_meta)
    assert not Acknowledgement.objects.exists()


def test_employee_outside_the_audience_cannot_acknowledge(alice, otto, guideline, version_1, web_meta):
    guideline.audience_everyone = False
    guideline.save()
    guideline.audience_departments.add(alice.department)
    with pytest.raises(PermissionDenied):
        services.acknowledge(employee=otto, version=version_1, language="en", meta=web_meta)
    assert services.acknowledge(employee=alice, version=version_1, language="en", meta=web_meta)[1]
    assert Acknowledgement.objects.count() == 1


def test_audience_by_group(otto, guideline, version_1, web_meta):
    from django.contrib.auth.models import Group

    traders = Group.objects.create(name="Traders")
    guideline.audience_everyone = False
    guideline.save()
    guideline.audience_groups.add(traders)
    assert not guideline.includes(otto)
    otto.user.groups.add(traders)
    assert guideline.includes(otto)
    assert services.acknowledge(employee=otto, version=version_1, language="en", meta=web_meta)[1]


def test_leaver_cannot_acknowledge(alice, version_1, web_meta):
    alice.end_date = timezone.localdate()
    alice.save()
    with pytest.raises(PermissionDenied):
        services.acknowledge(employee=alice, version=version_1, language="en", meta=web_meta)


def test_retired_guideline_cannot_be_acknowledged(alice, guideline, version_1, web_meta):
    guideline.retired_at = timezone.now()
    guideline.save()
    version_1.refresh_from_db()
    with pytest.raises(ValidationError):
        services.acknowledge(employee=alice, version=version_1, language="en", meta=web_meta)


def test_editorial_version_carries_acknowledgements_over(alice, guideline, hilde, bob, version_1, web_meta):
    services.acknowledge(employee=alice, version=version_1, language="en", meta=web_meta)
    version_1_1 = publish(guideline, author=hilde, approver=bob.user, material=False)
    ack, created = services.acknowledge(employee=alice, version=version_1_1, language="en", meta=web_meta)
    assert not created
    assert ack.version == version_1


def test_material_version_must_be_acknowledged_again(alice, guideline, hilde, bob, version_1, web_meta):
    services.acknowledge(employee=alice, version=version_1, language="en", meta=web_meta)
    version_2 = publish(guideline, author=hilde, approver=bob.user, material=True)
    ack, created = services.acknowledge(employee=alice, version=version_2, language="en", meta=web_meta)
    assert created and ack.major == 2
    assert Acknowledgement.objects.count() == 2


def test_periodic_reacknowledgement_asks_again_after_the_interval(alice, guideline, version_1, web_meta):
    guideline.reacknowledge_days = 365
    guideline.save()
    first, _ = services.acknowledge(employee=alice, version=version_1, language="en", meta=web_meta)
    assert services.current_acknowledgement(employee=alice, guideline=guideline, major=1) == first
    later = first.acknowledged_at + timedelta(days=366)
    assert services.current_acknowledgement(employee=alice, guideline=guideline, major=1, moment=later) is None
    assert first.is_valid_on(first.acknowledged_at + timedelta(days=364))


@pytest.mark.parametrize(
    ("mode", "expected"), [("full", "192.168.17.42"), ("truncated", "192.168.17.0"), ("none", None)]
)
def test_ip_address_is_kept_as_configured(alice, version_1, settings, mode, expected):
    settings.EVIDENCE_IP_ADDRESS = mode
    meta = services.RequestMeta(ip_address="192.168.17.42", user_agent="Firefox")
    ack, _ = services.acknowledge(employee=alice, version=version_1, language="en", meta=meta)
    assert ack.ip_address == expected


def test_user_agent_can_be_switched_off(alice, version_1, settings):
    settings.EVIDENCE_USER_AGENT = False
    ack, _ = services.acknowledge(employee=alice, version=version_1, language="en",
                                  meta=services.RequestMeta(user_agent="Firefox"))
    assert ack.user_agent == ""


def test_first_opening_is_kept_from_the_first_visit(alice, version_1):
    services.record_reading(employee=alice, version=version_1)
    first = alice.readings.get().first_opened_at
    services.record_reading(employee=alice, version=version_1)
    assert alice.readings.get().first_opened_at == first


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_simultaneous_acknowledgements_by_one_employee_leave_one_record(alice, version_1, web_meta):
    """Eight threads, each with its own PostgreSQL connection, click at the same moment."""
    barrier = threading.Barrier(8)
    results, errors = [], []

    def click():
        try:
            barrier.wait()
            results.append(services.acknowledge(employee=alice, version=version_1, language="en", meta=web_meta))
        except Exception as error:  # collected and asserted below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=click) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(created for _, created in results) == [False] * 7 + [True]
    assert Acknowledgement.objects.count() == 1
    assert services.verify_evidence().intact


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_simultaneous_acknowledgements_by_many_employees_keep_one_unbroken_chain(version_1, web_meta):
    from .factories import make_employee

    people = [make_employee(f"p{n}@example.com", f"P{n:03d}") for n in range(12)]
    barrier = threading.Barrier(len(people))
    errors = []

    def click(person):
        try:
            barrier.wait()
            services.acknowledge(employee=person, version=version_1, language="nl", meta=web_meta)
        except Exception as error:  # collected and asserted below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=click, args=(person,)) for person in people]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    seals = list(Acknowledgement.objects.order_by("sequence").values_list("sequence", "previous_seal"))
    assert [sequence for sequence, _ in seals] == list(range(1, 13))
    assert len({previous for _, previous in seals}) == 12  # no fork: nobody shares a predecessor
    assert services.verify_evidence().intact
