"""The state database: pragmas, migrations, and each writer's checks inside its transaction."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gateway.state import (
    FILENAME,
    AlreadyExists,
    BadToken,
    EndpointRecord,
    EndpointStatus,
    InUse,
    JobStatus,
    NotFound,
    Query,
    SortBy,
    StateCorrupt,
    StateStore,
    WrongState,
)
from gateway.state.schema import MIGRATIONS, migrate


class Clock:
    """A clock the test moves: distinct, ordered times without waiting."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    return StateStore(tmp_path / FILENAME, clock=Clock())


def endpoint_on(store: StateStore, name: str = "e", model: str = "m", config: str = "c") -> None:
    if store.get_model(model) is None:
        store.add_model(model, f"arn:{model}", {"ModelName": model})
    if store.get_config(config) is None:
        store.add_config(config, f"arn:{config}", {}, {"AllTraffic": model})
    store.add_endpoint(name, f"arn:{name}", config, {})


def test_a_new_database_is_in_wal_mode_at_the_last_migration(tmp_path: Path) -> None:
    path = tmp_path / "state" / FILENAME
    with StateStore(path) as store:
        assert store.version == MIGRATIONS[-1][0]
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == MIGRATIONS[-1][0]
    conn.close()
    with StateStore(path) as again:  # opening again applies nothing twice
        assert again.version == MIGRATIONS[-1][0]
        assert again.check() == []


def test_a_failing_migration_leaves_the_database_at_the_version_before(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "x.db", isolation_level=None)
    migrations = [
        (1, "CREATE TABLE a (x INTEGER);"),
        (2, "CREATE TABLE b (y); CREATE TABLE a (z);"),
    ]
    with pytest.raises(sqlite3.OperationalError):
        migrate(conn, migrations)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {"a"}  # b, created by the failed migration, was rolled back with it
    assert migrate(conn, [(1, "CREATE TABLE a (x INTEGER);"), (2, "CREATE TABLE b (y);")]) == 2


def test_endpoints_of_an_older_database_get_their_own_copy(tmp_path: Path) -> None:
    """Migration 4: endpoints made before they kept a copy get one from what exists."""
    path = tmp_path / FILENAME
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, MIGRATIONS[:3])
    conn.executescript(
        """
        INSERT INTO models VALUES ('m', 'M', 'arn:m', 1, '{"ModelName": "M"}');
        INSERT INTO models VALUES ('n', 'n', 'arn:n', 1, '{"ModelName": "n"}');
        INSERT INTO endpoint_configs VALUES ('c', 'C', 'arn:c', 1, '{"EndpointConfigName": "C"}');
        INSERT INTO endpoint_configs VALUES ('d', 'd', 'arn:d', 1, '{"EndpointConfigName": "d"}');
        INSERT INTO config_models VALUES ('c', 0, 'A', 'M', 'm');
        INSERT INTO config_models VALUES ('d', 0, 'A', 'n', 'n');
        INSERT INTO endpoints (key, name, arn, config_key, config_name, pending_key, pending_name,
            status, created, modified, request)
            VALUES ('e', 'E', 'arn:e', 'c', 'C', 'd', 'd', 'Updating', 1, 1, '{}');
        """
    )
    conn.close()
    with StateStore(path) as store:
        got = store.get_endpoint("e")
        assert got is not None and got.deployed is not None and got.pending_deployed is not None
        assert (got.deployed.config, got.deployed.models) == ("C", {"M": {"ModelName": "M"}})
        assert (got.pending_deployed.config, got.pending_deployed.models) == (
            "d",
            {"n": {"ModelName": "n"}},
        )
        store.delete_config("c")  # no foreign key holds it any more
        assert store.check() == []


def test_a_database_newer_than_the_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / FILENAME
    StateStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(StateCorrupt, match="version 99"):
        StateStore(path)


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / FILENAME
    path.write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(StateCorrupt, match="not a usable state database"):
        StateStore(path)


def test_names_are_unique_whatever_their_case_and_keep_theirs(store: StateStore) -> None:
    store.add_model("Churn", "arn", {})
    with pytest.raises(AlreadyExists):
        store.add_model("churn", "arn", {})
    found = store.get_model("CHURN")
    assert found is not None and found.name == "Churn"


