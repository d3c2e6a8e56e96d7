"""Account takeover through the employee CSV import (finding 2), attacked as HR through the real
interfaces: the import page and the `import_employees` command.

(a) re-addressing an approver, then a password reset to the new address; (b) a new employee row
carrying a superuser's address, linking the superuser, then re-addressing it; (c) the same with
HR's own account, an auditor, and accounts holding a role permission; (d) an ordinary address
change is applied, kept as evidence and announced to the old address after the commit; (e)
field-level evidence of created employees; (f) the checks cost no queries per row.
"""

import csv
import io
import json
import logging
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from guidelines import imports
from guidelines.models import AuditEvent, Employee, ImportChange, ImportRun

from ..factories import make_employee, make_user

User = get_user_model()
URL = reverse("guidelines:hr_import")
RESET_KEY_PATH = "/accounts/password/reset/key/"
ATTACKER = "mallory@attacker.example"
PRIVILEGED_EMAIL = "privileged account (staff, administrator, HR, approver or auditor)"


def row(number, email, first_name, last_name="Example", **fields):
    return {"employee_number": number, "email": email, "first_name": first_name, "last_name": last_name,
            "department": "Operations", "manager_employee_number": "", "start_date": "", "end_date": "",
            "language": "en", **fields}


def bob_row(**fields):
    """Bob exactly as the database has him (conftest): a file with this row changes nothing."""
    return row("E0002", **{"email": "bob@example.com", "first_name": "Bob", **fields})


def alice_row(**fields):
    return row("E0001", **{"email": "alice@example.com", "first_name": "Alice", "manager_employee_number": "E0002",
                           **fields})


def csv_bytes(*rows):
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=imports.COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def upload(client, content, *, dry_run=False):
    data = {"file": SimpleUploadedFile("hr-export.csv", content, content_type="text/csv")}
    if dry_run:
        data["dry_run"] = "on"
    return client.post(URL, data)


def command(tmp_path, content):
    path = tmp_path / "hr-export.csv"
    path.write_bytes(content)
    call_command("import_employees", str(path))


def security_lines(caplog, event):
    entries = [json.loads(record.getMessage()) for record in caplog.records if record.name == "security"]
    return [entry for entry in entries if entry["event"] == event]


@pytest.fixture
def security_log(caplog):
    caplog.set_level(logging.INFO, logger="security")
    return caplog


@pytest.fixture
def root(db):
    """A superuser without employee record, as `createsuperuser` leaves one."""
    return make_user("root@example.com", first_name="Root", is_staff=True, is_superuser=True)


def reset_mails(client, email):
    """What allauth's password reset sends for `email` (signed out)."""
    client.logout()
    before = len(mail.outbox)
    response = client.post(reverse("account_reset_password"), {"email": email})
    assert response.status_code == 302
    return mail.outbox[before:]


# (a) Re-addressing an approver ----------------------------------------------------------------


@pytest.mark.parametrize("dry_run", [False, True])
def test_hr_cannot_readdress_an_approver_through_the_import_page(client_as, hilde, alice, bob, security_log,
                                                                dry_run):
    client = client_as(hilde)

    response = upload(client, csv_bytes(bob_row(email=ATTACKER), alice_row()), dry_run=dry_run)

    page = response.content.decode()
    assert response.status_code == 400
    assert ("<td>2</td><td><code>email</code></td><td>Employee E0002 has a " + PRIVILEGED_EMAIL
            + ": an import cannot change its e-mail address. Change privileged accounts in the admin.") in page
    bob.user.refresh_from_db()
    assert (bob.user.username, bob.user.email) == ("bob@example.com", "bob@example.com")
    assert not User.objects.filter(email__iexact=ATTACKER).exists()
    assert not ImportChange.objects.exists()
    assert ImportRun.objects.get().outcome == ImportRun.Outcome.REJECTED
    [refusal] = security_lines(security_log, "import_privileged_account_refused")
    assert (refusal["outcome"], refusal["user_id"], refusal["details"]["rows"]) == ("denied", hilde.pk, [2])
    assert refusal["details"]["employee_numbers"] == ["E0002"]
    assert refusal["details"]["accounts"] == [bob.user_id]
    assert ATTACKER not in security_log.text and "bob@example.com" not in security_log.text

    # The second half of the attack: a password reset for the attacker's address gives no reset link,
    # while Bob's own address still gets his.
    assert not any(RESET_KEY_PATH in message.body for message in reset_mails(client, ATTACKER))
    [own] = reset_mails(client, "bob@example.com")
    assert own.to == ["bob@example.com"] and RESET_KEY_PATH in own.body


