import pytest
from django.core.cache import caches
from django.urls import reverse

from guidelines import content, status
from guidelines.models import Acknowledgement, Reading

from ..factories import make_draft, make_employee, publish, sign_in


def urls(ack_pk=1):
    return [
        reverse("guidelines:home"),
        reverse("guidelines:history"),
        reverse("guidelines:receipt", args=[ack_pk]),
        reverse("guidelines:detail", args=["social-media"]),
    ]


@pytest.fixture
def ack(alice, version_1, client_as):
    client_as(alice).post(reverse("guidelines:acknowledge", args=["social-media"]), _form(version_1))
    client_as(alice).logout()
    return Acknowledgement.objects.get(employee=alice)


def _form(version, /, **overrides):
    return {"version": version.pk, "language": "en", "confirm": "on", **overrides}


@pytest.mark.parametrize("index", range(5))
def test_anonymous_visitors_are_sent_to_login(client, ack, index):
    url = [*urls(ack.pk), reverse("guidelines:acknowledge", args=["social-media"])][index]
    response = client.get(url) if index < 4 else client.post(url, {})
    assert response.status_code == 302
    assert response.url.startswith(reverse("account_login"))
    assert Acknowledgement.objects.count() == 1


@pytest.mark.parametrize("index", range(4))
def test_account_without_employee_record_gets_403(client_as, nina, ack, index):
    response = client_as(nina).get(urls(ack.pk)[index])
    assert response.status_code == 403
    if index < 3:
        assert "not linked to an employee record" in response.content.decode()


def test_employee_pages_answer_200_for_the_employee(client_as, alice, ack):
    client = client_as(alice)
    for url in urls(ack.pk):
        assert client.get(url).status_code == 200, url


def test_hr_and_auditor_may_read_a_guideline_but_not_acknowledge(client_as, hilde, arjen, version_1):
    for user in (hilde, arjen):
        response = client_as(user).get(reverse("guidelines:detail", args=["social-media"]))
        assert response.status_code == 200
        assert 'name="confirm"' not in response.content.decode()


def test_home_lists_what_needs_acknowledging_and_by_when(client_as, alice, version_1):
    response = client_as(alice).get("/")
    content = response.content.decode()
    assert "Social media guideline" in content
    due = status.due_date(alice, version_1)
    assert f"Please acknowledge by {due.day} {due:%B %Y}" in content
    assert "You have not acknowledged any current guideline yet" in content


def test_home_moves_the_guideline_to_done_after_acknowledging(client_as, alice, ack):
    content = client_as(alice).get("/").content.decode()
    assert "Nothing to acknowledge" in content
    assert reverse("guidelines:receipt", args=[ack.pk]) in content


