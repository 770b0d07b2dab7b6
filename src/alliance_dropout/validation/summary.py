"""The validation report (aggregates only: no raw values, no client ids) and its summaries."""

from __future__ import annotations

import math
from typing import Any

from alliance_dropout import schemas as s
from alliance_dropout.config import DataConfig
from alliance_dropout.validation.tables import SESSIONS, TABLE_CHECKS, CheckedTable, RawTables


def _table_counts(t: CheckedTable) -> dict[str, int]:
    assert t.quarantined is not None
    q = t.quarantined
    counts = {
        "rows_in": len(t.raw),
        "rows_validated": int((~q).sum()),
        "rows_quarantined": int(q.sum()),
        # rows without a client id count as one unidentified client
        "clients_in": int(t.keys.nunique(dropna=False)),
        "clients_validated": int(t.keys[~q].nunique()),
        "clients_quarantined": int(t.keys[q].nunique(dropna=False)),
    }
    assert counts["rows_in"] == counts["rows_validated"] + counts["rows_quarantined"], counts
    assert counts["clients_in"] == counts["clients_validated"] + counts["clients_quarantined"]
    return counts


def _check_counts(t: CheckedTable) -> dict[str, int]:
    assert t.quarantined is not None and t.direct is not None
    failed = t.failures.drop_duplicates().groupby("check").size()
    counts = {name: int(failed.get(name, 0)) for name in TABLE_CHECKS[t.name]}
    counts[s.CLIENT_QUARANTINED] = int((t.quarantined & ~t.direct).sum())
    return counts


def _scale_facts(scale: Any) -> dict[str, Any]:
    return {"name": scale.name, "min": scale.min, "max": scale.max}


def build_report(
    tables: dict[str, CheckedTable], raw: RawTables, cfg: DataConfig
) -> dict[str, Any]:
    """Rows and clients per table, every check's count, the quarantine share, the sources."""
    counts = {name: _table_counts(t) for name, t in tables.items()}
    sessions = counts[SESSIONS]
    return {
        "tables": {name: counts.get(name) for name in TABLE_CHECKS},
        # flat "<table>.<check>" keys: simple to log as metrics and to read
        "checks": {
            f"{name}.{check}": n
            for name, t in tables.items()
            for check, n in _check_counts(t).items()
        },
        "quarantine": {
            "session_clients": sessions["clients_in"],
            "session_clients_quarantined": sessions["clients_quarantined"],
            "share": sessions["clients_quarantined"] / max(sessions["clients_in"], 1),
            "limit": cfg.max_quarantine_share,
        },
        "warnings": list(raw.warnings),
        "sources": {
            name: {"file": path, "sha256": raw.sha256.get(name)}
            for name, path in raw.sources.items()
        },
        "scales": {"symptom": _scale_facts(cfg.symptom), "alliance": _scale_facts(cfg.alliance)},
    }


def failed_check_counts(report: dict[str, Any]) -> list[str]:
    return [
        f"{key}={n}"
        for key, n in report["checks"].items()
        if n and not key.endswith(s.CLIENT_QUARANTINED)
    ]


def limit_message(report: dict[str, Any]) -> str:
    q = report["quarantine"]
    suggestion = min(math.ceil(q["share"] * 100) / 100, 1.0)
    return (
        f"quarantined {q['session_clients_quarantined']} of {q['session_clients']} clients "
        f"({q['share']:.1%}), above the limit of {q['limit']:.1%}. Failed checks (rows): "
        f"{', '.join(failed_check_counts(report))}. Fix those rows in the export, or raise the "
        f"limit with data.max_quarantine_share={suggestion:g}"
    )


def summary_lines(report: dict[str, Any]) -> list[str]:
    """A few console lines: rows and clients per table, the quarantine share, failed checks."""
    lines = []
    for table, n in report["tables"].items():
        if n is None:
            lines.append(f"{table}: not given")
            continue
        lines.append(
            f"{table}: {n['rows_in']} rows in, {n['rows_validated']} validated, "
            f"{n['rows_quarantined']} quarantined ({n['clients_quarantined']} of "
            f"{n['clients_in']} clients)"
        )
    q = report["quarantine"]
    lines.append(f"quarantined share of clients: {q['share']:.1%} (limit {q['limit']:.1%})")
    failed = failed_check_counts(report)
    lines.append("failed checks (rows): " + (", ".join(failed) if failed else "none"))
    if report["warnings"]:
        lines.append(f"warnings: {len(report['warnings'])} (see validation_summary.md)")
    return lines


def summary_markdown(report: dict[str, Any]) -> str:
    """The validation report as a short Markdown page for people."""
    out = ["# Validation summary", "", "## Files", ""]
    for table, src in report["sources"].items():
        out.append(f"- {table}: `{src['file']}` (sha256 `{src['sha256']}`)")
    out += [
        "",
        "## Rows and clients",
        "",
        "| table | rows in | validated | quarantined | clients in | validated | quarantined |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for table, n in report["tables"].items():
        if n is not None:
            out.append(
                f"| {table} | {n['rows_in']} | {n['rows_validated']} | {n['rows_quarantined']} "
                f"| {n['clients_in']} | {n['clients_validated']} | {n['clients_quarantined']} |"
            )
    q = report["quarantine"]
    out += [
        "",
        f"Quarantined: {q['session_clients_quarantined']} of {q['session_clients']} clients "
        f"({q['share']:.1%}); the run fails above {q['limit']:.1%} "
        "(`data.max_quarantine_share`).",
        "",
        "## Checks (failing rows)",
        "",
        "Every row of a client with a failing row is quarantined; those other rows are counted "
        f"as `{s.CLIENT_QUARANTINED}`. Details per row are in `quarantine.csv`.",
        "",
    ]
    failed = {key: n for key, n in report["checks"].items() if n}
    if failed:
        out += ["| table | check | rows |", "|---|---|---:|"]
        for key, n in failed.items():
            table, check = key.split(".", 1)
            out.append(f"| {table} | `{check}` | {n} |")
    else:
        out.append("No check failed.")
    passed = [f"`{key}`" for key, n in report["checks"].items() if not n]
    out += ["", f"Checks with no failing row: {', '.join(passed) or 'none'}."]
    out += ["", "## Warnings", ""]
    out += [f"- {w}" for w in report["warnings"]] or ["None."]
    return "\n".join(out) + "\n"
