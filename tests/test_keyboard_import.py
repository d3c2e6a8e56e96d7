"""A keyboard-only HR journey in Debian's Chromium: sign in (with the second factor), open the import from the
menu, do a dry run, read who would change, and apply the file that was checked. Only Tab, Shift+Tab,
Enter, Space and typing into the focused field; the file input is given its file while it has the focus
(the operating system's file picker cannot be driven)."""

import pytest

from guidelines.models import Employee, ImportRun

from .factories import PASSWORD, give_authenticator, totp_code
from .test_imports import csv_file, person

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

MAX_TABS = 80


def focused(page):
    return page.evaluate("""() => {
        const element = document.activeElement;
        return {tag: element.tagName.toLowerCase(), name: element.getAttribute("name") || "",
                type: element.getAttribute("type") || "", text: (element.innerText || element.value || "").trim()};
    }""")


def tab_to(page, *, text=None, name=None, type=None, backwards=False):
    """Press Tab (or Shift+Tab) until the focused element has this text, name or type."""
    for _ in range(MAX_TABS):
        page.keyboard.press("Shift+Tab" if backwards else "Tab")
        element = focused(page)
        if ((text is None or element["text"] == text) and (name is None or element["name"] == name)
                and (type is None or element["type"] == type)):
            return element
    raise AssertionError(f"Tab never reached {text or name or type!r}")


def test_hr_imports_by_keyboard_from_the_menu_dry_run_first(live_server, page, screenshots, hilde, alice, bob):
    secret = give_authenticator(hilde)
    page.goto(f"{live_server.url}/accounts/login/")
    tab_to(page, name="login")
    page.keyboard.type(hilde.email)
    tab_to(page, name="password")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url("**/2fa/authenticate/**")
    tab_to(page, name="code")
    page.keyboard.type(totp_code(secret))
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server.url}/")

    tab_to(page, text="Manage guidelines")
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="Manage guidelines").wait_for()
    tab_to(page, text="Import employees")
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="Import employees", exact=True).wait_for()

    content = csv_file([
        person("E0001", email="alice@example.com", first_name="Alice", last_name="Example", department="Legal",
               language="en"),
        person("N0001", first_name="Nadia", last_name="Nieuw"),
    ])
    tab_to(page, type="file")
    page.locator(":focus").set_input_files({"name": "people.csv", "mimeType": "text/csv", "buffer": content})
    dry_run = tab_to(page, type="checkbox")
    assert page.locator(":focus").is_checked(), dry_run  # a dry run unless HR unticks it
    tab_to(page, text="Upload")
    page.keyboard.press("Enter")
    page.get_by_text("Dry run of people.csv: nothing was changed.").wait_for()

    changes = page.locator("#import-changes")
    assert "Alice Example" in changes.inner_text() and "Nadia Nieuw" in changes.inner_text()
    assert "Operations" in changes.inner_text() and "Legal" in changes.inner_text()
    assert Employee.objects.get(employee_number="E0001").department.name == "Operations"
    page.screenshot(path=screenshots / "keyboard-import-1-dry-run.png", full_page=True)

    # The change list scrolls by keyboard: its region takes the focus on the way.
    page.keyboard.press("Shift+Tab")  # back from wherever the focus was, then forward to the button
    tab_to(page, text="Apply this file")
    page.keyboard.press("Space")
    page.get_by_text("people.csv was imported.").wait_for()

    assert Employee.objects.get(employee_number="E0001").department.name == "Legal"
    assert Employee.objects.filter(employee_number="N0001").exists()
    assert ImportRun.objects.filter(outcome=ImportRun.Outcome.APPLIED, by=hilde).count() == 1
    page.screenshot(path=screenshots / "keyboard-import-2-applied.png", full_page=True)