def test_hr_cannot_readdress_an_approver_through_the_command(tmp_path, bob, capsys):
    with pytest.raises(CommandError, match="rejected: 1 problem"):
        command(tmp_path, csv_bytes(bob_row(email=ATTACKER)))

    assert "row 2, email: Employee E0002 has a " + PRIVILEGED_EMAIL in capsys.readouterr().out
    bob.user.refresh_from_db()
    assert bob.user.email == "bob@example.com"


def test_hr_cannot_rename_an_approver(client_as, hilde, bob):
    response = upload(client_as(hilde), csv_bytes(bob_row(first_name="Mallory", last_name="Attacker")))

    page = response.content.decode()
    assert response.status_code == 400
    for column in ("first_name", "last_name"):
        assert (f"<td>2</td><td><code>{column}</code></td><td>Employee E0002 has a " + PRIVILEGED_EMAIL
                + ": an import cannot change its name.") in page
    bob.user.refresh_from_db()
    assert (bob.user.first_name, bob.user.last_name) == ("Bob", "Example")


def test_an_approvers_employee_record_is_updated_but_the_account_is_not_touched(client_as, hilde, bob, otto):
    # The address in another case, as an HR system may export it, is no change of address.
    content = csv_bytes(bob_row(email="BOB@example.com", department="Risk", manager_employee_number="E0099",
                                start_date="2020-02-01", language="nl"))

    response = upload(client_as(hilde), content)

    assert response.status_code == 200, response.content.decode()
    bob.refresh_from_db()
    assert (bob.department.name, bob.manager, str(bob.start_date), bob.language) == ("Risk", otto, "2020-02-01",
                                                                                      "nl")
    assert ImportChange.objects.get().fields == {
        "department": ["Operations", "Risk"], "manager_employee_number": [None, "E0099"],
        "start_date": [None, "2020-02-01"], "language": ["en", "nl"],
    }
    assert bob.user.groups.filter(name="Approvers").exists()


def test_a_privileged_account_keeps_its_own_username_and_address(db, tmp_path):
    # Linked in the admin, with a username that is not the address; the import must not "normalise" it.
    admin = make_employee("Admin@example.com", "E0500", is_staff=True, is_superuser=True)
    User.objects.filter(pk=admin.user_id).update(username="admin")

    command(tmp_path, csv_bytes(row("E0500", "admin@example.com", "Admin", department="IT")))

    admin.refresh_from_db()
    assert (admin.user.username, admin.user.email, admin.department.name) == ("admin", "Admin@example.com", "IT")


def test_a_privileged_leaver_is_still_deactivated(client_as, hilde, bob):
    yesterday = timezone.localdate() - timedelta(days=1)

    response = upload(client_as(hilde), csv_bytes(bob_row(end_date=str(yesterday))))

    assert response.status_code == 200
    bob.user.refresh_from_db()
    assert not bob.user.is_active
    assert ImportChange.objects.get().fields == {"is_active": [True, False], "end_date": [None, str(yesterday)]}


# (b) A new row with a superuser's address ------------------------------------------------------


