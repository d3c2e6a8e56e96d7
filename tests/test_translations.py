"""Dutch and English message files are complete, compiled and used."""

import subprocess
from pathlib import Path

import pytest
from django.utils import translation

from guidelines.services import acknowledgement_statement

LOCALE = Path(__file__).resolve().parent.parent / "guidelines" / "locale"


@pytest.mark.parametrize("language", ["nl", "en"])
def test_message_file_has_no_untranslated_or_fuzzy_entries(language):
    po = LOCALE / language / "LC_MESSAGES" / "django.po"
    for flag in ("--untranslated", "--only-fuzzy"):
        output = subprocess.run(["msgattrib", flag, "--no-obsolete", str(po)], capture_output=True, text=True,
                                check=True).stdout
        assert output == "", f"{language}: {flag} entries:\n{output}"


@pytest.mark.parametrize("language", ["nl", "en"])
def test_compiled_message_file_matches_its_source(language):
    folder = LOCALE / language / "LC_MESSAGES"
    compiled = subprocess.run(["msgfmt", "-o", "-", str(folder / "django.po")], capture_output=True,
                              check=True).stdout
    assert compiled == (folder / "django.mo").read_bytes(), "run `make messages` and commit the .mo file"


def test_acknowledgement_statement_in_both_languages():
    assert acknowledgement_statement(title="Richtlijn sociale media", number="2.0", language="nl") == (
        "Ik heb de Richtlijn sociale media, versie 2.0, gelezen en begrepen."
    )
    assert acknowledgement_statement(title="Social media guideline", number="2.0", language="en") == (
        "I have read and understood the Social media guideline, version 2.0."
    )


def test_interface_strings_are_dutch_when_dutch_is_active():
    with translation.override("nl"):
        assert translation.gettext("My acknowledgements") == "Mijn bevestigingen"
