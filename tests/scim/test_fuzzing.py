"""Whatever a provisioning client sends, the answer is a SCIM response, never a 500, and a refused
request leaves nothing half-written: Hypothesis builds PATCH operations and resources from the paths
Entra uses (in any case), nonsense paths and every kind of JSON value."""

import json

import pytest
from django.contrib.auth.models import Group
from django.db import transaction
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from guidelines.models import Employee, ImportRun

from ..factories import make_employee
from .conftest import send

PATHS = ["active", "userName", "name.givenName", "name.familyName", 'emails[type eq "work"].value', "emails",
         "externalId", "preferredLanguage", "name", "displayName", "title", "manager", "nonsense", "emails[x",
         "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
         "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber",
         "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
         "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]
TEXT = st.text(st.characters(codec="utf-8"), max_size=40)
SCALARS = st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False) | TEXT | st.sampled_from(
    ["True", "False", "nl-NL", "en", "x@example.com", "E0099", "1", "-1", "\u0661"])
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    TEXT | st.sampled_from(PATHS + ["value", "op", "path"]), inner, max_size=3), max_leaves=8)
PATH = st.sampled_from(PATHS).flatmap(lambda path: st.sampled_from([path, path.upper(), path.lower()])) | TEXT
OPERATION = st.fixed_dictionaries(
    {"op": st.sampled_from(["add", "Replace", "remove", "REMOVE", "move"]) | TEXT},
    optional={"path": PATH, "value": JSON})
PATCH = st.fixed_dictionaries({"schemas": st.just(["urn:ietf:params:scim:api:messages:2.0:PatchOp"]),
                               "Operations": st.lists(OPERATION | JSON, max_size=4)}) | JSON
RESOURCE = st.dictionaries(PATH, JSON, max_size=6).map(
    lambda body: {"userName": "fuzz@example.com", "externalId": "F1", **body}) | JSON

FUZZ = hypothesis_settings(max_examples=150, deadline=None, derandomize=True, database=None,
                           suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def state():
    employees = list(Employee.objects.order_by("pk").values_list(
        "employee_number", "user__email", "user__first_name", "user__last_name", "user__is_active",
        "department__name", "manager_id", "end_date", "language"))
    return employees, list(Group.objects.order_by("pk").values_list("name", "user"))


@pytest.fixture
def people(db):
    manager = make_employee("manager@example.com", "M1")
    return make_employee("person@example.com", "P1", manager=manager)


@pytest.fixture
def fuzzers(people):
    group = Group.objects.create(name="Fuzzers")
    group.user_set.add(people.user)
    return group


def answer(client, method, path, body):
    """Send `body` in a transaction rolled back afterwards, so each example starts from the same data."""
    with transaction.atomic():
        before, runs = state(), set(ImportRun.objects.filter(outcome="applied").values_list("pk", flat=True))
        response = send(client, method, path, body)
        assert response.status_code < 500, (json.dumps(body), response.content)
        assert response["content-type"].startswith("application/scim+json")
        if response.status_code >= 400:
            assert response.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
            assert state() == before, json.dumps(body)
            assert set(ImportRun.objects.filter(outcome="applied").values_list("pk", flat=True)) == runs
        transaction.set_rollback(True)


@FUZZ
@given(body=PATCH)
def test_any_patch_is_answered_and_a_refusal_writes_nothing(scim, people, body):
    answer(scim, "PATCH", f"Users/{people.pk}", body)


@FUZZ
@given(body=RESOURCE)
def test_any_resource_is_answered_and_a_refusal_writes_nothing(scim, people, body):
    answer(scim, "POST", "Users", body)
    answer(scim, "PUT", f"Users/{people.pk}", body)


@FUZZ
@given(body=PATCH)
def test_any_group_patch_is_answered(scim, people, fuzzers, body):
    answer(scim, "PATCH", f"Groups/{fuzzers.pk}", body)
