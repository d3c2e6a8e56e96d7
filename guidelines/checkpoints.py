"""Checkpoints of the acknowledgement chain: what the chain looked like at a moment, anchored where
whoever controls the database cannot follow.

The seals and links of the chain (chain.py) show a record changed, removed or inserted after the
fact, unless someone with the database's keys rewrites the whole chain consistently, or cuts its
tail and moves the head back. A checkpoint closes that gap. Every day it states the head (record
number and seal) and the number of records, links to the checkpoint before it, and has its digest
timestamped by an RFC 3161 time-stamping authority (settings.TIMESTAMP_URL) and/or written to a
folder outside the database (settings.CHECKPOINT_DIR). A rewrite changes the seal at a
checkpoint's record; a cut leaves a checkpoint beyond the chain's end; a forged checkpoint has no
valid timestamp for its digest. verify() names the first checkpoint that no longer matches.

Statement of a checkpoint (what the digest covers): the JSON object
{"format": 1, "made_at": UTC ISO 8601 with microseconds and "Z", "head_sequence": n,
"head_seal": hex, "record_count": n, "previous_digest": hex} serialised with sorted keys and no
spaces, UTF-8; the digest is its SHA-256 in lowercase hex. The first checkpoint's previous digest
is 64 zeros.
"""

import asyncio
import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path

import requests
from asn1crypto import cms, pem, x509
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from pyhanko.sign.timestamps import TimestampRequestError
from pyhanko.sign.timestamps.requests_client import RequestsHTTPTimeStamper
from pyhanko.sign.validation.generic_cms import validate_tst_signed_data
from pyhanko.sign.validation.status import TimestampSignatureStatus
from pyhanko_certvalidator import ValidationContext

from .models import Acknowledgement, AuditEvent, ChainHead, Checkpoint
from .services import record_audit_event

GENESIS_DIGEST = "0" * 64
STATEMENT_FORMAT = 1


class TimestampUnavailable(Exception):
    """The time-stamping authority did not give a token (unreachable, refused, or an invalid reply)."""


class CheckpointRace(Exception):
    """Another checkpoint was written while this one waited for its timestamp."""


def _utc(moment):
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def moment(checkpoint):
    """How a checkpoint is named in a report: its time, UTC."""
    return _utc(checkpoint.made_at)


def statement(checkpoint):
    """The bytes a checkpoint's digest (and its timestamp) covers."""
    values = {
        "format": STATEMENT_FORMAT,
        "made_at": _utc(checkpoint.made_at),
        "head_sequence": checkpoint.head_sequence,
        "head_seal": checkpoint.head_seal,
        "record_count": checkpoint.record_count,
        "previous_digest": checkpoint.previous_digest,
    }
    return json.dumps(values, sort_keys=True, separators=(",", ":")).encode()


def digest_of(checkpoint):
    return hashlib.sha256(statement(checkpoint)).hexdigest()


# Making ------------------------------------------------------------------------------------------------


def make(*, now=None):
    """Write today's checkpoint: the chain head and count, linked to the previous checkpoint,
    timestamped and copied outside the database where configured. Raises TimestampUnavailable when a
    TSA is configured and gives no token, and CheckpointRace when another run wrote a checkpoint
    meanwhile: then nothing is written (the task retries)."""
    with transaction.atomic():  # a short lock: head and count agree, no record is appended meanwhile
        head = ChainHead.objects.select_for_update().get(pk=1)
        made_at, count = now or timezone.now(), Acknowledgement.objects.count()
    previous = _latest()
    checkpoint = Checkpoint(made_at=made_at, head_sequence=head.sequence, head_seal=head.seal, record_count=count,
                            previous_digest=previous.digest if previous else GENESIS_DIGEST)
    checkpoint.digest = digest_of(checkpoint)
    if settings.TIMESTAMP_URL:  # outside the lock: acknowledging goes on while the authority answers
        checkpoint.timestamp_token = request_timestamp(checkpoint.digest)
        checkpoint.timestamp_authority = settings.TIMESTAMP_URL
        checkpoint.timestamped_at = token_time(checkpoint.timestamp_token)
    with transaction.atomic():
        ChainHead.objects.select_for_update().get(pk=1)  # one checkpoint written at a time
        if _latest() != previous:
            raise CheckpointRace("another checkpoint was written meanwhile")  # link to that one instead
        if settings.CHECKPOINT_DIR:
            checkpoint.copy_path = str(write_copy(checkpoint))
        checkpoint.save()
        record_audit_event(action=AuditEvent.Action.CHECKPOINT_MADE, head_sequence=checkpoint.head_sequence,
                           head_seal=checkpoint.head_seal, record_count=checkpoint.record_count,
                           digest=checkpoint.digest, timestamped=bool(checkpoint.timestamp_token),
                           copy=checkpoint.copy_path)
    return checkpoint


def _latest():
    return Checkpoint.objects.order_by("-head_sequence", "-made_at").first()


