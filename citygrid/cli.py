"""The `citygrid` command: database lifecycle, loads, demo, serve, code validation."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from citygrid.settings import get_settings, share_database_url

if TYPE_CHECKING:  # imported where used, to keep the command quick to start
    from sqlalchemy.engine import Engine

    from citygrid.db.cluster import Cluster
    from citygrid.jobs import Progress as Report

class _Command(typer.Typer):
    """The command, which answers a refusal to start (a schema it does not know, a cluster that cannot start, an
    application role that cannot log in, a database that is away) with its message and exit code 2, not a
    traceback: these are the operator's to fix, not bugs."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except Exception as exc:
            from citygrid.db import failures
            from citygrid.db.bootstrap import AppRoleError
            from citygrid.db.cluster import ClusterError
            from citygrid.db.migrate import SchemaError

            if isinstance(exc, (SchemaError, ClusterError, AppRoleError)):
                console.print(f"[red]✗ citygrid 拒绝启动 / refuses to start[/red]: {exc}")
            elif (err := failures.as_error(exc)) is not None and err.kind == "unavailable":
                console.print(f"[red]✗ {err.message_zh} / {err.message_en}[/red]")
            else:
                raise
            raise SystemExit(2) from None


app = _Command(help="citygrid: 城市数字公共基础设施 / digital public infrastructure for a county", no_args_is_help=True)
db_app = typer.Typer(help="The private PostGIS cluster (ignored when DATABASE_URL is set).", no_args_is_help=True)
app.add_typer(db_app, name="db")
console = Console()


@app.callback()
def _start() -> None:
    """Validate the settings before any command (a bad CITYGRID_* value is named here, not mid-way)."""
    from pydantic import ValidationError

    try:
        get_settings()
    except ValidationError as exc:
        for e in exc.errors():
            name = "CITYGRID_" + "_".join(str(p) for p in e["loc"]).upper()
            console.print(f"[red]设置错误 / bad setting[/red] {name}={e.get('input')!r}: {e['msg']}")
        raise typer.Exit(2) from None


def _cluster() -> Cluster:
    from citygrid.db.cluster import Cluster

    return Cluster(get_settings().data_dir)


@db_app.command("up")
def db_up() -> None:
    """Create (first time) and start the private cluster."""
    s = get_settings()
    if s.database_url:
        console.print(f"DATABASE_URL is set; using it: {s.database_url}")
        return
    console.print(_cluster().start())


@db_app.command("down")
def db_down() -> None:
    """Stop the private cluster (data is kept)."""
    _cluster().stop()
    console.print("stopped")


@db_app.command("status")
def db_status() -> None:
    console.print_json(json.dumps(_cluster().status()))


@app.command()
def migrate() -> None:
    """Apply migrations and sync the catalog."""
    from citygrid.db.bootstrap import prepare
    from citygrid.db.engine import database_url

    prepare(database_url())
    console.print("migrated")


def _progress() -> tuple[Progress, Report]:
    prog = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                    TimeElapsedColumn(), console=console)
    tasks: dict[str, TaskID] = {}

    def report(stage: str, done: int, total: int | None) -> None:
        if stage not in tasks:
            tasks[stage] = prog.add_task(stage, total=total)
        prog.update(tasks[stage], completed=done, total=total)

    return prog, report


@app.command("load-divisions")
def load_divisions(force: bool = typer.Option(False, help="reload even if loaded")) -> None:
    """Load all divisions of China (statistical 2023 + civil-affairs 2025-12-31) and outlines."""
    from citygrid.db.bootstrap import prepare
    from citygrid.db.engine import database_url
    from citygrid.regions.load import load_divisions as load

    engine = prepare(database_url())
    prog, report = _progress()
    t = time.time()
    from citygrid.jobs import run

    with prog:
        detail = run(engine, "load-divisions", lambda p: load(engine, force=force, progress=p), report)
    console.print_json(json.dumps(detail, ensure_ascii=False))
    console.print(f"done in {time.time() - t:.1f}s")


