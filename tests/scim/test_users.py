"""Users: the requests Entra ID sends (recorded in fixtures/), each doing what it says in the database,
in the organisation's history and as import evidence (ImportRun, ImportChange); and every refusal."""

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.utils import timezone
from scim2_models import Context, EnterpriseUser, ListResponse, User

from guidelines import provisioning
from guidelines.models import AccountHistory, AuditEvent, Department, Employee, EmployeeHistory, ImportChange, ImportRun

from ..factories import make_employee, make_user
from .conftest import send

ADDRESS = "test_user_ab6490ee-1e48-479e-a20b-2d77186b5dd1@testuser.com"


def as_user(response):
    """The response read by scim2-models as a User with the enterprise extension."""
    assert response["content-type"].startswith("application/scim+json")
    return User[EnterpriseUser].model_validate(response.json(), scim_ctx=Context.RESOURCE_QUERY_RESPONSE)


def scim_error(response, status, scim_type=None):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert body["status"] == str(status)
    assert body.get("scimType") == scim_type
    assert body["detail"]
    return body["detail"]


def only_run(token_key):
    [run] = ImportRun.objects.filter(source=f"scim:{token_key}")
    return run


@pytest.fixture
def token_key(entra_token):
    return entra_token.split("_")[1]


@pytest.fixture
def created(replay):
    response = replay("create_user")
    assert response.status_code == 201, response.content
    return Employee.objects.select_related("user").get(employee_number="100234")


def test_entra_creates_a_user_as_a_one_row_import(replay, entra, token_key):
    response = replay("create_user")

    assert response.status_code == 201, response.content
    user = as_user(response)
    employee = Employee.objects.select_related("user", "department").get(employee_number="100234")
    assert response["location"].endswith(f"/scim/v2/Users/{employee.pk}")
    assert (user.id, user.user_name, user.active, user.external_id) == (str(employee.pk), ADDRESS, True, "100234")
    assert user[EnterpriseUser].employee_number == "100234" and user[EnterpriseUser].department == "Treasury"
    # The import's rules: the lowercased address is the login, no usable password, a new department.
    assert (employee.user.username, employee.user.email) == (ADDRESS, ADDRESS)
    assert not employee.user.has_usable_password()
    assert (employee.user.first_name, employee.user.last_name) == ("givenName", "familyName")
    assert (employee.department.name, employee.language) == ("Treasury", "nl")
    assert (employee.start_date, employee.end_date) == (timezone.localdate(), None)
    # Evidence: the run, its change field by field, the audit event, the history naming both.
    run = only_run(token_key)
    assert (run.outcome, run.by, run.rows, run.created) == ("applied", entra, 1, 1)
    [change] = ImportChange.objects.filter(run=run)
    assert change.action == "created" and change.fields["email"] == [None, ADDRESS]
    assert change.fields["department"] == [None, "Treasury"]
    assert AuditEvent.objects.filter(action="employees_imported", details__source=run.source).count() == 1
    [record] = EmployeeHistory.objects.filter(pgh_obj=employee)
    assert record.pgh_context == {"source": "scim", "by": entra.pk, "import_run": run.pk}


