"""/scim/v2/: the endpoints Microsoft Entra ID's provisioning calls. They read the request into
provisioning's terms (protocol.py), ask provisioning.py to decide and write, and answer in SCIM's
shapes. Authentication, scopes and rates are the API's (a bearer token with scope scim:provision); the
token's account must hold HR's permission, asked here first and again by every service function."""

import json

from django.contrib.auth import get_user_model
from django.db.models import Q
from django.http import Http404
from django.urls import reverse
from django.utils.translation import gettext as _
from rest_framework import exceptions, status
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import provisioning
from ..api import errors as api_errors
from ..api.authentication import ScimRateThrottle
from ..models import ApiToken
from ..provisioning import ProvisioningError
from . import protocol


class TextOnlyJSONParser(JSONParser):
    """JSON whose strings are text: an escaped lone surrogate ("\\ud800") is valid JSON, but no text that
    can be stored or answered with, so such a body is refused as a whole (400 invalidSyntax)."""

    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        try:
            json.dumps(data, ensure_ascii=False).encode()
        except UnicodeEncodeError:
            raise exceptions.ParseError(_("The request holds an escaped character that is not text (a lone "
                                          "surrogate, \\ud800 to \\udfff).")) from None
        return data


class ScimJSONParser(TextOnlyJSONParser):
    media_type = "application/scim+json"


class ScimJSONRenderer(JSONRenderer):
    media_type = "application/scim+json"


def handle_error(error, context):
    """Every refusal as a SCIM error (RFC 7644 §3.12), with the API's logging of missing tokens."""
    if isinstance(error, ProvisioningError):
        return Response(protocol.error_body(error.status, error.detail, error.scim_type), status=error.status)
    response = api_errors.handle(error, context)
    if response is None:
        return None
    detail = response.data.get("detail", "") if isinstance(response.data, dict) else ""
    if not detail and isinstance(response.data, dict | list):
        detail = " ".join(str(message) for message in (response.data.values() if isinstance(response.data, dict)
                                                        else response.data))
    scim_type = "invalidSyntax" if isinstance(error, exceptions.ParseError) else None
    response.data = protocol.error_body(response.status_code, detail, scim_type)
    return response


class ScimView(APIView):
    required_scope = ApiToken.Scope.PROVISION
    throttle_classes = [ScimRateThrottle]
    parser_classes = [ScimJSONParser, TextOnlyJSONParser]
    renderer_classes = [ScimJSONRenderer, JSONRenderer]
    schema = None  # not part of /api/v1/'s OpenAPI schema: SCIM describes itself (Schemas, ResourceTypes)

    def get_exception_handler(self):
        return handle_error

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)  # the token, its scope, its rate
        provisioning.require_provisioner(request.user)

    def created(self, resource):
        return Response(resource, status=status.HTTP_201_CREATED, headers={"Location": resource["meta"]["location"]})


def _url(request, name, *args):
    return request.build_absolute_uri(reverse(name, args=args))


def _pk(text):
    """A SCIM id as a primary key, or 404: ids are the primary keys as text."""
    key = provisioning.key_of(text)
    if key is None:
        raise Http404(_("There is no resource with this id."))
    return key


def _paging(request):
    """(startIndex, count) as RFC 7644 §3.4.2.4 reads them: below 1 is 1, below 0 is 0, at most MAX_RESULTS."""
    values = []
    for name, default in (("startIndex", 1), ("count", protocol.MAX_RESULTS)):
        text = request.query_params.get(name, "")
        try:
            values.append(int(text) if text else default)
        except ValueError:
            raise ProvisioningError(400, _("%(name)s must be a number.") % {"name": name}, "invalidValue") from None
    start, count = values
    # A start beyond any table is an empty page, not a number the database cannot hold.
    return min(max(start, 1), 2**31), min(max(count, 0), protocol.MAX_RESULTS)


def _page(request, queryset):
    start, count = _paging(request)
    return start, queryset.count(), list(queryset[start - 1:start - 1 + count])


class NotFound(ScimView):
    """Any other address under /scim/v2/: a SCIM error rather than the site's 404 page."""

    def http_method_not_allowed(self, request, *args, **kwargs):
        raise Http404(_("There is no such SCIM endpoint here."))


# Discovery --------------------------------------------------------------------------------------


class ServiceProviderConfig(ScimView):
    def get(self, request):
        document = protocol.service_provider_config(request.build_absolute_uri("/api/v1/docs/"))
        document["meta"]["location"] = _url(request, "scim:service-provider-config")
        return Response(document)


class ResourceTypes(ScimView):
    def get(self, request, name=None):
        types = protocol.resource_types()
        for type_name, document in types.items():
            document["meta"] = {"resourceType": "ResourceType", "location": _url(request, "scim:resource-type",
                                                                                   type_name)}
        if name is None:
            return Response(protocol.list_response(list(types.values()), total=len(types), start_index=1))
        if name not in types:
            raise Http404(_("There is no resource type %(name)s.") % {"name": name})
        return Response(types[name])


class Schemas(ScimView):
    def get(self, request, schema_id=None):
        schemas = protocol.schemas()
        for urn, document in schemas.items():
            document["meta"] = {"resourceType": "Schema", "location": _url(request, "scim:schema", urn)}
        if schema_id is None:
            return Response(protocol.list_response(list(schemas.values()), total=len(schemas), start_index=1))
        if schema_id not in schemas:
            raise Http404(_("There is no schema %(id)s.") % {"id": schema_id})
        return Response(schemas[schema_id])


