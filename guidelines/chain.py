"""Content hashes and the tamper-evident acknowledgement chain. Pure functions, no writes.

Canonical text of a language variant: the Markdown source, Unicode NFC, line endings
"\\n", trailing whitespace stripped from every line, leading/trailing blank lines removed,
one final "\\n". Its content hash is the SHA-256 of the UTF-8 bytes, in lowercase hex.

Seal of an acknowledgement: SHA-256 (lowercase hex) of the UTF-8 bytes of the JSON array
of the fields of its seal format (SEAL_FORMATS[ack.seal_format]), in that order, serialised with
`json.dumps(values, ensure_ascii=False, separators=(",", ":"))`. Format 1 is SEALED_FIELDS. A later
format is added to SEAL_FORMATS and becomes CURRENT_SEAL_FORMAT (format 2 adds the identity provider's
subject, amr and acr; format 3 the proof of reading and the comprehension check's answers); records
keep the format they were sealed with, and verification computes each record's seal with its own
format. Every format after 1 starts its array with the format number, so
the format is sealed too (for format 1 it is implied: a record claiming another format no longer
matches its seal).
Timestamps are UTC ISO 8601 with microseconds ("2026-01-31T09:15:00.123456Z"),
empty values are "". Each seal covers `previous_seal`, so changing, removing or inserting any
record breaks every later seal. The first record's previous seal is GENESIS_SEAL.

Fingerprint of a draft (what an approver approves): SHA-256 of the same JSON encoding of
[leading_language, effective_date or "", [[language, title, content hash of body, change_summary], …]]
with the variants sorted by language, then "read-to-end" when the version requires reading to the
end, then ["questions", [[position, text_nl, text_en, choices, correct, hint_nl, hint_en], …]] when
it has a comprehension check. Publication compares it with the approved one.
"""

import hashlib
import json
import unicodedata
from dataclasses import dataclass
from datetime import UTC

GENESIS_SEAL = "0" * 64
CURRENT_SEAL_FORMAT = 3

SEALED_FIELDS = (
    "sequence",
    "previous_seal",
    "employee_number",
    "employee_name",
    "guideline_slug",
    "version_number",
    "cycle",
    "language",
    "content_hash",
    "statement",
    "acknowledged_at",
    "first_opened_at",
    "channel",
    "auth_method",
    "ip_address",
    "user_agent",
    "department_name",
    "manager_employee_number",
    "manager_name",
)


# Format 2 adds what an identity provider said about the sign-in (empty after a password sign-in).
SSO_FIELDS = ("sso_subject", "sso_amr", "sso_acr")

# Format 3 adds the proof of reading (when the text was shown to its end, seconds on the text) and the
# comprehension check's answers (canonical JSON).
ENGAGEMENT_FIELDS = ("read_to_end_at", "seconds_on_text", "answers")

SEAL_FORMATS = {
    1: SEALED_FIELDS,
    2: ("seal_format", *SEALED_FIELDS, *SSO_FIELDS),
    3: ("seal_format", *SEALED_FIELDS, *SSO_FIELDS, *ENGAGEMENT_FIELDS),
}


class UnknownSealFormat(ValueError):
    """A record names a seal format this code does not know (tampering, or older code than the data)."""


def canonical_text(markdown_source):
    text = unicodedata.normalize("NFC", markdown_source).replace("\r\n", "\n").replace("\r", "\n")
    lines = [line.rstrip() for line in text.split("\n")]
    return "\n".join(lines).strip("\n") + "\n"


def content_hash(markdown_source):
    return hashlib.sha256(canonical_text(markdown_source).encode()).hexdigest()


_SEAL_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def draft_fingerprint(*, leading_language, effective_date, texts, require_read_to_end=False, questions=()):
    """`texts`: objects with language, title, body and change_summary."""
    variants = sorted(
        [text.language, text.title, content_hash(text.body), canonical_text(text.change_summary)] for text in texts
    )
    values = [leading_language, effective_date.isoformat() if effective_date else "", variants]
    # Appended only when there are any: drafts approved before these existed keep their fingerprint.
    if require_read_to_end:
        values.append("read-to-end")
    if questions:
        values.append(["questions", list(questions)])
    return hashlib.sha256(_SEAL_ENCODER.encode(values).encode()).hexdigest()