def test_entra_finds_a_user_by_user_name_in_any_case(replay, created):
    response = replay("get_user_by_username")

    assert response.status_code == 200
    listed = ListResponse[User[EnterpriseUser]].model_validate(response.json(),
                                                               scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    assert (listed.total_results, [user.id for user in listed.resources]) == (1, [str(created.pk)])
    unknown = replay("get_unknown_user_by_username").json()
    assert (unknown["totalResults"], unknown["Resources"]) == (0, [])


def test_externalid_is_the_employee_number(scim, created):
    body = send(scim, "GET", 'Users?filter=externalId eq "100234"').json()
    assert [user["id"] for user in body["Resources"]] == [str(created.pk)]


@pytest.mark.parametrize("recording", ["patch_disable_user", "patch_disable_user_pathless"])
def test_entra_disables_a_user_as_a_leaver_of_today(replay, created, token_key, recording):
    response = replay(recording, id=created.pk)

    assert response.status_code == 200, response.content
    assert as_user(response).active is False
    created.refresh_from_db()
    created.user.refresh_from_db()
    today = timezone.localdate()
    assert (created.end_date, created.user.is_active) == (today, False)
    run = ImportRun.objects.filter(source=f"scim:{token_key}").order_by("-pk").first()
    [change] = ImportChange.objects.filter(run=run)
    assert change.fields == {"is_active": [True, False], "end_date": [None, today.isoformat()]}
    assert AccountHistory.objects.filter(pgh_obj_id=created.user_id, is_active=False,
                                         pgh_context__import_run=run.pk).exists()


def test_delete_deactivates_and_keeps_the_record(scim, created):
    response = send(scim, "DELETE", f"Users/{created.pk}")

    assert response.status_code == 204
    created.refresh_from_db()
    created.user.refresh_from_db()
    assert (created.end_date, created.user.is_active) == (timezone.localdate(), False)
    assert send(scim, "GET", f"Users/{created.pk}").json()["active"] is False


def test_reactivating_is_left_to_the_admin(scim, created):
    send(scim, "DELETE", f"Users/{created.pk}")
    runs = ImportRun.objects.count()

    response = send(scim, "PATCH", f"Users/{created.pk}", {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "Replace", "path": "active", "value": "True"},
                       {"op": "Replace", "path": "name.givenName", "value": "Renamed"}]})

    assert response.status_code == 200
    assert response.json()["active"] is False
    created.user.refresh_from_db()
    assert (created.user.is_active, created.user.first_name) == (False, "Renamed")
    assert ImportRun.objects.count() == runs + 1  # the rename was applied, the reactivation not asked for


def test_entra_sets_and_removes_the_manager(replay, created, token_key):
    manager = make_employee("manager@example.com", "M0001")

    response = replay("patch_manager", id=created.pk, manager_id=manager.pk)

    assert response.status_code == 200, response.content
    assert as_user(response)[EnterpriseUser].manager.value == str(manager.pk)
    created.refresh_from_db()
    assert created.manager == manager
    change = ImportChange.objects.filter(run__source=f"scim:{token_key}").order_by("-pk").first()
    assert change.fields == {"manager_employee_number": [None, "M0001"]}
    assert EmployeeHistory.objects.filter(pgh_obj=created, manager=manager).exists()

    response = replay("patch_remove_manager", id=created.pk)

    assert response.status_code == 200
    created.refresh_from_db()
    assert created.manager is None and "manager" not in response.json()[
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]


def test_entra_changes_the_department(replay, created, token_key):
    response = replay("patch_department", id=created.pk)

    assert response.status_code == 200
    created.refresh_from_db()
    assert created.department.name == "Risk Management"
    assert Department.objects.filter(name="Treasury").exists()  # the old one stays, as in an import
    change = ImportChange.objects.filter(run__source=f"scim:{token_key}").order_by("-pk").first()
    assert change.fields == {"department": ["Treasury", "Risk Management"]}


def test_entra_readdresses_and_renames(replay, created, mailoutbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = replay("patch_multi_valued", id=created.pk)

    assert response.status_code == 200, response.content
    created.user.refresh_from_db()
    assert (created.user.username, created.user.email) == ("updatedemail@microsoft.com",) * 2
    assert created.user.last_name == "updatedFamilyName"
    # As after an import: the old and the new address are told.
    assert sorted(message.to[0] for message in mailoutbox) == sorted([ADDRESS, "updatedemail@microsoft.com"])


@pytest.mark.parametrize("value", ["nl", "en-GB"])
def test_preferred_language_and_case_insensitive_names(scim, created, value):
    response = send(scim, "PATCH", f"Users/{created.pk}", {
        "SCHEMAS": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "operations": [{"OP": "replace", "PATH": "PreferredLanguage", "VALUE": value},
                       {"op": "replace", "value": {"NAME.GIVENNAME": "Sanne",
                                                   "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:"
                                                   "Department": "Audit"}}]})

    assert response.status_code == 200, response.content
    created.refresh_from_db()
    created.user.refresh_from_db()
    assert (created.language, created.user.first_name, created.department.name) == (value[:2], "Sanne", "Audit")


def test_a_patch_that_changes_nothing_records_nothing(scim, created):
    runs = ImportRun.objects.count()
    response = send(scim, "PATCH", f"Users/{created.pk}", {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "active", "value": True}]})
    assert response.status_code == 200
    assert ImportRun.objects.count() == runs


