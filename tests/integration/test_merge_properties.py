"""Property tests: however orders and batches fall, customers are exactly the connected identities,
and purchase facts equal a plain recomputation from the orders."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select

from shequn.audience.models import Customer, CustomerIdentity, CustomerMerge
from shequn.audience.schemas import CustomerIn, IdentityIn
from shequn.commerce import service as commerce_service  # noqa: F401  (registers the merge hook)
from shequn.commerce.canonical import PAID_STATUSES, LineItemIn, OrderIn, ParsedRow
from shequn.commerce.ingest import import_orders
from shequn.commerce.models import Order, OrderLineItem, Product
from tests.conftest import Tenant

# A small pool so that identities collide often: (source, kind, value, verified).
POOL = [
    ("taobao", "buyer_nick", "nick-a", True),
    ("taobao", "buyer_nick", "nick-b", True),
    ("weibo", "handle", "nick-a", True),  # same text as a Taobao nick, another platform: never merges
    ("youzan", "customer_id", "y1", True),
    ("youzan", "customer_id", "y2", True),
    ("wechat", "unionid", "u1", True),
    ("shopify", "customer_id", "s1", True),
    ("weibo", "handle", "tea-lover", True),
    ("douyin", "handle", "tea-lover", True),  # the same handle on two platforms: two people unless linked
]
PHONES = ["13800000001", "13800000002"]
STATUSES = ["paid", "completed", "refunded", "cancelled", "partially_refunded"]

person = st.fixed_dictionaries(
    {
        "idents": st.lists(st.sampled_from(range(len(POOL))), min_size=1, max_size=3, unique=True),
        "phone": st.one_of(st.none(), st.sampled_from(PHONES)),
        "verified": st.booleans(),
        "status": st.sampled_from(STATUSES),
        "amount": st.integers(min_value=0, max_value=50_000),
        "cat": st.sampled_from(["绿茶", "红茶", "茶具"]),
    }
)


def _key(i: int) -> str:
    source, kind, value, _ = POOL[i]
    return f"{kind}:{'*' if kind == 'unionid' else source}:{value}"


def _expected_groups(people: list[dict]) -> list[int]:
    """Plain union-find: which orders belong to one person."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    keys_of = []
    for p in people:
        keys = [_key(i) for i in p["idents"]]
        if p["phone"] and p["verified"]:
            keys.append("phone:" + p["phone"])
        keys_of.append(keys)
        for k in keys[1:]:
            parent[find(k)] = find(keys[0])
    return [hash(find(keys[0])) for keys in keys_of]


def _order(n: int, p: dict) -> OrderIn:
    at = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=n)
    refunded = (
        p["amount"] if p["status"] == "refunded" else (p["amount"] // 2 if p["status"] == "partially_refunded" else 0)
    )
    return OrderIn(
        source="api",
        shop_id="s",
        source_order_id=f"o{n}",
        status=p["status"],
        currency="CNY",
        total=p["amount"],
        paid=p["amount"],
        refunded=refunded,
        created_at=at,
        source_updated_at=at,
        line_items=[
            LineItemIn(
                sku="SKU-" + p["cat"],
                title=p["cat"],
                quantity=1,
                unit_price=p["amount"],
                total=p["amount"],
                category=p["cat"],
            )
        ],
        customer=CustomerIn(
            identities=[IdentityIn(POOL[i][0], POOL[i][1], POOL[i][2], POOL[i][3]) for i in p["idents"]],
            phone=p["phone"],
            phone_verified=p["verified"],
            name="买家",
        ),
    )


def _wipe(db, ws: int) -> None:
    for model in (OrderLineItem, Order, Product, CustomerMerge, CustomerIdentity):
        db.execute(delete(model).where(model.workspace_id == ws))
    db.execute(delete(Customer).where(Customer.workspace_id == ws))
    db.commit()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(people=st.lists(person, min_size=1, max_size=14), batch=st.integers(min_value=1, max_value=6))
def test_customers_are_connected_identities_and_facts_add_up(db, tenant: Tenant, people, batch) -> None:
    ws = tenant.workspace_id
    _wipe(db, ws)
    rows = [ParsedRow(row=n + 1, item=_order(n, p)) for n, p in enumerate(people)]
    import_orders(db, workspace_id=ws, rows=rows, batch_size=batch, on_batch=lambda _s: db.commit())
    db.commit()
    db.expire_all()

    by_order = {o.source_order_id: o.customer_id for o in db.scalars(select(Order).where(Order.workspace_id == ws))}
    expected = _expected_groups(people)
    for i in range(len(people)):
        for j in range(len(people)):
            same = by_order[f"o{i}"] == by_order[f"o{j}"]
            assert same == (expected[i] == expected[j]), (i, j, people[i], people[j])

    live = {
        c.id: c
        for c in db.scalars(select(Customer).where(Customer.workspace_id == ws, Customer.merged_into_id.is_(None)))
    }
    assert set(by_order.values()) <= set(live)
    want: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    cats: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for n, p in enumerate(people):
        cid = by_order[f"o{n}"]
        if p["status"] in PAID_STATUSES:
            o = _order(n, p)
            want[cid][0] += 1
            want[cid][1] += o.paid - o.refunded
            cats[cid][p["cat"]] += p["amount"]
    for cid, c in live.items():
        assert [c.orders_count, c.total_spent] == want.get(cid, [0, 0]), cid
        assert c.category_spend == dict(cats.get(cid, {})), cid
        assert c.orders_count == 0 or c.first_order_at is not None
    # Identities never point at a merged customer.
    owners = set(db.scalars(select(CustomerIdentity.customer_id).where(CustomerIdentity.workspace_id == ws)))
    assert owners <= set(live)