@app.command("load-demo")
def load_demo(seed: int = typer.Option(42), force: bool = typer.Option(False, help="regenerate"),
              division: str = typer.Option("420281", help="a county, or a city/province: every county-level "
                                           "division under it with an outline, side by side"),
              scale: float = typer.Option(1.0, help="objects per county relative to the full demo (0.05: a twentieth)"),
              address: bool = typer.Option(True, help="build each county's address base too")) -> None:
    """Generate the demo deterministically from a seed: 大冶市 (420281) by default, or every county of a city."""
    from citygrid.db.bootstrap import prepare
    from citygrid.db.engine import database_url
    from citygrid.demo.load import counties_in, load_address_base
    from citygrid.demo.load import load_demo as gen
    from citygrid.errors import CitygridError
    from citygrid.grid.generate import generate as generate_grids
    from citygrid.regions.load import load_divisions as load

    engine = prepare(database_url())
    prog, report = _progress()
    t = time.time()
    from citygrid.jobs import run

    out: dict[str, Any] = {}
    try:
        with prog:
            run(engine, "load-divisions", lambda p: load(engine, progress=p), report)
            for county in counties_in(engine, division):
                def demo(p: Report, c: str = county) -> dict[str, Any]:
                    return gen(engine, seed=seed, force=force, progress=p, scale=scale, county=c)

                def grids(p: Report, c: str = county) -> dict[str, Any]:
                    return generate_grids(engine, c, seed=seed, progress=p)

                def base(p: Report, c: str = county) -> dict[str, Any]:
                    return load_address_base(engine, c, seed=seed, progress=p)

                summary = run(engine, "load-demo", demo, report)
                summary["grids"] = ensure_after_demo(engine, f"grids-{county}", "grids", force, report, grids,
                                                     after=f"demo-{county}")
                if address:
                    summary["address_base"] = ensure_after_demo(engine, f"address-{county}", "address-base", force,
                                                                report, base, after=f"grids-{county}")
                out[county] = summary
    except CitygridError as exc:
        _fail(exc)
    console.print_json(json.dumps(out if len(out) > 1 else next(iter(out.values()), {}), ensure_ascii=False,
                                  default=str))
    console.print(f"done in {time.time() - t:.1f}s")


@app.command("import")
def import_objects(file: Path = typer.Argument(..., exists=True, dir_okay=False, help="xlsx, CSV, GeoJSON, "
                                               "GeoPackage or zipped Shapefile, in the class's template columns"),
                   class_code: str = typer.Option(..., "--class", help="6-digit class code"),
                   county: str | None = typer.Option(None, help="6-digit county code (default: where the first row is)"),
                   crs: str | None = typer.Option(None, help="CGCS2000 (default), WGS84, GCJ-02, EPSG:4547 …"),
                   name: str = typer.Option("operator", "--as", help="who imports (recorded as cli:NAME)"),
                   errors: int = typer.Option(20, help="problems listed at most")) -> None:
    """Register every row of a file at once through the bulk path (all or none; every bad row listed)."""
    from citygrid.db.bootstrap import prepare
    from citygrid.db.engine import database_url
    from citygrid.errors import CitygridError
    from citygrid.jobs import run
    from citygrid.security.principal import system_as
    from citygrid.survey.importer import import_file

    engine = prepare(database_url())
    p = system_as(f"cli:{name}")
    data = file.read_bytes()
    prog, report = _progress()
    try:
        with prog:
            out = run(engine, "import", lambda r: import_file(engine, p, class_code, data, county=county, crs=crs,
                                                              progress=r), report, owner=p.name)
    except CitygridError as exc:
        for pr in exc.problems[:errors]:
            console.print(f"row {pr.row}: {pr.field}: {pr.error_code}: {pr.message_zh} / {pr.message_en}")
        if len(exc.problems) > errors:
            console.print(f"… {len(exc.problems) - errors} more problems")
        _fail(exc)
        return
    console.print_json(json.dumps(out, ensure_ascii=False))


def ensure_after_demo(engine: Engine, name: str, kind: str, force: bool, report: Report,
                      build: Callable[[Report], dict[str, Any]], after: str = "demo-420281") -> dict[str, Any]:
    """Run `build` unless its data_source row is newer than the step it depends on (demo, then grids)."""
    from sqlalchemy import text

    from citygrid.jobs import run

    with engine.connect() as c:
        dep_at = c.execute(text("SELECT loaded_at FROM data_source WHERE name=:n"), {"n": after}).scalar()
        row = c.execute(text("SELECT detail, loaded_at FROM data_source WHERE name=:n"), {"n": name}).first()
    if row and not force and dep_at and row.loaded_at >= dep_at:
        return dict(row.detail)
    return run(engine, kind, build, report)


