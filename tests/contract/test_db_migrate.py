"""`bianjie db migrate` creates on PostgreSQL every table of the root and nested stacks that exists on the
stage served, with the specs the functions register (bianjie/tables.json)."""

from __future__ import annotations

import pytest
from bianjie.kit.documents.port import TableNotFound
from bianjie.kit.tables import manifest, table_spec
from bianjie_dev.cli.main import main

pytestmark = pytest.mark.postgres


def test_migrate_follows_the_stage_and_the_manifest(postgres_dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    from bianjie.kit.documents.postgres import PostgresDocumentStore

    assert main(["db", "migrate", "--dsn", postgres_dsn, "--stack-name", "mig", "--stage", "prod"]) == 0
    created = dict(line.split("\t") for line in capsys.readouterr().out.splitlines())
    assert "PayStandinTable" not in created
    by_logical = {entry["logical_id"]: name for name, entry in manifest().items()}
    assert set(by_logical) - {"PayStandinTable"} <= set(created)  # root and nested stacks alike
    store = PostgresDocumentStore(postgres_dsn)
    try:
        for logical_id, physical in created.items():
            if logical_id in by_logical:
                assert store.spec(physical) == table_spec(by_logical[logical_id], physical), logical_id
        with pytest.raises(TableNotFound):
            store.spec("mig-PayStandinTable")
        assert main(["db", "migrate", "--dsn", postgres_dsn, "--stack-name", "mig", "--stage", "local"]) == 0
        assert "PayStandinTable\tmig-PayStandinTable" in capsys.readouterr().out
        assert store.spec("mig-PayStandinTable") == table_spec("PAY_STANDIN_TABLE", "mig-PayStandinTable")
    finally:
        store.close()
