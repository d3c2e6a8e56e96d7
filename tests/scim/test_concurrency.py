"""Two PATCH requests for one employee at the same moment, each changing another attribute (Entra ID
may send them in parallel): both changes stay. Each request is read onto the employee as found under
the import lock, so the later one cannot write back what the earlier one replaced."""

import threading
import time

import pytest
from django.db import connection

from guidelines.scim import protocol

from ..factories import make_employee
from .conftest import scim_client, send

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def test_parallel_patches_of_one_employee_keep_both_changes(entra_token, monkeypatch):
    employee = make_employee("parallel@example.com", "P0001")
    first_is_in = threading.Event()
    apply_patch = protocol.apply_patch

    def slow_first(body, person):
        # The first request holds the lock a while after reading the employee; the second starts then.
        changed = apply_patch(body, person)
        if changed.first_name == "First":
            first_is_in.set()
            time.sleep(0.5)
        return changed

    monkeypatch.setattr(protocol, "apply_patch", slow_first)
    statuses = []

    def patch(path, value, wait=None):
        try:
            if wait:
                assert wait.wait(10)
            response = send(scim_client(entra_token), "PATCH", f"Users/{employee.pk}", {
                "schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": path, "value": value}]})
            statuses.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=patch, args=("name.givenName", "First")),
               threading.Thread(target=patch, args=("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:"
                                                    "department", "Second"), kwargs={"wait": first_is_in})]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert statuses == [200, 200]
    employee.refresh_from_db()
    employee.user.refresh_from_db()
    assert (employee.user.first_name, employee.department.name) == ("First", "Second")
