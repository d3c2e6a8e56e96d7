"""Groups: Entra's group requests (recorded in fixtures/) on audience groups, with history and audit
events; role groups and groups holding permissions refused; deletion only of a group no audience uses."""

import pytest
from django.contrib.auth.models import Group, Permission
from scim2_models import Context, ListResponse
from scim2_models import Group as ScimGroup

from guidelines.models import AuditEvent, RoleGroupHistory

from ..factories import make_employee, make_guideline
from .conftest import send
from .test_users import scim_error

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


@pytest.fixture
def group(replay):
    response = replay("create_group")
    assert response.status_code == 201, response.content
    return Group.objects.get(name="displayName")


def test_entra_creates_a_group(replay, entra):
    response = replay("create_group")

    assert response.status_code == 201, response.content
    resource = ScimGroup.model_validate(response.json(), scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    group = Group.objects.get(name="displayName")
    assert (resource.id, resource.display_name, resource.members) == (str(group.pk), "displayName", [])
    assert response["location"].endswith(f"/scim/v2/Groups/{group.pk}")
    [event] = AuditEvent.objects.filter(action="roles_changed")
    assert event.actor == entra and event.details["operation"] == "created"
    assert event.details["source"].startswith("scim:")


def test_entra_finds_a_group_by_display_name(replay, group):
    response = replay("get_group_by_display_name")

    listed = ListResponse[ScimGroup].model_validate(response.json(), scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    assert [(item.id, item.members) for item in listed.resources] == [(str(group.pk), None)]


def test_entra_adds_and_removes_a_member(replay, scim, group, otto, entra):
    response = replay("patch_group_add_member", id=group.pk, member_id=otto.pk)

    assert response.status_code == 204, response.content
    assert list(group.user_set.all()) == [otto.user]
    [added] = RoleGroupHistory.objects.filter(group=group, user=otto.user, pgh_label="added")
    assert added.pgh_context["source"] == "scim" and added.pgh_context["by"] == entra.pk
    members = send(scim, "GET", f"Groups/{group.pk}").json()["members"]
    assert [member["value"] for member in members] == [str(otto.pk)]

    response = replay("patch_group_remove_member", id=group.pk, member_id=otto.pk)

    assert response.status_code == 204
    assert not group.user_set.exists()
    assert RoleGroupHistory.objects.filter(group=group, user=otto.user, pgh_label="removed").exists()
    changes = [event.details for event in AuditEvent.objects.filter(action="roles_changed").order_by("pk")]
    assert [(change["added"], change["removed"]) for change in changes[1:]] == [(["E0099"], []), ([], ["E0099"])]


def test_remove_by_member_filter_and_replace(scim, group, otto, alice):
    send(scim, "PATCH", f"Groups/{group.pk}", {"schemas": [PATCH_OP], "Operations": [
        {"op": "add", "path": "members", "value": [{"value": str(otto.pk)}, {"value": str(alice.pk)}]}]})
    response = send(scim, "PATCH", f"Groups/{group.pk}", {"schemas": [PATCH_OP], "Operations": [
        {"op": "remove", "path": f'members[value eq "{otto.pk}"]'}]})
    assert response.status_code == 204
    assert list(group.user_set.all()) == [alice.user]

    response = send(scim, "PUT", f"Groups/{group.pk}", {"displayName": "Traders", "members": [{"value": str(otto.pk)}]})

    assert response.status_code == 200, response.content
    group.refresh_from_db()
    assert (group.name, list(group.user_set.all())) == ("Traders", [otto.user])


def test_a_role_group_or_a_group_with_permissions_is_refused(scim, security_log):
    shadow = Group.objects.create(name="Shadow")
    shadow.permissions.add(Permission.objects.get(codename="view_employee"))
    hr = Group.objects.get(name="HR")

    assert "role group" in scim_error(send(scim, "POST", "Groups", {"displayName": "hr"}), 403)
    for target in (hr, shadow):
        scim_error(send(scim, "GET", f"Groups/{target.pk}"), 403)
        scim_error(send(scim, "PATCH", f"Groups/{target.pk}", {"schemas": [PATCH_OP], "Operations": [
            {"op": "replace", "path": "displayName", "value": "Renamed"}]}), 403)
        scim_error(send(scim, "DELETE", f"Groups/{target.pk}"), 403)
    assert Group.objects.filter(name__in=["HR", "Shadow"]).count() == 2
    listed = send(scim, "GET", "Groups").json()
    assert all(item["displayName"] not in ("HR", "Approvers", "Auditors", "Shadow") for item in listed["Resources"])
    assert send(scim, "GET", 'Groups?filter=displayName eq "HR"').json()["totalResults"] == 0
    assert len(security_log("scim_role_group_refused")) == 7


def test_a_privileged_member_is_refused(scim, group, security_log):
    approver = make_employee("approver@example.com", "A0001", groups=["Approvers"])
    response = send(scim, "PATCH", f"Groups/{group.pk}", {"schemas": [PATCH_OP], "Operations": [
        {"op": "add", "path": "members", "value": [{"value": str(approver.pk)}]}]})

    scim_error(response, 403)
    assert not group.user_set.exists()
    assert security_log("import_privileged_account_refused")[-1]["details"]["accounts"] == [approver.user_id]


def test_groups_bad_input(scim, group):
    scim_error(send(scim, "POST", "Groups", {"displayName": "displayName"}), 409, "uniqueness")
    scim_error(send(scim, "POST", "Groups", {"members": []}), 400, "invalidValue")
    scim_error(send(scim, "PATCH", f"Groups/{group.pk}", {"schemas": [PATCH_OP], "Operations": [
        {"op": "add", "path": "members", "value": [{"value": "424242"}]}]}), 400, "invalidValue")
    scim_error(send(scim, "PATCH", f"Groups/{group.pk}", {"schemas": [PATCH_OP], "Operations": [
        {"op": "add", "path": "owner", "value": "x"}]}), 400, "invalidPath")
    scim_error(send(scim, "GET", "Groups/424242"), 404)


def test_a_group_an_audience_uses_is_not_deleted(scim, group, hilde, otto):
    group.user_set.add(otto.user)
    guideline = make_guideline(hilde, audience_everyone=False)
    guideline.audience_groups.add(group)

    detail = scim_error(send(scim, "DELETE", f"Groups/{group.pk}"), 409)

    assert "social-media" in detail
    assert Group.objects.filter(pk=group.pk).exists()
    guideline.audience_groups.clear()
    assert send(scim, "DELETE", f"Groups/{group.pk}").status_code == 204
    assert not Group.objects.filter(pk=group.pk).exists()
    assert AuditEvent.objects.filter(action="roles_changed", details__operation="deleted",
                                     details__removed=["E0099"]).exists()


def test_replacing_or_deleting_never_drops_a_privileged_member(scim, group, otto):
    approver = make_employee("approver@example.com", "A0001", groups=["Approvers"])
    group.user_set.add(approver.user)  # added in the admin

    scim_error(send(scim, "PUT", f"Groups/{group.pk}", {"displayName": "displayName",
                                                        "members": [{"value": str(otto.pk)}]}), 403)
    scim_error(send(scim, "DELETE", f"Groups/{group.pk}"), 403)

    assert list(group.user_set.all()) == [approver.user]
