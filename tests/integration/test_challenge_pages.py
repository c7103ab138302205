"""Challenge console (list, form with field errors, publish, sync, entries with votes, judging, decide, results,
votes chart, shipping) and the member H5 page (gallery with vote buttons, entering my post, winners), roles and
isolation."""

from __future__ import annotations

import re

from sqlalchemy.orm import Session

# Registers the audience Session listeners at import (see tests/integration/test_ugc_posts.py).
from shequn.audience import engine as _engine  # noqa: F401
from shequn.promotions.challenges import service
from tests.conftest import Tenant
from tests.integration.test_challenges import TAG, close_voting, make_challenge
from tests.integration.test_communities_core import make_community
from tests.integration.test_console import add_operator, login
from tests.integration.test_gatherings_console import _local
from tests.integration.test_gatherings_member import sign_in
from tests.integration.test_ugc_posts import _member, _post


def test_console_judged_challenge_from_form_to_results(client, db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    community = make_community(db, ws)
    a, b = _member(db, ws, community.id, 2)
    _post(db, ws, community.id, a, f"#{TAG}# 我的茶席")
    _post(db, ws, community.id, b, f"#{TAG}# 冷泡茶")
    csrf = login(client)
    assert client.get("/challenges").status_code == 200
    assert client.get("/challenges/new").status_code == 200
    form = {
        "csrf": csrf,
        "name": "茶席评审赛",
        "community_id": str(community.id),
        "hashtag": f"#{TAG}#",
        "mode": "judge",
        "entry_starts_at": _local(-60),
        "entry_ends_at": _local(60),
        "vote_starts_at": _local(-60),
        "vote_ends_at": _local(120),
        "max_votes_per_member": "3",
        "winners_cap": "1",
        "prize_kind": "physical",
        "prize_name": "茶具",
        "prize_cost": "88",
    }
    bad = client.post("/challenges/new", data={**form, "vote_ends_at": _local(-120)})
    assert bad.status_code == 422 and "vote_ends_at" in bad.text
    ok = client.post("/challenges/new", data=form, follow_redirects=False)
    assert ok.status_code == 303, ok.text
    cid = int(re.match(r"/challenges/(\d+)\?done=created", ok.headers["location"]).group(1))
    assert client.post(f"/challenges/{cid}/publish", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    assert client.post(f"/challenges/{cid}/sync", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    page = client.get(f"/challenges/{cid}")
    assert page.status_code == 200 and page.text.count('data-entry="') == 2 and 'id="votes-chart"' in page.text
    entries = service.list_entries(db, challenge=service.get_challenge(db, workspace_id=ws, challenge_id=cid))[0]
    for entry, score in zip(entries, (60, 95), strict=True):
        r = client.post(
            f"/challenges/{cid}/entries/{entry.id}/score",
            data={"csrf": csrf, "score": str(score)},
            follow_redirects=False,
        )
        assert r.status_code == 303 and "done=scored" in r.headers["location"]
    bad_score = client.post(
        f"/challenges/{cid}/entries/{entries[0].id}/score", data={"csrf": csrf, "score": "101"}, follow_redirects=False
    )
    assert "error=" in bad_score.headers["location"]
    close_voting(db, cid)
    assert client.post(f"/challenges/{cid}/decide", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    assert client.post(f"/challenges/{cid}/results", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    done = client.get(f"/challenges/{cid}")
    assert f'data-winner="{entries[1].id}"' in done.text and f'data-ship="{entries[1].id}"' in done.text
    assert (
        client.post(
            f"/challenges/{cid}/entries/{entries[1].id}/ship", data={"csrf": csrf}, follow_redirects=False
        ).status_code
        == 303
    )
    db.expire_all()
    assert (
        service.winners(db, challenge=service.get_challenge(db, workspace_id=ws, challenge_id=cid))[0].prize_status
        == "shipped"
    )
    sign_in(client, tenant, a)
    member_page = client.get(f"/m/{tenant.slug}/challenges/{cid}")
    assert member_page.status_code == 200 and f'data-winner="{entries[1].id}"' in member_page.text


def test_member_gallery_votes_and_entering(client, db: Session, tenant: Tenant, other_tenant: Tenant) -> None:
    ws = tenant.workspace_id
    community = make_community(db, ws)
    a, b = _member(db, ws, community.id, 2)
    _post(db, ws, community.id, a, f"#{TAG}# <script>alert(1)</script>茶席")
    plain = _post(db, ws, community.id, b, "没带话题的帖子")
    ch = make_challenge(db, tenant, community.id)
    anonymous = client.get(f"/m/{tenant.slug}/challenges/{ch.id}")
    assert anonymous.status_code == 200 and "data-sign-in" in anonymous.text
    sign_in(client, tenant, b)
    page = client.get(f"/m/{tenant.slug}/challenges/{ch.id}")
    assert page.status_code == 200 and "<script>alert(1)</script>" not in page.text
    assert page.text.count("data-vote=") == 1 and f'data-enter="{plain.id}"' in page.text
    assert "challenges.js" in page.text
    sign_in(client, tenant, a)
    own = client.get(f"/m/{tenant.slug}/challenges/{ch.id}")
    assert "data-vote=" not in own.text and "data-my-entry" in own.text
    assert client.get(f"/m/{other_tenant.slug}/challenges/{ch.id}").status_code == 404
    draft = make_challenge(db, tenant, community.id, publish=False)
    assert client.get(f"/m/{tenant.slug}/challenges/{draft.id}").status_code == 404


def test_console_roles_and_isolation(client, db: Session, tenant: Tenant, other_tenant: Tenant) -> None:
    community = make_community(db, tenant.workspace_id)
    ch = make_challenge(db, tenant, community.id)
    add_operator(db, tenant, "viewer@example.com", "viewer")
    csrf = login(client, "viewer@example.com", "password-456")
    assert client.get(f"/challenges/{ch.id}").status_code == 200
    assert client.get("/challenges/new").status_code == 403
    assert client.post(f"/challenges/{ch.id}/cancel", data={"csrf": csrf}).status_code == 403
    client.cookies.clear()
    login(client, "owner-b@example.com", "password-123")
    assert client.get(f"/challenges/{ch.id}").status_code == 404
    assert 'data-challenge="' not in client.get("/challenges").text
