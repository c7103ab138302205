"""A campaign's activity per day: participations the activities report land on the workspace's local days."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

from shequn.core.clock import utcnow
from shequn.core.sqlutil import count_by_local_day
from shequn.promotions.campaigns import service as campaigns_service
from shequn.promotions.campaigns.schemas import CampaignIn
from shequn.promotions.coupons import service as coupons_service
from shequn.promotions.coupons.models import CouponGrant
from tests.conftest import Tenant
from tests.integration.test_coupons import people, template


def test_participations_per_local_day_across_midnight(db: Session, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    now = utcnow()
    campaign = campaigns_service.create_campaign(
        db,
        workspace_id=ws,
        data=CampaignIn(name="跨零点", starts_at=now - timedelta(days=5), ends_at=now + timedelta(days=2)),
    )
    db.commit()
    tid = template(db, tenant, campaign_id=campaign.id, starts_at=now - timedelta(days=5))
    buyers = people(db, tenant, 4)
    grants = [
        coupons_service.grant_coupon(
            db, workspace_id=ws, template_id=tid, customer_id=c, source="api", source_ref=f"r{c}"
        )
        for c in buyers
    ]
    db.commit()
    # Three days ago in UTC: 15:10 and 15:50 are 23:10 and 23:50 in Shanghai; 16:05 is already the next day there.
    base = (now - timedelta(days=3)).replace(hour=0, minute=0, second=0, microsecond=0)
    times = [base + timedelta(hours=15, minutes=10), base + timedelta(hours=15, minutes=50)]
    times += [base + timedelta(hours=16, minutes=5), base + timedelta(hours=16, minutes=6)]
    for g, at in zip(grants, times, strict=True):
        db.execute(update(CouponGrant).where(CouponGrant.id == g.id).values(created_at=at))
    db.commit()
    day = base.date()
    before, after = day.isoformat(), (day + timedelta(days=1)).isoformat()

    results = campaigns_service.campaign_results(db, workspace_id=ws, campaign_id=campaign.id)
    days = {d.day: d.participations for d in results.days}
    assert days[before] == 2 and days[after] == 2
    assert sum(days.values()) == 4  # every other day of the campaign shows zero
    (coupon,) = [a for a in results.activities if a.kind == "coupon"]
    assert coupon.extra[f"day:{before}"] == 2

    # The same rows seen from New York (UTC-5 in winter, UTC-4 in summer) fall on one earlier-or-same day.
    where = [CouponGrant.template_id == tid]
    assert count_by_local_day(db, CouponGrant.created_at, where, "UTC") == {before: 4}
    new_york = count_by_local_day(db, CouponGrant.created_at, where, "America/New_York")
    assert new_york == {before: 4}
    assert count_by_local_day(db, CouponGrant.created_at, [CouponGrant.template_id == -1], "UTC") == {}


def test_local_days_follow_daylight_saving(db: Session, tenant: Tenant) -> None:
    tid = template(db, tenant)
    a, b = people(db, tenant, 2)
    for c in (a, b):
        coupons_service.grant_coupon(
            db, workspace_id=tenant.workspace_id, template_id=tid, customer_id=c, source="api", source_ref=f"d{c}"
        )
    db.commit()
    # 03:30 UTC is 23:30 the day before in New York in summer (UTC-4) and 22:30 in winter (UTC-5).
    summer, winter = datetime(2026, 7, 2, 3, 30, tzinfo=UTC), datetime(2026, 1, 2, 4, 30, tzinfo=UTC)
    db.execute(update(CouponGrant).where(CouponGrant.customer_id == a).values(created_at=summer))
    db.execute(update(CouponGrant).where(CouponGrant.customer_id == b).values(created_at=winter))
    db.commit()
    got = count_by_local_day(db, CouponGrant.created_at, [CouponGrant.template_id == tid], "America/New_York")
    assert got == {"2026-07-01": 1, "2026-01-01": 1}
