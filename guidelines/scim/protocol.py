"""SCIM 2.0 (RFC 7643, RFC 7644) as Microsoft Entra ID speaks it, turned into provisioning's terms
and back: reading resources and PATCH operations into a provisioning.Person or GroupChange,
filters into lookups, employees and groups into resources, and the discovery documents.

Entra's habits that a strict reader would refuse are accepted here: attribute names in any case
("Operations", "op": "Replace"), booleans as the strings "True" and "False", a replace without a
path whose value is an object of attributes (some of them paths themselves, such as
"name.givenName"), and the manager as a plain id or as {"value": id}. Attributes of the core and
enterprise schemas that the employee record does not keep (displayName, title, phone numbers,
addresses, costCenter, …) are accepted and not kept; the Schemas endpoint lists only what is kept.

The shapes of the discovery documents and errors come from scim2-models; the resources are written
here as plain dicts (checked against scim2-models in the tests), because each is read from a few
columns and Entra sends lists of thousands.
"""

import json
import re

from django.utils.translation import gettext as _
from scim2_models import EnterpriseUser, Error, Group, ResourceType, User

from ..provisioning import GroupChange, Person, ProvisioningError, language_of

CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE_USER = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
CORE_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"

MAX_RESULTS = 200  # per page of a list (ServiceProviderConfig's filter.maxResults)
MAX_OPERATIONS = 100  # in one PATCH request


def invalid(detail, scim_type="invalidValue"):
    return ProvisioningError(400, detail, scim_type)


def error_body(status, detail, scim_type=None):
    return Error(status=status, scim_type=scim_type, detail=str(detail)).model_dump()


# Reading values ---------------------------------------------------------------------------------


def _folded(value, attribute):
    """A JSON object with its keys case-folded (SCIM attribute names are case-insensitive)."""
    if not isinstance(value, dict):
        raise invalid(_("%(attribute)s: an object is expected.") % {"attribute": attribute}, "invalidSyntax")
    return {str(key).casefold(): item for key, item in value.items()}


def _text(value, attribute):
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise invalid(_("%(attribute)s: a text value is expected.") % {"attribute": attribute})
    value = str(value)
    if "\x00" in value:
        raise invalid(_("%(attribute)s: NUL characters are not allowed.") % {"attribute": attribute})
    return value.strip()


