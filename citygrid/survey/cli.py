"""`citygrid submit` and `citygrid review`: survey intake from a terminal (a township's staff loading a county's
spreadsheets, an operator re-running a file). Kept out of `citygrid/cli.py` so that module only registers them.

The CLI acts as a named system principal (`cli:<name>`, every right), so its submissions and reviews are told
apart from a cadre's in history and in the audit log.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from citygrid.address.resolve import AddressIndex
    from citygrid.jobs import Progress as Report


def parse_rows(spec: str) -> list[int]:
    """`2,3,5-9` → [2, 3, 5, 6, 7, 8, 9]."""
    out: list[int] = []
    for part in spec.replace("，", ",").split(","):
        part = part.strip()
        if not part:
            continue
        lo, _, hi = part.partition("-")
        if not lo.isdigit() or (hi and not hi.isdigit()):
            raise typer.BadParameter(f"行号应如 2,3,5-9 / rows like 2,3,5-9: {part!r}")
        out += list(range(int(lo), int(hi or lo) + 1))
    return out


def register(app: typer.Typer, console: Console, engine: Callable[[], Engine],
             progress: Callable[[], tuple[Progress, Report]]) -> None:
    @app.command("submit")
    def submit(file: Path = typer.Argument(..., exists=True, dir_okay=False, help="xlsx, CSV, GeoJSON, GeoPackage "
                                           "or zipped Shapefile"),
               class_code: str = typer.Option(..., "--class", help="6-digit class code"),
               village: str = typer.Option(..., help="12-digit village code"),
               crs: str | None = typer.Option(None, help="CGCS2000 (default), WGS84, GCJ-02, EPSG:4547, 38带 …"),
               name: str = typer.Option("operator", "--as", help="who submits (recorded as cli:NAME)"),
               errors: int = typer.Option(20, help="problems listed at most"),
               hand_in: bool = typer.Option(False, "--hand-in", help="hand it in for review once validated"),
               partial: bool = typer.Option(False, help="with --hand-in: hand in the valid rows even when others "
                                            "have problems")) -> None:
        """Submit a survey file for a village: stored first, then validated as a job with a progress bar; with
        --hand-in, handed to the township's reviewers (`citygrid review` lists them)."""
        from sqlalchemy.orm import Session

        from citygrid.address.resolve import AddressIndex
        from citygrid.errors import CitygridError
        from citygrid.jobs import JobRecorder, run_recorded
        from citygrid.security.principal import system_as
        from citygrid.survey import intake, read

        eng = engine()
        p = system_as(f"cli:{name}")
        data = file.read_bytes()
        index: list[AddressIndex] = []

        def load_index() -> AddressIndex:  # only a file with addresses needs the resolver's index
            if not index:
                with eng.connect() as c:
                    index.append(AddressIndex.load(c))
            return index[0]

        try:
            with Session(eng) as s, s.begin():
                rec = intake.receive(s, p, class_code, village, data, source=read.source_of(data),
                                     filename=file.name, crs=crs)
        except CitygridError as exc:
            console.print(f"[red]{exc.error_code}[/red] {exc.message_zh} / {exc.message_en}")
            raise typer.Exit(1) from None
        console.print(f"stored {rec.id} ({len(data):,} bytes)")
        prog, report = progress()
        job = JobRecorder(eng, intake.KIND, report, detail={"submission": rec.id}, owner=p.name)
        with prog:
            run_recorded(job, intake.processing(eng, p, rec.id, load_index))
        with Session(eng) as s:
            d = intake.detail_of(s.connection(), p, rec.id)
        _show(console, d, errors)
        if hand_in and (d["status"] == "validated" or partial and d["status"] == "invalid"):
            try:
                with Session(eng) as s, s.begin():
                    out = intake.hand_in(s, p, rec.id, partial=partial)
            except CitygridError as exc:
                console.print(f"[red]{exc.error_code}[/red] {exc.message_zh} / {exc.message_en}")
                raise typer.Exit(1) from None
            console.print(f"handed in for review: {out['status']}")
            return
        if d["status"] == "invalid":
            raise typer.Exit(1)

    @app.command("review")
    def review(sid: str | None = typer.Argument(None, help="the submission's id; without it, the submissions "
                                                  "handed in and pending review are listed"),
               approve_all: bool = typer.Option(False, "--approve-all", help="approve every valid row"),
               approve: str | None = typer.Option(None, help="rows to approve, e.g. 2,3,5-9"),
               reject: str | None = typer.Option(None, help="rows to reject, e.g. 4,10"),
               reason: str | None = typer.Option(None, help="why the rejected rows are rejected"),
               name: str = typer.Option("operator", "--as", help="who reviews (recorded as cli:NAME)")) -> None:
        """Approve (registered with codes, in one transaction) or reject rows of a submission; without one, list
        the submissions pending review."""
        from sqlalchemy.orm import Session

        from citygrid.errors import CitygridError
        from citygrid.security.principal import system_as
        from citygrid.survey import intake

        eng = engine()
        p = system_as(f"cli:{name}")
        if sid is None:
            with Session(eng) as s:
                items = intake.list_submissions(s.connection(), p, "submitted", 1000)
            for i in items:  # one line each, whole ids (a table would cut them on a narrow terminal)
                console.print(f"{i['id']}  {i['class_code']}  {i['village_code']}  {i['submitter']}  "
                              f"{i['rows']} rows, {i['invalid']} invalid  {str(i['submitted_at'])[:19]}",
                              soft_wrap=True)
            console.print(f"{len(items)} pending review")
            return
        decisions: list[dict[str, Any]] = []
        try:
            with Session(eng) as s:
                d = intake.detail_of(s.connection(), p, sid)
            if approve_all:
                decisions += [{"row": i["row"], "decision": "approve"} for i in d["items"] if i["status"] == "valid"]
            decisions += [{"row": n, "decision": "approve"} for n in parse_rows(approve or "")]
            decisions += [{"row": n, "decision": "reject", "reason": reason} for n in parse_rows(reject or "")]
            if not decisions:
                console.print("nothing to decide: --approve-all, --approve ROWS or --reject ROWS --reason …")
                raise typer.Exit(1)
            with Session(eng) as s, s.begin():
                out = intake.review(s, p, sid, decisions)
        except CitygridError as exc:
            for pr in exc.problems:
                console.print(f"[red]{pr.error_code}[/red] row {pr.row}: {pr.message_zh} / {pr.message_en}")
            raise typer.Exit(1) from None
        coded = [r for r in out["results"] if r["object_code"]]
        console.print(f"{len(coded)} approved with codes, {len(out['results']) - len(coded)} rejected; "
                      f"submission {out['submission']['status']}")
        for r in coded[:20]:
            console.print(f"  row {r['row']}: {r['object_code']}")


def _show(console: Console, d: dict[str, Any], limit: int) -> None:
    console.print(f"{d['id']}: {d['status']}, {d['rows']} rows, {d['invalid']} invalid")
    for e in d["errors"]:
        console.print(f"[yellow]{e['error_code']}[/yellow] {e['message_zh']}")
    problems = [(i["row"], e) for i in d["items"] for e in i["errors"]]
    if not problems:
        return
    t = Table("行 row", "列 field", "问题 problem")
    for row, e in problems[:limit]:
        t.add_row(str(row), str(e["field"] or ""), e["message_zh"])
    console.print(t)
    if len(problems) > limit:
        console.print(f"… {len(problems) - limit} more")