def test_a_new_employee_row_cannot_take_over_a_superuser_through_the_page(client_as, hilde, root, security_log):
    response = upload(client_as(hilde), csv_bytes(row("E9000", "ROOT@example.com", "Root")))

    page = response.content.decode()
    assert response.status_code == 400
    assert ("<td>2</td><td><code>email</code></td><td>The e-mail address root@example.com belongs to a "
            + PRIVILEGED_EMAIL + ": an import cannot link it to an employee.") in page
    assert not Employee.objects.filter(user=root).exists()
    assert not Employee.objects.filter(employee_number="E9000").exists()
    [refusal] = security_lines(security_log, "import_privileged_account_refused")
    assert refusal["details"]["accounts"] == [root.pk] and refusal["details"]["employee_numbers"] == ["E9000"]


def test_a_new_employee_row_cannot_take_over_a_superuser_through_the_command(tmp_path, root, capsys):
    with pytest.raises(CommandError):
        command(tmp_path, csv_bytes(row("E9000", "root@example.com", "Root")))

    assert "row 2, email: The e-mail address root@example.com belongs to a " + PRIVILEGED_EMAIL in (
        capsys.readouterr().out)
    assert not Employee.objects.filter(user=root).exists()
    root.refresh_from_db()
    assert root.is_superuser and root.email == "root@example.com"


def test_a_superuser_linked_in_the_admin_cannot_be_readdressed_later(client_as, hilde, db):
    boss = make_employee("boss@example.com", "E0600", is_superuser=True)

    response = upload(client_as(hilde), csv_bytes(row("E0600", ATTACKER, "Boss")))

    assert response.status_code == 400
    boss.user.refresh_from_db()
    assert boss.user.email == "boss@example.com"
    assert not any(RESET_KEY_PATH in message.body for message in reset_mails(client_as(hilde), ATTACKER))


# (c) HR's own account, auditors, role permissions -----------------------------------------------


def direct_approver():
    user = make_user("direct@example.com", first_name="Direct")
    user.user_permissions.add(Permission.objects.get(content_type__app_label="guidelines", codename="approve"))
    return user


def custom_group_auditor():
    group = Group.objects.create(name="External audit")
    group.permissions.add(Permission.objects.get(content_type__app_label="guidelines", codename="audit"))
    return make_user("external@example.com", first_name="External", groups=["External audit"])


@pytest.mark.parametrize("who", ["hilde", "arjen", "direct approver", "custom group auditor"])
def test_privileged_accounts_without_employee_record_are_never_linked(client_as, hilde, arjen, who):
    account = {"hilde": lambda: hilde, "arjen": lambda: arjen, "direct approver": direct_approver,
               "custom group auditor": custom_group_auditor}[who]()

    response = upload(client_as(hilde), csv_bytes(row("E9001", account.email, "Someone", last_name="Else")))

    assert response.status_code == 400
    assert f"The e-mail address {account.email} belongs to a {PRIVILEGED_EMAIL}" in response.content.decode()
    account.refresh_from_db()
    assert not Employee.objects.filter(user=account).exists()
    assert (account.first_name, account.last_name) != ("Someone", "Else")


def test_an_ordinary_account_without_employee_record_is_still_linked(client_as, hilde, nina):
    response = upload(client_as(hilde), csv_bytes(row("E9002", "nina@example.com", "Nina", last_name="Jansen")))

    assert response.status_code == 200
    assert Employee.objects.get(employee_number="E9002").user == nina
    assert ImportChange.objects.get().fields["last_name"] == ["", "Jansen"]


def test_an_account_promoted_while_the_file_is_applied_is_refused(db, monkeypatch, security_log):
    # Validation and planning read the database first; an admin makes the employee an approver before
    # the applying transaction starts. The transaction checks again and changes nothing.
    carol = make_employee("carol@example.com", "E0700")
    planned = imports.plan_import

    def plan_then_promote(*args, **kwargs):
        plan = planned(*args, **kwargs)
        carol.user.groups.add(Group.objects.get(name="Approvers"))
        return plan

    monkeypatch.setattr(imports, "plan_import", plan_then_promote)

    result = imports.run_import(csv_bytes(row("E0700", ATTACKER, "Carol")), source="race.csv")

    assert [(error.row, error.column) for error in result.errors] == [(2, "email")]
    assert "has a " + PRIVILEGED_EMAIL in result.errors[0].message
    carol.user.refresh_from_db()
    assert carol.user.email == "carol@example.com"
    assert ImportRun.objects.get().outcome == ImportRun.Outcome.REJECTED
    assert not ImportChange.objects.exists()
    assert security_lines(security_log, "import_privileged_account_refused")[0]["details"]["rows"] == [2]


