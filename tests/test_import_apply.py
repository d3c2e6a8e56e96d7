""""Apply this file": after a clean dry run, HR applies exactly the file that was checked, and only while it
still does what the dry run showed. Forged, replayed, swapped and stale dry runs change nothing."""

import hashlib

import pytest
from django.contrib.auth.models import Group
from django.core import signing
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from guidelines import imports
from guidelines.models import Employee, ImportChange, ImportRun

from .factories import make_user
from .test_imports import csv_file, person, run, snapshot

URL = reverse("guidelines:hr_import")
APPLY = reverse("guidelines:hr_import_apply")


def dry_run(content, by):
    result = run(content, by=by, dry_run=True)
    assert result.errors == [] and result.apply_token
    return result


def test_a_clean_dry_run_applies_the_file_it_checked(hilde):
    run(csv_file([person("E1"), person("E2")]))
    checked = dry_run(csv_file([person("E1", department="Legal"), person("E2"), person("N1")]), hilde)
    assert Employee.objects.count() == 2

    applied = imports.apply_checked_file(checked.apply_token, by=hilde)

    assert applied.errors == [] and applied.run.outcome == ImportRun.Outcome.APPLIED
    assert (applied.run.source, applied.run.by) == ("people.csv", hilde)
    assert applied.counts == checked.counts
    assert Employee.objects.get(employee_number="E1").department.name == "Legal"
    assert Employee.objects.filter(employee_number="N1").exists()
    assert sorted(ImportChange.objects.filter(run=applied.run).values_list("employee_number", flat=True)) == [
        "E1", "N1"]


def test_a_dry_run_applies_once(hilde):
    checked = dry_run(csv_file([person("E1")]), hilde)
    imports.apply_checked_file(checked.apply_token, by=hilde)

    with pytest.raises(imports.ApplyRefused, match="no longer kept"):
        imports.apply_checked_file(checked.apply_token, by=hilde)
    assert ImportRun.objects.filter(outcome=ImportRun.Outcome.APPLIED).count() == 1


@pytest.mark.parametrize("tamper", [
    lambda token: token[:-2] + ("AA" if not token.endswith("AA") else "BB"),  # the signature
    lambda token: "x" + token,
    lambda token: "",
])
def test_a_tampered_reference_applies_nothing(hilde, tamper):
    checked = dry_run(csv_file([person("E1")]), hilde)

    with pytest.raises(imports.ApplyRefused, match="not valid"):
        imports.apply_checked_file(tamper(checked.apply_token), by=hilde)
    assert snapshot()[0] == 0


def test_a_reference_forged_for_another_file_or_run_applies_nothing(hilde):
    checked = dry_run(csv_file([person("E1")]), hilde)
    genuine = signing.loads(checked.apply_token, salt=imports._APPLY_SALT)
    # Signed with another salt (as any other signed value of the site is): refused.
    other_salt = signing.dumps(genuine, salt="guidelines.something-else", compress=True)
    with pytest.raises(imports.ApplyRefused, match="not valid"):
        imports.apply_checked_file(other_salt, by=hilde)
    assert snapshot()[0] == 0


def test_a_swapped_kept_file_applies_nothing(hilde):
    checked = dry_run(csv_file([person("E1")]), hilde)
    key = imports._checked_key(checked.run.pk)
    cache.set(key, csv_file([person("E1"), person("EVIL", email="ceo@example.com")]), 60)

    with pytest.raises(imports.ApplyRefused, match="does not match"):
        imports.apply_checked_file(checked.apply_token, by=hilde)
    assert snapshot()[0] == 0


def test_an_expired_kept_file_asks_for_a_new_dry_run(hilde):
    checked = dry_run(csv_file([person("E1")]), hilde)
    cache.delete(imports._checked_key(checked.run.pk))

    with pytest.raises(imports.ApplyRefused, match="no longer kept"):
        imports.apply_checked_file(checked.apply_token, by=hilde)
    assert snapshot()[0] == 0


def test_only_whoever_ran_the_dry_run_applies_it(hilde, db):
    other_hr = make_user("hanna@example.com", groups=["HR"])
    checked = dry_run(csv_file([person("E1")]), hilde)

    with pytest.raises(imports.ApplyRefused):
        imports.apply_checked_file(checked.apply_token, by=other_hr)
    assert snapshot()[0] == 0


def test_people_without_the_hr_role_cannot_apply(hilde, arjen, alice):
    checked = dry_run(csv_file([person("E1")]), hilde)
    for user in (arjen, alice.user):
        with pytest.raises(PermissionDenied):
            imports.apply_checked_file(checked.apply_token, by=user)
    assert not Employee.objects.filter(employee_number="E1").exists()


def test_a_stale_dry_run_applies_nothing_and_says_why(hilde):
    run(csv_file([person("E1"), person("E2")]))
    checked = dry_run(csv_file([person("E1", department="Legal"), person("E2")]), hilde)
    # Meanwhile another import moves E2 to Finance: the dry run did not show putting E2 back.
    run(csv_file([person("E1"), person("E2", department="Finance")]))

    with pytest.raises(imports.ApplyRefused, match="changed after the dry run") as refused:
        imports.apply_checked_file(checked.apply_token, by=hilde)

    assert refused.value.stale
    assert Employee.objects.get(employee_number="E1").department.name == "Operations"
    assert Employee.objects.get(employee_number="E2").department.name == "Finance"
    rejected = ImportRun.objects.filter(outcome=ImportRun.Outcome.REJECTED).get()
    assert "changed after the dry run" in rejected.errors[0]["message"]
    # The file is still kept: once the data is back as the dry run saw it, it applies.
    run(csv_file([person("E1"), person("E2")]))
    assert imports.apply_checked_file(checked.apply_token, by=hilde).errors == []
    assert Employee.objects.get(employee_number="E1").department.name == "Legal"


