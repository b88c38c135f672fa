"""The `yilian` command: one sub-app per domain, each a thin call into that domain's service."""

from __future__ import annotations

import contextlib
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from yilian import migrations
from yilian.analytics import cli as analytics_cli
from yilian.config import get_settings
from yilian.db import get_engine, unit_of_work
from yilian.diagnostics import cli as diagnostics_cli
from yilian.errors import Invalid, YilianError
from yilian.fhir import cli as fhir_cli
from yilian.indicators import cli as indicators_cli
from yilian.network import cli as network_cli
from yilian.outreach import cli as outreach_cli
from yilian.patients import cli as patients_cli
from yilian.referrals import cli as referrals_cli
from yilian.security import service as security_service
from yilian.security import tokens
from yilian.security.roles import Role
from yilian.twin import cli as twin_cli

app = typer.Typer(no_args_is_help=True, help="Yilian 医联: the tiered, integrated health network platform.")
db_app = typer.Typer(no_args_is_help=True, help="Database migrations.")
users_app = typer.Typer(no_args_is_help=True, help="Users and roles.")
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(network_cli.app, name="network")
app.add_typer(fhir_cli.app, name="fhir", callback=lambda: _install_domains())
app.add_typer(patients_cli.app, name="patients")
app.add_typer(analytics_cli.app, name="views")
app.add_typer(twin_cli.app, name="twin")
app.add_typer(outreach_cli.app, name="outreach")
app.add_typer(indicators_cli.app, name="indicators")
app.add_typer(diagnostics_cli.app, name="diagnostics")
app.add_typer(referrals_cli.app, name="referrals")

err = Console(stderr=True)


def _install_domains() -> None:
    # `yilian fhir import` writes through the FHIR kernel, which calls the hooks domains register (the patient index
    # links imported Patients): install them as the server does.
    from yilian import patients

    patients.install()


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every migration to YILIAN_DATABASE_URL."""
    engine = get_engine()
    migrations.upgrade(engine)
    err.print(
        f"[green]database at {migrations.current_revision(engine)}[/] ({engine.url.render_as_string(hide_password=True)})"
    )


@db_app.command("current")
def db_current() -> None:
    """Print the database's migration and the one the code expects."""
    engine = get_engine()
    typer.echo(f"current: {migrations.current_revision(engine)}  expected: {migrations.head_revision(engine)}")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    worker: Annotated[bool, typer.Option(help="Also deliver outbox events in this process.")] = True,
    workers: Annotated[
        int, typer.Option(min=1, help="HTTP worker processes (each a Python interpreter: use the cores).")
    ] = 1,
) -> None:
    """Serve the UI at /, FHIR at /fhir, JSON at /api/v1, health at /healthz."""
    import threading

    import uvicorn

    from yilian.app import create_app
    from yilian.events.service import run_worker

    migrations.require_current(get_engine())
    # With one worker the app is served from this process; with several, each worker process builds its own and this
    # one only supervises (and runs the outbox worker, which needs the domains' event handlers that create_app installs).
    app_ = create_app() if workers == 1 or worker else None
    stopping = threading.Event()
    if worker:  # one outbox worker, whatever the number of HTTP workers
        threading.Thread(target=run_worker, args=(stopping.is_set,), daemon=True, name="outbox").start()
    err.print(f"Yilian on http://{host}:{port}  (FHIR /fhir · API /api/v1 · docs /api/docs)")
    try:
        if app_ is not None and workers == 1:
            uvicorn.run(app_, host=host, port=port, log_level="warning")
        else:
            from yilian.web.serving import run_workers

            run_workers(host, port, workers)
    finally:
        stopping.set()


@app.command("worker")
def worker_command() -> None:
    """Deliver outbox events (notifications, webhooks, subscriptions) until interrupted."""
    from yilian.app import create_app
    from yilian.events.service import run_worker

    migrations.require_current(get_engine())
    create_app()  # registers every domain's event handlers
    err.print("outbox worker running; Ctrl-C to stop")
    with contextlib.suppress(KeyboardInterrupt):
        run_worker(lambda: False)


