"""Quiz console (list, form with field errors, the question editor, publish, charts, winners and shipping)
and the member H5 page (no answers in the HTML), roles and isolation."""

from __future__ import annotations

import re

from sqlalchemy.orm import Session

from shequn.promotions.quiz import service
from tests.conftest import Tenant
from tests.integration.test_console import add_operator, login
from tests.integration.test_gatherings import people
from tests.integration.test_gatherings_console import _local
from tests.integration.test_gatherings_member import sign_in
from tests.integration.test_quiz import make_quiz


def test_console_create_edit_questions_publish_and_results(client, db: Session, tenant: Tenant) -> None:
    csrf = login(client)
    assert client.get("/quizzes").status_code == 200
    form = {"csrf": csrf, "name": "春茶问答", "starts_at": _local(-5), "ends_at": _local(120), "time_limit_s": "90"}
    bad = client.post("/quizzes/new", data={**form, "prize_rule": "first_n", "prize_kind": "none"})
    assert bad.status_code == 422 and 'data-error-for="winners_cap"' in bad.text
    ok = client.post(
        "/quizzes/new",
        data={**form, "prize_rule": "first_n", "winners_cap": "2", "prize_kind": "physical", "prize_cost": "12.5"},
        follow_redirects=False,
    )
    assert ok.status_code == 303, ok.text
    qid = int(re.match(r"/quizzes/(\d+)\?done=created", ok.headers["location"]).group(1))
    assert service.get_quiz(db, workspace_id=tenant.workspace_id, quiz_id=qid).prize_cost_fen == 1250
    for text, kind, options, correct in (
        ("白茶属于哪类？", "single", "绿茶\n白茶\n红茶", "2"),
        ("哪些是乌龙茶？", "multiple", "大红袍\n龙井\n铁观音", "1,3"),
        ("普洱可以存放多年。", "truefalse", "", "1"),
    ):
        r = client.post(
            f"/quizzes/{qid}/questions",
            data={"csrf": csrf, "text": text, "kind": kind, "options": options, "correct": correct},
            follow_redirects=False,
        )
        assert r.status_code == 303 and "done=question" in r.headers["location"]
    wrong = client.post(
        f"/quizzes/{qid}/questions",
        data={"csrf": csrf, "text": "x", "kind": "single", "options": "a\nb", "correct": "5"},
        follow_redirects=False,
    )
    assert "error=" in wrong.headers["location"]
    qs = service.list_questions(db, quiz_id=qid)
    assert [q.correct for q in qs] == [[1], [0, 2], [0]] and qs[2].options == ["对", "错"]
    moved = client.post(f"/quizzes/{qid}/questions/{qs[2].id}/up", data={"csrf": csrf}, follow_redirects=False)
    assert moved.status_code == 303
    db.expire_all()
    assert [q.id for q in service.list_questions(db, quiz_id=qid)] == [qs[0].id, qs[2].id, qs[1].id]
    edit = client.post(
        f"/quizzes/{qid}/edit",
        data={**form, "name": "春茶知识问答", "prize_rule": "first_n", "winners_cap": "2", "prize_kind": "physical"},
        follow_redirects=False,
    )
    assert edit.status_code == 303
    assert client.post(f"/quizzes/{qid}/publish", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    right = {q.id: list(q.correct) for q in service.list_questions(db, quiz_id=qid)}
    for c in people(db, tenant, 3):
        service.start_attempt(db, workspace_id=tenant.workspace_id, quiz_id=qid, customer_id=c)
        service.submit(db, workspace_id=tenant.workspace_id, quiz_id=qid, customer_id=c, answers=right)
        db.commit()
    page = client.get(f"/quizzes/{qid}")
    assert page.status_code == 200 and "春茶知识问答" in page.text
    assert 'id="rates-chart"' in page.text and "<svg" in page.text and 'data-winner="' in page.text
    assert page.text.count('data-attempt="') == 3 and "138****0000" in page.text
    winner = service.list_attempts(db, workspace_id=tenant.workspace_id, quiz_id=qid, winners_only=True)[0][0]
    shipped = client.post(f"/quizzes/{qid}/attempts/{winner.id}/ship", data={"csrf": csrf}, follow_redirects=False)
    assert shipped.status_code == 303
    db.expire_all()
    assert (
        service.list_attempts(db, workspace_id=tenant.workspace_id, quiz_id=qid, winners_only=True)[0][0].prize_status
        == "shipped"
    )
    assert f'data-quiz="{qid}"' in client.get("/quizzes").text


def test_member_page_shows_no_answers_and_console_roles(
    client, db: Session, tenant: Tenant, other_tenant: Tenant
) -> None:
    quiz = make_quiz(db, tenant)
    (c,) = people(db, tenant, 1)
    anonymous = client.get(f"/m/{tenant.slug}/quiz/{quiz.id}")
    assert anonymous.status_code == 200 and "data-sign-in" in anonymous.text
    sign_in(client, tenant, c)
    page = client.get(f"/m/{tenant.slug}/quiz/{quiz.id}")
    assert page.status_code == 200 and "data-start" in page.text and "quiz.js" in page.text
    assert "明前龙井" not in page.text and "correct" not in page.text  # questions come only after start
    assert client.get(f"/m/{other_tenant.slug}/quiz/{quiz.id}").status_code == 404
    client.cookies.clear()
    add_operator(db, tenant, "viewer@example.com", "viewer")
    csrf = login(client, "viewer@example.com", "password-456")
    assert client.get(f"/quizzes/{quiz.id}").status_code == 200
    assert client.get("/quizzes/new").status_code == 403
    assert client.post(f"/quizzes/{quiz.id}/cancel", data={"csrf": csrf}).status_code == 403
    client.cookies.clear()
    login(client, "owner-b@example.com", "password-123")
    assert client.get(f"/quizzes/{quiz.id}").status_code == 404
