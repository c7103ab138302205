"""Member side of lotteries: the wheel page, draws through the member API with Idempotency-Key replays,
tampered requests (forged draw_no, prize id in the body, another brand's lottery, a reused number with other
inputs), buying a draw with points, my prizes and the address form, login required, brand isolation."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from shequn.loyalty import service as loyalty_service
from shequn.promotions.lottery.schemas import PrizeIn
from tests.conftest import Tenant
from tests.integration.test_gatherings_member import sign_in
from tests.integration.test_lottery import make_lottery
from tests.integration.test_loyalty import customers

MAPI = "/api/v1/m/lottery"
PHYSICAL_ONLY = [
    PrizeIn(name="<b>茶具</b>", kind="physical", weight=1, stock=10),
    PrizeIn(name="谢谢参与", kind="thanks", weight=0),
]


def _draw(client: Any, lid: int, body: dict[str, Any], key: str | None = None) -> Any:
    headers = {"Idempotency-Key": key} if key else {}
    return client.post(f"{MAPI}/{lid}/draw", json=body, headers=headers)


def test_wheel_page_draw_replay_and_my_prizes(client: Any, db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    lid = make_lottery(db, ws, prizes=PHYSICAL_ONLY, draws_per_day=2, points_per_draw=10)
    (cid,) = customers(db, ws, 1)
    assert "member_login_required" in client.get(f"{MAPI}/{lid}").text
    sign_in(client, tenant, cid)
    page = client.get(f"/m/{tenant.slug}/lottery/{lid}")
    assert page.status_code == 200 and "data-wheel" in page.text and "/mstatic/lottery.js" in page.text
    assert "<b>茶具</b>" not in page.text  # escaped, also inside the JSON state
    state = client.get(f"{MAPI}/{lid}").json()
    assert state["free_left"] == 2 and state["next_draw_no"] == 1 and len(state["commitment"]) == 64
    first = _draw(client, lid, {"draw_no": 1}, key="k-1")
    assert first.status_code == 200, first.text
    out = first.json()
    assert out["result"]["prize_kind"] == "physical" and out["state"]["free_left"] == 1 and not out["replayed"]
    # The same Idempotency-Key replays the stored reply; a new key with the same draw_no replays the draw.
    assert _draw(client, lid, {"draw_no": 1}, key="k-1").json() == out
    again = _draw(client, lid, {"draw_no": 1}, key="k-other").json()
    assert again["replayed"] and again["result"]["draw_id"] == out["result"]["draw_id"]
    assert again["state"]["free_left"] == 1
    prizes = client.get(f"{MAPI}/{lid}/prizes").json()
    assert [p["draw_id"] for p in prizes] == [out["result"]["draw_id"]] and prizes[0]["fulfilment"] == "pending"
    draw_id = out["result"]["draw_id"]
    bad = client.post(f"{MAPI}/prizes/{draw_id}/address", json={"name": "王芳", "phone": "x", "address": "杭州"})
    assert bad.status_code == 422 and {d["field"] for d in bad.json()["details"]} >= {"phone"}
    addr = {"name": "王芳", "phone": "13812345678", "address": "杭州市西湖区龙井路 1 号"}
    r = client.post(f"{MAPI}/prizes/{draw_id}/address", json=addr)
    assert r.status_code == 200 and r.json()["fulfilment"] == "ready"
    page = client.get(f"/m/{tenant.slug}/lottery/{lid}")
    assert "data-address-form" in page.text and "data-verify-link" in page.text


def test_tampered_requests_are_refused(client: Any, db: Session, tenant: Tenant, other_tenant: Tenant) -> None:
    ws = tenant.workspace_id
    lid = make_lottery(db, ws, prizes=PHYSICAL_ONLY, draws_per_day=3)
    other_lid = make_lottery(db, other_tenant.workspace_id, prizes=PHYSICAL_ONLY)
    (cid,) = customers(db, ws, 1)
    sign_in(client, tenant, cid)
    skipped = _draw(client, lid, {"draw_no": 5})
    assert skipped.status_code == 409 and skipped.json()["code"] == "lottery_bad_draw_no"
    assert _draw(client, lid, {"draw_no": 0}).status_code == 422
    forged = _draw(client, lid, {"draw_no": 1, "prize_id": 1})
    assert forged.status_code == 422 and forged.json()["details"][0]["field"].endswith("prize_id")
    assert _draw(client, lid, {"draw_no": 1, "client_nonce": "<x>"}).status_code == 422
    # Another brand's lottery does not exist for this member.
    r = _draw(client, other_lid, {"draw_no": 1})
    assert r.status_code == 404 and r.json()["code"] == "lottery_not_found"
    assert client.get(f"/m/{tenant.slug}/lottery/{other_lid}").status_code == 404
    assert _draw(client, lid, {"draw_no": 1, "client_nonce": "abc"}).status_code == 200
    changed = _draw(client, lid, {"draw_no": 1, "client_nonce": "zzz"})
    assert changed.status_code == 409 and changed.json()["code"] == "lottery_draw_conflict"
    paid = _draw(client, lid, {"draw_no": 2, "pay_with_points": True})
    assert paid.status_code == 409 and paid.json()["code"] == "lottery_not_buyable"
    # Nothing above drew twice or moved stock for the refused requests.
    assert len(client.get(f"{MAPI}/{lid}/prizes").json()) == 1
    # Another member cannot give an address for my prize.
    (stranger,) = customers(db, ws, 1, prefix="路人")
    draw_id = client.get(f"{MAPI}/{lid}/prizes").json()[0]["draw_id"]
    sign_in(client, tenant, stranger)
    r = client.post(f"{MAPI}/prizes/{draw_id}/address", json={"name": "x", "phone": "13800000000", "address": "abcd"})
    assert r.status_code == 404


def test_buy_with_points_spends_once_and_refuses_without_points(client: Any, db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    lid = make_lottery(db, ws, prizes=PHYSICAL_ONLY, draws_per_day=0, points_per_draw=30)
    (cid,) = customers(db, ws, 1)
    sign_in(client, tenant, cid)
    r = _draw(client, lid, {"draw_no": 1})
    assert r.status_code == 409 and r.json()["code"] == "lottery_no_draws_left"
    r = _draw(client, lid, {"draw_no": 1, "pay_with_points": True})
    assert r.status_code == 409 and r.json()["code"] == "points_insufficient"
    loyalty_service.award_points(db, workspace_id=ws, customer_id=cid, points=50, reason="adjust", ref="gift")
    db.commit()
    for key in ("p-1", "p-1", "p-2"):  # a retry with the same key, then a new key for the same draw
        r = _draw(client, lid, {"draw_no": 1, "pay_with_points": True}, key=key)
        assert r.status_code == 200 and r.json()["state"]["points"] == 20
    assert loyalty_service.get_balance(db, workspace_id=ws, customer_id=cid) == 20
    r = _draw(client, lid, {"draw_no": 2, "pay_with_points": True})
    assert r.status_code == 409 and r.json()["code"] == "points_insufficient"
    assert loyalty_service.get_balance(db, workspace_id=ws, customer_id=cid) == 20


def test_public_verification_needs_no_login_and_hides_drafts(client: Any, db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    lid = make_lottery(db, ws)
    draft = make_lottery(db, ws, publish=False)
    r = client.get(f"{MAPI}/verify/{tenant.slug}/{lid}")
    assert r.status_code == 200 and r.json()["seed_hex"] is None and r.json()["draws"] == []
    assert client.get(f"{MAPI}/verify/{tenant.slug}/{draft}").status_code == 404
    assert client.get(f"/m/{tenant.slug}/lottery/{draft}").status_code == 404
    page = client.get(f"/m/{tenant.slug}/lottery/{lid}/verify")
    assert page.status_code == 200 and "data-commitment" in page.text


def test_draw_requests_go_through_the_guard(client: Any, db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    lid = make_lottery(db, ws, prizes=PHYSICAL_ONLY)
    (cid,) = customers(db, ws, 1)
    block = {"kind": "customer", "value": str(cid), "reason": "羊毛党"}
    assert client.post("/api/v1/guard/blocks", json=block, headers=tenant.headers()).status_code == 201
    sign_in(client, tenant, cid)
    r = _draw(client, lid, {"draw_no": 1})
    assert r.status_code == 403 and r.json()["code"] == "guard_blocked"
    assert client.get(f"{MAPI}/{lid}/prizes").json() == []