def test_home_marks_overdue_guidelines(client_as, alice, version_1, guideline):
    guideline.due_days = 0
    guideline.save()
    alice.start_date = None
    alice.save()
    from django.utils import timezone

    content = client_as(alice).get("/").content.decode()
    assert "Overdue" not in content  # published today with 0 days: due today, not yet overdue
    real_localdate = timezone.localdate
    tomorrow = real_localdate() + timezone.timedelta(days=1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(timezone, "localdate", lambda *args: real_localdate(*args) if args else tomorrow)
        assert "Overdue" in client_as(alice).get("/").content.decode()


def test_guideline_page_shows_the_employee_language_and_switches(client_as, alice, version_1):
    client = client_as(alice)
    assert "Be respectful." in client.get(reverse("guidelines:detail", args=["social-media"])).content.decode()
    dutch = client.get(reverse("guidelines:detail", args=["social-media"]) + "?lang=nl").content.decode()
    assert "Wees respectvol." in dutch
    assert 'lang="nl"' in dutch


def test_interface_follows_the_employees_language(client, alice, version_1):
    alice.language = "nl"
    alice.save()
    sign_in(client, alice.user)
    from django.utils import translation

    with translation.override("nl"):
        content = client.get("/").content.decode()
    assert "Te bevestigen" in content or "bevestig" in content.lower()


def test_opening_the_guideline_records_the_first_reading(client_as, alice, version_1):
    client_as(alice).get(reverse("guidelines:detail", args=["social-media"]))
    assert Reading.objects.filter(employee=alice, version=version_1).count() == 1


def test_acknowledging_redirects_to_a_receipt(client_as, alice, version_1):
    client = client_as(alice)
    response = client.post(reverse("guidelines:acknowledge", args=["social-media"]), _form(version_1),
                           HTTP_USER_AGENT="Test browser", REMOTE_ADDR="10.9.8.7")
    ack = Acknowledgement.objects.get(employee=alice)
    assert response.status_code == 302
    assert response.url == reverse("guidelines:receipt", args=[ack.pk])
    assert (ack.user_agent, ack.ip_address, ack.channel) == ("Test browser", "10.9.8.7", "web")
    receipt = client.get(response.url).content.decode()
    assert ack.seal in receipt and ack.content_hash in receipt
    assert "I have read and understood the Social media guideline, version 1.0." in receipt


def test_acknowledging_twice_shows_already_acknowledged(client_as, alice, version_1):
    client = client_as(alice)
    url = reverse("guidelines:acknowledge", args=["social-media"])
    client.post(url, _form(version_1))
    response = client.post(url, _form(version_1))
    assert response.status_code == 200
    assert "Already acknowledged" in response.content.decode()
    assert Acknowledgement.objects.count() == 1


def test_missing_checkbox_shows_a_form_error_and_stores_nothing(client_as, alice, version_1):
    response = client_as(alice).post(reverse("guidelines:acknowledge", args=["social-media"]),
                                     _form(version_1, confirm=""))
    assert response.status_code == 400
    assert "Please tick the box" in response.content.decode()
    assert not Acknowledgement.objects.exists()


@pytest.mark.parametrize(
    "overrides",
    [{"version": "abc"}, {"version": "999999"}, {"language": "xx"}, {"via": "x" * 201}, {"version": ""}],
)
def test_tampered_post_data_is_refused_with_400(client_as, alice, version_1, overrides):
    response = client_as(alice).post(reverse("guidelines:acknowledge", args=["social-media"]),
                                     _form(version_1, **overrides))
    assert response.status_code == 400
    assert not Acknowledgement.objects.exists()


def test_version_of_another_guideline_is_refused(client_as, alice, version_1, hilde, bob):
    from ..factories import make_guideline

    other = publish(make_guideline(hilde, slug="other"), author=hilde, approver=bob.user)
    response = client_as(alice).post(reverse("guidelines:acknowledge", args=["social-media"]), _form(other))
    assert response.status_code == 400
    assert not Acknowledgement.objects.exists()


def test_draft_version_is_refused(client_as, alice, version_1, guideline, hilde):
    draft = make_draft(guideline, author=hilde)
    response = client_as(alice).post(reverse("guidelines:acknowledge", args=["social-media"]), _form(draft))
    assert response.status_code == 400
    assert not Acknowledgement.objects.exists()


def test_superseded_version_is_refused_with_a_pointer_to_the_current(client_as, alice, version_1, guideline,
                                                                     hilde, bob):
    publish(guideline, author=hilde, approver=bob.user)
    response = client_as(alice).post(reverse("guidelines:acknowledge", args=["social-media"]), _form(version_1))
    assert response.status_code == 409
    assert "not the current version" in response.content.decode()
    assert not Acknowledgement.objects.exists()


def test_out_of_audience_employee_gets_403_and_no_row(client_as, otto, alice, version_1, guideline):
    guideline.audience_everyone = False
    guideline.save()
    guideline.audience_departments.add(alice.department)
    client = client_as(otto)
    assert client.get(reverse("guidelines:detail", args=["social-media"])).status_code == 403
    response = client.post(reverse("guidelines:acknowledge", args=["social-media"]), _form(version_1))
    assert response.status_code == 403
    assert "does not apply to you" in response.content.decode()
    assert not Acknowledgement.objects.exists()


def test_get_on_the_acknowledge_url_leads_to_the_guideline_and_records_nothing(client_as, alice, version_1):
    response = client_as(alice).get(reverse("guidelines:acknowledge", args=["social-media"]))
    assert response.status_code == 302
    assert response["Location"] == reverse("guidelines:detail", args=["social-media"])
    assert not Acknowledgement.objects.exists()


@pytest.mark.parametrize(
    "url",
    [
        "/guidelines/no-such-guideline/",
        "/guidelines/social-media/?version=9.9",
        "/guidelines/social-media/?version=abc",
        "/guidelines/social-media/?version=1.0.0",
        "/guidelines/social-media/?lang=xx",
        "/my/acknowledgements/99999/",
        "/my/acknowledgements/?page=abc",
    ],
)
def test_bad_urls_get_a_clear_4xx(client_as, alice, version_1, url):
    response = client_as(alice).get(url)
    assert response.status_code in (200, 404) if "page=" in url else response.status_code == 404
    assert response.status_code < 500


def test_employee_cannot_see_another_employees_receipt(client_as, alice, bob, ack):
    assert client_as(bob).get(reverse("guidelines:receipt", args=[ack.pk])).status_code == 404


def test_guideline_page_shows_what_changed_since_the_acknowledged_version(client_as, alice, version_1, guideline,
                                                                          hilde, bob):
    client = client_as(alice)
    client.post(reverse("guidelines:acknowledge", args=["social-media"]), _form(version_1))
    bodies = {
        "nl": "# Richtlijn\n\n## Uitgangspunten\nWees respectvol.\n\n## Melden\nMeld het binnen 24 uur.\n",
        "en": "# Guideline\n\n## Principles\nBe respectful.\n\n## Reporting\nReport it within 24 hours.\n",
    }
    publish(guideline, author=hilde, approver=bob.user, bodies=bodies)
    content = client.get(reverse("guidelines:detail", args=["social-media"])).content.decode()
    assert "What changed since version 1.0, which you acknowledged" in content
    assert "<del>straight away.</del>" in content
    assert "<ins>within 24 hours.</ins>" in content
    assert 'name="confirm"' in content


def test_past_versions_are_readable_but_not_acknowledgeable(client_as, alice, version_1, guideline, hilde, bob):
    publish(guideline, author=hilde, approver=bob.user)
    content = client_as(alice).get("/guidelines/social-media/?version=1.0").content.decode()
    assert "no longer current" in content
    assert 'name="confirm"' not in content


def test_history_lists_my_acknowledgements_only(client_as, alice, bob, version_1):
    for person in (alice, bob):
        client_as(person).post(reverse("guidelines:acknowledge", args=["social-media"]), _form(version_1))
    content = client_as(alice).get(reverse("guidelines:history")).content.decode()
    mine = Acknowledgement.objects.get(employee=alice).pk
    assert content.count(f'href="{reverse("guidelines:receipt", args=[mine])}"') == 1
    assert content.count(f'href="{reverse("guidelines:report_certificate", args=[mine])}"') == 1
    assert reverse("guidelines:receipt", args=[Acknowledgement.objects.get(employee=bob).pk]) not in content


def _grow(guideline, hilde, bob, *, employees, versions):
    """More employees, who all acknowledge, and more versions, Alice's position unchanged."""
    from guidelines import services

    meta = services.RequestMeta()
    for _ in range(versions):
        current = publish(guideline, author=hilde, approver=bob.user)
    for n in range(employees):
        person = make_employee(f"extra{n}@example.com", f"X{n:05d}")
        services.acknowledge(employee=person, version=current, language="nl", meta=meta)


@pytest.mark.parametrize("url_name", ["home", "detail", "history"])
def test_page_queries_do_not_grow_with_employees_or_versions(client_as, alice, guideline, version_1, hilde, bob,
                                                              django_assert_max_num_queries, url_name):
    """Alice acknowledged an earlier version and has the current one pending, at two sizes."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    url = reverse(f"guidelines:{url_name}", args=["social-media"] if url_name == "detail" else [])
    client = client_as(alice)
    client.post(reverse("guidelines:acknowledge", args=["social-media"]), _form(version_1))
    publish(guideline, author=hilde, approver=bob.user)
    client.get(url)  # the first visit records the reading
    caches[content.CACHE].clear()  # texts not cached yet: the most queries the page makes
    with CaptureQueriesContext(connection) as small:
        assert client.get(url).status_code == 200
    small_count = len(small.captured_queries)  # read now: every request resets the query log
    _grow(guideline, hilde, bob, employees=30, versions=6)
    client.get(url)
    caches[content.CACHE].clear()
    with django_assert_max_num_queries(small_count):
        assert client.get(url).status_code == 200
    assert 0 < small_count <= 8


def test_version_list_shows_every_published_version_with_its_summary(client_as, alice, guideline, version_1, hilde,
                                                                    bob):
    from guidelines.models import VersionText

    draft = make_draft(guideline, author=hilde)
    VersionText.objects.filter(version=draft, language="en").update(change_summary="Reporting within 24 hours.")
    from guidelines import publishing

    publishing.approve_version(version=draft, by=bob.user)
    publishing.publish_version(version=draft, by=hilde, material=True)
    make_draft(guideline, author=hilde)  # an unpublished draft stays invisible
    content = client_as(alice).get(reverse("guidelines:versions", args=["social-media"])).content.decode()
    assert "Reporting within 24 hours." in content
    assert "?version=1.0" in content and "?version=2.0" in content
    assert content.count("<tr>") == 3  # header + two published versions


def test_version_list_role_checks(client, client_as, nina, otto, alice, guideline, version_1):
    url = reverse("guidelines:versions", args=["social-media"])
    assert client.get(url).status_code == 302
    guideline.audience_everyone = False
    guideline.save()
    guideline.audience_departments.add(alice.department)
    assert client_as(otto).get(url).status_code == 403
    assert client_as(nina).get(url).status_code == 403
    assert client_as(alice).get(url).status_code == 200
    assert client_as(alice).get("/guidelines/nothing-here/versions/").status_code == 404


def test_guideline_page_links_to_all_versions_when_there_are_many(client_as, alice, guideline, version_1, hilde, bob):
    for _ in range(6):
        publish(guideline, author=hilde, approver=bob.user)
    content = client_as(alice).get(reverse("guidelines:detail", args=["social-media"])).content.decode()
    assert "All 7 versions" in content
    assert content.count("?version=") == 4  # the five most recent, the current one not as a link


def test_exempt_employee_is_not_asked_to_acknowledge(client_as, alice, hilde, guideline, version_1):
    from guidelines import services

    services.grant_exemption(employee=alice, guideline=guideline, by=hilde, reason="Long-term leave")
    content = client_as(alice).get("/").content.decode()
    assert "Nothing to acknowledge" in content
    assert "HR has exempted you" in content
    assert "Long-term leave" not in content  # the reason is HR's business
    assert "Not required" not in content.split("</title>")[0]


def test_joiner_gets_the_due_date_from_the_start_date(client_as, alice, guideline, version_1):
    from datetime import timedelta

    from django.utils import timezone

    alice.start_date = timezone.localdate() + timedelta(days=5)  # starts after the publication
    alice.save()
    due = alice.start_date + timedelta(days=guideline.due_days)
    assert status.due_date(alice, version_1) == due
    alice.start_date = timezone.localdate() - timedelta(days=400)  # started long before
    alice.save()
    assert status.due_date(alice, version_1) == timezone.localdate() + timedelta(days=guideline.due_days)


# Query budgets (warm caches: a released version's texts and diffs are read once per process) -------


def _hr_employee():
    return make_employee("hanna@example.com", "E0010", groups=["HR"])


@pytest.mark.parametrize("person", ["alice", "hanna"])
def test_query_budgets_of_the_employee_pages(request, client_as, alice, guideline, version_1, hilde, bob,
                                             django_assert_max_num_queries, person):
    """Session, user, employee (with the role flags), then per page: home 4 more (the current texts,
    then the status: acknowledgements, exemptions, extensions), the guideline page 4 more (versions
    with the guideline, then the status), acknowledging 8 more (version with guideline, the
    transaction with the chain lock, one read of the evidence context, the insert, the head and the
    webhook subscribers that want the event, read in the same transaction: the outbox)."""
    reader = alice if person == "alice" else _hr_employee()
    client = client_as(reader)
    client.post(reverse("guidelines:acknowledge", args=["social-media"]), _form(version_1))
    current = publish(guideline, author=hilde, approver=bob.user)
    detail = reverse("guidelines:detail", args=["social-media"])
    client.get(detail)  # records the first reading, fills the text cache
    with django_assert_max_num_queries(7):
        assert "What changed since version 1.0" in client.get(detail).content.decode()
    with django_assert_max_num_queries(7):
        assert client.get("/").status_code == 200
    with django_assert_max_num_queries(11):
        response = client.post(reverse("guidelines:acknowledge", args=["social-media"]), _form(current))
    assert response.status_code == 302


def test_an_hr_employee_outside_the_audience_reads_but_is_not_asked_to_acknowledge(client_as, alice, guideline,
                                                                                   version_1):
    hr = make_employee("hanna@example.com", "E0010", department="Finance", groups=["HR"])
    guideline.audience_everyone = False
    guideline.save()
    guideline.audience_departments.add(alice.department)  # Operations only
    content = client_as(hr).get(reverse("guidelines:detail", args=["social-media"])).content.decode()
    assert "Be respectful." in content
    assert 'name="confirm"' not in content
    assert not Reading.objects.filter(employee=hr).exists()


def test_a_version_older_than_the_recent_ones_is_found(client_as, alice, guideline, version_1, hilde, bob):
    for _ in range(6):
        publish(guideline, author=hilde, approver=bob.user)
    client = client_as(alice)
    content = client.get("/guidelines/social-media/?version=1.0").content.decode()
    assert "You are reading version 1.0, which is no longer current" in content
    assert client.get("/guidelines/social-media/?version=8.0").status_code == 404


def test_a_guideline_without_published_versions_answers_404(client_as, alice, guideline):
    assert client_as(alice).get(reverse("guidelines:detail", args=["social-media"])).status_code == 404
    assert client_as(alice).get("/guidelines/nothing-here/").status_code == 404


def test_a_form_error_keeps_the_page_with_what_changed(client_as, alice, guideline, version_1, hilde, bob):
    client = client_as(alice)
    client.post(reverse("guidelines:acknowledge", args=["social-media"]), _form(version_1))
    current = publish(guideline, author=hilde, approver=bob.user,
                      bodies={"nl": "# Richtlijn\n\nNieuw.\n", "en": "# Guideline\n\nNew.\n"})
    response = client.post(reverse("guidelines:acknowledge", args=["social-media"]), _form(current, confirm=""))
    assert response.status_code == 400
    content = response.content.decode()
    assert "Please tick the box" in content and "What changed since version 1.0" in content


def test_a_guideline_with_drafts_only_has_no_versions_page(client_as, alice, guideline, hilde):
    make_draft(guideline, author=hilde)
    response = client_as(alice).get(reverse("guidelines:versions", args=["social-media"]))
    assert response.status_code == 404
    assert "no published version yet" in response.content.decode()
