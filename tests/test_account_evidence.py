"""guidelines/accounts.py: the employee behind the account with its role flags in one query, and the
request evidence of an acknowledgement (how the employee signed in, from which address)."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from guidelines import accounts, security
from guidelines.models import Acknowledgement, Guideline

from .factories import PASSWORD, make_employee

pytestmark = pytest.mark.usefixtures("fresh_rate_limits")

ACKNOWLEDGE = reverse("guidelines:acknowledge", args=["social-media"])


def _form(version):
    return {"version": version.pk, "language": "en", "confirm": "on"}


def _fresh(user):
    return get_user_model().objects.get(pk=user.pk)


# The employee lookup -------------------------------------------------------------------------------


@pytest.fixture
def people(alice, bob, db):
    """An ordinary employee, a manager and approver, HR, an auditor with a permission of their own,
    a superuser and a deactivated HR employee."""
    hr = make_employee("hanna@example.com", "E0010", groups=["HR", "Approvers"])
    auditor = make_employee("aart@example.com", "E0011", groups=["Auditors"])
    auditor.user.user_permissions.add(Permission.objects.get(codename="view_employee"))
    root = make_employee("root@example.com", "E0012", is_superuser=True)
    gone = make_employee("gone@example.com", "E0013", groups=["HR"], is_active=False)
    return [alice, bob, hr, auditor, root, gone]


def test_the_lookup_primes_exactly_the_permissions_django_would_load(people, django_assert_num_queries):
    accounts.employee_for(_fresh(people[3].user))  # loads the permission names (once per process)
    for person in people:
        user = _fresh(person.user)
        with django_assert_num_queries(1):
            employee = accounts.employee_for(user)
        assert employee.pk == person.pk and employee.user is user
        backend, unprimed = ModelBackend(), _fresh(person.user)
        expected = (backend.get_user_permissions(unprimed), backend.get_group_permissions(unprimed),
                    unprimed.get_all_permissions(), unprimed.has_perm("guidelines.manage"))
        if user.is_active and not user.is_superuser:
            with django_assert_num_queries(0):  # answered from the primed cache
                assert (backend.get_user_permissions(user), backend.get_group_permissions(user),
                        user.get_all_permissions(), user.has_perm("guidelines.manage")) == expected
        else:  # a superuser holds every permission, an inactive user none: Django answers as before
            assert user.get_all_permissions() == expected[2]
    hr_user, auditor_user = _fresh(people[2].user), _fresh(people[3].user)
    accounts.employee_for(hr_user)
    accounts.employee_for(auditor_user)
    assert hr_user.get_all_permissions() >= {"guidelines.manage", "guidelines.approve"}
    assert auditor_user.get_all_permissions() == {"guidelines.audit", "guidelines.view_employee"}


def test_a_role_granted_or_taken_shows_on_the_next_request(alice):
    user = _fresh(alice.user)
    accounts.employee_for(user)
    assert not user.has_perm("guidelines.audit")
    alice.user.groups.add(Group.objects.get(name="Auditors"))
    user = _fresh(alice.user)
    accounts.employee_for(user)
    assert user.has_perm("guidelines.audit")
    alice.user.groups.clear()
    user = _fresh(alice.user)
    accounts.employee_for(user)
    assert not user.has_perm("guidelines.audit")


def test_manages_says_whether_anyone_reports_to_the_employee(alice, bob):
    assert accounts.employee_for(_fresh(bob.user)).manages
    assert not accounts.employee_for(_fresh(alice.user)).manages
    neighbour = make_employee("next@example.com", "E0020", manager=alice)  # adjacent ids: exact match only
    assert accounts.employee_for(_fresh(alice.user)).manages
    assert not accounts.employee_for(_fresh(neighbour.user)).manages


def test_an_account_without_employee_record_has_no_employee(nina):
    assert accounts.employee_for(nina) is None


def test_the_layout_shows_role_links_without_permission_queries(client_as, alice, people, version_1):
    """An HR employee's pages cost the same queries as an ordinary employee's; the links still differ.
    (On a page without role content: the home page adds an approver's inbox panel, one count.)"""
    hr = people[2]
    budgets = {}
    for person in (alice, hr):
        client = client_as(person)
        client.get("/my/acknowledgements/")
        with CaptureQueriesContext(connection) as queries:
            content = client.get("/my/acknowledgements/").content.decode()
        budgets[person.pk] = len(queries.captured_queries)
        assert ("Manage guidelines" in content) == (person is hr)
        assert ("My team" in content) is False
    assert budgets[hr.pk] == budgets[alice.pk]
    team = client_as(people[1]).get("/").content.decode()  # bob manages alice
    assert "My team" in team


# Request evidence ----------------------------------------------------------------------------------


def _request(user, **meta):
    request = RequestFactory().post(ACKNOWLEDGE, **meta)
    request.user = user
    request.session = {}
    return request


@pytest.mark.parametrize("proxies, forwarded, expected", [
    (0, "192.0.2.1", "10.0.0.5"),  # no trusted proxy: X-Forwarded-For is the client's to forge
    (1, "192.0.2.1", "192.0.2.1"),
    (1, "6.6.6.6, 192.0.2.1", "192.0.2.1"),  # the forged first entry is ignored
    (2, "6.6.6.6, 192.0.2.1, 10.1.1.1", "192.0.2.1"),
    (2, "192.0.2.1", "10.0.0.5"),  # fewer hops than proxies: the connection's address
])
def test_the_evidence_address_is_the_security_logs_client_address(settings, alice, proxies, forwarded, expected):
    settings.ALLAUTH_TRUSTED_PROXY_COUNT = proxies
    request = _request(alice.user, REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR=forwarded, HTTP_USER_AGENT="Firefox")
    meta = accounts.request_evidence(request, "web")
    assert meta.ip_address == expected == security.client_address(request)
    assert (meta.channel, meta.user_agent, meta.auth_method) == ("web", "Firefox", "session")


def test_no_address_is_recorded_as_none(alice):
    request = _request(alice.user)
    del request.META["REMOTE_ADDR"]
    assert accounts.request_evidence(request, "web").ip_address is None


def test_an_acknowledgement_behind_a_proxy_records_the_client_not_the_proxy(settings, client_as, alice, version_1):
    settings.ALLAUTH_TRUSTED_PROXY_COUNT = 1
    response = client_as(alice).post(ACKNOWLEDGE, _form(version_1), REMOTE_ADDR="10.0.0.5",
                                     HTTP_X_FORWARDED_FOR="6.6.6.6, 192.0.2.44", HTTP_USER_AGENT="Test browser")
    assert response.status_code == 302
    ack = Acknowledgement.objects.get(employee=alice)
    assert (ack.ip_address, ack.user_agent, ack.auth_method) == ("192.0.2.44", "Test browser", "password")


def test_without_a_trusted_proxy_a_forged_forwarded_header_is_ignored(client_as, alice, version_1):
    client_as(alice).post(ACKNOWLEDGE, _form(version_1), REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="6.6.6.6")
    assert Acknowledgement.objects.get(employee=alice).ip_address == "10.0.0.5"


def test_an_acknowledgement_after_a_password_sign_in_says_password(alice, version_1):
    client = Client(headers={"accept-language": "en"})
    response = client.post(reverse("account_login"), {"login": "alice@example.com", "password": PASSWORD})
    assert response.status_code == 302
    assert client.post(ACKNOWLEDGE, _form(version_1)).status_code == 302
    assert Acknowledgement.objects.get(employee=alice).auth_method == "password"


def test_the_authentication_method_names_the_sso_provider(alice, monkeypatch):
    request = _request(alice.user)
    records = [{"method": "password"}, {"method": "socialaccount", "provider": "entra"}]
    monkeypatch.setattr(accounts, "get_authentication_records", lambda request, user: records)
    assert accounts.authentication_method(request) == "sso:entra"


@pytest.mark.parametrize("records, expected", [
    ([{"method": "socialaccount", "provider": "entra"}], ("sso:entra", "sub-1", '["pwd","mfa"]', "urn:example:mfa")),
    ([{"method": "socialaccount", "provider": "entra"}, {"method": "mfa"}],
     ("sso:entra+mfa", "sub-1", '["pwd","mfa"]', "urn:example:mfa")),
    # The claims belong to the sign-in they came with: not to a later password sign-in or another provider.
    ([{"method": "socialaccount", "provider": "entra"}, {"method": "password"}], ("password", "", "", "")),
    ([{"method": "socialaccount", "provider": "entra2"}], ("sso:entra2", "", "", "")),
])
def test_the_evidence_carries_the_providers_claims_of_this_sign_in(alice, monkeypatch, records, expected):
    request = _request(alice.user)
    request.session[accounts.SSO_SESSION_KEY] = {"provider": "entra", "subject": "sub-1", "amr": ["pwd", "mfa"],
                                                 "acr": "urn:example:mfa"}
    monkeypatch.setattr(accounts, "get_authentication_records", lambda request, user: records)
    meta = accounts.request_evidence(request, "web")
    assert (meta.auth_method, meta.sso_subject, meta.sso_amr, meta.sso_acr) == expected


def test_a_permission_created_while_the_process_runs_is_named(alice):
    accounts.employee_for(_fresh(alice.user))
    new = Permission.objects.create(codename="sign_off", name="Can sign off",
                                    content_type=ContentType.objects.get_for_model(Guideline))
    alice.user.user_permissions.add(new)
    user = _fresh(alice.user)
    accounts.employee_for(user)
    assert user.has_perm("guidelines.sign_off")