@app.command()
def token(user: Annotated[str, typer.Option("--user", help="Username to issue the token for.")]) -> None:
    """Print a bearer token for USER, alone, on stdout."""
    migrations.require_current(get_engine())
    with unit_of_work() as session:
        security_service.get_user(session, user)
    typer.echo(tokens.issue(user, kind="api"))


@users_app.command("create")
def users_create(
    username: Annotated[str, typer.Argument(help="Login name (lower-case).")],
    role: Annotated[str, typer.Option(help="One of: " + ", ".join(r.value for r in Role))],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
    name: Annotated[str | None, typer.Option(help="Display name, e.g. 张医生.")] = None,
    facility: Annotated[str | None, typer.Option(help="Facility id or code (facility roles).")] = None,
    division: Annotated[
        str | None, typer.Option(help="Division code of the jurisdiction (officials, insurers).")
    ] = None,
    lang: Annotated[str, typer.Option(help="zh or en")] = "zh",
    practitioner: Annotated[
        str | None, typer.Option(help="Practitioner id of the registry record this clinician's account belongs to.")
    ] = None,
) -> None:
    """Create a user tied to a facility or a jurisdiction."""
    from yilian.network import service as network_service

    with unit_of_work() as session:
        facility_id = network_service.resolve_facility_id(session, facility) if facility else None
        if division:
            network_service.require_division(session, division)
        user = security_service.create_user(
            session,
            username=username,
            password=password,
            role=role,
            display_name=name,
            facility_id=facility_id,
            division_code=division,
            lang=lang,
        )
        if practitioner:
            network_service.link_account(session, username, practitioner)
        err.print(f"[green]created[/] {user.username} ({user.role})")


@users_app.command("link")
def users_link(
    username: Annotated[str, typer.Argument(help="Login name of a clinician's account.")],
    practitioner: Annotated[
        str | None, typer.Option(help="Practitioner id (registry); the account must work at their home facility.")
    ] = None,
    unlink: Annotated[bool, typer.Option("--unlink", help="Remove the account's link to a practitioner.")] = False,
) -> None:
    """Tie an account to the practitioner it belongs to: an expert then sees their own clinics' patients."""
    from yilian.network import service as network_service

    if bool(practitioner) == unlink:
        raise Invalid("give either --practitioner ID or --unlink", field="practitioner")
    with unit_of_work() as session:
        linked = network_service.link_account(session, username, None if unlink else practitioner)
    err.print(f"[green]linked[/] {username} → Practitioner/{linked}" if linked else f"[green]unlinked[/] {username}")


@users_app.command("list")
def users_list() -> None:
    """List users with role, facility and jurisdiction."""
    with unit_of_work() as session:
        for u in security_service.list_users(session):
            typer.echo(
                f"{u.username}\t{u.role}\t{u.facility_id or ''}\t{u.division_code or ''}\t{u.display_name}"
                f"\t{u.practitioner_id or ''}"
            )


@app.command()
def demo(
    province: Annotated[str, typer.Option(help="Province code (2 digits).")] = "14",
    city: Annotated[str, typer.Option(help="Prefecture city in full detail (4 digits).")] = "1410",
    seed: Annotated[int, typer.Option(help="Seed: the same seed builds the same region.")] = 1,
    no_serve: Annotated[bool, typer.Option("--no-serve", help="Build the demo and exit.")] = False,
    fresh: Annotated[bool, typer.Option("--fresh", help="Drop every table first and rebuild from scratch.")] = False,
    scale: Annotated[
        float,
        typer.Option(
            min=0.1, max=100, help="Activity scale: 1 = 200 patients' records and their last 90 days of care."
        ),
    ] = 1.0,
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
) -> None:
    """Build the demo region (real divisions and census, generated facilities, consortia, users) and serve it."""
    from yilian.twin import demo as demo_builder

    demo_builder.build(province=province, city=city, seed=seed, console=err, fresh=fresh, scale=scale)
    if not no_serve:
        serve(host=host, port=port, worker=True)


def main() -> None:
    get_settings()
    try:
        app()
    except YilianError as exc:
        field = f" ({exc.field})" if exc.field else ""
        err.print(f"[red]error{field}:[/] {escape(exc.message)}")
        sys.exit(2)
