"""Console lotteries: create through the form (errors beside their fields, probabilities shown), publish,
the results page (chart, expected vs observed, won vs stock, commitment, budget), reveal only after the end,
the fulfilment queue (ship, deliver), a viewer cannot write, another workspace cannot see."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from shequn.core.clock import utcnow
from shequn.core.fmt import zone
from shequn.promotions.lottery import service
from shequn.promotions.lottery.models import Lottery
from shequn.promotions.lottery.schemas import PrizeIn
from tests.conftest import Tenant, make_tenant
from tests.integration.test_console import add_operator, login
from tests.integration.test_lottery import make_lottery
from tests.integration.test_lottery_fairness import FIXED_SEED, fix_seed
from tests.integration.test_loyalty import customers


def _local(minutes: int) -> str:
    return (utcnow() + timedelta(minutes=minutes)).astimezone(zone("Asia/Shanghai")).strftime("%Y-%m-%dT%H:%M")


def _form(csrf: str, **extra: str) -> dict[str, str]:
    return {
        "csrf": csrf,
        "name": "春茶转盘 <i>x</i>",
        "starts_at": _local(-60),
        "ends_at": _local(600),
        "draws_per_day": "2",
        "points_per_draw": "30",
        "p0_name": "紫砂壶",
        "p0_kind": "physical",
        "p0_weight": "1",
        "p0_stock": "2",
        "p0_cost": "99.5",
        "p1_name": "谢谢参与",
        "p1_kind": "thanks",
        "p1_weight": "3",
        **extra,
    }


def test_create_publish_results_and_fulfilment(client: Any, db: Session, tenant: Tenant) -> None:
    csrf = login(client)
    listing = client.get("/lotteries")
    assert listing.status_code == 200 and 'id="new-lottery"' in listing.text
    assert 'name="p0_weight"' in client.get("/lotteries/new").text
    bad = client.post("/lotteries/new", data=_form(csrf, p1_kind="points"))
    assert bad.status_code == 422 and 'id="form-error"' in bad.text and "25.00%" in bad.text
    r = client.post("/lotteries/new", data=_form(csrf), follow_redirects=False)
    assert r.status_code == 303, r.text
    match = re.match(r"/lotteries/(\d+)\?done=created", r.headers["location"])
    assert match
    lid = int(match.group(1))
    prizes = service.list_prizes(db, lottery_id=lid)
    assert [(p.kind, p.stock, p.cost_fen) for p in prizes] == [("physical", 2, 9950), ("thanks", None, 0)]
    page = client.post(f"/lotteries/{lid}/publish", data={"csrf": csrf}, follow_redirects=True)
    assert page.status_code == 200 and 'id="commitment"' in page.text
    lottery = service.get_lottery(db, workspace_id=tenant.workspace_id, lottery_id=lid)
    assert lottery.seed_hex is None and lottery.seed_sealed  # kept only sealed until the reveal
    secret = service.secret_seed(lottery).hex()
    assert secret not in lottery.seed_sealed
    assert lottery.commitment and lottery.commitment in page.text and secret not in page.text
    assert "春茶转盘 &lt;i&gt;x&lt;/i&gt;" in page.text
    # Reveal is refused before the end.
    r = client.post(f"/lotteries/{lid}/reveal", data={"csrf": csrf}, follow_redirects=True)
    assert 'id="lottery-error"' in r.text
    # Some draws (a fixed seed keeps the outcome the same every run), an address, then ship and deliver.
    fix_seed(db, lid)
    people = customers(db, tenant.workspace_id, 12)
    for cid in people:
        service.draw_lottery(db, workspace_id=tenant.workspace_id, lottery_id=lid, customer_id=cid, draw_no=1)
    db.commit()
    log, _ = service.verification_draws(db, lottery_id=lid)
    won = [d for d in log if d.prize_kind == "physical"]
    assert won
    service.set_address(
        db,
        workspace_id=tenant.workspace_id,
        draw_id=won[0].id,
        customer_id=won[0].customer_id,
        name="李雷",
        phone="13912345678",
        address="上海市静安区南京西路 1 号",
    )
    db.commit()
    page = client.get(f"/lotteries/{lid}")
    assert 'class="chart"' in page.text and "data-ship" in page.text and "139****5678" in page.text
    assert "13912345678" not in page.text and "25.00%" in page.text
    url = f"/lotteries/{lid}/draws/{won[0].id}/fulfilment"
    r = client.post(url, data={"csrf": csrf, "status": "shipped", "tracking_no": "SF1"}, follow_redirects=True)
    assert "data-deliver" in r.text and "SF1" in r.text
    r = client.post(url, data={"csrf": csrf, "status": "delivered"}, follow_redirects=True)
    assert r.status_code == 200 and "data-deliver" not in r.text
    # After the end the reveal button works and shows the seed.
    db.execute(update(Lottery).where(Lottery.id == lid).values(ends_at=utcnow() - timedelta(seconds=1)))
    db.commit()
    r = client.post(f"/lotteries/{lid}/reveal", data={"csrf": csrf}, follow_redirects=True)
    assert FIXED_SEED.hex() in r.text and 'id="lottery-phase"' in r.text


def test_viewer_cannot_write_and_workspaces_are_isolated(client: Any, db: Session, tenant: Tenant) -> None:
    lid = make_lottery(db, tenant.workspace_id, prizes=[PrizeIn(name="谢谢", kind="thanks", weight=1)])
    add_operator(db, tenant, "viewer@example.com", "viewer")
    csrf = login(client, "viewer@example.com", "password-456")
    assert client.get(f"/lotteries/{lid}").status_code == 200
    assert client.get("/lotteries/new").status_code == 403
    assert client.post(f"/lotteries/{lid}/cancel", data={"csrf": csrf}).status_code == 403
    other = make_tenant(db, "brand-z", "owner-z@example.com")
    other_lid = make_lottery(db, other.workspace_id)
    assert client.get(f"/lotteries/{other_lid}").status_code == 404
    assert f'data-lottery="{other_lid}"' not in client.get("/lotteries").text
