import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from guidelines import chain, services
from guidelines.models import Acknowledgement, AuditEvent, ChainHead

from .factories import tamper


def test_canonical_text_ignores_line_endings_and_trailing_spaces():
    assert chain.content_hash("# Title\r\n\r\nText  \r\n\n") == chain.content_hash("# Title\n\nText\n")
    assert chain.content_hash("# Title\n\nText\n") != chain.content_hash("# Title\n\nText!\n")


def test_canonical_text_normalises_unicode():
    composed, decomposed = "privé\n", "prive\u0301\n"
    assert composed != decomposed
    assert chain.content_hash(composed) == chain.content_hash(decomposed)


def test_content_hash_is_sha256_of_the_canonical_text():
    import hashlib

    assert chain.content_hash("a\n") == hashlib.sha256(b"a\n").hexdigest()


@pytest.fixture
def three_acks(alice, bob, otto, version_1, web_meta):
    for employee in (alice, bob, otto):
        services.acknowledge(employee=employee, version=version_1, language="en", meta=web_meta)
    return list(Acknowledgement.objects.order_by("sequence"))


def test_each_acknowledgement_links_to_the_previous_one(three_acks):
    assert [ack.sequence for ack in three_acks] == [1, 2, 3]
    assert three_acks[0].previous_seal == chain.GENESIS_SEAL
    assert three_acks[1].previous_seal == three_acks[0].seal
    assert three_acks[2].previous_seal == three_acks[1].seal
    assert ChainHead.objects.get().seal == three_acks[2].seal


def test_intact_chain_verifies(three_acks):
    result = services.verify_evidence()
    assert (result.intact, result.checked, result.head_sequence) == (True, 3, 3)
    event = AuditEvent.objects.get(action="chain_verified")
    assert event.details["intact"] is True


def test_altered_record_is_detected_with_its_position(three_acks):
    tamper("UPDATE guidelines_acknowledgement SET acknowledged_at = acknowledged_at - interval '1 day' "
            "WHERE sequence = 2", [])
    result = services.verify_evidence()
    assert not result.intact
    assert result.first_break_sequence == 2
    assert "altered" in result.problem


def test_removed_record_is_detected(three_acks):
    tamper("DELETE FROM guidelines_acknowledgement WHERE sequence = %s", [2])
    result = services.verify_evidence()
    assert (result.intact, result.first_break_sequence) == (False, 2)


def test_removed_last_record_is_detected_against_the_head(three_acks):
    tamper("DELETE FROM guidelines_acknowledgement WHERE sequence = %s", [3])
    result = services.verify_evidence()
    assert (result.intact, result.first_break_sequence) == (False, 3)
    assert "recorded head" in result.problem


def test_resealed_record_still_breaks_the_link_to_the_next(three_acks):
    forged = three_acks[1]
    forged.employee_name = "Someone Else"
    forged.seal = chain.compute_seal(forged, guideline_slug="social-media", version_number="1.0")
    tamper("UPDATE guidelines_acknowledgement SET employee_name = %s, seal = %s WHERE sequence = 2",
            [forged.employee_name, forged.seal])
    result = services.verify_evidence()
    assert (result.intact, result.first_break_sequence) == (False, 3)


def test_verify_evidence_command_reports_intact_and_broken_chains(three_acks, capsys):
    call_command("verify_evidence")
    assert "intact: 3 acknowledgements" in capsys.readouterr().out
    tamper("UPDATE guidelines_acknowledgement SET statement = 'forged' WHERE sequence = %s", [1])
    with pytest.raises(CommandError, match="BROKEN at record 1"):
        call_command("verify_evidence")


def test_empty_chain_is_intact(db):
    result = services.verify_evidence()
    assert (result.intact, result.checked) == (True, 0)