# Users ------------------------------------------------------------------------------------------


def _user(request, employee):
    return protocol.user_resource(
        employee, location=_url(request, "scim:user", employee.pk), active=provisioning.is_active(employee),
        manager_location=employee.manager_id and _url(request, "scim:user", employee.manager_id))


def _employee(pk):
    employee = provisioning.provisioned_employees().filter(pk=_pk(pk)).first()
    if employee is None:
        raise Http404(_("There is no user with this id."))
    return employee


class Users(ScimView):
    def get(self, request):
        employees = provisioning.provisioned_employees()
        if text := request.query_params.get("filter", ""):
            for attribute, value in protocol.parse_filter(text, protocol.USER_FILTERS).items():
                if attribute == "userName":
                    employees = employees.filter(Q(user__username__iexact=value) | Q(user__email__iexact=value))
                elif attribute == "externalId":
                    employees = employees.filter(employee_number=value)
                else:
                    employees = employees.filter(pk=provisioning.key_of(value))
        start, total, page = _page(request, employees)
        return Response(protocol.list_response([_user(request, employee) for employee in page], total=total,
                                               start_index=start))

    def post(self, request):
        person = protocol.person_from_resource(request.data)
        employee = provisioning.create_employee(person, by=request.user, token=request.auth,
                                                request=request._request)
        return self.created(_user(request, employee))


class UserDetail(ScimView):
    def get(self, request, pk):
        return Response(_user(request, _employee(pk)))

    # The request is read onto the employee as provisioning finds them under the import lock (update_employee).
    def put(self, request, pk):
        return self._update(request, _employee(pk),
                            lambda current: protocol.person_from_resource(request.data, current=current))

    def patch(self, request, pk):
        return self._update(request, _employee(pk), lambda current: protocol.apply_patch(request.data, current))

    def delete(self, request, pk):
        provisioning.deactivate_employee(_employee(pk), by=request.user, token=request.auth, request=request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _update(self, request, employee, change):
        employee = provisioning.update_employee(employee, change, by=request.user, token=request.auth,
                                                request=request._request)
        return Response(_user(request, employee))


# Groups -----------------------------------------------------------------------------------------


def _members_of(groups):
    """{group pk: [(employee pk, name)]} in one query (members without an employee record are no SCIM users)."""
    memberships = get_user_model().groups.through.objects.filter(
        group__in=groups, user__employee__isnull=False).order_by("user__employee__pk").values_list(
        "group_id", "user__employee__pk", "user__first_name", "user__last_name", "user__email")
    members = {group.pk: [] for group in groups}
    for group_id, pk, first_name, last_name, email in memberships:
        members[group_id].append((pk, f"{first_name} {last_name}".strip() or email))
    return members


def _groups(request, groups):
    with_members = "members" not in {name.strip().casefold() for name in
                                     request.query_params.get("excludedAttributes", "").split(",")}
    members = _members_of(groups) if with_members else {}
    return [protocol.group_resource(group, members.get(group.pk) if with_members else None,
                                    location=_url(request, "scim:group", group.pk),
                                    member_location=lambda pk: _url(request, "scim:user", pk))
            for group in groups]


def _group(request, pk, operation):
    group = provisioning.provisioned_group(_pk(pk), by=request.user, request=request._request, operation=operation)
    if group is None:
        raise Http404(_("There is no group with this id."))
    return group


class Groups(ScimView):
    def get(self, request):
        groups = provisioning.audience_groups()
        if text := request.query_params.get("filter", ""):
            for attribute, value in protocol.parse_filter(text, protocol.GROUP_FILTERS).items():
                if attribute == "displayName":
                    groups = groups.filter(name=value)
                elif attribute == "members":
                    groups = groups.filter(user__employee__pk=provisioning.key_of(value))
                else:
                    groups = groups.filter(pk=provisioning.key_of(value))
        start, total, page = _page(request, groups)
        return Response(protocol.list_response(_groups(request, page), total=total, start_index=start))

    def post(self, request):
        change = protocol.group_change_from_resource(request.data, replacing=False)
        group = provisioning.create_group(change, by=request.user, token=request.auth, request=request._request)
        return self.created(_groups(request, [group])[0])


class GroupDetail(ScimView):
    def get(self, request, pk):
        return Response(_groups(request, [_group(request, pk, "read")])[0])

    def put(self, request, pk):
        group = _group(request, pk, "replace")
        change = protocol.group_change_from_resource(request.data, replacing=True)
        return self._update(request, group, change)

    def patch(self, request, pk):
        # 204 rather than the whole group (RFC 7644 §3.5.2 allows either): Entra sends member changes in
        # batches to groups of thousands, and reads nothing back.
        group = _group(request, pk, "patch")
        provisioning.update_group(group, protocol.group_change_from_patch(request.data), by=request.user,
                                  token=request.auth, request=request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)

    def delete(self, request, pk):
        provisioning.delete_group(_group(request, pk, "delete"), by=request.user, token=request.auth,
                                  request=request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _update(self, request, group, change):
        group = provisioning.update_group(group, change, by=request.user, token=request.auth,
                                          request=request._request)
        return Response(_groups(request, [group])[0])

