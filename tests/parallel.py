"""Running the suite on several pytest-xdist workers (`make test` runs `pytest -n 2`).

Loaded as a plugin (`-p tests.parallel` in pyproject.toml): the controller process, which runs no
tests and reads no conftest.py, needs the scheduler below.

* Each worker has what it needs of its own: pytest-django gives it a test database (test_<name>_gw0,
  …); a Redis database comes from here (`redis_url`). Ports are the system's free ones (live server,
  OIDC provider, SMTP, time-stamping authority) and files go to each test's tmp_path, which xdist
  keeps apart per worker.
* The order of work: the few long tests first, spread over the workers, then everything else handed
  out as workers free up (`HeavyFirstScheduling`). In pytest-django's order the long transactional
  tests come last, where two of them could run one after the other on one worker while the other idles.
* What that order needs: pytest-django runs transactional tests after the others because a
  transactional test empties every table when it ends, the role groups and the other rows the
  migrations made included, and the other tests rely on those. A worker that ran a long transactional
  test first loads those rows again before its next test that relies on them (`pytest_runtest_setup`),
  from the copy that serialized_rollback loads at the start of a transactional test.
"""

import os
import urllib.parse

import pytest

# The tests that take longest, with about how many seconds each takes (2 cores, one worker each). A
# path names a whole module: its tests go to one worker together, so that a module-scoped fixture
# (the accessibility survey) is built once. Only the order of the work depends on these numbers.
HEAVY = {
    "tests/test_tamper_trials.py": 150,
    "tests/test_accessibility.py": 140,
    "tests/test_fuzzing.py": 65,
    "tests/test_reminder_worker.py": 35,
    "tests/test_deployment.py::test_collectstatic_succeeds_in_the_docker_build_context": 24,
}


def worker_index():
    """0, 1, … on pytest-xdist's workers gw0, gw1, …; None when the tests run in one process."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")  # set by pytest-xdist before it loads any plugin
    return int(worker.removeprefix("gw")) if worker else None


def redis_url():
    """TEST_REDIS_URL on worker gw0 (and without xdist); worker gwN uses the database N below it, so
    that workers never see each other's queues or kombu's bookkeeping of unacknowledged messages
    (redis://…/15: gw0 uses 15, gw1 14)."""
    url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    index = worker_index()
    if not index:
        return url
    parts = urllib.parse.urlsplit(url)
    database = int(parts.path.strip("/") or 0) - index
    if database < 0:
        raise pytest.UsageError(f"TEST_REDIS_URL={url} leaves no Redis database for worker gw{index}: "
                                "give a database number at least as high as the number of workers minus one.")
    return urllib.parse.urlunsplit(parts._replace(path=f"/{database}"))


# The order of work (controller) ------------------------------------------------------------------------


def _heavy_units(collection):
    """[(seconds, [indices into the collection])] for the HEAVY entries that were collected."""
    units = {}
    for index, nodeid in enumerate(collection):
        for prefix in HEAVY:
            if nodeid == prefix or nodeid.startswith(prefix + ("::" if prefix.endswith(".py") else "[")):
                units.setdefault(prefix, []).append(index)
                break
    return [(HEAVY[prefix], indices) for prefix, indices in units.items()]


def _scheduler_class():
    from xdist.scheduler import LoadScheduling

    class HeavyFirstScheduling(LoadScheduling):
        """`--dist load` with the HEAVY tests sent first: each to the worker with the least heavy work
        so far, longest first. The rest follows in pytest's order, handed out by LoadScheduling."""

        def schedule(self):
            assert self.collection_is_completed
            if self.collection is not None or not self._check_nodes_have_same_collection():
                super().schedule()  # a later call, or a collection mismatch LoadScheduling reports
                return
            self.collection = next(iter(self.node2collection.values()))
            units = _heavy_units(self.collection)
            heavy = {index for _, indices in units for index in indices}
            self.pending[:] = [index for index in range(len(self.collection)) if index not in heavy]
            if self.maxschedchunk is None:
                self.maxschedchunk = len(self.collection)
            load = dict.fromkeys(self.nodes, 0)
            for seconds, indices in sorted(units, key=lambda unit: -unit[0]):
                node = min(self.nodes, key=load.__getitem__)
                load[node] += seconds
                self.node2pending[node].extend(indices)
                node.send_runtest_some(indices)
            # A worker busy with heavy tests holds two more (LoadScheduling needs a next one in hand);
            # the others start on a quarter of their share, as with `--dist load`.
            share = max(2, len(self.pending) // len(self.nodes) // 4)
            for node in self.nodes:
                self._send_tests(node, 2 if load[node] else share)
            if not self.pending:
                for node in self.nodes:
                    node.shutdown()

    return HeavyFirstScheduling


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    if config.getoption("dist") == "load":  # another --dist given on the command line is used as given
        return _scheduler_class()(config, log)
    return None


# Rows that migrations create, after a transactional test (worker) ---------------------------------------

_tables_emptied = False  # by a transactional test's end, in this process, since the rows were last loaded


def _database_use(item):
    """(uses the database, transactional), decided as pytest-django decides it (`_django_db_helper`)."""
    from pytest_django.fixtures import validate_django_db

    marker = item.get_closest_marker("django_db")
    transactional = reset_sequences = False
    if marker:
        transactional, reset_sequences, *_ = validate_django_db(marker)
    fixtures = set(getattr(item, "fixturenames", ()))
    transactional = transactional or reset_sequences or bool({"transactional_db", "live_server"} & fixtures)
    return bool(marker) or transactional or "db" in fixtures, transactional


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Before a non-transactional database test on a worker whose tables a transactional test emptied:
    the migrations' rows again, from the copy pytest-django keeps for serialized_rollback. This runs
    before the test's fixtures, so a module-scoped fixture that builds data finds them as well. In one
    process pytest-django's order means it never happens."""
    global _tables_emptied
    if not _tables_emptied or _database_use(item) != (True, False):
        return
    from django.core.management import call_command
    from django.db import connections

    with item.config.stash[_blocker_key()].unblock():
        for alias in connections:
            connection = connections[alias]
            rows = getattr(connection, "_test_serialized_contents", None)
            if rows is None:
                raise pytest.UsageError(
                    f"{item.nodeid} needs the rows the migrations made, which a transactional test emptied on "
                    "this worker, and pytest-django kept no copy: a HEAVY transactional test in tests/parallel.py "
                    "must use serialized_rollback=True.")
            # The flush also takes away what a transactional test without serialized_rollback left (the
            # content types post_migrate made again); then the rows are those after the migrations.
            call_command("flush", verbosity=0, interactive=False, database=alias, reset_sequences=False,
                         inhibit_post_migrate=True)
            connection.creation.deserialize_db_from_string(rows)
    _tables_emptied = False


def pytest_runtest_teardown(item):
    global _tables_emptied
    if _database_use(item)[1]:
        _tables_emptied = True


def _blocker_key():
    from pytest_django.plugin import blocking_manager_key

    return blocking_manager_key