def test_seal_covers_every_documented_field(alice, version_1, web_meta):
    ack, _ = services.acknowledge(employee=alice, version=version_1, language="en", meta=web_meta)
    original = chain.compute_seal(ack, guideline_slug="social-media", version_number="1.0")
    assert original == ack.seal
    for field in ("employee_number", "statement", "content_hash", "language", "channel", "department_name",
                  "sso_subject", "sso_amr", "sso_acr"):
        changed = Acknowledgement.objects.get(pk=ack.pk)
        setattr(changed, field, "x")
        assert chain.compute_seal(changed, guideline_slug="social-media", version_number="1.0") != original, field
    assert chain.compute_seal(ack, guideline_slug="social-media", version_number="1.1") != original


# Seal formats ------------------------------------------------------------------------------------------


def test_new_records_carry_the_current_seal_format(three_acks):
    assert {ack.seal_format for ack in three_acks} == {chain.CURRENT_SEAL_FORMAT} == {3}
    assert chain.SEAL_FORMATS[1] == chain.SEALED_FIELDS
    assert chain.SEAL_FORMATS[2] == ("seal_format", *chain.SEALED_FIELDS, "sso_subject", "sso_amr", "sso_acr")
    assert chain.SEAL_FORMATS[3] == (*chain.SEAL_FORMATS[2], "read_to_end_at", "seconds_on_text", "answers")


def test_a_record_claiming_an_unknown_seal_format_breaks_the_chain_there(three_acks):
    tamper("UPDATE guidelines_acknowledgement SET seal_format = 99 WHERE sequence = 2", [])
    result = services.verify_evidence()
    assert (result.intact, result.first_break_sequence) == (False, 2)
    assert "seal format 99" in result.problem


def test_records_of_formats_1_and_2_verify_next_to_format_3_and_each_seals_its_own_format(
        alice, bob, otto, version_1, web_meta):
    # Records made before formats 2 and 3 existed: sealed in their own format, with empty later fields.
    older = [services.build_acknowledgement(employee=employee, version=version_1, at=timezone.now(), meta=web_meta,
                                            text=version_1.texts.get(language="en")) for employee in (alice, bob)]
    older[0].seal_format, older[1].seal_format = 1, 2
    services.append_seeded_acknowledgements(older)
    sso = services.RequestMeta(auth_method="sso:entra", sso_subject="AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ",
                               sso_amr="pwd mfa", sso_acr="urn:example:loa:2")
    newer, _ = services.acknowledge(employee=otto, version=version_1, language="en", meta=sso)
    newer = Acknowledgement.objects.get(pk=newer.pk)
    assert [ack.seal_format for ack in Acknowledgement.objects.order_by("sequence")] == [1, 2, 3]
    assert chain.sealed_values(newer, guideline_slug="social-media", version_number="1.0")[0] == 3
    assert chain.sealed_values(newer, guideline_slug="social-media", version_number="1.0")[-6:] == [
        "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ", "pwd mfa", "urn:example:loa:2", "", "", ""]
    assert services.verify_evidence().intact  # formats 1, 2 and 3 side by side

    tamper("UPDATE guidelines_acknowledgement SET seal_format = 2 WHERE sequence = 1", [])
    result = services.verify_evidence()
    assert (result.intact, result.first_break_sequence) == (False, 1)


@pytest.mark.parametrize("column, value", [("sso_subject", "someone-else"), ("sso_amr", "pwd"), ("sso_acr", ""),
                                           ("seal_format", 1)])
def test_the_provider_claims_of_a_format_2_record_are_sealed(alice, version_1, column, value):
    sso = services.RequestMeta(auth_method="sso:entra", sso_subject="subject-1", sso_amr="pwd mfa", sso_acr="2")
    services.acknowledge(employee=alice, version=version_1, language="en", meta=sso)
    assert services.verify_evidence().intact
    tamper(f"UPDATE guidelines_acknowledgement SET {column} = %s WHERE sequence = 1", [value])
    result = services.verify_evidence()
    assert (result.intact, result.first_break_sequence) == (False, 1)
    assert "altered" in result.problem
