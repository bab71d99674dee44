"""`citygrid backup` and `citygrid restore` (citygrid/db/backup.py), kept apart from cli.py so the commands of
other areas merge without touching these."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from citygrid.settings import get_settings

console = Console()


def backup(out: Path = typer.Option(..., "--out", help="a new (or empty) directory for the backup")) -> None:
    """Back up the database (pg_dump, custom format, one consistent snapshot) and the batch files, with a manifest
    of tables, row counts, a checksum per table, the code ledger and the schema revision."""
    import psycopg

    from citygrid.db.backup import BackupError
    from citygrid.db.backup import backup as run
    from citygrid.db.engine import database_url

    try:
        m = run(database_url(), out, get_settings().data_dir)
    except (BackupError, psycopg.Error) as exc:
        console.print(f"[red]✗ 备份失败 / backup failed[/red]: {exc}")
        raise typer.Exit(2) from None
    rows = sum(t["rows"] for t in m["tables"].values())
    console.print(f"[green]✓[/green] {len(m['tables'])} tables, {rows} rows, {len(m['files'])} files, migration "
                  f"{m['alembic']} → {out}")
    if m["keys_needed"]:
        console.print(f"the data needs keyring keys {', '.join(m['keys_needed'])}: the keyring is not in the backup, "
                      "keep a copy of it apart")


def restore(src: Path = typer.Argument(..., help="a directory written by `citygrid backup`"),
            database_url: str | None = typer.Option(None, help="restore here instead of the configured database"),
            force: bool = typer.Option(False, help="replace a database that holds tables (its content is dropped)")
            ) -> None:
    """Restore a backup into a new or empty database (or any, with --force), then check every table's rows and
    checksum against the manifest."""
    import psycopg

    from citygrid.db.backup import BackupError
    from citygrid.db.backup import restore as run
    from citygrid.db.cluster import resolve_database_url

    s = get_settings()
    url = resolve_database_url(s.data_dir, database_url or s.database_url)
    try:
        out = run(src, url, s.data_dir, force=force)
    except (BackupError, psycopg.Error) as exc:
        console.print(f"[red]✗ 恢复失败 / restore failed[/red]: {exc}")
        raise typer.Exit(2) from None
    console.print_json(json.dumps(out, ensure_ascii=False))
    if out["keys_missing"]:
        console.print(f"[yellow]![/yellow] the keyring lacks keys {', '.join(out['keys_missing'])}: personal fields "
                      "and API keys under them will not open until that keyring is restored too")
    console.print("[green]✓ restored; every table matches the backup's checksum[/green]")