def request_timestamp(digest):
    """A DER TimeStampToken over the digest (SHA-256) from settings.TIMESTAMP_URL."""
    auth = (settings.TIMESTAMP_USERNAME, settings.TIMESTAMP_PASSWORD) if settings.TIMESTAMP_USERNAME else None
    stamper = RequestsHTTPTimeStamper(settings.TIMESTAMP_URL, timeout=settings.TIMESTAMP_TIMEOUT, auth=auth)
    try:
        token = asyncio.run(stamper.async_timestamp(bytes.fromhex(digest), "sha256"))
    except (TimestampRequestError, OSError, requests.RequestException, ValueError) as error:
        raise TimestampUnavailable(f"{settings.TIMESTAMP_URL}: {error}") from error
    return token.dump()


def token_time(token):
    return _token_info(cms.ContentInfo.load(bytes(token)))["gen_time"].native


def write_copy(checkpoint):
    """The statement with its digest (and token, base64) as a file in CHECKPOINT_DIR, named by its
    time: a folder the database's owner does not control (another volume, a bucket mounted read-
    append, a WORM share)."""
    folder = Path(settings.CHECKPOINT_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"checkpoint-{checkpoint.made_at.astimezone(UTC):%Y%m%dT%H%M%S%fZ}.json"
    document = {"statement": json.loads(statement(checkpoint)), "digest": checkpoint.digest}
    if checkpoint.timestamp_token:
        document["timestamp_token"] = base64.b64encode(bytes(checkpoint.timestamp_token)).decode()
        document["timestamp_authority"] = settings.TIMESTAMP_URL
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path


# Checking ----------------------------------------------------------------------------------------------


@dataclass
class CheckpointCheck:
    checked: int
    first_broken: Checkpoint | None = None
    problem: str = ""

    @property
    def intact(self):
        return self.first_broken is None


def verify(*, chain_end):
    """Check every checkpoint, oldest first, against the chain as it is now (chain_end: the number
    of its last record, from a verified walk): its digest, its link to the one before, its record
    still there with the same seal, and its timestamp. Stops at the first that fails."""
    checkpoints = list(Checkpoint.objects.order_by("head_sequence", "made_at"))
    seals = dict(Acknowledgement.objects.filter(sequence__in={c.head_sequence for c in checkpoints})
                 .values_list("sequence", "seal"))
    roots = trust_roots()
    previous_digest = GENESIS_DIGEST
    for checked, checkpoint in enumerate(checkpoints):
        problem = _problem(checkpoint, previous_digest, chain_end, seals, roots)
        if problem:
            return CheckpointCheck(checked, checkpoint, problem)
        previous_digest = checkpoint.digest
    return CheckpointCheck(len(checkpoints))


def _problem(checkpoint, previous_digest, chain_end, seals, roots):
    name = f"the checkpoint of {moment(checkpoint)} (record {checkpoint.head_sequence})"
    if digest_of(checkpoint) != checkpoint.digest:
        return f"{name} was altered: its content does not match its digest"
    if checkpoint.previous_digest != previous_digest:
        return f"{name} does not link to the checkpoint before it"
    if checkpoint.head_sequence > chain_end:
        return f"{name} covers record {checkpoint.head_sequence}, but the chain ends at record {chain_end}"
    if checkpoint.record_count != checkpoint.head_sequence:
        return f"{name} counted {checkpoint.record_count} records for a chain of {checkpoint.head_sequence}"
    if checkpoint.head_sequence and seals.get(checkpoint.head_sequence) != checkpoint.head_seal:
        return f"{name} no longer matches: record {checkpoint.head_sequence} has another seal (the chain was rewritten)"
    if checkpoint.timestamp_authority and not checkpoint.timestamp_token:
        return f"{name} has lost its timestamp"
    if checkpoint.timestamp_token:
        token_problem = check_token(bytes(checkpoint.timestamp_token), checkpoint.digest, roots)
        if token_problem:
            return f"{name}: {token_problem}"
    return ""


def trust_roots():
    """The certificates a timestamp must chain to (settings.TIMESTAMP_CA_CERTS, a PEM file)."""
    if not settings.TIMESTAMP_CA_CERTS:
        return []
    data = Path(settings.TIMESTAMP_CA_CERTS).read_bytes()
    return [x509.Certificate.load(der) for _type, _headers, der in pem.unarmor(data, multiple=True)]


def _token_info(content_info):
    return content_info["content"]["encap_content_info"]["content"].parsed


def check_token(token, digest, roots):
    """'' when `token` is a timestamp over `digest` signed by a TSA that chains to `roots`; else why not."""
    try:
        signed = cms.ContentInfo.load(token)["content"]
        context = ValidationContext(trust_roots=roots, allow_fetching=False)
        expected = bytes.fromhex(digest)
        status = TimestampSignatureStatus(**asyncio.run(validate_tst_signed_data(
            signed, context, lambda algorithm: expected if algorithm == "sha256" else b"")))
    except Exception as error:  # noqa: BLE001 - a token that cannot be read is a broken one
        return f"its timestamp cannot be read ({type(error).__name__})"
    if not status.intact:
        return "its timestamp is for another digest"
    if not status.valid:
        return "its timestamp's signature is not valid"
    if not roots:
        return "there are no TIMESTAMP_CA_CERTS to check its timestamp against"
    if not status.trusted:
        return "its timestamp is not from a trusted authority"
    return ""
