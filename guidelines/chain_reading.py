"""Reading the evidence chain for its check (services.verify_evidence), fast and exactly.

The plain walk is chain.verify_chain over `chain_records()`: every record as a small mapping. On
PostgreSQL, `vouched_beginning()` first vouches for as long a beginning of the chain as it can by
reading COPY text in ranges, side by side in several processes where it may; the plain walk then
goes on from there, so every verdict and the record it names are the plain walk's.
"""

import logging
import multiprocessing
import os
import re
import threading
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from operator import itemgetter

import psycopg
from django.db import connection, transaction
from django.db.models import Max
from psycopg import sql

from . import chain
from .models import BATCH_ROWS, Acknowledgement

logger = logging.getLogger(__name__)


class ChainRecord(dict):
    """One acknowledgement as the chain check reads it: its columns by name, as attributes too."""

    __getattr__ = dict.__getitem__


# What the check reads of each record: every field any seal format covers, the seal, and where the
# guideline's slug and the version's number come from. Plain rows, not model instances: the check
# reads every record there is.
CHAIN_FIELDS = sorted({name for fields in chain.SEAL_FORMATS.values() for name in fields}
                      - {"guideline_slug", "version_number"} | {"seal", "seal_format"})
CHAIN_COLUMNS = [*CHAIN_FIELDS, "guideline_slug", "version_major", "version_minor"]


def _chain_rows(*, after=None, through=None):
    """The rows chain_records reads, in chain order: all of them, or those after record number
    `after` and up to record number `through`."""
    rows = Acknowledgement.objects.order_by("sequence")
    if after is not None:
        rows = rows.filter(sequence__gt=after)
    if through is not None:
        rows = rows.filter(sequence__lte=through)
    return rows.values_list(*CHAIN_FIELDS, "guideline__slug", "version__major", "version__minor")


def chain_records(*, after=None):
    """All acknowledgements in chain order (or those after record number `after`), with the slug and
    version number their seal covers."""
    for row in _chain_rows(after=after).iterator(chunk_size=BATCH_ROWS):
        record = ChainRecord(zip(CHAIN_COLUMNS, row, strict=True))
        record["version_number"] = f"{record['version_major']}.{record['version_minor']}"
        yield record


# On PostgreSQL the check first reads the chain as COPY text, a range of records at a time, and
# vouches for as long a beginning of it as it can, without a mapping per record (several times
# faster); the plain walk (chain.verify_chain over chain_records) then goes on after the last record
# vouched for. A record is vouched for only when it passes every check the plain walk makes, on the
# very values chain_records would read: at a break, or at anything not read exactly as chain_records
# reads it (an escape COPY does not write, a timestamp in another form), the fast reading stops. So
# every verdict, and the record it names, is the plain walk's.
#
# Outside a transaction of the caller's, the check reads in one snapshot of its own (REPEATABLE READ),
# and other processes (VERIFY_PROCESSES, each with a connection of its own in that same snapshot) read
# the ranges side by side: a record's seal depends only on its own values and the seal stored in the
# record before it, so each range is checked on its own, and the ranges are taken in order until the
# first that is not clean through. Within a caller's transaction (whose changes other connections do
# not see), where this process may not fork (_can_fork), or when the processes cannot do it (no
# connection left), this process reads the ranges in turn.
VERIFY_RANGE = 50_000  # records per COPY: at most this many are read in vain after a break
# Each process holds a database connection of its own: a few are enough.
VERIFY_PROCESSES = min(4, os.cpu_count() or 1)

# A timestamptz as PostgreSQL writes it in a session on UTC with DateStyle ISO (Django's connection):
# fractional seconds without trailing zeros. Years before 1 or after 9999 (" BC", five digits,
# "infinity") do not match, and chain_records cannot read them either.
_COPY_TIMESTAMP = re.compile(r"(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)(?:\.(\d{1,6}))?\+00", re.ASCII)
# The escapes COPY TO writes in text format ("\N" alone is NULL).
_COPY_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_COPY_ESCAPED = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}
# Where each column is in a row of CHAIN_COLUMNS, with the version number appended to it.
_AT = {name: position for position, name in enumerate([*CHAIN_COLUMNS, "version_number"])}
# The sealed values of each seal format (by its number as text), picked from such a row.
_SEALED = {str(number): itemgetter(*(_AT[name] for name in fields)) for number, fields in chain.SEAL_FORMATS.items()}


