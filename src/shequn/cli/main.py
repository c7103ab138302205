"""The `shequn` command: migrate, create the first owner, load demo data, import files, serve, work."""

from __future__ import annotations

import threading
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from shequn.core import jobs
from shequn.core.clock import SHANGHAI
from shequn.core.db import new_session, session_scope
from shequn.core.migrate import upgrade
from shequn.core.settings import get_settings
from shequn.identity import service as identity_service
from shequn.identity.service import Actor

app = typer.Typer(help="shequn 社群 — social CRM and community operations", no_args_is_help=True)
token_app = typer.Typer(help="API tokens")
app.add_typer(token_app, name="token")
console = Console()

DEMO_EMAIL = "owner@shequn.local"
DEMO_PASSWORD = "shequn-demo-2026"  # printed on start; development only (production refuses the dev secret)
DEMO_SLUG = "demo-tea"


def _demo_end(day: str) -> str:
    """Midnight Asia/Shanghai at the end of `day` (today when empty), as ISO text."""
    try:
        d = date.fromisoformat(day) if day else datetime.now(SHANGHAI).date()
    except ValueError:
        console.print(f"[red]--end must be YYYY-MM-DD, got {day!r}[/red]")
        raise typer.Exit(2) from None
    return (datetime.combine(d, datetime.min.time(), SHANGHAI) + timedelta(days=1)).isoformat()


def _register() -> None:
    from shequn.app import register_jobs

    register_jobs()


def _workspace_id(slug: str) -> int:
    with new_session() as s:
        ws = identity_service.get_workspace_by_slug(s, slug)
        if ws is None:
            console.print(f"[red]no workspace {slug!r}[/red]")
            raise typer.Exit(2)
        return ws.id


def _run_with_progress(job_id: int, label: str) -> dict:
    """Run a job in a thread of this process and draw its progress from the job row."""
    failure: list[BaseException] = []

    def work() -> None:
        try:
            jobs.run_job(job_id)
        except BaseException as exc:  # reported below; the job row has the details
            failure.append(exc)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[msg]}"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task(label, total=None, msg="")
        while True:
            thread.join(0.3)
            with new_session() as s:
                job = s.get(jobs.JobRun, job_id)
                assert job is not None
                progress.update(task, completed=job.progress_done, total=job.progress_total or None, msg=job.message)
                if not thread.is_alive():
                    result, status, error = job.result, job.status, job.error
                    break
    if status != "succeeded":
        console.print(f"[red]{label} failed:[/red] {error or failure}")
        raise typer.Exit(1)
    return dict(result)


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema."""
    upgrade()
    console.print(f"schema up to date: {get_settings().effective_database_url.split('@')[-1]}")


@app.command("create-owner")
def create_owner(
    email: str = typer.Option(..., prompt=True),
    password: str = typer.Option(..., prompt=True, hide_input=True, confirmation_prompt=True),
    name: str = typer.Option("Owner"),
    workspace_slug: str = typer.Option("my-brand", help="a-z, 0-9 and -"),
    workspace_name: str = typer.Option("My Brand"),
) -> None:
    """Create the first workspace and its owner."""
    upgrade()
    with session_scope() as s:
        op, ws = identity_service.bootstrap_owner(
            s, email=email, password=password, name=name, workspace_slug=workspace_slug, workspace_name=workspace_name
        )
        console.print(f"owner {op.email} of workspace {ws.slug} (id {ws.id}) ready")


@app.command()
def demo(
    customers: int = typer.Option(5000, min=1, help="number of demo customers"),
    months: int = typer.Option(12, min=1, max=36),
    seed: int = typer.Option(42),
    workspace: str = typer.Option(DEMO_SLUG),
    end: str = typer.Option("", help="last day of the 12 months, YYYY-MM-DD (default: today, Asia/Shanghai)"),
) -> None:
    """Generate the demo tea brand (products, customers, orders) into a workspace, as a job.

    The same seed and end date always give the same data; the end defaults to today so the
    dashboard's last twelve months are full.
    """
    from shequn.commerce import service as commerce_service

    upgrade()
    _register()
    with session_scope() as s:
        op, ws = identity_service.bootstrap_owner(
            s,
            email=DEMO_EMAIL,
            password=DEMO_PASSWORD,
            name="演示店主",
            workspace_slug=workspace,
            workspace_name="山茶集 · 演示",
        )
        job = jobs.JobRun(
            workspace_id=ws.id,
            kind=commerce_service.DEMO_JOB,
            created_by=op.id,
            status="queued",
            params={"customers": customers, "months": months, "seed": seed, "end": _demo_end(end)},
        )
        s.add(job)
        s.flush()
        job_id = job.id
    result = _run_with_progress(job_id, "demo data")
    console.print(result)


@app.command("import")
def import_file(
    path: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True),
    workspace: str = typer.Option(..., help="workspace slug"),
    source: str = typer.Option("", help="taobao | youzan | shopify | woocommerce | shequn (empty = detect)"),
    shop_id: str = typer.Option("default"),
    kind: str = typer.Option("orders", help="orders | products"),
) -> None:
    """Import an order or product file with a progress bar; bad rows are listed at the end."""
    from shequn.commerce import service as commerce_service

    _register()
    ws_id = _workspace_id(workspace)
    with session_scope() as s:
        actor = Actor(workspace_id=ws_id, role="owner")
        job = commerce_service.start_import(
            s, actor, filename=path.name, data=path.read_bytes(), source=source or None, shop_id=shop_id, kind=kind
        )
        # The CLI runs the job itself (with a progress bar), so keep it away from any worker.
        s.info.pop("shequn.after_commit", None)
        job_id = job.id
    result = _run_with_progress(job_id, f"import {path.name}")
    if result.get("file_error"):
        console.print(f"[red]file rejected:[/red] {result['file_error']} {result.get('file_error_params', {})}")
        raise typer.Exit(1)
    console.print(result)
    with new_session() as s:
        errors = commerce_service.list_row_errors(s, workspace_id=ws_id, job_id=job_id, limit=50)
    if errors:
        table = Table("row", "field", "reason", "order id", title="rejected rows (first 50)")
        for e in errors:
            table.add_row(str(e.row), e.field, e.reason, e.source_order_id)
        console.print(table)


@app.command("rebuild-rollups")
def rebuild_rollups(workspace: str = typer.Option(..., help="workspace slug")) -> None:
    """Recompute the dashboard's daily rollups from the orders (after a restore or a timezone change)."""
    from shequn.commerce import service as commerce_service

    ws_id = _workspace_id(workspace)
    with session_scope() as s:
        days = commerce_service.rebuild_rollups(s, workspace_id=ws_id)
    console.print(f"rebuilt {days} days")