def test_put_replaces(scim, created):
    response = send(scim, "PUT", f"Users/{created.pk}", {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": ADDRESS,
        "name": {"givenName": "Only"}})

    assert response.status_code == 200, response.content
    created.refresh_from_db()
    created.user.refresh_from_db()
    assert (created.user.first_name, created.user.last_name, created.department) == ("Only", "", None)


def test_a_new_employee_is_linked_to_the_unlinked_account_with_the_address(scim):
    account = make_user("nina@example.com", first_name="Nina")
    response = send(scim, "POST", "Users", {"userName": "Nina@Example.com", "externalId": "E7"})
    assert response.status_code == 201, response.content
    assert Employee.objects.get(employee_number="E7").user == account


# Refusals ---------------------------------------------------------------------------------------


@pytest.fixture
def privileged(db):
    return make_employee("hr-person@example.com", "P0001", groups=["HR"])


@pytest.mark.parametrize("request_body", [
    {"op": "replace", "path": "active", "value": False},
    {"op": "replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
     "value": "Elsewhere"},
    {"op": "replace", "path": "userName", "value": "attacker@example.com"},
])
def test_a_privileged_employee_is_never_changed(scim, privileged, request_body, security_log, token_key):
    response = send(scim, "PATCH", f"Users/{privileged.pk}", {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [request_body]})

    assert "privileged account" in scim_error(response, 403)
    privileged.refresh_from_db()
    privileged.user.refresh_from_db()
    assert (privileged.user.is_active, privileged.department.name, privileged.user.email) == (
        True, "Operations", "hr-person@example.com")
    run = only_run(token_key)
    assert run.outcome == "rejected" and not ImportChange.objects.exists()
    [logged] = security_log("import_privileged_account_refused")
    assert logged["details"]["accounts"] == [privileged.user_id] and logged["details"]["source"] == run.source


@pytest.mark.parametrize("kind", ["staff", "superuser", "role permission"])
def test_a_new_employee_is_never_linked_to_a_privileged_account(scim, kind):
    from django.contrib.auth.models import Group, Permission

    account = make_user("boss@example.com", is_staff=kind == "staff", is_superuser=kind == "superuser")
    if kind == "role permission":
        group = Group.objects.create(name="Shadow HR")
        group.permissions.add(Permission.objects.get(codename="approve"))
        account.groups.add(group)

    response = send(scim, "POST", "Users", {"userName": "boss@example.com", "externalId": "E9"})

    assert "privileged account" in scim_error(response, 403)
    assert not Employee.objects.filter(employee_number="E9").exists()


def test_deleting_a_privileged_employee_is_refused(scim, privileged):
    scim_error(send(scim, "DELETE", f"Users/{privileged.pk}"), 403)
    privileged.user.refresh_from_db()
    assert privileged.user.is_active


def test_an_address_another_employee_has_is_refused(scim, created, otto):
    response = send(scim, "PATCH", f"Users/{created.pk}", {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "userName", "value": "OTTO@example.com"}]})

    assert "belongs to employee E0099" in scim_error(response, 409, "uniqueness")
    created.user.refresh_from_db()
    assert created.user.email == ADDRESS


def test_a_taken_employee_number_is_a_conflict(replay, created):
    scim_error(replay("create_user"), 409, "uniqueness")
    assert Employee.objects.filter(employee_number="100234").count() == 1


@pytest.mark.parametrize(("body", "scim_type", "words"), [
    ({"userName": "x@example.com"}, "invalidValue", "employee number is required"),
    ({"externalId": "E1"}, "invalidValue", "userName is required"),
    ({"userName": "not an address", "externalId": "E1"}, "invalidValue", "not a valid e-mail address"),
    ({"userName": "a@example.com", "externalId": "E1",
      "emails": [{"type": "work", "value": "b@example.com"}]}, "invalidValue", "must be the same address"),
    ({"userName": "a@example.com", "externalId": "E1",
      "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "E2"}},
     "invalidValue", "must be the same"),
    ({"userName": "a@example.com", "externalId": "E1", "preferredLanguage": "de-DE"}, "invalidValue", "Dutch"),
    ({"userName": "a@example.com", "externalId": "E1", "active": "maybe"}, "invalidValue", "true or false"),
    ({"userName": "a@example.com", "externalId": "E1",
      "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": {"value": "999999"}}},
     "invalidValue", "no user with id"),
    ({"userName": "a@example.com", "externalId": "E1", "name": {"givenName": "x" * 200}}, "invalidValue",
     "At most"),
    ({"userName": "a@example.com", "externalId": "E1", "nonsense": 1}, "invalidPath", "not an attribute"),
    (["a list"], "invalidSyntax", "object"),
])
def test_bad_input_is_a_4xx_with_a_clear_detail_and_writes_nothing(scim, body, scim_type, words):
    response = send(scim, "POST", "Users", body)
    assert words in scim_error(response, 400, scim_type)
    assert not Employee.objects.exists()