def test_a_config_needs_its_models_and_an_endpoint_its_config(store: StateStore) -> None:
    with pytest.raises(NotFound) as missing:
        store.add_config("c", "arn", {}, {"AllTraffic": "nope"})
    assert (missing.value.kind, missing.value.name) == ("model", "nope")
    assert store.get_config("c") is None
    with pytest.raises(NotFound) as no_config:
        store.add_endpoint("e", "arn", "c", {})
    assert no_config.value.kind == "endpoint configuration"
    assert store.get_endpoint("e") is None


def test_an_endpoint_keeps_its_own_copy_of_what_it_was_deployed_with(store: StateStore) -> None:
    store.add_model("m", "arn:m", {"ModelName": "m", "PrimaryContainer": {"Image": "sklearn"}})
    store.add_config("C", "arn:c", {"EndpointConfigName": "C"}, {"AllTraffic": "m"})
    store.add_endpoint("e", "arn:e", "c", {})
    # As on SageMaker: what an endpoint uses may be deleted; it runs its own copy.
    store.delete_config("c")
    store.delete_model("m")
    assert store.get_model("m") is None and store.get_config("c") is None
    got = store.get_endpoint("e")
    assert got is not None and got.deployed is not None
    assert got.deployed.config == "C" and got.deployed.request == {"EndpointConfigName": "C"}
    assert got.deployed.models == {
        "m": {"ModelName": "m", "PrimaryContainer": {"Image": "sklearn"}}
    }
    # A model and config made again under the same names do not change what it runs.
    store.add_model("m", "arn:m", {"ModelName": "m", "PrimaryContainer": {"Image": "pytorch"}})
    store.add_config("c", "arn:c", {"EndpointConfigName": "c", "New": 1}, {"AllTraffic": "m"})
    again = store.get_endpoint("e")
    assert again is not None and again.deployed == got.deployed
    assert store.check() == []


def test_a_model_a_running_job_uses_cannot_be_deleted(store: StateStore) -> None:
    store.add_model("m", "arn", {})
    store.add_job("j", "arn:j", "m", {"ModelName": "m"})
    with pytest.raises(InUse) as model:
        store.delete_model("m")
    assert model.value.users == ['transform job "j"']


def test_admit_refuses_inside_the_transaction(store: StateStore) -> None:
    endpoint_on(store, "a")
    seen: list[tuple[str, list[str]]] = []

    def refuse(record: EndpointRecord, others: list[EndpointRecord]) -> None:
        seen.append((record.name, [o.name for o in others]))
        raise WrongState("endpoint", record.name, "over budget")

    with pytest.raises(WrongState):
        store.add_endpoint("b", "arn:b", "c", {}, admit=refuse)
    assert seen == [("b", ["a"])]
    assert store.get_endpoint("b") is None  # nothing written


def test_an_update_moves_to_the_pending_config_or_rolls_back(store: StateStore) -> None:
    endpoint_on(store)
    store.add_config("c2", "arn", {}, {"AllTraffic": "m"})
    with pytest.raises(WrongState):  # still Creating
        store.begin_update("e", "c2")
    store.set_endpoint_status("e", EndpointStatus.IN_SERVICE, expect={EndpointStatus.CREATING})
    updating = store.begin_update("e", "c2")
    assert (updating.status, updating.config, updating.pending_config) == ("Updating", "c", "c2")
    assert updating.pending_deployed is not None and updating.pending_deployed.config == "c2"
    back = store.rollback_update("e", "container-1 exited")
    assert (back.status, back.config, back.pending_config) == ("InService", "c", None)
    assert back.failure_reason == "container-1 exited" and back.pending_deployed is None
    assert back.deployed is not None and back.deployed.config == "c"
    store.begin_update("e", "c2")
    store.delete_config("c2")  # the update goes on with its own copy
    done = store.finish_update("e")
    assert (done.status, done.config, done.failure_reason) == ("InService", "c2", None)
    assert done.deployed is not None and done.deployed.config == "c2"
    with pytest.raises(WrongState):
        store.finish_update("e")


def test_expect_keeps_a_deleted_endpoint_from_coming_back(store: StateStore) -> None:
    endpoint_on(store)
    store.begin_delete("e")
    with pytest.raises(WrongState) as wrong:
        store.set_endpoint_status("e", EndpointStatus.IN_SERVICE, expect={EndpointStatus.CREATING})
    assert wrong.value.status == "Deleting"
    got = store.get_endpoint("e")
    assert got is not None and got.status is EndpointStatus.DELETING