def _unescaped(escape):
    return _COPY_ESCAPED[escape[1]]  # a KeyError: not an escape COPY writes


def _copy_fields(row):
    """The columns of a COPY text row (bytes, ending with a newline) as chain_records reads them, except
    that integers and timestamps are still text."""
    line = str(row, "utf-8")
    fields = line[:-1].split("\t")
    if "\\" in line:  # a NULL, or a character COPY escapes
        fields = [None if field == "\\N" else _COPY_ESCAPE.sub(_unescaped, field) if "\\" in field else field
                  for field in fields]
    return fields


def _sealed_timestamp(text):
    """The sealed form (chain.py) of a timestamp PostgreSQL wrote as `text` (None: NULL)."""
    if text is None:
        return ""
    match = _COPY_TIMESTAMP.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a timestamp as COPY writes it in UTC")
    date, time, fraction = match.groups()
    return f"{date}T{time}.{fraction or '':0<6}Z"


def _vouch(rows, after):
    """Go through COPY text rows of _chain_rows (one record each, in chain order) that follow record
    `after` ((sequence, seal); None: from the start). Returns the (sequence, seal) of the last record
    up to which the plain walk would find nothing wrong, or `after` if not even the next one."""
    sequence_at, previous_at, seal_at, format_at, cycle_at = (
        _AT["sequence"], _AT["previous_seal"], _AT["seal"], _AT["seal_format"], _AT["cycle"])
    acknowledged_at, opened_at, ip_at, major_at, minor_at = (
        _AT["acknowledged_at"], _AT["first_opened_at"], _AT["ip_address"], _AT["version_major"], _AT["version_minor"])
    read_at, seconds_at = _AT["read_to_end_at"], _AT["seconds_on_text"]
    columns, seal_of = len(CHAIN_COLUMNS), chain.seal_of
    expected, previous_seal = (after[0] + 1, after[1]) if after else (1, chain.GENESIS_SEAL)
    vouched = after
    for row in rows:  # once per record: the positions above are local names
        try:
            fields = _copy_fields(row)
            if len(fields) != columns:
                break
            sealed = _SEALED[fields[format_at]]
            sequence = int(fields[sequence_at])
            fields[sequence_at], fields[format_at] = sequence, int(fields[format_at])
            fields[cycle_at] = int(fields[cycle_at])
            fields[acknowledged_at] = _sealed_timestamp(fields[acknowledged_at])
            fields[opened_at] = _sealed_timestamp(fields[opened_at])
            fields[read_at] = _sealed_timestamp(fields[read_at])
            fields[seconds_at] = "" if fields[seconds_at] is None else int(fields[seconds_at])
        except (KeyError, TypeError, ValueError):
            break  # not read here as chain_records reads it: left to the plain walk
        fields[ip_at] = fields[ip_at] or ""
        fields.append(f"{fields[major_at]}.{fields[minor_at]}")
        if sequence != expected or fields[previous_at] != previous_seal or seal_of(sealed(fields)) != fields[seal_at]:
            break
        previous_seal = fields[seal_at]
        vouched, expected = (sequence, previous_seal), expected + 1
    return vouched


def _copy_statement(*, after, through):
    """COPY of the rows of _chain_rows after record number `after` (None: all) up to `through`."""
    query, params = _chain_rows(after=after, through=through).query.sql_with_params()
    return f"COPY ({connection.ops.compose_sql(query, params)}) TO STDOUT"


def _read_to_the_end(copy):
    """Read what is left of a COPY: its connection takes no other command until then."""
    while copy.read():
        pass


def _vouched_in_turn(last):
    """_vouch over the ranges of the chain up to record number `last`, one after the other, on this
    process's connection, until one is not clean through. Returns what they vouched for."""
    vouched, done = None, 0
    with connection.cursor() as cursor:
        while done < last:
            through = min(done + VERIFY_RANGE, last)
            with cursor.cursor.copy(_copy_statement(after=vouched and vouched[0], through=through)) as copy:
                vouched = _vouch(copy, vouched)
                _read_to_the_end(copy)
            if vouched is None or vouched[0] != through:
                break
            done = through
    return vouched