def test_an_account_made_privileged_after_the_dry_run_is_still_protected(hilde):
    run(csv_file([person("E1")]))
    checked = dry_run(csv_file([person("E1", email="new-address@example.com", first_name="Renamed")]), hilde)
    target = Employee.objects.select_related("user").get(employee_number="E1").user
    target.groups.add(Group.objects.get(name="Approvers"))

    with pytest.raises(imports.ApplyRefused, match="changed after the dry run"):
        imports.apply_checked_file(checked.apply_token, by=hilde)

    target.refresh_from_db()
    assert (target.email, target.first_name) == ("e1@example.com", "Fien")


def test_the_digest_covers_every_change(hilde):
    run(csv_file([person("E1")]))
    existing = imports.load_existing()
    rows = imports.parse_csv(csv_file([person("E1", end_date="2020-01-01")]))
    same = imports.parse_csv(csv_file([person("E1", end_date="2020-01-01")]))
    other = imports.parse_csv(csv_file([person("E1", end_date="2020-01-02")]))
    digest = imports.plan_import(rows, existing=existing).digest()
    assert imports.plan_import(same, existing=existing).digest() == digest
    assert imports.plan_import(other, existing=existing).digest() != digest


# Through the page -----------------------------------------------------------------------------------


def upload(content, name="people.csv"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return {"file": SimpleUploadedFile(name, content, content_type="text/csv"), "dry_run": "on"}


def _token(page):
    start = page.index('name="token" value="') + len('name="token" value="')
    return page[start:page.index('"', start)]


def test_hr_applies_the_checked_file_from_the_dry_run_page(client_as, hilde):
    client = client_as(hilde)
    page = client.post(URL, upload(csv_file([person("N1"), person("N2")]))).content.decode()
    assert ">Apply this file</button>" in page and Employee.objects.count() == 0

    response = client.post(APPLY, {"token": _token(page)})

    assert response.status_code == 200
    assert "people.csv was imported." in response.content.decode()
    assert Employee.objects.count() == 2


def test_the_dry_run_lists_who_changes_with_names_and_links(client_as, hilde):
    run(csv_file([person("E1"), person("E2")]))
    page = client_as(hilde).post(URL, upload(csv_file([
        person("E1", department="Legal", manager_employee_number="E2"), person("E2", end_date="2025-01-01"),
        person("N1", first_name="Nieuw", last_name="Mens")]))).content.decode()

    changes = page[page.index('id="import-changes"'):page.index("</table>", page.index('id="import-changes"'))]
    e1 = Employee.objects.get(employee_number="E1")
    assert f'<a href="{reverse("guidelines:hr_employee", args=[e1.pk])}">Fien E1</a>' in changes
    assert ('<span class="field-name">Department</span>: <del><span class="visually-hidden">from </span>Operations'
            '</del> → <ins><span class="visually-hidden">to </span>Legal</ins>') in changes
    assert '<span class="field-name">Manager (employee number)</span>' in changes
    assert "Nieuw Mens<br>" in changes  # new: no page to link to yet
    e2 = changes[changes.index("Fien E2"):]
    assert "leaver" in e2[:e2.index("</tr>")]


def test_hostile_names_in_the_file_are_escaped_in_the_change_list(client_as, hilde):
    page = client_as(hilde).post(URL, upload(csv_file([
        person("N1", first_name="<script>alert(1)</script>", last_name='=HYPERLINK("http://evil")'),
        person("<i>N2</i>", email="n2@example.com", department="<b>Ops</b>")]))).content.decode()

    assert "<script>alert(1)</script>" not in page and "<i>N2</i>" not in page and "<b>Ops</b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; =HYPERLINK(&quot;http://evil&quot;)" in page
    assert "&lt;i&gt;N2&lt;/i&gt;" in page


def test_a_stale_dry_run_is_refused_on_the_page_with_409(client_as, hilde):
    run(csv_file([person("E1")]))
    client = client_as(hilde)
    page = client.post(URL, upload(csv_file([person("E1", department="Legal")]))).content.decode()
    run(csv_file([person("E1", department="Finance")]))

    response = client.post(APPLY, {"token": _token(page)})

    refused = response.content.decode()
    assert response.status_code == 409
    assert "The file was not applied" in refused and "changed after the dry run" in refused
    assert 'role="alert"' in refused
    assert Employee.objects.get().department.name == "Finance"


def test_a_tampered_token_is_refused_on_the_page_with_400(client_as, hilde):
    client = client_as(hilde)
    page = client.post(URL, upload(csv_file([person("N1")]))).content.decode()
    token = _token(page)
    payload = signing.loads(token, salt=imports._APPLY_SALT)
    payload["sha256"] = hashlib.sha256(b"another file").hexdigest()
    forged = signing.dumps(payload, salt="not-the-salt")

    for bad in (token.replace(":", ";", 1), forged, ""):
        response = client.post(APPLY, {"token": bad})
        assert response.status_code == 400 and "not valid" in response.content.decode()
    assert Employee.objects.count() == 0


def test_the_command_lines_dry_run_keeps_no_file(db):
    result = run(csv_file([person("E1")]), dry_run=True)
    assert result.apply_token == ""
    assert cache.get(imports._checked_key(result.run.pk)) is None