@app.command()
def serve(host: str | None = None, port: int | None = None, demo: bool = typer.Option(True, help="load the demo"),
          workers: int | None = typer.Option(None, min=1, help="worker processes (default CITYGRID_WORKERS, else the "
                                                                 "CPU count, at most 4)")) -> None:
    """Serve the API (loads divisions and, by default, the demo county first)."""
    import uvicorn

    from api.main import create_app
    from citygrid.db.bootstrap import prepare
    from citygrid.db.engine import database_url

    s = get_settings()
    url = database_url()
    if demo:
        load_demo(seed=42, force=False)
    else:
        from citygrid.regions.load import load_divisions as load

        load(prepare(url))
    if demo:
        _print_demo_principals(url)
    console.print(f"citygrid on http://{host or s.host}:{port or s.port}  (docs: /docs)")
    n = workers or s.workers
    console.print(f"{n} worker process{'es' if n > 1 else ''} (--workers / CITYGRID_WORKERS)")
    if n > 1:  # layer versions, credentials and jobs live in the database, so workers agree on them
        from citygrid.server import deliver_webhooks, run_prefork

        share_database_url(url)
        deliver_webhooks(url)
        run_prefork(lambda: _prefork_app(url), host=host or s.host, port=port or s.port, workers=n,
                    keepalive=s.keepalive)
        return
    stop = _webhooks_in_background(url)
    try:
        # forwarded headers are read by api/proxy.py from CITYGRID_FORWARDED_ALLOW_IPS, not by uvicorn (which ignores
        # the forwarded host)
        uvicorn.run(create_app(url), host=host or s.host, port=port or s.port, log_level="info", proxy_headers=False,
                    timeout_keep_alive=s.keepalive)
    finally:
        stop.set()


def _prefork_app(url: str) -> Any:
    """The app of a pre-fork master, with the address index loaded before the fork so workers share it."""
    from api.main import worker_app
    from citygrid.address.index import preload
    from citygrid.db.engine import app_database_url, app_engine_for

    engine = app_engine_for(app_database_url(url))
    try:
        preload(engine)
    finally:
        engine.dispose()  # no connection of the master's may reach a worker
    return worker_app()


def _webhooks_in_background(url: str) -> threading.Event:
    """Webhook deliveries (citygrid/sharing/webhooks.py) in a thread of the serving process, as the application."""
    from citygrid.db.engine import app_engine_for
    from citygrid.sharing.webhooks import run

    stop = threading.Event()
    threading.Thread(target=run, args=(app_engine_for(url), stop), name="citygrid-webhooks", daemon=True).start()
    return stop


@app.command("webhooks-run")
def webhooks_run() -> None:
    """Deliver webhooks in this process (when `citygrid serve` is not the server, e.g. several uvicorn workers)."""
    from citygrid.db.engine import database_url

    stop = _webhooks_in_background(database_url())
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        stop.set()


@app.command()
def sync(out: Path = typer.Option(Path("changes.jsonl"), help="JSON lines, appended"),
         since: str | None = typer.Option(None, help="start here (a cursor, '' for the beginning, 'now'); "
                                                     "default: resume from <out>.cursor and the file's last line"),
         url: str | None = typer.Option(None, help="the citygrid server (CITYGRID_SYNC_URL)"),
         class_code: str | None = typer.Option(None, "--class", help="only this class"),
         division: str | None = typer.Option(None, help="only this division (prefix)"),
         kinds: str | None = typer.Option(None, help="comma list: created, updated, retired, split, merged, linked, "
                                                     "unlinked, confirmed"),
         once: bool = typer.Option(False, help="stop when caught up instead of long polling for ever"),
         wait: int = typer.Option(30, help="long poll seconds")) -> None:
    """Follow the change feed into a JSON-lines file, resuming from the last cursor (the API key comes from
    CITYGRID_SYNC_API_KEY; without one, the public's feed)."""
    from citygrid.sharing.sync import sync as follow

    s = get_settings()
    filters = {k: v for k, v in (("class", class_code), ("division", division), ("kinds", kinds)) if v}

    def page(n: int, cursor: str) -> None:
        if n:
            console.print(f"{n} 条变更 / changes → {out} (cursor {cursor})")

    try:
        r = follow(url or s.sync_url, out, since=since, api_key=s.sync_api_key, filters=filters, wait=wait,
                   once=once, on_page=page)
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
    except Exception as exc:  # noqa: BLE001 - shown to the operator, exit code 2
        console.print(f"[red]同步失败 / sync failed[/red]: {exc}")
        raise typer.Exit(2) from exc
    console.print(f"{r.entries} 条变更 / changes, cursor {r.cursor}")