def test_a_failed_endpoint_is_created_again_on_a_config(store: StateStore) -> None:
    endpoint_on(store)
    store.set_endpoint_status("e", EndpointStatus.FAILED, "no ping")
    store.add_config("c2", "arn", {}, {"AllTraffic": "m"})
    again = store.recreate_endpoint("e", "c2")
    assert (again.status, again.config, again.failure_reason) == ("Creating", "c2", None)
    with pytest.raises(WrongState):
        store.recreate_endpoint("e", "c2")


def test_jobs_go_from_in_progress_to_an_end(store: StateStore) -> None:
    store.add_model("m", "arn", {})
    job = store.add_job("j", "arn:j", "M", {"ModelName": "M"})
    assert (job.status, job.model, job.started, job.ended) == ("InProgress", "m", None, None)
    with pytest.raises(InUse):
        store.delete_model("m")
    started = store.job_started("j")
    assert started.started is not None
    store.set_job_progress("j", {"records": 10})
    stopping = store.request_stop("j")
    assert stopping.status is JobStatus.STOPPING and stopping.progress == {"records": 10}
    with pytest.raises(WrongState):  # the stop won: a late "Completed" is refused
        store.set_job_status("j", JobStatus.COMPLETED, expect={JobStatus.IN_PROGRESS})
    stopped = store.set_job_status("j", JobStatus.STOPPED, expect={JobStatus.STOPPING})
    assert stopped.ended is not None and store.job_started("j").started == started.started
    with pytest.raises(WrongState):
        store.request_stop("j")
    store.delete_model("m")  # a finished job no longer holds its model
    with pytest.raises(NotFound):
        store.set_job_progress("nope", {})


def test_pages_follow_the_order_without_gaps_or_repeats(store: StateStore) -> None:
    for i in range(23):
        store.add_model(f"m{i:02d}", "arn", {})
    for sort_by in (SortBy.NAME, SortBy.CREATION_TIME):
        for descending in (False, True):
            seen: list[str] = []
            token = None
            while True:
                page = store.list_models(
                    Query(sort_by=sort_by, descending=descending, limit=5, token=token)
                )
                assert len(page.items) <= 5
                seen += [m.name for m in page.items]
                if page.next_token is None:
                    break
                token = page.next_token
            expected = [f"m{i:02d}" for i in range(23)]
            assert seen == (expected[::-1] if descending else expected)


def test_a_page_survives_a_row_created_between_two_calls(store: StateStore) -> None:
    for name in ("a", "b", "c", "d"):
        store.add_model(name, "arn", {})
    first = store.list_models(Query(sort_by=SortBy.NAME, descending=False, limit=2))
    store.add_model("aa", "arn", {})  # sorts before the page boundary: not repeated, not skipped
    rest = store.list_models(
        Query(sort_by=SortBy.NAME, descending=False, limit=10, token=first.next_token)
    )
    assert [m.name for m in first.items + rest.items] == ["a", "b", "c", "d"]


def test_filters_combine(store: StateStore) -> None:
    for name in ("churn-a", "churn-b", "houses"):
        endpoint_on(store, name, model=f"m-{name}", config=f"c-{name}")
    store.set_endpoint_status("churn-b", EndpointStatus.IN_SERVICE)
    page = store.list_endpoints(Query(name_contains="CHURN", status="Creating"))
    assert [e.name for e in page.items] == ["churn-a"]
    created = store.get_endpoint("churn-b")
    assert created is not None
    later = store.list_endpoints(Query(created_after=created.created))
    assert [e.name for e in later.items] == ["houses"]
    modified = store.list_endpoints(Query(modified_after=created.created, sort_by=SortBy.STATUS))
    assert [e.name for e in modified.items] == ["churn-b", "houses"]


def test_tokens_are_checked(store: StateStore) -> None:
    for name in ("a", "b", "c"):
        store.add_model(name, "arn", {})
    page = store.list_models(Query(limit=1, sort_by=SortBy.NAME))
    assert page.next_token is not None
    with pytest.raises(BadToken, match="another SortBy"):
        store.list_models(Query(limit=1, sort_by=SortBy.CREATION_TIME, token=page.next_token))
    for token in ("garbage!", "e30", "WzEsMiwzXQ"):
        with pytest.raises(BadToken):
            store.list_models(Query(token=token))
