"""End-to-end fairness: draws through the real service on the real database follow the prize weights
(chi-square, fixed seed so the test is deterministic), and a revealed lottery's public record — fetched
without signing in — recomputes draw by draw with the documented stand-alone snippet, stock fallbacks
included; a tampered record or a wrong seed does not."""

from __future__ import annotations

import copy
from collections import Counter
from datetime import timedelta
from typing import Any

from scipy.stats import chisquare
from sqlalchemy import update
from sqlalchemy.orm import Session

from shequn.core.clock import utcnow
from shequn.core.security import encrypt_secret
from shequn.promotions.lottery import fairness, service
from shequn.promotions.lottery.models import Lottery
from shequn.promotions.lottery.schemas import PrizeIn
from tests.conftest import Tenant
from tests.integration.test_lottery import make_lottery
from tests.integration.test_loyalty import customers
from tests.unit.test_lottery_fairness import doc_snippet

FIXED_SEED = bytes.fromhex("5eed" * 16)
PEOPLE, DRAWS_EACH = 20, 30  # 600 draws end to end; tests/unit has 60,000 on the pure function


def fix_seed(db: Session, lottery_id: int) -> None:
    """Replace the random seed with a fixed one (and its commitment) so the test is deterministic."""
    db.execute(
        update(Lottery)
        .where(Lottery.id == lottery_id)
        .values(seed_sealed=encrypt_secret(FIXED_SEED.hex()), commitment=fairness.commitment_of(FIXED_SEED))
    )
    db.commit()


def _draw_all(db: Session, ws: int, lid: int, people: list[int], each: int, nonce: bool = False) -> None:
    for cid in people:
        for no in range(1, each + 1):
            service.draw_lottery(
                db,
                workspace_id=ws,
                lottery_id=lid,
                customer_id=cid,
                draw_no=no,
                client_nonce=f"n{no}" if nonce and no % 2 else "",
            )
        db.commit()


def test_observed_frequencies_fit_the_weights(db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    prizes = [
        PrizeIn(name="一等奖", kind="points", weight=5, points=100),
        PrizeIn(name="二等奖", kind="points", weight=15, points=10),
        PrizeIn(name="三等奖", kind="physical", weight=30),
        PrizeIn(name="谢谢参与", kind="thanks", weight=50),
    ]
    lid = make_lottery(db, ws, prizes=prizes, draws_per_day=DRAWS_EACH)
    fix_seed(db, lid)
    people = customers(db, ws, PEOPLE)
    _draw_all(db, ws, lid, people, DRAWS_EACH)
    stats = service.prize_stats(db, workspace_id=ws, lottery_id=lid)
    observed = [s.chosen for s in stats]
    total = PEOPLE * DRAWS_EACH
    assert sum(observed) == total and all(s.chosen == s.awarded for s in stats)  # unlimited stock: no fallback
    result = chisquare(observed, [total * s.expected for s in stats])
    assert result.pvalue > 0.001, (observed, result)


def test_revealed_record_recomputes_with_the_doc_snippet(client: Any, db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    now = utcnow()
    prizes = [
        PrizeIn(name="茶具", kind="physical", weight=30, stock=3),
        PrizeIn(name="积分", kind="points", weight=20, points=5, stock=10),
        PrizeIn(name="谢谢参与", kind="thanks", weight=50),
    ]
    lid = make_lottery(db, ws, prizes=prizes, draws_per_day=6, ends=now + timedelta(hours=1))
    fix_seed(db, lid)
    _draw_all(db, ws, lid, customers(db, ws, 10), 6, nonce=True)
    url = f"/api/v1/m/lottery/verify/{tenant.slug}/{lid}"
    before = client.get(url).json()
    assert before["seed_hex"] is None and before["commitment"] == fairness.commitment_of(FIXED_SEED)
    # End it and reveal.
    db.execute(update(Lottery).where(Lottery.id == lid).values(ends_at=now - timedelta(seconds=1)))
    db.commit()
    assert client.post(f"/api/v1/lotteries/{lid}/reveal", headers=tenant.headers()).status_code == 200
    record = client.get(url).json()
    assert record["seed_hex"] == FIXED_SEED.hex() and record["draws_total"] == 60
    fallbacks = Counter(d["fallback"] for d in record["draws"])
    assert fallbacks["stock"] > 0  # the replay below really exercises the stock rule
    assert all(d["player"] != str(d.get("customer_id")) for d in record["draws"]) and "customer_id" not in str(record)
    verify = doc_snippet()["verify"]
    assert verify(record) == []
    assert fairness.verify_log(record["seed_hex"], record["commitment"], lid, record["prizes"], record["draws"]) == []
    # A forged outcome, a forged number or a different seed is caught.
    forged = copy.deepcopy(record)
    won = next(d for d in forged["draws"] if d["fallback"] == "stock")
    won["prize_id"], won["fallback"] = won["chosen_prize_id"], ""
    assert verify(forged)
    forged = copy.deepcopy(record)
    forged["draws"][0]["number"] += 1
    assert verify(forged)
    forged = copy.deepcopy(record)
    forged["seed_hex"] = "00" * 32
    assert "seed does not match the commitment" in verify(forged)
    # The public page shows the same record.
    page = client.get(f"/m/{tenant.slug}/lottery/{lid}/verify")
    assert page.status_code == 200 and record["commitment"] in page.text and FIXED_SEED.hex() in page.text