def _print_demo_principals(url: str) -> None:
    from rich.table import Table

    from citygrid.db.engine import engine_for
    from citygrid.demo.principals import demo_principals

    people = demo_principals(engine_for(url))
    if not s_demo():
        console.print("[yellow]演示账户已创建，但 CITYGRID_DEMO 未开启，它们无法登录 / demo principals exist but "
                      "only work with CITYGRID_DEMO=1 (make run sets it)[/yellow]")
        return
    t = Table(title="演示账户 / demo principals (POST /auth/token, or Authorize in /docs)")
    for col in ("username", "password", "role", "clearance"):
        t.add_column(col)
    for p in people:
        roles = ", ".join(r["role"] + (f":{r['department']}" if r["department"] else "")
                          + (f"@{r['division']}" if r["division"] else "") for r in p["roles"])
        t.add_row(p["username"], p["password"], roles, p["clearance"] + (" +personal" if p["personal"] else ""))
    console.print(t)


def s_demo() -> bool:
    return get_settings().demo


# --- principals and keys --------------------------------------------------------------------------------------
principal_app = typer.Typer(help="People and department systems that may call citygrid.", no_args_is_help=True)
key_app = typer.Typer(help="API keys of department systems (shown once, stored hashed).", no_args_is_help=True)
keys_app = typer.Typer(help="The keyring that signs tokens and encrypts personal fields.", no_args_is_help=True)
app.add_typer(principal_app, name="principal")
app.add_typer(key_app, name="key")
app.add_typer(keys_app, name="keys")


def _engine() -> Engine:
    from citygrid.db.bootstrap import prepare
    from citygrid.db.engine import database_url

    return prepare(database_url())


def _fail(exc: Exception) -> None:
    from citygrid.errors import CitygridError

    if isinstance(exc, CitygridError):
        console.print(f"[red]✗[/red] {exc.error_code}: {exc.message_zh} / {exc.message_en}")
        raise typer.Exit(2) from exc
    raise exc


@principal_app.command("add")
def principal_add(username: str, kind: str = typer.Option("user", help="user (a person) or service (a system)"),
                  role: list[str] = typer.Option([], help="role[:department][@division], repeatable"),
                  clearance: str = typer.Option("L2", help="highest attribute level readable: L1..L4"),
                  personal: bool = typer.Option(False, help="may read personal fields (names, ID numbers, phones)"),
                  display_name: str | None = typer.Option(None)) -> None:
    """Add a principal; a person is asked for a password."""
    from citygrid.security import credentials

    password = typer.prompt("password", hide_input=True, confirmation_prompt=True) if kind == "user" else None
    try:
        grants = [credentials.parse_grant(r) for r in role]
        with _engine().begin() as c:
            pid = credentials.add_principal(c, username, kind=kind, password=password, grants=grants,
                                            clearance=clearance, personal=personal, display_name=display_name, by="cli")
    except Exception as exc:  # noqa: BLE001 - coded errors are printed, others raised
        _fail(exc)
        return
    console.print(f"added {username} ({pid})")


@principal_app.command("list")
def principal_list() -> None:
    """Every principal with its roles, clearance and state."""
    from citygrid.security import credentials

    with _engine().connect() as c:
        console.print_json(json.dumps(credentials.list_principals(c), ensure_ascii=False, default=str))


@principal_app.command("disable")
def principal_disable(username: str, enable: bool = typer.Option(False, help="enable again instead")) -> None:
    """Disable a principal: its tokens and keys stop working at once."""
    from citygrid.security import credentials

    try:
        with _engine().begin() as c:
            credentials.set_disabled(c, username, not enable, by="cli")
    except Exception as exc:  # noqa: BLE001
        _fail(exc)
    console.print(f"{username}: {'enabled' if enable else 'disabled'}")