def test_malformed_json_and_bad_patches(scim, created):
    response = scim.post("/scim/v2/Users", "{not json", content_type="application/scim+json")
    scim_error(response, 400, "invalidSyntax")
    for body, scim_type in [
        ({"Operations": [{"op": "replace", "path": "active", "value": False}]}, "invalidSyntax"),
        ({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": []}, "invalidSyntax"),
        ({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
          "Operations": [{"op": "move", "path": "active", "value": False}]}, "invalidSyntax"),
        ({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
          "Operations": [{"op": "remove", "path": "userName"}]}, "mutability"),
        ({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
          "Operations": [{"op": "replace", "path": "externalId", "value": "OTHER"}]}, "mutability"),
    ]:
        scim_error(send(scim, "PATCH", f"Users/{created.pk}", body), 400, scim_type)
    created.refresh_from_db()
    assert created.employee_number == "100234" and created.user.is_active


def test_unknown_ids_and_filters(scim, created):
    scim_error(send(scim, "GET", "Users/99999999"), 404)
    scim_error(send(scim, "GET", "Users/abc"), 404)
    scim_error(send(scim, "GET", 'Users?filter=title eq "x"'), 400, "invalidFilter")
    scim_error(send(scim, "GET", 'Users?filter=userName sw "x"'), 400, "invalidFilter")
    scim_error(send(scim, "GET", "Users?startIndex=abc"), 400, "invalidValue")


def test_paging(scim):
    for number in range(5):
        make_employee(f"person{number}@example.com", f"E{number}")
    body = send(scim, "GET", "Users?startIndex=2&count=2").json()
    assert (body["totalResults"], body["startIndex"], body["itemsPerPage"]) == (5, 2, 2)
    assert [user["externalId"] for user in body["Resources"]] == ["E1", "E2"]


def test_plain_json_is_accepted_too(entra_token, created):
    from django.test import Client

    client = Client(headers={"authorization": f"Bearer {entra_token}", "accept": "application/json"})
    response = client.patch(f"/scim/v2/Users/{created.pk}", {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "name.familyName", "value": "Json"}]},
        content_type="application/json")
    assert response.status_code == 200 and response["content-type"].startswith("application/json")


# Tokens and permissions -------------------------------------------------------------------------


def test_no_token_is_a_401_scim_error(db):
    from .conftest import scim_client

    response = send(scim_client(), "GET", "Users")
    scim_error(response, 401)
    assert response["www-authenticate"].startswith("Bearer")


def test_a_token_without_the_scope_is_refused(issue, entra):
    from .conftest import scim_client

    token = issue(entra, scopes=["status:read"])
    scim_error(send(scim_client(token), "POST", "Users", {"userName": "a@example.com", "externalId": "1"}), 403)
    assert not Employee.objects.exists()


def test_a_token_whose_account_is_not_hr_is_refused(issue):
    from .conftest import scim_client, service_account

    auditor = service_account("grc@example.com", "Auditors")
    token = issue(auditor, scopes=["scim:provision"])
    detail = scim_error(send(scim_client(token), "GET", "Users"), 403)
    assert "permission to manage guidelines" in detail


def test_the_services_check_the_permission_themselves(entra_token, otto):
    from guidelines.models import ApiToken

    token = ApiToken.objects.get()
    nobody = make_user("nobody@example.com")
    with pytest.raises(PermissionDenied):
        provisioning.create_employee(provisioning.Person("E5", "e5@example.com"), by=nobody, token=token)
    with pytest.raises(PermissionDenied):
        provisioning.deactivate_employee(otto, by=nobody, token=token)
    assert get_user_model().objects.get(pk=otto.user_id).is_active


