"""What a restored (or promoted) database is checked for: the rows of every table, and every audit chain
of every audit table verified with the kit's own verification (``bianjie.kit.audit.AuditLog.verify``).

Audit tables are found in the documents catalog (``bianjie_tables``) by their key shape (partition key
``chain``, sort key ``seq``), so a renamed stack or a second audit table is checked too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg
from bianjie.kit.audit import AuditLog
from bianjie.kit.documents.postgres import CATALOG, PostgresDocumentStore
from psycopg import sql


@dataclass
class CheckReport:
    tables: dict[str, int] = field(default_factory=dict)  # SQL table -> rows
    chains: dict[str, int] = field(default_factory=dict)  # "<audit table>/<chain>" -> records
    problems: list[dict[str, Any]] = field(default_factory=list)

    @property
    def rows_checked(self) -> int:
        return sum(self.tables.values())

    @property
    def chains_ok(self) -> bool:
        return not self.problems

    def as_json(self) -> dict[str, Any]:
        return {
            "tables": self.tables,
            "rows_checked": self.rows_checked,
            "chains": len(self.chains),
            "audit_records": sum(self.chains.values()),
            "chains_ok": self.chains_ok,
            "problems": self.problems,
        }


def row_counts(dsn: str) -> dict[str, int]:
    """Rows of every ordinary table in the connection's schema (the documents tables and their catalog)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        names = [
            str(row[0])
            for row in conn.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE c.relkind = 'r' AND n.nspname = current_schema() ORDER BY c.relname"
            )
        ]
        counts = {}
        for name in names:
            row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(name))).fetchone()
            counts[name] = int(row[0]) if row else 0
        return counts


def audit_tables(dsn: str) -> list[str]:
    """The document tables (logical names as the catalog has them) shaped like the audit log."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        exists = conn.execute("SELECT to_regclass(%s)", [CATALOG]).fetchone()
        if not exists or exists[0] is None:
            return []
        rows = conn.execute(
            f"SELECT name FROM {CATALOG} WHERE spec->>'partition_key' = 'chain' AND spec->>'sort_key' = 'seq'"
            " ORDER BY name"
        ).fetchall()
    return [str(row[0]) for row in rows]


def check_database(dsn: str) -> CheckReport:
    report = CheckReport(tables=row_counts(dsn))
    tables = audit_tables(dsn)
    if not tables:
        return report
    store = PostgresDocumentStore(dsn, max_connections=2)
    try:
        for table in tables:
            # service only names the chains this log would append to; verification reads every chain
            log = AuditLog(store, table, service="ops")
            for chain_report in log.verify_all():
                report.chains[f"{table}/{chain_report.chain}"] = chain_report.records
                for issue in chain_report.issues:
                    report.problems.append({"table": table, "chain": chain_report.chain, **issue.model_dump()})
    finally:
        store.close()
    return report