@key_app.command("create")
def key_create(username: str, name: str = typer.Option(..., help="what the key is for"),
               expires_days: int | None = typer.Option(None)) -> None:
    """Create an API key for a principal; the key is printed once and never again."""
    from citygrid.security import credentials

    try:
        with _engine().begin() as c:
            k = credentials.create_api_key(c, username, name, expires_days, by="cli")
    except Exception as exc:  # noqa: BLE001
        _fail(exc)
        return
    console.print(f"API key for {username} ({name}), id {k['id']}; store it now, it is not shown again:")
    print(k["key"])


@key_app.command("revoke")
def key_revoke(key_id: str) -> None:
    """Revoke an API key by its id."""
    from citygrid.security import credentials

    try:
        with _engine().begin() as c:
            credentials.revoke_api_key(c, key_id, by="cli")
    except Exception as exc:  # noqa: BLE001
        _fail(exc)
    console.print(f"revoked {key_id}")


@key_app.command("list")
def key_list() -> None:
    """API keys (ids, owners, last use; never the secrets)."""
    from citygrid.security import credentials

    with _engine().connect() as c:
        console.print_json(json.dumps(credentials.list_api_keys(c), ensure_ascii=False, default=str))


@keys_app.command("rotate")
def keys_rotate() -> None:
    """Add a new active key to the keyring; tokens and data under older keys keep working."""
    from citygrid.security.keys import keyring_path, rotate

    ring = rotate()
    console.print(f"active key is now {ring.active} ({len(ring.keys)} keys in {keyring_path()}); persons stay "
                  "under their old key until `citygrid crypto reencrypt` (or use `citygrid crypto rotate`)")


# --- encryption of personal fields (citygrid/security/crypto.py) --------------------------------------------------
crypto_app = typer.Typer(help="ID numbers and phones encrypted at rest: key rotation, re-encryption, retiring keys.",
                         no_args_is_help=True)
app.add_typer(crypto_app, name="crypto")


def _reencrypt(engine: Engine) -> dict[str, Any]:
    from citygrid.jobs import run
    from citygrid.security import crypto

    prog, report = _progress()
    with prog:
        return run(engine, "crypto-reencrypt", lambda p: crypto.reencrypt(engine, p), report)


@crypto_app.command("status")
def crypto_status() -> None:
    """The active key, the keys in the ring, person rows per key, rows still in plaintext."""
    from citygrid.security import crypto

    with _engine().connect() as c:
        console.print_json(json.dumps(crypto.status(c), ensure_ascii=False))


@crypto_app.command("rotate")
def crypto_rotate() -> None:
    """A new active key, then every person row re-encrypted under it (batched, resumable with `reencrypt`)."""
    from citygrid.security.keys import rotate

    engine = _engine()
    try:
        ring = rotate()
    except RuntimeError as exc:  # the keyring comes from CITYGRID_KEYRING: rotate there, then `reencrypt`
        console.print(f"[red]✗[/red] {exc}")
        raise typer.Exit(2) from exc
    console.print(f"active key is now {ring.active}; re-encrypting persons")
    console.print_json(json.dumps(_reencrypt(engine), ensure_ascii=False))


@crypto_app.command("reencrypt")
def crypto_reencrypt() -> None:
    """Re-encrypt every person row not under the active key (resumes an interrupted rotation; safe to repeat)."""
    console.print_json(json.dumps(_reencrypt(_engine()), ensure_ascii=False))


@crypto_app.command("retire-key")
def crypto_retire_key(kid: str) -> None:
    """Remove an old key from the ring once no person row and no live API key uses it."""
    from citygrid.security import crypto

    try:
        out = crypto.retire_key(_engine(), kid)
    except Exception as exc:  # noqa: BLE001 - coded refusals are printed, others raised
        _fail(exc)
        return
    console.print_json(json.dumps(out))


