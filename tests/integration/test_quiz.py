"""Prize quizzes: operator API, the member flow (answers never shown before submit), the server-side clock,
replayed submits, pass marks, prizes (points, physical fulfilment, budget), random-K commit-reveal, roles and
isolation between brands."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from shequn.core.clock import utcnow
from shequn.loyalty import service as loyalty_service
from shequn.promotions.campaigns.models import Campaign
from shequn.promotions.quiz import fairness, service
from shequn.promotions.quiz.errors import AttemptSubmitted, QuizEnded, QuizLocked, QuizNotStarted, QuizTimeUp
from shequn.promotions.quiz.models import QuizAttempt
from shequn.promotions.quiz.schemas import QuestionIn, QuizIn
from tests.conftest import Tenant
from tests.integration.test_gatherings import people
from tests.integration.test_gatherings_member import sign_in

API = "/api/v1/quizzes"
MAPI = "/api/v1/m/quiz"
QUESTIONS = (
    QuestionIn(kind="single", text="明前龙井在哪个节气前采摘？", options=["谷雨", "清明", "立夏"], correct=[1]),
    QuestionIn(kind="multiple", text="哪些是六大茶类？", options=["白茶", "花草茶", "黑茶"], correct=[0, 2]),
    QuestionIn(kind="truefalse", text="绿茶要用沸水久泡。", options=[], correct=[1]),
)
RIGHT = {0: [1], 1: [0, 2], 2: [1]}


def make_quiz(
    db: Session,
    tenant: Tenant,
    *,
    start: timedelta = timedelta(minutes=-1),
    length: timedelta = timedelta(hours=1),
    publish: bool = True,
    **extra: Any,
) -> service.Quiz:
    """A quiz with the three questions above (published unless told)."""
    now = utcnow()
    values: dict[str, Any] = {"name": "春茶问答", "time_limit_s": 60, **extra}
    quiz = service.create_quiz(
        db,
        workspace_id=tenant.workspace_id,
        data=QuizIn(starts_at=now + start, ends_at=now + start + length, **values),
    )
    for q in QUESTIONS:
        service.add_question(db, workspace_id=tenant.workspace_id, quiz_id=quiz.id, data=q)
    if publish:
        service.publish_quiz(db, workspace_id=tenant.workspace_id, quiz_id=quiz.id)
    db.commit()
    return quiz


def answers_for(db: Session, quiz_id: int, right: bool = True) -> dict[int, list[int]]:
    """Question id → the right choices (or a wrong one for the first question)."""
    qs = service.list_questions(db, quiz_id=quiz_id)
    out = {q.id: RIGHT[i] for i, q in enumerate(qs)}
    if not right:
        out[qs[0].id] = [0]
    return out


def take(
    db: Session, tenant: Tenant, quiz_id: int, customer_id: int, *, right: bool = True, at: datetime | None = None
) -> QuizAttempt:
    """Start and submit with all answers at once (the service path), committed."""
    ws = tenant.workspace_id
    service.start_attempt(db, workspace_id=ws, quiz_id=quiz_id, customer_id=customer_id, now=at)
    attempt = service.submit(
        db, workspace_id=ws, quiz_id=quiz_id, customer_id=customer_id, answers=answers_for(db, quiz_id, right), now=at
    )
    db.commit()
    return attempt


def _keys(obj: Any) -> set[str]:
    """Every key anywhere in a JSON value."""
    if isinstance(obj, dict):
        return set(obj) | {k for v in obj.values() for k in _keys(v)}
    if isinstance(obj, list):
        return {k for v in obj for k in _keys(v)}
    return set()


def test_operator_api_and_member_flow_never_leaks_answers(client, db: Session, tenant: Tenant) -> None:
    now = utcnow()
    body = {
        "name": "新品知识问答",
        "starts_at": (now - timedelta(minutes=1)).isoformat(),
        "ends_at": (now + timedelta(hours=1)).isoformat(),
        "time_limit_s": 60,
        "prize_rule": "all",
        "prize_kind": "points",
        "prize_points": 50,
        "prize_name": "50 积分",
    }
    res = client.post(API, json=body, headers=tenant.headers("operator"))
    assert res.status_code == 201, res.text
    qid = res.json()["id"]
    for q in QUESTIONS:
        r = client.post(f"{API}/{qid}/questions", json=q.model_dump(), headers=tenant.headers("operator"))
        assert r.status_code == 201, r.text
    bad = client.post(
        f"{API}/{qid}/questions",
        json={"kind": "single", "text": "x", "options": ["a", "b"], "correct": [0, 1]},
        headers=tenant.headers("operator"),
    )
    assert bad.status_code == 422 and "correct" in bad.text
    pub = client.post(f"{API}/{qid}/publish", headers=tenant.headers("operator"))
    assert pub.status_code == 200 and len(pub.json()["seed_hash"]) == 64 and pub.json()["seed"] == ""
    locked = client.post(f"{API}/{qid}/questions", json=QUESTIONS[0].model_dump(), headers=tenant.headers("operator"))
    assert locked.status_code == 409 and locked.json()["code"] == "quiz_locked"

    (alice,) = people(db, tenant, 1)
    sign_in(client, tenant, alice)
    intro = client.get(f"{MAPI}/{qid}")
    assert intro.status_code == 200 and intro.json()["questions_count"] == 3
    started = client.post(f"{MAPI}/{qid}/start", json={})
    assert started.status_code == 200, started.text
    out = started.json()
    assert "correct" not in _keys(out) and out["resumed"] is False and 40 <= out["attempt"]["remaining_s"] <= 60
    assert out["attempt"]["correct_count"] is None and out["attempt"]["won"] is None
    qs = out["questions"]
    for i, q in enumerate(qs):
        r = client.post(f"{MAPI}/{qid}/answer", json={"question_id": q["id"], "choices": RIGHT[i]})
        assert r.status_code == 200 and r.json()["recorded"] is True and "correct" not in _keys(r.json())
    resumed = client.post(f"{MAPI}/{qid}/start", json={})
    assert resumed.json()["resumed"] is True
    assert sorted(resumed.json()["attempt"]["answered"]) == sorted(q["id"] for q in qs)
    pre = client.get(f"{MAPI}/{qid}/result").json()
    assert pre["review"] == [] and "correct" not in _keys(pre)

    first = client.post(f"{MAPI}/{qid}/submit", json={})
    assert first.status_code == 200, first.text
    res1 = first.json()
    assert res1["attempt"]["passed"] is True and res1["attempt"]["won"] is True
    assert res1["attempt"]["prize_status"] == "granted" and res1["attempt"]["correct_count"] == 3
    # Right or wrong is told; the correct options stay hidden until the quiz is over for everyone.
    assert all(item["right"] and item["correct"] == [] for item in res1["review"])
    again = client.post(f"{MAPI}/{qid}/submit", json={"answers": {str(qs[0]["id"]): [0]}})
    assert again.json()["attempt"] == res1["attempt"]
    late_answer = client.post(f"{MAPI}/{qid}/answer", json={"question_id": qs[0]["id"], "choices": [0]})
    assert late_answer.status_code == 409 and late_answer.json()["code"] == "quiz_attempt_submitted"
    assert loyalty_service.get_balance(db, workspace_id=tenant.workspace_id, customer_id=alice) == 50

    rows = client.get(f"{API}/{qid}/attempts", headers=tenant.headers("viewer")).json()
    assert rows["total"] == 1 and rows["items"][0]["phone_masked"] == "138****0000"


def test_answers_after_the_time_limit_are_refused_and_not_scored(db: Session, tenant: Tenant) -> None:
    quiz = make_quiz(db, tenant, time_limit_s=30)
    (c,) = people(db, tenant, 1)
    ws, t0 = tenant.workspace_id, utcnow()
    started = service.start_attempt(db, workspace_id=ws, quiz_id=quiz.id, customer_id=c, now=t0)
    assert started.attempt.deadline_at == t0 + timedelta(seconds=30)
    qs = service.list_questions(db, quiz_id=quiz.id)
    service.answer(db, workspace_id=ws, quiz_id=quiz.id, customer_id=c, question_id=qs[0].id, choices=[1], now=t0)
    with pytest.raises(QuizTimeUp):
        service.answer(
            db,
            workspace_id=ws,
            quiz_id=quiz.id,
            customer_id=c,
            question_id=qs[1].id,
            choices=[0, 2],
            now=t0 + timedelta(seconds=31),
        )
    # Final answers sent with a late submit are ignored too: only the first answer, given in time, counts.
    attempt = service.submit(
        db,
        workspace_id=ws,
        quiz_id=quiz.id,
        customer_id=c,
        answers=answers_for(db, quiz.id),
        now=t0 + timedelta(seconds=50),
    )
    db.commit()
    assert attempt.status == "submitted" and attempt.late is True
    assert attempt.correct_count == 1 and attempt.passed is False and attempt.won is False
    with pytest.raises(AttemptSubmitted):
        service.answer(db, workspace_id=ws, quiz_id=quiz.id, customer_id=c, question_id=qs[1].id, choices=[0, 2])


def test_time_limit_through_the_api(client, db: Session, tenant: Tenant) -> None:
    quiz = make_quiz(db, tenant, time_limit_s=30)
    (c,) = people(db, tenant, 1)
    sign_in(client, tenant, c)
    qs = client.post(f"{MAPI}/{quiz.id}/start", json={}).json()["questions"]
    # The clock ran out (moved back on the row: the server's deadline, not the browser's, decides).
    db.execute(update(QuizAttempt).values(deadline_at=utcnow() - timedelta(seconds=1)))
    db.commit()
    r = client.post(f"{MAPI}/{quiz.id}/answer", json={"question_id": qs[0]["id"], "choices": [1]})
    assert r.status_code == 409 and r.json()["code"] == "quiz_time_up"
    done = client.post(f"{MAPI}/{quiz.id}/submit", json={"answers": {q["id"]: RIGHT[i] for i, q in enumerate(qs)}})
    assert done.status_code == 200 and done.json()["attempt"]["correct_count"] == 0
    assert done.json()["attempt"]["passed"] is False


def test_windows_pass_mark_and_one_attempt(db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    early = make_quiz(db, tenant, start=timedelta(hours=1))
    a, b, c = people(db, tenant, 3)
    with pytest.raises(QuizNotStarted):
        service.start_attempt(db, workspace_id=ws, quiz_id=early.id, customer_id=a)
    over = make_quiz(db, tenant, start=timedelta(minutes=-1))
    with pytest.raises(QuizEnded):
        service.start_attempt(db, workspace_id=ws, quiz_id=over.id, customer_id=a, now=utcnow() + timedelta(hours=2))
    with pytest.raises(QuizLocked):
        service.update_quiz(
            db,
            workspace_id=ws,
            quiz_id=over.id,
            data=QuizIn(name="x", starts_at=utcnow(), ends_at=utcnow() + timedelta(hours=1)),
        )
    lenient = make_quiz(db, tenant, pass_mark=2, prize_rule="all")
    assert take(db, tenant, lenient.id, a, right=False).passed is True  # 2 of 3 is enough here
    strict = make_quiz(db, tenant)
    assert take(db, tenant, strict.id, b, right=False).passed is False
    # One attempt per customer: starting again resumes the same one.
    take(db, tenant, strict.id, c)
    again = service.start_attempt(db, workspace_id=ws, quiz_id=strict.id, customer_id=c)
    assert again.resumed is True and again.attempt.status == "submitted"
    assert service.totals(db, quiz_id=strict.id) == {
        "attempts": 2,
        "submitted": 2,
        "passed": 1,
        "winners": 1,
        "cost_fen": 0,
    }


def test_physical_prize_fulfilment_and_campaign_budget(client, db: Session, tenant: Tenant) -> None:
    now = utcnow()
    camp = Campaign(
        workspace_id=tenant.workspace_id,
        name="春茶节",
        starts_at=now,
        ends_at=now + timedelta(days=3),
        budget_fen=25000,
        spent_fen=0,
        channels=[],
        kpis={},
    )
    db.add(camp)
    db.commit()
    quiz = make_quiz(db, tenant, prize_kind="physical", prize_name="茶具", prize_cost_fen=10000, campaign_id=camp.id)
    a, b, c = people(db, tenant, 3)
    results = [take(db, tenant, quiz.id, x) for x in (a, b, c)]
    assert [r.prize_status for r in results] == ["to_ship", "to_ship", "no_budget"]
    assert [r.won for r in results] == [True, True, False]
    db.refresh(camp)
    assert camp.spent_fen == 20000
    h = tenant.headers("operator")
    url = f"{API}/{quiz.id}/attempts/{results[0].id}/ship"
    assert client.post(url, headers=h).json()["prize_status"] == "shipped"
    assert client.post(url, headers=h).json()["prize_status"] == "delivered"
    assert client.post(url, headers=h).json()["code"] == "prize_not_shippable"
    assert client.post(f"{API}/{quiz.id}/attempts/{results[2].id}/ship", headers=h).status_code == 409
    summary = service.summarize(db, workspace_id=tenant.workspace_id, campaign_id=camp.id)
    assert summary[0].wins == 2 and summary[0].cost_fen == 20000 and summary[0].participants == 3


def test_random_k_draw_is_verifiable_from_the_revealed_seed(client, db: Session, tenant: Tenant) -> None:
    quiz = make_quiz(db, tenant, prize_rule="random_k", winners_cap=3, prize_kind="points", prize_points=10)
    commitment = quiz.seed_hash
    crowd = people(db, tenant, 8)
    for i, c in enumerate(crowd):
        take(db, tenant, quiz.id, c, right=i != 0)  # one wrong answer: not a candidate
    assert client.post(f"{API}/{quiz.id}/draw", headers=tenant.headers("owner")).json()["code"] == "quiz_draw_not_ready"
    before = client.get(f"{API}/{quiz.id}/draw", headers=tenant.headers("viewer")).json()
    assert before["seed"] == "" and before["seed_hash"] == commitment and before["winners"] == []
    db.execute(update(service.Quiz).values(ends_at=utcnow() - timedelta(seconds=1)))
    db.commit()
    drawn = client.post(f"{API}/{quiz.id}/draw", headers=tenant.headers("owner"))
    assert drawn.status_code == 200, drawn.text
    record = drawn.json()
    assert len(record["candidates"]) == 7 and len(record["winners"]) == 3
    assert fairness.verify(
        seed=record["seed"], seed_hash=commitment, candidate_ids=record["candidates"], k=3, winners=record["winners"]
    )
    assert not fairness.verify(
        seed="0" * 64, seed_hash=commitment, candidate_ids=record["candidates"], k=3, winners=record["winners"]
    )
    # The draw happens once; the winners got their points, the others none.
    assert client.post(f"{API}/{quiz.id}/draw", headers=tenant.headers("owner")).status_code == 409
    won = {a.id for a in db.scalars(select(QuizAttempt).where(QuizAttempt.quiz_id == quiz.id)) if a.won}
    assert won == set(record["winners"])
    sign_in(client, tenant, crowd[1])
    public = client.get(f"{MAPI}/{quiz.id}").json()
    assert public["seed"] == record["seed"] and public["status"] == "drawn"


def test_viewer_cannot_write_and_brands_are_isolated(client, db: Session, tenant: Tenant, other_tenant: Tenant) -> None:
    quiz = make_quiz(db, tenant)
    body = {"name": "x", "starts_at": utcnow().isoformat(), "ends_at": (utcnow() + timedelta(hours=1)).isoformat()}
    assert client.post(API, json=body, headers=tenant.headers("viewer")).status_code == 403
    assert client.post(f"{API}/{quiz.id}/cancel", headers=tenant.headers("viewer")).status_code == 403
    assert client.get(f"{API}/{quiz.id}", headers=tenant.headers("viewer")).status_code == 200
    other = other_tenant.headers("owner")
    assert client.get(f"{API}/{quiz.id}", headers=other).status_code == 404
    assert client.post(f"{API}/{quiz.id}/cancel", headers=other).status_code == 404
    assert client.get(f"{API}/{quiz.id}/attempts", headers=other).status_code == 404
    assert client.get(API, headers=other).json()["total"] == 0
    (stranger,) = people(db, other_tenant, 1)
    sign_in(client, other_tenant, stranger)
    assert client.get(f"{MAPI}/{quiz.id}").status_code == 404
    assert client.post(f"{MAPI}/{quiz.id}/start", json={}).status_code == 404


def test_coupon_prize_is_granted_once_per_winner(db: Session, tenant: Tenant) -> None:
    from shequn.promotions.coupons import service as coupons_service
    from tests.integration.test_coupons import template

    tid = template(db, tenant)
    quiz = make_quiz(db, tenant, prize_kind="coupon", prize_coupon_template_id=tid, prize_name="十元券")
    a, b = people(db, tenant, 2)
    won = take(db, tenant, quiz.id, a)
    assert won.won and won.prize_status == "granted" and won.prize_ref
    take(db, tenant, quiz.id, b, right=False)
    # A replayed submit gives nothing twice.
    service.submit(db, workspace_id=tenant.workspace_id, quiz_id=quiz.id, customer_id=a)
    db.commit()
    grants, total = coupons_service.list_grants(db, workspace_id=tenant.workspace_id, template_id=tid)
    assert total == 1 and grants[0].customer_id == a and grants[0].source == "quiz"


def test_sweep_closes_timed_out_attempts_and_draws_ended_random_quizzes(db: Session, tenant: Tenant) -> None:
    from shequn.promotions.quiz import tasks

    ws = tenant.workspace_id
    quiz = make_quiz(db, tenant, prize_rule="random_k", winners_cap=1, prize_kind="points", prize_points=3)
    a, b = people(db, tenant, 2)
    take(db, tenant, quiz.id, a)
    started = service.start_attempt(db, workspace_id=ws, quiz_id=quiz.id, customer_id=b)
    service.answer(
        db,
        workspace_id=ws,
        quiz_id=quiz.id,
        customer_id=b,
        question_id=service.list_questions(db, quiz_id=quiz.id)[0].id,
        choices=[1],
    )
    db.commit()
    assert started.attempt.status == "started"
    assert tasks.sweep() == {"closed": 0, "drawn": 0}  # still running, b's clock still ticking
    # b's clock runs out just after the answer was stored.
    db.execute(update(QuizAttempt).where(QuizAttempt.customer_id == b).values(deadline_at=utcnow()))
    db.execute(update(service.Quiz).values(ends_at=utcnow() - timedelta(seconds=1)))
    db.commit()
    assert tasks.sweep() == {"closed": 1, "drawn": 1}
    db.expire_all()
    late = service.find_attempt(db, quiz_id=quiz.id, customer_id=b)
    assert late.status == "submitted" and late.late and late.correct_count == 1 and not late.won
    assert service.find_attempt(db, quiz_id=quiz.id, customer_id=a).won  # the only on-time correct attempt
    assert db.get(service.Quiz, quiz.id).status == "drawn"
