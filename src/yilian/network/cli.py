"""`yilian network ...` commands: thin calls into the registry's service."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from yilian import migrations
from yilian.db import get_engine, read_session, unit_of_work
from yilian.network import service

app = typer.Typer(no_args_is_help=True, help="Network registry: divisions, facilities, consortia")
err = Console(stderr=True)
out = Console()


@app.command("load-divisions")
def load_divisions(
    province: Annotated[
        str | None, typer.Option(help="Province code (2 digits, e.g. 14); all provinces if omitted.")
    ] = None,
) -> None:
    """Load divisions, census 2020 and centroids (idempotent) and report what did not join."""
    migrations.require_current(get_engine())
    with unit_of_work() as session:
        report = service.load_divisions(session, province)
    for line in report.lines():
        typer.echo(line)


@app.command("facilities")
def facilities(
    division: Annotated[str | None, typer.Option(help="Division code prefix, e.g. 1410 or 141024.")] = None,
    level: Annotated[str | None, typer.Option(help="national_regional_centre, tertiary, county_hospital, ...")] = None,
    q: Annotated[str | None, typer.Option(help="Part of the name or a code prefix.")] = None,
    offset: int = 0,
    limit: int = 50,
) -> None:
    """List facilities."""
    with read_session() as session:
        page = service.list_facilities(session, division_prefix=division, level=level, q=q, offset=offset, limit=limit)
    table = Table(title=f"{page.total} facilities (showing {page.offset + 1}–{page.offset + len(page.items)})")
    for col in ("code", "name", "level", "kind", "beds", "division"):
        table.add_column(col)
    for f in page.items:
        table.add_row(f.code, f.name, f.level, f.kind, str(f.beds), f.division_code)
    out.print(table)


@app.command("facility")
def facility(id_or_code: Annotated[str, typer.Argument(help="Facility id or code.")]) -> None:
    """Show one facility: place, capacity, capabilities, departments, consortia."""
    with read_session() as session:
        d = service.facility_detail(session, id_or_code)
    out.print(f"[bold]{d.name}[/] ({d.code}) · {d.level} · {d.kind} · {d.ownership}")
    out.print(" / ".join(name for _, name in d.division_path) + f"  [{d.division_code}]")
    approx = " (approximate)" if d.position_approximate else ""
    out.print(f"position: {d.lon}, {d.lat}{approx}")
    out.print(
        f"beds {d.beds} · doctors {d.doctors} · nurses {d.nurses} · staff {d.staff_total} · "
        f"registered practitioners {d.practitioners} · posted here {d.postings_in}"
    )
    out.print("capabilities: " + (", ".join(d.capabilities) or "—"))
    out.print("departments: " + ("、".join(d.departments) or "—"))
    for c in d.consortia:
        out.print(f"consortium: {c.name} ({c.form}; {c.membership}, {c.role}) {c.id}")


@app.command("consortia")
def consortia(
    form: Annotated[str | None, typer.Option(help="urban_medical_group, county_medical_community, ...")] = None,
    division: Annotated[str | None, typer.Option(help="Division code prefix of the lead facility.")] = None,
    offset: int = 0,
    limit: int = 50,
) -> None:
    """List consortia with their lead and member count."""
    with read_session() as session:
        page = service.list_consortia(session, form=form, division_prefix=division, offset=offset, limit=limit)
    table = Table(title=f"{page.total} consortia")
    for col in ("id", "name", "form", "lead", "members"):
        table.add_column(col)
    for c in page.items:
        table.add_row(str(c.id), c.name, c.form, c.lead_name, str(c.member_count))
    out.print(table)


@app.command("consortium")
def consortium(consortium_id: Annotated[str, typer.Argument(help="Consortium id.")]) -> None:
    """Show a consortium: lead, members by level, capacity, grids and gaps."""
    with read_session() as session:
        d = service.consortium_detail(session, consortium_id)
    out.print(f"[bold]{d.name}[/] · {d.form} · lead {d.lead_name} · since {d.start_date or '—'}")
    levels = ", ".join(f"{n} {lv}" for lv, n in d.counts_per_level.items() if n)
    out.print(f"{len(d.members)} members ({levels}); {d.tight_members} tight, {d.loose_members} loose; beds {d.beds}")
    for g in d.grids:
        out.print(f"grid {g.name}: " + "、".join(name for _, name in g.townships))
    if d.grid_gaps:
        out.print("[yellow]townships/streets in no grid:[/] " + "、".join(f"{n} ({c})" for c, n in d.grid_gaps))
    for m in d.members[:30]:
        out.print(f"  {m.code}  {m.name}  {m.level}  {m.membership}  {m.role}")
    if len(d.members) > 30:
        out.print(f"  … and {len(d.members) - 30} more")