def _vouch_apart(database, snapshot, statement, start):
    """In another process: _vouch over one range, read with `statement` on a connection of its own in
    the exported snapshot `snapshot`. `start` is the number of the record before the range (read with
    it, for its seal), or 0 for the first range. Returns (the record before the range as read: (start,
    seal), or None for the first range; what _vouch vouched for), or (None, None) if that record is
    not there."""
    with psycopg.connect(**database) as own:
        own.isolation_level, own.read_only = psycopg.IsolationLevel.REPEATABLE_READ, True
        own.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(snapshot))
        own.execute("SET TIME ZONE 'UTC'")  # as Django's connection: the timestamps' text in UTC
        with own.cursor().copy(statement) as copy:
            before = None
            if start:
                row = copy.read()
                fields = _copy_fields(row) if row else []
                if len(fields) != len(CHAIN_COLUMNS) or fields[_AT["sequence"]] != str(start):
                    _read_to_the_end(copy)
                    return None, None
                before = (start, fields[_AT["seal"]])
            vouched = _vouch(copy, before)
            _read_to_the_end(copy)
    return before, vouched


def _vouched_apart(last):
    """_vouch over the ranges of the chain up to record number `last` in VERIFY_PROCESSES processes, in
    the snapshot of this process's transaction. Returns what the ranges, taken in order until one is
    not clean through, vouched for."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_export_snapshot()")
        [snapshot] = cursor.fetchone()
    # Django's connection settings, without what only Django's own connection uses.
    database = {name: value for name, value in connection.get_connection_params().items()
                if name not in ("context", "cursor_factory")}
    starts = iter(range(0, last, VERIFY_RANGE))
    vouched, pending = None, deque()
    pool = ProcessPoolExecutor(VERIFY_PROCESSES, mp_context=multiprocessing.get_context("fork"))

    def submit_next():
        start = next(starts, None)
        if start is not None:
            through = min(start + VERIFY_RANGE, last)
            statement = _copy_statement(after=start - 1 if start else None, through=through)
            pending.append((through, pool.submit(_vouch_apart, database, snapshot, statement, start)))

    try:
        for _ in range(2 * VERIFY_PROCESSES):  # a range waiting for every process as it finishes one
            submit_next()
        while pending:
            through, future = pending.popleft()
            before, reached = future.result()
            if before != vouched:  # a range counts only from where the ranges before it ended
                break
            vouched = reached
            if reached is None or reached[0] != through:
                break
            submit_next()
    finally:
        pool.shutdown(cancel_futures=True)  # the ranges after the first not clean through are not needed
    return vouched


def _can_fork():
    """Whether this process may start others by forking: not while other threads run (a lock one of
    them holds at that moment would stay held in the new process), not in a daemonic process (a
    Celery worker's: multiprocessing refuses it children), and not where there is no fork."""
    return (threading.active_count() == 1 and not multiprocessing.current_process().daemon
            and "fork" in multiprocessing.get_all_start_methods())


def vouched_beginning(*, own_snapshot):
    """(sequence, seal) of the last record of the longest beginning of the chain _vouch vouches for, or None."""
    last = Acknowledgement.objects.aggregate(last=Max("sequence"))["last"] or 0
    if own_snapshot and last > VERIFY_RANGE and VERIFY_PROCESSES > 1 and _can_fork():
        try:
            return _vouched_apart(last)
        except (psycopg.Error, OSError, BrokenProcessPool) as error:
            logger.warning("The chain check reads in one process: other processes could not (%s).", error)
    return _vouched_in_turn(last)


@contextmanager
def own_snapshot():
    """On PostgreSQL, outside a transaction of the caller's: a read-only transaction in which every
    read sees the same moment (True). Otherwise the caller's transaction, or none (False)."""
    if connection.vendor != "postgresql" or not connection.get_autocommit():
        yield False
        return
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield True