def _boolean(value, attribute):
    """true/false, or Entra's "True"/"False"."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().casefold() in ("true", "false"):
        return value.strip().casefold() == "true"
    raise invalid(_("%(attribute)s: true or false is expected.") % {"attribute": attribute})


def _single(value, attribute):
    """The one item of a one-item list (Entra sends some single values as lists), else the value."""
    if isinstance(value, list):
        if len(value) != 1:
            raise invalid(_("%(attribute)s: one value is expected.") % {"attribute": attribute})
        return value[0]
    return value


def _reference(value, attribute):
    """An id, given as itself or as {"value": id} (the manager, a group member)."""
    value = _single(value, attribute)
    if isinstance(value, dict):
        value = _folded(value, attribute).get("value")
    if value is None:
        return ""
    return _text(value, attribute)


def _work_email(value, attribute="emails"):
    """The work address from a list of emails (the one typed work, else the primary, else the only one)."""
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise invalid(_("%(attribute)s: a list of addresses is expected.") % {"attribute": attribute})
    emails = [_folded(item, attribute) for item in value]
    chosen = ([item for item in emails if str(item.get("type", "")).casefold() == "work"]
              or [item for item in emails if item.get("primary") in (True, "True", "true")] or emails)
    if len(chosen) > 1:
        raise invalid(_("emails: give one work address (the address is the login)."))
    return _text(chosen[0].get("value", ""), "emails.value") if chosen else None


# The attributes a user's request may set, by their case-folded path.
ENTERPRISE = ENTERPRISE_USER.casefold()
WORK_EMAIL = re.compile(r'^emails\[\s*type\s+eq\s+"work"\s*\](\.value)?$')
# Attributes of the core and enterprise schemas that an employee record does not keep: accepted, not kept.
NOT_KEPT = {"displayname", "nickname", "profileurl", "title", "usertype", "locale", "timezone", "password",
            "phonenumbers", "ims", "photos", "addresses", "groups", "entitlements", "roles", "x509certificates",
            "id", "meta", "schemas", "name.formatted", "name.middlename", "name.honorificprefix",
            "name.honorificsuffix", "costcenter", "organization", "division"}
CANNOT_REMOVE = {
    "username": "userName", "emails": "emails", "active": "active", "externalid": "externalId",
    "employeenumber": "employeeNumber",
}


class UserDraft:
    """A Person being changed attribute by attribute, as a request says."""

    def __init__(self, person):
        self.values = dict(person.__dict__)
        self.address_attributes = {}  # userName and the work email: one address, so they must agree

    def person(self):
        addresses = {value.casefold() for value in self.address_attributes.values()}
        if len(addresses) > 1:
            raise invalid(_('userName and emails[type eq "work"].value must be the same address: the address is '
                            "the login. Map the same source attribute to both, or leave emails out."))
        return Person(**self.values)

    def set(self, path, value, *, remove=False):
        """Apply one attribute: `path` as a request names it (any case), `value` as sent."""
        key = " ".join(path.split()).casefold()
        if key.startswith(ENTERPRISE + ":"):
            return self._set_enterprise(key[len(ENTERPRISE) + 1:], value, remove=remove)
        if key == ENTERPRISE:
            return self._set_object(value, remove=remove, enterprise=True)
        if key.startswith(CORE_USER.casefold() + ":"):
            key = key[len(CORE_USER) + 1:]
        base = re.split(r"[.\[]", key, maxsplit=1)[0]
        if base == "emails" and "[" in key and not WORK_EMAIL.match(key):
            pass  # another type of address (home, other): not kept, the work address is the login
        elif WORK_EMAIL.match(key) or base == "emails":
            if remove:
                raise self._cannot_remove("emails")
            email = _text(_single(value, path), path) if WORK_EMAIL.match(key) and key.endswith(".value") \
                else _work_email(value, path)
            if email is not None:
                self._address("emails", email)
        elif key == "username":
            if remove:
                raise self._cannot_remove("username")
            self._address("userName", _text(value, "userName"))
        elif key == "name":
            self._set_object(value, remove=remove, prefix="name.")
        elif key in ("name.givenname", "name.familyname"):
            field = "first_name" if key == "name.givenname" else "last_name"
            self.values[field] = "" if remove else _text(value, path)
        elif key == "active":
            if remove:
                raise self._cannot_remove("active")
            self.values["active"] = _boolean(_single(value, path), "active")
        elif key == "externalid":
            if remove:
                raise self._cannot_remove("externalid")
            self.values["employee_number"] = _text(value, "externalId")
        elif key == "preferredlanguage":
            self.values["language"] = "nl" if remove or value in (None, "") else language_of(_text(value, path))
        elif key in ("manager", "manager.value", "employeenumber", "department"):
            self._set_enterprise(key, value, remove=remove)  # Entra sometimes leaves the schema out
        elif key in NOT_KEPT or base in NOT_KEPT:
            pass
        else:
            raise invalid(_("“%(path)s” is not an attribute of a user here.") % {"path": path}, "invalidPath")
        return None

    def _set_enterprise(self, key, value, *, remove):
        if key in ("manager", "manager.value"):
            self.values["manager_id"] = "" if remove else _reference(value, "manager")
        elif key == "employeenumber":
            if remove:
                raise self._cannot_remove("employeenumber")
            self.values["employee_number"] = _text(value, "employeeNumber")
        elif key == "department":
            self.values["department"] = "" if remove or value is None else _text(value, "department")
        elif key not in NOT_KEPT:
            raise invalid(_("“%(path)s” is not an attribute of a user here.") % {"path": key}, "invalidPath")

    def _set_object(self, value, *, remove, prefix="", enterprise=False):
        """An object of attributes: a path-less replace or add, "name", or the enterprise extension."""
        for key, item in _folded(value, prefix.rstrip(".") or "value").items():
            if enterprise:
                self._set_enterprise(key, item, remove=remove)
            elif key == ENTERPRISE and isinstance(item, dict):
                self._set_object(item, remove=remove, enterprise=True)
            elif key == "name" and not prefix and isinstance(item, dict):
                self._set_object(item, remove=remove, prefix="name.")
            else:
                self.set(prefix + key, item, remove=remove)

    def _address(self, attribute, value):
        self.address_attributes[attribute] = value
        self.values["email"] = value

    @staticmethod
    def _cannot_remove(key):
        return invalid(_("%(attribute)s cannot be removed (set active to false to deactivate a user).")
                       % {"attribute": CANNOT_REMOVE[key]}, "mutability")


def person_from_resource(body, current=None):
    """The Person a POST (current None) or PUT gives. A PUT replaces: what it leaves out is cleared where
    it can be (names, department, manager) and kept where it cannot (number, language, active)."""
    body = _folded(body, "body")
    base = current or Person(employee_number="", email="")
    draft = UserDraft(base.but(first_name="", last_name="", department="", manager_id="")
                      if current else base)
    if "username" not in body:
        raise invalid(_("userName is required: it is the employee's e-mail address, the login."))
    numbers = {}
    for key, value in body.items():
        if key in ("schemas", "id", "meta"):
            continue
        if key == ENTERPRISE and isinstance(value, dict):
            folded = _folded(value, ENTERPRISE_USER)
            if "employeenumber" in folded:
                numbers["employeeNumber"] = _text(folded["employeenumber"], "employeeNumber")
        elif key == "externalid" and value not in (None, ""):
            numbers["externalId"] = _text(value, "externalId")
        if value is None:
            continue
        draft.set(key, value)
    if len(set(numbers.values())) > 1:
        raise invalid(_("externalId and employeeNumber must be the same: both are the employee number."))
    return draft.person()


def apply_patch(body, person):
    """The Person after a PatchOp request's operations (RFC 7644 §3.5.2, with Entra's habits)."""
    body = _folded(body, "body")
    schemas = body.get("schemas")
    if not isinstance(schemas, list) or PATCH_OP.casefold() not in {str(s).casefold() for s in schemas}:
        raise invalid(_("A PATCH request names the schema %(schema)s.") % {"schema": PATCH_OP}, "invalidSyntax")
    draft = UserDraft(person)
    for op, path, value in _operations(body):
        if path is None:
            if op == "remove":
                raise invalid(_("A remove operation needs a path."), "noTarget")
            draft._set_object(value, remove=False)
        else:
            draft.set(path, value, remove=op == "remove")
    return draft.person()


def _operations(body):
    operations = body.get("operations")
    if not isinstance(operations, list) or not operations:
        raise invalid(_("A PATCH request has a list of Operations."), "invalidSyntax")
    if len(operations) > MAX_OPERATIONS:
        raise invalid(_("At most %(count)d operations per request.") % {"count": MAX_OPERATIONS}, "tooMany")
    for operation in operations:
        operation = _folded(operation, "Operations")
        op = str(operation.get("op", "")).casefold()
        if op not in ("add", "replace", "remove"):
            raise invalid(_("op must be add, replace or remove, not “%(op)s”.") % {"op": operation.get("op")},
                          "invalidSyntax")
        path = operation.get("path")
        if path is not None and (not isinstance(path, str) or not path.strip() or "\x00" in path):
            raise invalid(_("path must be an attribute path."), "invalidPath")
        if op != "remove" and "value" not in operation:
            raise invalid(_("An %(op)s operation needs a value.") % {"op": op}, "invalidValue")
        yield op, path.strip() if path else None, operation.get("value")


# Groups -----------------------------------------------------------------------------------------

MEMBER_FILTER = re.compile(r'^members\[\s*value\s+eq\s+"((?:[^"\\]|\\.)*)"\s*\]$', re.IGNORECASE)


def _member_ids(value, attribute="members"):
    if value is None:
        return ()
    if not isinstance(value, list):
        value = [value]
    return tuple(_reference(item, attribute) for item in value)


def group_change_from_resource(body, *, replacing):
    """The GroupChange of a POST (members added) or PUT (members replaced)."""
    body = _folded(body, "body")
    name = body.get("displayname")
    if name is not None:
        name = _text(name, "displayName")
    members = _member_ids(body.get("members"))
    return GroupChange(name=name, members=members) if replacing else GroupChange(name=name, add=members)


def group_change_from_patch(body):
    body = _folded(body, "body")
    schemas = body.get("schemas")
    if not isinstance(schemas, list) or PATCH_OP.casefold() not in {str(s).casefold() for s in schemas}:
        raise invalid(_("A PATCH request names the schema %(schema)s.") % {"schema": PATCH_OP}, "invalidSyntax")
    name, add, remove, members = None, [], [], None
    for op, path, value in _operations(body):
        if path is None:
            if op == "remove":
                raise invalid(_("A remove operation needs a path."), "noTarget")
            attributes = _folded(value, "value")
            for key, item in attributes.items():
                if key == "displayname":
                    name = _text(item, "displayName")
                elif key == "members":
                    ids = _member_ids(item)
                    if op == "replace":
                        members, add, remove = list(ids), [], []
                    else:
                        add += ids
                elif key not in ("id", "externalid", "schemas", "meta"):
                    raise invalid(_("“%(path)s” is not an attribute of a group here.") % {"path": key},
                                  "invalidPath")
            continue
        key = path.casefold()
        single = MEMBER_FILTER.match(path)
        if key == "displayname":
            if op == "remove":
                raise invalid(_("displayName cannot be removed."), "mutability")
            name = _text(value, "displayName")
        elif key == "members" or single:
            member = _unquoted(single.group(1)) if single else None
            if single and member is None:
                raise invalid(_("The member filter is not valid."), "invalidFilter")
            ids = (member,) if single else _member_ids(value)
            if op == "remove" and single is None and value is None:
                members, add, remove = [], [], []  # every member
            elif op == "remove":
                remove += ids
                add = [member for member in add if member not in ids]
                if members is not None:
                    members = [member for member in members if member not in ids]
            elif op == "replace":
                members, add, remove = list(ids), [], []
            else:
                add += ids
        elif key in ("externalid",):
            pass  # the group's id at the provider: not kept (groups are matched by displayName)
        else:
            raise invalid(_("“%(path)s” is not an attribute of a group here.") % {"path": path}, "invalidPath")
    return GroupChange(name=name, add=tuple(add), remove=tuple(remove),
                       members=None if members is None else tuple(members))


# Filters ----------------------------------------------------------------------------------------


def _unquoted(text):
    """The value of a quoted filter string (JSON's escapes), or None if it is not one or holds NUL."""
    try:
        value = json.loads(f'"{text}"')
    except ValueError:
        return None
    return None if "\x00" in value else value


CLAUSE = re.compile(r'\s*(?P<attribute>[^\s"]+)\s+eq\s+"(?P<value>(?:[^"\\]|\\.)*)"\s*(?:$|and\s+)', re.IGNORECASE)


def parse_filter(text, supported):
    """{attribute: value} of a filter of `eq` clauses joined by `and` on the `supported` attributes
    (case-folded names); anything else is refused as invalidFilter."""
    if len(text) > 1000 or "\x00" in text:
        raise invalid(_("The filter is too long or not valid."), "invalidFilter")
    clauses, position = {}, 0
    while position < len(text):
        match = CLAUSE.match(text, position)
        if match is None or match.end() == position:
            break
        attribute = match["attribute"].casefold()
        if attribute not in supported:
            raise invalid(_("Filtering on “%(attribute)s” is not supported; use %(supported)s with eq.")
                          % {"attribute": match["attribute"], "supported": ", ".join(supported.values())},
                          "invalidFilter")
        value = _unquoted(match["value"])
        if value is None:
            raise invalid(_("The filter is not valid."), "invalidFilter")
        clauses[supported[attribute]] = value
        position = match.end()
    if position != len(text) or not clauses:
        raise invalid(_("Only filters of the form attribute eq \"value\" (joined by and) are supported."),
                      "invalidFilter")
    return clauses


USER_FILTERS = {"username": "userName", "externalid": "externalId", "id": "id", "emails.value": "userName",
                f"{ENTERPRISE}:employeenumber": "externalId"}
GROUP_FILTERS = {"displayname": "displayName", "id": "id", "members": "members", "members.value": "members"}


# Resources --------------------------------------------------------------------------------------


def user_resource(employee, *, location, manager_location, active):
    user = employee.user
    name = f"{user.first_name} {user.last_name}".strip()
    enterprise = {"employeeNumber": employee.employee_number}
    if employee.department_id:
        enterprise["department"] = employee.department.name
    if employee.manager_id:
        enterprise["manager"] = {"value": str(employee.manager_id), "$ref": manager_location}
    resource = {
        "schemas": [CORE_USER, ENTERPRISE_USER],
        "id": str(employee.pk),
        "externalId": employee.employee_number,
        "userName": user.username,
        "name": {"givenName": user.first_name, "familyName": user.last_name, "formatted": name},
        "displayName": name or user.username,
        "active": active,
        "preferredLanguage": employee.language,
        ENTERPRISE_USER: enterprise,
        "meta": {"resourceType": "User", "created": user.date_joined.isoformat(), "location": location},
    }
    if user.email:
        resource["emails"] = [{"value": user.email, "type": "work", "primary": True}]
    return resource


def group_resource(group, members, *, location, member_location):
    """`members`: (employee pk, name) of the employees in the group, or None to leave members out."""
    resource = {"schemas": [CORE_GROUP], "id": str(group.pk), "displayName": group.name,
                "meta": {"resourceType": "Group", "location": location}}
    if members is not None:
        resource["members"] = [{"value": str(pk), "display": name, "type": "User", "$ref": member_location(pk)}
                               for pk, name in members]
    return resource


def list_response(resources, *, total, start_index):
    return {"schemas": [LIST_RESPONSE], "totalResults": total, "startIndex": start_index,
            "itemsPerPage": len(resources), "Resources": resources}


# Discovery --------------------------------------------------------------------------------------

KEPT_USER_ATTRIBUTES = {"userName": None, "name": {"givenName", "familyName", "formatted"}, "displayName": None,
                        "active": None, "preferredLanguage": None, "emails": {"value", "type", "primary"}}
KEPT_ENTERPRISE_ATTRIBUTES = {"employeeNumber": None, "department": None, "manager": {"value", "$ref"}}
KEPT_GROUP_ATTRIBUTES = {"displayName": None, "members": {"value", "$ref", "type", "display"}}


def _narrowed(schema, kept, description):
    """scim2-models' schema of a resource with only the attributes this endpoint keeps."""
    document = schema.model_dump()
    document["description"] = description
    attributes = []
    for attribute in document["attributes"]:
        if attribute["name"] not in kept:
            continue
        if kept[attribute["name"]] is not None and attribute.get("subAttributes"):
            attribute["subAttributes"] = [sub for sub in attribute["subAttributes"]
                                          if sub["name"] in kept[attribute["name"]]]
        attributes.append(attribute)
    document["attributes"] = attributes
    return document


def schemas():
    """The schemas as this endpoint keeps them, by id."""
    documents = [
        _narrowed(User.to_schema(), KEPT_USER_ATTRIBUTES, "An employee: the address is the login."),
        _narrowed(EnterpriseUser.to_schema(), KEPT_ENTERPRISE_ATTRIBUTES,
                  "The employee number (required to create; the same as externalId), department and manager."),
        _narrowed(Group.to_schema(), KEPT_GROUP_ATTRIBUTES, "An audience group of guidelines."),
    ]
    return {document["id"]: document for document in documents}


def resource_types():
    return {"User": ResourceType.from_resource(User[EnterpriseUser]).model_dump(),
            "Group": ResourceType.from_resource(Group).model_dump()}


def service_provider_config(documentation_uri):
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "documentationUri": documentation_uri,
        "patch": {"supported": True},
        "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": True, "maxResults": MAX_RESULTS},
        "changePassword": {"supported": False},
        "sort": {"supported": False},
        "etag": {"supported": False},
        "authenticationSchemes": [{
            "type": "oauthbearertoken", "name": "Bearer token", "primary": True,
            "description": "An API token with scope scim:provision, issued to an HR service account.",
        }],
        "meta": {"resourceType": "ServiceProviderConfig"},
    }
