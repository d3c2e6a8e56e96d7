"""Queries that page requests make every time, built and compiled by the ORM once per process.

Building a queryset and compiling it to SQL costs several times what PostgreSQL takes to run it
(`bench/run.py --profile` on the employee pages). A PreparedQuery builds its queryset once per
database, with marks in place of the values that change from request to request (an id, a slug,
a day), keeps the SQL, and runs it with each request's values. The rows become what the queryset
itself would give (model instances with their select_related objects and annotations, values or
tuples, with the database's converters): the queryset's own iterable reads them.

On PostgreSQL with server-side binding (settings: DATABASE_PREPARED_STATEMENTS) the statement is
also prepared on the server, so it is not planned again on every request either. Only these
statements are: with every statement prepared, PostgreSQL's generic plans made the dashboards'
large aggregates slower than planning them for their values (bench/bench_dashboards.py).

A value of None reaches the SQL as NULL, so a comparison with it matches nothing (the ORM would
have written IS NULL instead).
"""

import copy
import threading
from collections import OrderedDict
from contextlib import contextmanager
from datetime import date

from django.db import connections, router

# Values no query writes itself: they mark, in the compiled SQL, where each value goes. The integer
# fits every integer field (the ORM folds a comparison with an out-of-range value away, e.g. a
# negative one for a PositiveIntegerField, and the mark with it).
_INT_MARK = 2_147_483_000
_STR_MARK = "\x00prepared-query-mark-{}\x00"


def _marks(kinds):
    marks = []
    for index, kind in enumerate(kinds):
        if kind is int:
            marks.append(_INT_MARK + index)
        elif kind is str:
            marks.append(_STR_MARK.format(index))
        elif kind is date:
            marks.append(date(1, 1, index + 1))
        else:
            raise TypeError(f"A PreparedQuery takes int, str or date values, not {kind!r}.")
    return marks


@contextmanager
def _prepared_on_server(connection):
    """Statements run in this block are prepared on the server at their first run (psycopg's
    prepare_threshold 0) and reuse the prepared statement afterwards. Connections are per thread."""
    if connection.vendor != "postgresql" or not connection.settings_dict["OPTIONS"].get("server_side_binding"):
        yield
        return
    connection.ensure_connection()
    driver = connection.connection
    threshold, driver.prepare_threshold = driver.prepare_threshold, 0
    try:
        yield
    finally:
        driver.prepare_threshold = threshold


class PreparedQuery:
    """`build(*values)` returns the queryset; `kinds` are the types of the values (int, str, date).

    Every value must reach the SQL as a parameter (not folded into the SQL text, not left out):
    compiling checks that each mark is found.
    """

    def __init__(self, model, build, *kinds):
        self.model, self.build, self.kinds = model, build, kinds
        self._compiled = {}

    def _compile(self, alias):
        connection = connections[alias]
        marks = _marks(self.kinds)
        queryset = self.build(*marks).using(alias)
        compiler = queryset.query.get_compiler(using=alias)
        sql, params = compiler.as_sql()
        # How the ORM passed each mark on: SQLite takes dates as text, and with server-side binding
        # PostgreSQL integers come typed (psycopg's Int4 for a 32-bit column); values go the same way.
        passed = [connection.ops.adapt_datefield_value(mark) if isinstance(mark, date) else mark for mark in marks]
        slots = [(position, index, type(param)) for position, param in enumerate(params)
                 for index, mark in enumerate(passed) if isinstance(param, type(mark)) and param == mark]
        missing = set(range(len(marks))) - {index for _, index, _ in slots}
        if missing:
            raise ValueError(f"The query does not pass value(s) {sorted(missing)} to the database as parameters.")
        compiled = self._compiled[alias] = (queryset, compiler, sql, tuple(params), slots)
        return compiled

    def __call__(self, *values, using=None):
        """The queryset's rows for these values, as a list."""
        if len(values) != len(self.kinds):
            raise TypeError(f"This query takes {len(self.kinds)} values, not {len(values)}.")
        alias = using or router.db_for_read(self.model)
        queryset, compiler, sql, params, slots = self._compiled.get(alias) or self._compile(alias)
        connection = connections[alias]
        params = list(params)
        for position, index, passed_as in slots:
            value = values[index]
            if isinstance(value, date):
                value = connection.ops.adapt_datefield_value(value)
            elif value is not None and passed_as not in (int, str):
                value = passed_as(value)
            params[position] = value
        run = copy.copy(compiler)
        run.connection = connection  # this thread's connection, not the one it was compiled on
        run.as_sql = lambda *args, **kwargs: (sql, params)
        query = copy.copy(queryset.query)
        query.get_compiler = lambda *args, **kwargs: run
        # A shallow copy of the queryset that reads through `run` (copy.copy would evaluate it).
        rows = object.__new__(type(queryset))
        rows.__dict__.update(queryset.__dict__, _query=query, _result_cache=None)
        with _prepared_on_server(connection):
            return list(rows)


class PreparedQueries:
    """PreparedQuery per key, for a query whose SQL depends on a few inputs besides its values (a
    version's settings, a day, filters, a page size): a client paging through a list asks the same
    query with another cursor. The key must name everything the SQL text and its fixed values come
    from; the `size` most recently used are kept per process."""

    def __init__(self, model, *kinds, size=64):
        self.model, self.kinds, self.size = model, kinds, size
        self._queries = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key, build):
        """The PreparedQuery of `key`, built by `build(*values)` the first time."""
        with self._lock:
            query = self._queries.pop(key, None) or PreparedQuery(self.model, build, *self.kinds)
            self._queries[key] = query
            if len(self._queries) > self.size:
                self._queries.popitem(last=False)
        return query

    def clear(self):
        with self._lock:
            self._queries.clear()