@token_app.command("create")
def token_create(
    workspace: str = typer.Option(...),
    name: str = typer.Option(...),
    role: str = typer.Option("operator"),
) -> None:
    """Issue an API token (printed once)."""
    ws_id = _workspace_id(workspace)
    with session_scope() as s:
        plain, _ = identity_service.create_api_token(s, Actor(workspace_id=ws_id, role="owner"), name=name, role=role)
    console.print(plain)


@app.command()
def serve(
    host: str | None = typer.Option(None),
    port: int | None = typer.Option(None),
    workers: int = typer.Option(1),
) -> None:
    """Serve the console and API (the job worker runs inside unless SHEQUN_JOBS_MODE=external)."""
    import uvicorn

    settings = get_settings()
    upgrade()
    uvicorn.run(
        "shequn.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        log_level="info",
    )


@app.command()
def worker(threads: int = typer.Option(4)) -> None:
    """Run a dedicated job worker process (production)."""
    _register()
    jobs.run_worker(threads)


@app.command()
def up(customers: int = typer.Option(5000)) -> None:
    """Development start: migrate, load the demo brand once, print the login, serve."""
    upgrade()
    with new_session() as s:
        has_demo = identity_service.get_workspace_by_slug(s, DEMO_SLUG) is not None
    if not has_demo:
        demo(customers=customers, months=12, seed=42, workspace=DEMO_SLUG, end="")
    settings = get_settings()
    console.rule("shequn 社群")
    console.print(f"console:  http://{settings.host}:{settings.port}/")
    console.print(f"API docs: http://{settings.host}:{settings.port}/docs")
    console.print(f"login:    [bold]{DEMO_EMAIL}[/bold]  password: [bold]{DEMO_PASSWORD}[/bold]")
    console.rule()
    time.sleep(0.1)
    serve(host=None, port=None, workers=1)


if __name__ == "__main__":
    app()