# (d) An ordinary address change: applied, kept, announced -----------------------------------------


def test_an_ordinary_address_change_is_applied_recorded_and_announced_after_the_commit(
        client_as, hilde, alice, security_log, django_capture_on_commit_callbacks):
    client = client_as(hilde)

    with django_capture_on_commit_callbacks() as callbacks:
        response = upload(client, csv_bytes(alice_row(email="alice.new@example.com"), bob_row()))
        assert mail.outbox == []  # nothing is sent before the transaction commits
    for callback in callbacks:
        callback()

    assert response.status_code == 200
    alice.user.refresh_from_db()
    assert alice.user.username == alice.user.email == "alice.new@example.com"
    run = ImportRun.objects.get()
    change = ImportChange.objects.get()
    assert (change.run, change.employee_number, change.action) == (run, "E0001", "updated")
    assert change.fields == {"email": ["alice@example.com", "alice.new@example.com"]}
    event = AuditEvent.objects.get(action=AuditEvent.Action.EMPLOYEES_IMPORTED)
    assert event.details["changed_fields"] == {"email": 1}

    by_recipient = {message.to[0]: message for message in mail.outbox}
    assert sorted(by_recipient) == ["alice.new@example.com", "alice@example.com"]
    notice = by_recipient["alice@example.com"]
    assert notice.subject == "Security notice: the e-mail address of your Guidelines account was changed"
    assert "was changed by the HR import on" in notice.body
    assert "Old address: alice@example.com" in notice.body and "New address: alice.new@example.com" in notice.body
    assert f"contact HR or the security team immediately and mention import run #{run.pk}" in notice.body
    html, mimetype = notice.alternatives[0]
    assert mimetype == "text/html" and "alice.new@example.com" in html

    [line] = security_lines(security_log, "employees_imported")
    assert (line["user_id"], line["details"]["run"], line["details"]["changed_fields"]) == (hilde.pk, run.pk,
                                                                                          {"email": 1})
    assert (line["details"]["created"], line["details"]["updated"]) == (0, 1)
    assert "alice" not in security_log.text

    page = response.content.decode()
    assert '<span class="meta">E0001</span><br><span class="badge badge-muted">updated</span>' in page
    assert ('<span class="field-name">E-mail address</span>: <del><span class="visually-hidden">from </span>'
            'alice@example.com</del> → <ins><span class="visually-hidden">to </span>alice.new@example.com</ins>'
            ) in page