# --- the audit log --------------------------------------------------------------------------------------------
audit_app = typer.Typer(help="The audit log: verify its hash chain, export it.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


@audit_app.command("verify")
def audit_verify(anchor: str | None = typer.Option(None, help="SEQ:HASH printed by an earlier run, kept elsewhere")
                 ) -> None:
    """Recompute the hash chain; exit code 1 when a row was edited or deleted."""
    from citygrid.security import audit

    expect = None
    if anchor:
        seq, _, digest = anchor.partition(":")
        if not seq.isdigit() or len(digest) != 64:
            console.print("[red]--anchor is SEQ:HASH (a number and 64 hex digits)[/red]")
            raise typer.Exit(2)
        expect = (int(seq), digest)
    with _engine().connect() as c:
        report = audit.verify(c, expect)
    console.print_json(json.dumps(report.to_dict(), ensure_ascii=False, default=str))
    if not report.ok:
        b = report.broken_at or {}
        console.print(f"[red]✗ audit chain broken at seq {b.get('seq')} (id {b.get('id')}): {b.get('detail')}[/red]")
        raise typer.Exit(1)
    console.print(f"[green]✓ {report.rows} rows chain to head {report.head_seq}:{report.head_hash}[/green]")


@audit_app.command("export")
def audit_export(out: str = typer.Option(..., "--out", help="JSON lines file"),
                 since: str | None = typer.Option(None, help="ISO 8601 time, e.g. 2026-12-01 or 2026-12-01T08:00+08:00")
                 ) -> None:
    """Write the audit rows since a time, oldest first, one JSON object a line, hashes included."""
    import datetime as dt
    from pathlib import Path

    from citygrid.security import audit

    start = None
    if since:
        try:
            start = dt.datetime.fromisoformat(since)
        except ValueError:
            console.print(f"[red]--since {since!r} is not an ISO 8601 time[/red]")
            raise typer.Exit(2) from None
        start = start if start.tzinfo else start.replace(tzinfo=dt.UTC)
    n = 0
    with _engine().connect() as c, Path(out).open("w", encoding="utf-8") as f:
        for line in audit.export(c, start):
            f.write(line)
            n += 1
    console.print(f"{n} rows → {out}")


@app.command("geocode-file")
def geocode_file(src: str, out: str = typer.Option(..., "--out", help="result CSV"),
                 column: str | None = typer.Option(None, help="address column (default: detected)"),
                 division: str | None = typer.Option(None, help="township hint")) -> None:
    """Geocode a CSV/Excel file of addresses, streamed, with a progress bar; every row gets a result row."""
    from pathlib import Path

    from citygrid.address import batch
    from citygrid.address.resolve import AddressIndex
    from citygrid.db.engine import get_engine
    from citygrid.errors import CitygridError

    engine = get_engine()
    with engine.connect() as c:
        idx = AddressIndex.load(c)
    prog, report = _progress()
    t = time.time()
    try:
        with prog:
            counts = batch.run(idx, Path(src), column, Path(out), report, division)
    except CitygridError as e:
        for p in e.problems:
            console.print(f"[red]✗[/red] {p.error_code}: {p.message_zh} / {p.message_en}")
        raise typer.Exit(2) from e
    console.print_json(json.dumps(counts))
    console.print(f"done in {time.time() - t:.1f}s → {out}")


jobs_app = typer.Typer(help="Long jobs: list them; cancel, resume or retry one whose process died.",
                       no_args_is_help=True)
app.add_typer(jobs_app, name="jobs")


def _jobs_engine() -> Engine:
    """The owner's engine, after jobs whose process died were marked interrupted (as the API does at start)."""
    from citygrid import jobs
    from citygrid.address import batch  # noqa: F401 - registers how a batch job is settled

    engine = _engine()
    for job_id in jobs.mark_interrupted(engine):
        console.print(f"[yellow]![/yellow] job {job_id}: its process is gone, marked interrupted")
    return engine


@jobs_app.command("list")
def jobs_list(limit: int = typer.Option(20, help="how many, newest first")) -> None:
    """Recent jobs with their state and progress."""
    from citygrid import jobs

    engine = _jobs_engine()
    with engine.connect() as c:
        for j in jobs.list_jobs(c, None, limit):
            console.print(f"{j['id']}  {j['kind']:<16} {j['state']:<12} {j['done']}/{j['total'] or '?'}  "
                          f"{j['started_at']:%Y-%m-%d %H:%M:%S}")


@jobs_app.command("cancel")
def jobs_cancel(job_id: str) -> None:
    """Cancel a job (a running one stops at its next progress write)."""
    from citygrid import jobs
    from citygrid.errors import CitygridError

    try:
        j = jobs.cancel(_jobs_engine(), job_id, None)
    except CitygridError as e:
        _fail(e)
    console.print(f"job {job_id}: {j['state']}")


def _restart(job_id: str, fresh: bool) -> None:
    from citygrid import jobs
    from citygrid.address import batch
    from citygrid.address.resolve import AddressIndex
    from citygrid.errors import CitygridError, E

    engine = _jobs_engine()
    with engine.connect() as c:
        j = jobs.load(c, job_id, None)
        if j is None or j["kind"] != batch.KIND:
            _fail(E.job_not_found("job_id", job=job_id))
        assert j is not None
        idx = AddressIndex.load(c)
    prog, report = _progress()
    try:
        with prog:
            batch.restart(engine, idx, j, fresh=fresh, background=False, forward=report)
    except CitygridError as e:
        _fail(e)
    with engine.connect() as c:
        done = jobs.get_job(c, job_id, None)
    console.print_json(json.dumps(done, ensure_ascii=False, default=str))


@jobs_app.command("resume")
def jobs_resume(job_id: str) -> None:
    """Resume an interrupted, failed or cancelled batch geocoding job from the rows already written."""
    _restart(job_id, fresh=False)


@jobs_app.command("retry")
def jobs_retry(job_id: str) -> None:
    """Run an interrupted, failed or cancelled batch geocoding job again from its first row."""
    _restart(job_id, fresh=True)


@app.command()
def validate(code: str) -> None:
    """Validate a code offline (length, characters, check digit, class); division needs the database."""
    from citygrid.catalog import get_catalog
    from citygrid.coding.scheme import unified_scheme

    problems = unified_scheme().validate(code, known_class=lambda k: get_catalog().get(k) is not None)
    if problems:
        for p in problems:
            console.print(f"[red]✗[/red] {p.error_code}: {p.message_zh} / {p.message_en}")
        raise typer.Exit(1)
    for seg in unified_scheme().describe(code):
        console.print(f"{seg['label']} ({seg['name']}): {seg['value']}")
    console.print("[green]✓ valid[/green]")


if __name__ == "__main__":
    app()


@app.command("template")
def survey_template(class_code: str, out: str | None = typer.Option(None, help="file to write (default "
                                                                         "template-CLASS.xlsx)"),
                    xlsform: bool = typer.Option(False, help="the ODK XLSForm instead of the Excel template")) -> None:
    """Write a class's survey template (Excel, with drop-downs and instructions) or its ODK XLSForm."""
    from pathlib import Path

    from citygrid.catalog import get_catalog
    from citygrid.survey import odk, template

    cls = get_catalog().get(class_code)
    if cls is None:
        console.print(f"[red]分类代码 {class_code} 不存在 / unknown class[/red]")
        raise typer.Exit(1)
    path = Path(out or (f"{odk.form_id(cls)}.xlsx" if xlsform else f"template-{cls.code}.xlsx"))
    path.write_bytes(odk.xlsform(cls) if xlsform else template.build(cls))
    console.print(f"{cls.name}（{cls.code}）→ {path}")


def _register_survey() -> None:
    from citygrid.survey.cli import register

    register(app, console, _engine, _progress)


_register_survey()


@app.command("intake-resume")
def intake_resume() -> None:
    """Process every submission stored but not processed (`received`: the process stopped between storing and
    processing it). Safe to run any time: processing replaces a submission's rows."""
    from sqlalchemy.orm import Session

    from citygrid.security.principal import system_as
    from citygrid.survey import intake

    engine = _engine()
    with engine.connect() as c:
        pending = intake.pending(c)
    for sid in pending:
        with Session(engine) as s, s.begin():
            out = intake.process(s, system_as("intake-resume"), sid)
        console.print(f"{sid}: {out['status']} ({out['rows']} rows, {out['invalid']} invalid)")
    console.print(f"{len(pending)} submission(s) processed")


@app.command("doorplates")
def doorplates(village: str | None = typer.Option(None, help="village/community code (12 digits): its door plates"),
               compound: str | None = typer.Option(None, help="a compound's address code: its building plates"),
               out: Path = typer.Option(Path("plates.pdf"), "--out", help="the PDF to write"),
               base_url: str | None = typer.Option(None, help="public base URL the QR codes open "
                                                             "(default: CITYGRID_PUBLIC_BASE_URL)")) -> None:
    """Printable door plates (智慧门牌), A4 with 8 a page: standard address, code and QR code."""
    from citygrid.address import plates
    from citygrid.errors import CitygridError
    from citygrid.security.principal import system_as

    base = base_url or get_settings().public_base_url
    if not base:
        console.print("[red]✗[/red] 二维码需要公网地址：设置 CITYGRID_PUBLIC_BASE_URL 或 --base-url / "
                      "QR codes need the public address: set CITYGRID_PUBLIC_BASE_URL or pass --base-url")
        raise typer.Exit(2)
    try:
        with _engine().connect() as c:
            batch = plates.collect(c, system_as("cli-doorplates"), base, village=village, compound=compound)
        out.write_bytes(plates.render(batch))
    except CitygridError as e:
        _fail(e)
    console.print(f"{batch.place_name}（{batch.place_code}）：{len(batch.plates)} 块门牌 → {out}")


def _usage(message: str) -> NoReturn:
    console.print(f"[red]✗[/red] {message}")
    raise typer.Exit(2)


@app.command("export")
def export(out: Path = typer.Option(..., help="directory for one GeoParquet file per class"),
           format_: str = typer.Option("geoparquet", "--format", help="geoparquet (the only format for now)"),
           level: str = typer.Option("L1", help="attributes up to this catalog level: L1 (公开, default)..L4"),
           division: str | None = typer.Option(None, help="only this county (a 6-digit code or longer)"),
           restricted: bool = typer.Option(False, help="also the classes kept off public layers")) -> None:
    """Every class's active objects as GeoParquet 1.1 (CGCS2000), for province platforms and the Spark jobs."""
    from citygrid.export.geoparquet import export_all

    if format_ != "geoparquet":
        _usage(f"--format {format_}: only geoparquet is supported")
    if level not in ("L1", "L2", "L3", "L4"):
        _usage(f"--level {level}: one of L1, L2, L3, L4")
    prog, report = _progress()
    with prog:
        written = export_all(_engine(), out, level, division, restricted,  # type: ignore[arg-type]
                             lambda name, n: report(name, n, None))
    for w in written:
        console.print(f"{w.path}  {w.rows:,} rows")
    console.print(f"{len(written)} files, {sum(w.rows for w in written):,} objects")


spark_app = typer.Typer(help="Province-scale batch jobs on Apache Spark (local mode by default).",
                        no_args_is_help=True)
app.add_typer(spark_app, name="spark")


@spark_app.command("geocode")
def spark_geocode(src: Path, out: Path = typer.Option(..., help="Parquet directory for the results"),
                  column: str = typer.Option("address", help="the column holding addresses"),
                  hint: str | None = typer.Option(None, help="division code to prefer"),
                  master: str = typer.Option("local[2]", help="Spark master (a cluster's, or local[N])")) -> None:
    """Geocode a CSV or Parquet address file with citygrid's resolver inside Spark (mapInPandas)."""
    from citygrid.db.engine import database_url
    from citygrid.export import spark

    s = spark.session(master)
    try:
        counts = spark.geocode(s, src, out, database_url(), column, hint)
    except ValueError as exc:
        _usage(str(exc))
    finally:
        s.stop()
    console.print(f"{counts['rows']:,} rows, {counts['matched']:,} matched, {counts['failed']:,} failed → {out}")


@spark_app.command("aggregate")
def spark_aggregate(objects: Path, by: str = typer.Option("h3:8", help="h3:N, bgc:N, county, township, village, "
                                                                      "unit_grid or gov_grid"),
                    class_code: str | None = typer.Option(None, "--class", help="one class (6 digits)"),
                    master: str = typer.Option("local[2]", help="Spark master")) -> None:
    """Count exported objects (`citygrid export`) per group in Spark; prints key and count per line."""
    from citygrid.export import spark

    s = spark.session(master)
    try:
        rows = spark.aggregate(s, objects, by, class_code)
    except ValueError as exc:
        _usage(str(exc))
    finally:
        s.stop()
    for k, n in rows:
        console.print(f"{k}\t{n}")
# --- backups (citygrid/cli_backup.py) ------------------------------------------------------------------------------
from citygrid import cli_backup  # noqa: E402 - registered last, so other areas' commands merge apart from these

app.command("backup")(cli_backup.backup)
app.command("restore")(cli_backup.restore)