def test_a_write_loads_only_the_rows_it_concerns(scim, created, django_assert_max_num_queries):
    """The same number of queries with 5 or 50 other employees: nothing is loaded per employee."""

    def patch():
        return send(scim, "PATCH", f"Users/{created.pk}", {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "name.givenName", "value": f"N{Employee.objects.count()}"}]})

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for number in range(5):
        make_employee(f"few{number}@example.com", f"F{number}")
    with CaptureQueriesContext(connection) as few:
        assert patch().status_code == 200
    for number in range(45):
        make_employee(f"many{number}@example.com", f"G{number}")
    with CaptureQueriesContext(connection) as many:
        assert patch().status_code == 200
    assert len(many) == len(few)


def test_discovery_lists_what_is_kept_and_unknown_addresses_are_scim_errors(scim):
    schemas = send(scim, "GET", "Schemas").json()
    user = next(item for item in schemas["Resources"] if item["id"] == "urn:ietf:params:scim:schemas:core:2.0:User")
    assert {attribute["name"] for attribute in user["attributes"]} == {
        "userName", "name", "displayName", "active", "preferredLanguage", "emails"}
    enterprise = send(scim, "GET", "Schemas/urn:ietf:params:scim:schemas:extension:enterprise:2.0:User").json()
    assert {attribute["name"] for attribute in enterprise["attributes"]} == {"employeeNumber", "department", "manager"}
    assert send(scim, "GET", "ResourceTypes/User").json()["endpoint"] == "/Users"
    assert send(scim, "GET", "ServiceProviderConfig").json()["patch"] == {"supported": True}
    scim_error(send(scim, "GET", "Elsewhere"), 404)
    scim_error(send(scim, "POST", "ServiceProviderConfig", {}), 405)


def test_provisioning_has_its_own_rate_and_is_never_cached(scim, settings, fresh_rate_limits, security_log):
    settings.SCIM_RATE = (2, 60)
    assert [send(scim, "GET", "Users").status_code for _ in range(2)] == [200, 200]
    refused = send(scim, "GET", "Users")
    detail = scim_error(refused, 429)
    assert detail and 0 < int(refused["Retry-After"]) <= 60
    assert "no-store" in refused["Cache-Control"]
    assert security_log("api_request")[-1]["path"] == "/scim/v2/Users"


def test_odd_ids_filters_and_pages_are_answered_not_crashed(scim, created):
    scim_error(send(scim, "GET", "Users/\u0661\u0662"), 404)  # Arabic-Indic digits: no id
    scim_error(send(scim, "GET", 'Users?filter=userName eq "a\\u0000b"'), 400, "invalidFilter")
    scim_error(send(scim, "GET", 'Users?filter=userName eq "a\\xb"'), 400, "invalidFilter")
    body = send(scim, "GET", "Users?startIndex=" + "9" * 40).json()
    assert (body["totalResults"], body["Resources"]) == (1, [])
    assert send(scim, "GET", 'Users?filter=id eq "abc"').json()["totalResults"] == 0


def test_an_address_python_lowers_to_the_same_is_taken_as_in_the_import(scim):
    """A Kelvin sign lowers to an ASCII k in Python (the import's comparison) but not in PostgreSQL: the
    rows a SCIM write loads include such addresses, so it refuses what a whole-file import would."""
    holder = make_employee("kelvin@example.com", "K0001")
    # As an import of the address would store it (create_user would NFKC-normalise the username).
    get_user_model().objects.filter(pk=holder.user_id).update(username="\u212aees@example.com",
                                                              email="\u212aees@example.com")
    response = send(scim, "POST", "Users", {"userName": "kees@example.com", "externalId": "K0002"})
    assert "belongs to employee K0001" in scim_error(response, 409, "uniqueness")


def test_error_details_are_in_the_readers_language(entra_token, db):
    from django.test import Client

    client = Client(headers={"authorization": f"Bearer {entra_token}", "accept-language": "nl"})
    response = send(client, "POST", "Users", {"userName": "a@example.com"})
    assert "personeelsnummer is verplicht" in scim_error(response, 400, "invalidValue")