def test_the_command_announces_an_address_change_too(tmp_path, alice, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        command(tmp_path, csv_bytes(alice_row(email="alice.new@example.com"), bob_row()))

    assert sorted(message.to[0] for message in mail.outbox) == ["alice.new@example.com", "alice@example.com"]


def test_an_unchanged_address_gets_no_notice(tmp_path, alice, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        command(tmp_path, csv_bytes(alice_row(email="ALICE@example.com", department="Finance"), bob_row()))

    assert mail.outbox == []
    assert Employee.objects.get(pk=alice.pk).department.name == "Finance"


def test_a_rejected_file_announces_nothing(tmp_path, alice, bob, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(CommandError):
        command(tmp_path, csv_bytes(alice_row(email="alice.new@example.com"), bob_row(email=ATTACKER)))

    assert mail.outbox == []
    alice.user.refresh_from_db()
    assert alice.user.email == "alice@example.com"


def test_values_from_the_file_are_escaped_in_the_notice_and_on_the_page(client_as, hilde,
                                                                         django_capture_on_commit_callbacks):
    number = '<img src=x onerror="alert(1)">'
    client = client_as(hilde)
    upload(client, csv_bytes(row(number, "eve@example.com", "<b>Eve</b>")))

    with django_capture_on_commit_callbacks(execute=True):
        response = upload(client, csv_bytes(row(number, "eve.new@example.com", "<b>Eve</b>")))

    page = response.content.decode()
    assert response.status_code == 200
    assert "<img src=x" not in page and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page
    html = mail.outbox[0].alternatives[0][0]
    assert "<img src=x" not in html and "&lt;img src=x" in html


# (e) Field-level evidence of created employees ---------------------------------------------------


def test_created_employees_are_recorded_field_by_field(client_as, hilde, bob):
    response = upload(client_as(hilde), csv_bytes(
        row("E0800", "dana@example.com", "Dana", last_name="de Wit", manager_employee_number="E0002",
            start_date="2026-01-05", language="nl"),
    ))

    assert response.status_code == 200
    change = ImportChange.objects.get()
    assert (change.employee_number, change.action, change.run) == ("E0800", "created", ImportRun.objects.get())
    assert change.fields == {
        "email": [None, "dana@example.com"], "first_name": [None, "Dana"], "last_name": [None, "de Wit"],
        "is_active": [None, True], "department": [None, "Operations"], "manager_employee_number": [None, "E0002"],
        "start_date": [None, "2026-01-05"], "language": [None, "nl"],
    }
    page = response.content.decode()
    assert '<span class="meta">E0800</span><br><span class="badge badge-ok">created</span>' in page
    assert ('<span class="field-name">Last name</span>: <ins><span class="visually-hidden">to </span>de Wit</ins>'
            in page)


def test_the_dry_run_previews_the_changes_and_keeps_none(client_as, hilde, alice):
    response = upload(client_as(hilde), csv_bytes(alice_row(last_name="Changed"), bob_row()), dry_run=True)

    page = response.content.decode()
    assert response.status_code == 200
    assert "Who would change if the file is applied" in page
    assert ('<span class="field-name">Last name</span>: <del><span class="visually-hidden">from </span>Example</del>'
            ' → <ins><span class="visually-hidden">to </span>Changed</ins>') in page
    assert not ImportChange.objects.exists()


# (f) Queries ------------------------------------------------------------------------------------


def prepared(size, prefix):
    """`size` employees in the database and privileged accounts next to them; returns a file that gives
    each employee a new address and first name (so every row is checked, diffed, kept and announced)."""
    for n in range(size):
        make_user(f"{prefix.lower()}-staff{n}@example.com", is_staff=True)
    imports.run_import(csv_bytes(*[row(f"{prefix}{n:04d}", f"{prefix.lower()}{n}@example.com", "Fien",
                                       manager_employee_number="E0002") for n in range(size)]), source="first.csv")
    return csv_bytes(*[row(f"{prefix}{n:04d}", f"{prefix.lower()}{n}.new@example.com", "Renamed",
                           manager_employee_number="E0002") for n in range(size)])


def test_the_privilege_checks_and_evidence_cost_no_queries_per_row(bob, hilde, arjen, root,
                                                                   django_assert_max_num_queries):
    small = prepared(20, "P")
    with CaptureQueriesContext(connection) as queries:
        assert imports.run_import(small, source="small.csv").counts["updated"] == 20
    large = prepared(300, "Q")

    with django_assert_max_num_queries(len(queries.captured_queries)):
        result = imports.run_import(large, source="large.csv")

    assert result.counts["updated"] == 300
    assert ImportChange.objects.filter(run=result.run).count() == 300
    assert ImportChange.objects.filter(run=result.run, employee_number="Q0299").get().fields == {
        "email": ["q299@example.com", "q299.new@example.com"], "first_name": ["Fien", "Renamed"]}