def _timestamp(value):
    if value is None:
        return ""
    return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def sealed_values(ack, *, guideline_slug, version_number):
    """The values the seal of `ack` covers, in its format's order and in their sealed form. Only the
    fields of the record's own format are read, so a format 1 record needs no later field."""
    seal_format = ack.seal_format
    if seal_format not in SEAL_FORMATS:
        raise UnknownSealFormat(f"record {ack.sequence} names seal format {seal_format}, which is unknown")
    # The values not sealed as stored; every other field is its attribute as it is.
    written = {
        "guideline_slug": guideline_slug,
        "version_number": version_number,
        "acknowledged_at": _timestamp(ack.acknowledged_at),
        "first_opened_at": _timestamp(ack.first_opened_at),
        "ip_address": ack.ip_address or "",
    }
    if seal_format >= 3:
        written["read_to_end_at"] = _timestamp(ack.read_to_end_at)
        written["seconds_on_text"] = "" if ack.seconds_on_text is None else ack.seconds_on_text
    return [written[name] if name in written else getattr(ack, name) for name in SEAL_FORMATS[seal_format]]


def compute_seal(ack, *, guideline_slug, version_number):
    return seal_of(sealed_values(ack, guideline_slug=guideline_slug, version_number=version_number))


def seal_of(values):
    """The seal over a record's sealed values (sealed_values' list, or the same values in a tuple)."""
    return hashlib.sha256(_SEAL_ENCODER.encode(values).encode()).hexdigest()


@dataclass
class ChainVerification:
    intact: bool
    checked: int
    head_sequence: int
    head_seal: str
    first_break_sequence: int | None = None
    problem: str = ""
    checkpoints_checked: int = 0
    # When the chain no longer matches a checkpoint: that checkpoint's time (UTC, ISO 8601).
    broken_checkpoint: str = ""


def verify_chain(acks, *, expected_head=None, after=None):
    """Walk acknowledgements in sequence order and report the first break.

    `acks` yields objects with the acknowledgement fields plus `guideline_slug` and
    `version_number` attributes (see chain_reading.chain_records). `expected_head` is the
    (sequence, seal) pair stored in ChainHead: it detects records removed from the end.
    `after` is the (sequence, seal) of the last record of a beginning of the chain already
    verified (records 1 to `sequence`): the walk goes on from there and `acks` starts after it.
    """
    previous_seal, expected_sequence, checked = GENESIS_SEAL, 1, 0
    if after is not None:
        checked, previous_seal = after
        expected_sequence = checked + 1
    for ack in acks:
        if ack.sequence != expected_sequence:
            return ChainVerification(
                False, checked, expected_sequence - 1, previous_seal, expected_sequence,
                f"record {expected_sequence} is missing (found {ack.sequence})",
            )
        if ack.previous_seal != previous_seal:
            return ChainVerification(
                False, checked, ack.sequence - 1, previous_seal, ack.sequence,
                f"record {ack.sequence} does not link to record {ack.sequence - 1}",
            )
        try:
            seal = compute_seal(ack, guideline_slug=ack.guideline_slug, version_number=ack.version_number)
        except UnknownSealFormat as unknown:
            return ChainVerification(False, checked, ack.sequence - 1, previous_seal, ack.sequence, str(unknown))
        if seal != ack.seal:
            return ChainVerification(
                False, checked, ack.sequence - 1, previous_seal, ack.sequence,
                f"record {ack.sequence} was altered: its content does not match its seal",
            )
        previous_seal, expected_sequence, checked = ack.seal, expected_sequence + 1, checked + 1
    head_sequence = expected_sequence - 1
    if expected_head is not None and expected_head != (head_sequence, previous_seal):
        return ChainVerification(
            False, checked, head_sequence, previous_seal, head_sequence + 1,
            f"the chain ends at record {head_sequence} but the recorded head is record {expected_head[0]}",
        )
    return ChainVerification(True, checked, head_sequence, previous_seal)
