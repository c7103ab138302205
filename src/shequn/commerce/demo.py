"""A deterministic demo brand (山茶集, a Chinese tea brand): products and a year of orders from three stores.

Pure Python on ``random.Random(seed)``; the same DemoSpec always gives byte-identical output.

How it scales: a first pass walks the customers once and keeps, per customer, a 32-byte profile
(indexes into the name/city/product tables, follower count) and, per order, one packed 64-bit key
(created second, customer, order number) in a weekly bucket. The second pass sorts one week of keys
at a time and builds the OrderIn objects from the keys and profiles. Memory is therefore ~32 B per
customer plus ~8 B per order (≈ 60 MB for 1,000,000 customers, 2.6 M orders), never the orders
themselves, and the stream is in strict created_at order (ties broken by customer, then order number).
Speed: ~100k orders/s on one CPython 3.11 core, plus ~4 s of planning per million customers.
"""

from __future__ import annotations

import base64
from array import array
from bisect import bisect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, timedelta, timezone
from functools import lru_cache
from itertools import accumulate
from random import Random

from shequn.commerce import demo_data as data
from shequn.commerce.canonical import CustomerIn, IdentityIn, LineItemIn, OrderIn, ProductIn

__all__ = [
    "BRAND_NAME",
    "BRAND_SLUG",
    "DEFAULT_END",
    "SHOPS",
    "DemoSpec",
    "demo_orders",
    "demo_products",
    "estimate_orders",
]

BRAND_NAME = "山茶集"
BRAND_SLUG = "shanchaji"
SHOPS = {"taobao": "tmall-flagship", "youzan": "youzan-main", "shopify": "shopify-global"}
CST = timezone(timedelta(hours=8))
DEFAULT_END = datetime(2026, 11, 1, tzinfo=CST)

DAY = 86_400
BUCKET = 7 * DAY  # one sort unit of the second pass
SEQ_BITS, IDX_BITS = 6, 30  # key = created second << 36 | customer << 6 | order number
MAX_ORDERS = (1 << SEQ_BITS) - 1
MAX_CUSTOMERS = 10**8  # phones are 8 scrambled digits after the prefix, unique per customer up to here
USD_RATE = 7.2

# Customer behaviour: (segment, share %, order-count range as a function of months).
SEGMENTS = ("one_time", "occasional", "loyal", "lapsed", "superfan")
SEGMENT_SHARES = (60.0, 22.0, 10.0, 7.0, 1.0)
ONE_TIME, OCCASIONAL, LOYAL, LAPSED, SUPERFAN = range(5)
TAOBAO, YOUZAN, BOTH, SHOPIFY = range(4)  # which store(s) a customer buys from
CROSS_STORE_SHARE = 0.08  # of all customers: Taobao and Youzan with one verified phone
SOCIAL_SHARE = 0.25
PLATFORMS = ("weibo", "douyin", "xiaohongshu")

# Profile fields, one array('H') row per customer.
(
    F_SUR,
    F_G1,
    F_G2,
    F_FEMALE,
    F_CITY,
    F_PREFIX,
    F_STORE,
    F_FAV,
    F_NICK_STYLE,
    F_NICK_WORD,
    F_SOCIAL,
    F_SOCIAL_WORD,
    F_EMAIL,
    F_FLAGS,
) = range(14)
NF = 14
FLAG_USD, FLAG_TAOBAO_FIRST = 1, 2

# demo_orders builds these positionally for speed; fail loudly if their field order ever changes.
_FIELDS = (
    "source shop_id source_order_id status currency total created_at source_updated_at subtotal discount "
    "shipping paid refunded paid_at line_items discount_codes attribution customer | "
    "identities name phone phone_verified email province city"
)
_order_names, _customer_names = [f.name for f in fields(OrderIn)], [f.name for f in fields(CustomerIn)]
if " ".join([*_order_names[:18], "|", *_customer_names[:7]]) != _FIELDS:
    raise ImportError("OrderIn/CustomerIn field order changed: update demo_orders")


@dataclass(frozen=True)
class DemoSpec:
    """How big a demo brand to generate, over which months, from which seed."""

    customers: int = 5000
    months: int = 12
    seed: int = 42
    end: datetime = DEFAULT_END

    def __post_init__(self) -> None:
        if self.end.tzinfo is None:
            raise ValueError("DemoSpec.end must be timezone-aware")
        if not 0 <= self.customers <= MAX_CUSTOMERS:
            raise ValueError(f"customers must be 0..{MAX_CUSTOMERS}")
        if not 1 <= self.months <= 96:  # the packed key holds 2**28 s ≈ 8.5 years
            raise ValueError("months must be 1..96")


def demo_products(spec: DemoSpec | None = None) -> list[ProductIn]:
    """The brand's catalogue (the same for every spec)."""
    return [
        ProductIn(sku=sku, title=title, price=round(price * 100), category=cat, tags=list(tags))
        for sku, title, price, cat, tags, _ in data.PRODUCTS
    ]


def _count_range(segment: int, months: int) -> tuple[int, int]:
    loyal = max(3, months // 2)  # loyal buyers order every 1–2 months
    superfan = min(MAX_ORDERS, max(3, months))
    return (
        (1, 1),
        (2, 3),
        (loyal, max(loyal, months)),
        (2, max(2, min(6, months // 2))),
        (superfan, min(MAX_ORDERS, max(superfan, 3 * months))),
    )[segment]


def estimate_orders(spec: DemoSpec) -> int:
    """Expected number of orders demo_orders(spec) yields (exact in expectation)."""
    mean = sum(share * sum(_count_range(seg, spec.months)) / 2 for seg, share in enumerate(SEGMENT_SHARES)) / sum(
        SEGMENT_SHARES
    )
    return round(spec.customers * mean)


@dataclass
class _Calendar:
    """Per-day order intensity, hour profile, promotion and campaign over the window."""

    start_ts: int  # CST midnight starting the window, epoch seconds
    span: int  # seconds from start to spec.end
    cum: list[float]  # cumulative day weights, cum[0] = 0
    hour_table: list[int]  # per day: 0 weekday, 1 weekend, 2 midnight-sale day
    promo: list[tuple[int, int] | None]  # per day: 满减 (every `threshold` fen, `off` fen off)
    campaign: list[str]
    season: list[int]  # 0 normal, 1 gift season (礼盒 sells), 2 spring tea (绿茶 sells)
    ymd: list[str]


_Event = tuple[float, str, data.Deal, int, bool]  # weight, campaign, 满减, season, midnight sale


def _events(years: range) -> dict[date, _Event]:
    """The sales calendar of these years, day by day (days not in it are ordinary)."""
    out: dict[date, _Event] = {}

    def put(first: date, days: int, event: _Event) -> None:
        for i in range(days):
            out[first + timedelta(days=i)] = event

    for y in years:
        for month, day, days, weight, campaign, deal, season, sale in data.FIXED_EVENTS:
            for m in range(1, 13) if month == 0 else (month,):
                put(date(y, m, day), days, (weight, campaign.format(y=y), deal, season, sale))
    for anchors, rows in ((data.MID_AUTUMN, data.MID_AUTUMN_EVENTS), (data.CNY, data.CNY_EVENTS)):
        for anchor in anchors:
            if anchor.year in years:
                for offset, days, weight, campaign, deal, season in rows:
                    event = (weight, campaign.format(y=anchor.year), deal, season, False)
                    put(anchor + timedelta(days=offset), days, event)
    return out


@lru_cache(maxsize=8)
def _calendar(end: datetime, months: int) -> _Calendar:
    end_cst = end.astimezone(CST)
    y, m = divmod(end_cst.year * 12 + end_cst.month - 1 - months, 12)
    first = date(y, m + 1, 1)
    first = first.replace(day=min(end_cst.day, ((first + timedelta(days=32)).replace(day=1) - first).days))
    start = datetime(first.year, first.month, first.day, tzinfo=CST)
    span = int((end - start).total_seconds())
    days = -(-span // DAY)
    events = _events(range(first.year - 1, end_cst.year + 2))
    weights, hours, promo, campaign, season, ymd = [], [], [], [], [], []
    for i in range(days):
        d = first + timedelta(days=i)
        weight, camp, deal, seas, sale = events.get(d, (1.0, "always_on", None, 0, False))
        trend = 0.85 + 0.3 * i / max(1, days - 1)  # the brand grows over the year
        part = min(1.0, (span - i * DAY) / DAY)  # the window may end mid-day
        weights.append(weight * data.WEEKDAY[d.weekday()] * trend * part)
        hours.append(2 if sale else 1 if d.weekday() >= 5 else 0)
        promo.append(deal)
        campaign.append(camp)
        season.append(seas)
        ymd.append(f"{d.year}{d.month:02d}{d.day:02d}")
    return _Calendar(int(start.timestamp()), span, [0.0, *accumulate(weights)], hours, promo, campaign, season, ymd)


def _cum(weights: Sequence[float]) -> list[float]:
    """Cumulative weights scaled to end at exactly 1.0, so bisect(cum, random()) is always an index."""
    total = sum(weights)
    cum = [c / total for c in accumulate(weights)]
    cum[-1] = 1.0
    return cum


# One multiplier per kind of id, so a customer's phone, nick and ids do not share digit patterns.
_MULTIPLIERS = (
    7_919_937_733,
    2_718_281_829,
    1_618_033_989,
    3_141_592_653,
    4_294_967_291,
    6_700_417_221,
    9_576_890_767,
    5_308_871_049,
)


def _scramble(x: int, modulus: int, salt: int) -> int:
    """A bijection of [0, modulus) (modulus a power of ten): unique, random-looking ids from an index."""
    # Multipliers end in 1, 3, 7 or 9: coprime to 10, so x ↦ a·x + b is a permutation.
    return (x * _MULTIPLIERS[salt & 7] + salt * 1_000_003 + 12_345) % modulus


def _plan(spec: DemoSpec, cal: _Calendar) -> tuple[array, array, list[array]]:
    """First pass: every customer's profile row and the packed keys of all their orders, bucketed by week."""
    rng = Random(f"shequn-demo-plan:{spec.seed}")
    r = rng.random
    profiles, followers = array("H"), array("I")
    buckets = [array("Q") for _ in range(-(-cal.span // BUCKET))]
    total, cum, span, months = cal.cum[-1], cal.cum, cal.span, spec.months
    hour_cums = [_cum(data.HOURS_WEEKDAY), _cum(data.HOURS_WEEKEND), _cum(data.HOURS_SALE_DAY)]
    seg_cum = _cum(SEGMENT_SHARES)
    ranges = [_count_range(s, months) for s in range(len(SEGMENTS))]
    sur_cum = _cum([w for _, _, w in data.SURNAMES])
    city_cum = _cum([w for _, _, w in data.CITIES])
    abroad_cum = _cum([w for _, _, w in data.OVERSEAS_CITIES])
    cat_cum = _cum([w for _, w in data.CATEGORIES])
    style_cum = _cum((30, 35, 20, 15))
    platform_cum = _cum((35, 35, 30))
    # Cross-store customers need two orders or more; 40 % of customers have that, so pick that share of them.
    multi_share = 1 - SEGMENT_SHARES[ONE_TIME] / sum(SEGMENT_SHARES)
    both_p = CROSS_STORE_SHARE / multi_share
    n_f, n_m = len(data.GIVEN_FEMALE), len(data.GIVEN_MALE)
    n_city, n_prefix, n_nick, n_social, n_email = (
        len(data.CITIES),
        len(data.MOBILE_PREFIXES),
        len(data.NICK_WORDS),
        len(data.SOCIAL_WORDS),
        len(data.EMAIL_DOMAINS),
    )
    hour_table, last_day, shift = cal.hour_table, len(cum) - 2, IDX_BITS + SEQ_BITS
    for idx in range(spec.customers):
        seg = bisect(seg_cum, r())
        lo, hi = ranges[seg]
        n = lo + int(r() * (hi - lo + 1))
        # Order times are spread in "intensity time" (cumulative day weight), so every kind of
        # customer follows the seasonality: a loyal buyer's steady rhythm speeds up during 双11.
        if seg in (LOYAL, LAPSED):
            limit = total if seg == LOYAL else 0.6 * total  # lapsed customers stop well before the end
            step = total / months * (1 + r())
            if n > 1 and (n - 1) * step > 0.95 * limit:
                step = 0.95 * limit / (n - 1)
            u0 = r() * (limit - (n - 1) * step)
            us = [u0 + (i + 0.4 * r() - 0.2) * step for i in range(n)]
        elif n == 1:
            us = [r() * total]
        else:
            us = sorted([r() * total for _ in range(n)])
        for seq, u in enumerate(us):
            day = bisect(cum, u) - 1
            day = 0 if day < 0 else last_day if day > last_day else day
            ts = day * DAY + bisect(hour_cums[hour_table[day]], r()) * 3600 + int(r() * 3600)
            if ts >= span:
                ts = span - 1
            buckets[ts // BUCKET].append(ts << shift | idx << SEQ_BITS | seq)
        if n >= 2 and r() < both_p:
            store = BOTH
        else:
            x = r()
            store = SHOPIFY if x < 0.033 else YOUZAN if x < 0.33 else TAOBAO
        female = r() < 0.6
        two = r() < 0.7
        social = 0
        if r() < SOCIAL_SHARE:
            social = 1 << bisect(platform_cum, r())
            if r() < 0.2:
                social |= 1 << int(r() * 3)
            # Heavy tail: most accounts are small; ~2 % are KOL-ish with 10k–2M followers.
            kol = r() < 0.02
            followers.append(int(10 ** (4 + 2.3 * r())) if kol else int(rng.lognormvariate(4.3, 1.2)) + 1)
        else:
            followers.append(0)
        flags = (FLAG_USD if store == SHOPIFY and r() < 0.3 else 0) | (FLAG_TAOBAO_FIRST if r() < 0.5 else 0)
        given = n_f if female else n_m
        city = (n_city + bisect(abroad_cum, r())) if store == SHOPIFY else bisect(city_cum, r())
        profiles.extend(
            (
                bisect(sur_cum, r()),
                int(r() * given),
                1 + int(r() * given) if two else 0,
                female,
                city,
                int(r() * n_prefix),
                store,
                bisect(cat_cum, r()),
                bisect(style_cum, r()),
                int(r() * n_nick),
                social,
                int(r() * n_social),
                int(r() * n_email),
                flags,
            )
        )
    return profiles, followers, buckets


def _unionid(idx: int, salt: int) -> str:
    """A WeChat-unionid-looking string ("o" + 27 url-safe base64 chars), unique per customer."""
    x = (idx ^ salt) & 0xFFFFFFFFFFFFFFFF  # splitmix64's finaliser: a bijection, hence unique
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    x ^= x >> 31
    tail = (x * 0x9E3779B97F4A7C15 + salt) & ((1 << 96) - 1)
    return "o" + base64.urlsafe_b64encode(x.to_bytes(8, "big") + tail.to_bytes(12, "big")).decode()[:27]


def demo_orders(spec: DemoSpec) -> Iterator[OrderIn]:
    """Stream the brand's orders in strict created_at order (ties: customer, then order number).

    The first order comes after a planning pass over all customers (≈ 4 s per million); from then
    on orders are built lazily, one week of them sorted at a time.
    """
    cal = _calendar(spec.end, spec.months)
    profiles, followers, buckets = _plan(spec, cal)
    rng = Random(f"shequn-demo-orders:{spec.seed}")
    r = rng.random
    salt = spec.seed & 0xFFFF_FFFF
    P, start_ts, span, utc = profiles, cal.start_ts, cal.span, UTC
    ymd, seasons, promos, campaigns = cal.ymd, cal.season, cal.promo, cal.campaign
    ts_at = datetime.fromtimestamp
    nick_mod = 10 ** max(4, len(str(max(spec.customers - 1, 1))))
    nick_width = len(str(nick_mod)) - 1
    yz_mod = 10**9 if spec.customers << SEQ_BITS <= 10**9 else 10**11
    yz_width = len(str(yz_mod)) - 1
    prefixes, nick_words = data.MOBILE_PREFIXES, data.NICK_WORDS
    surnames, cities = data.SURNAMES, data.CITIES + data.OVERSEAS_CITIES
    given_tables = (data.GIVEN_MALE, data.GIVEN_FEMALE)
    categories = [c for c, _ in data.CATEGORIES]
    products = [
        (sku, title, round(price * 100), max(499, int(price / USD_RATE) * 100 + 99), cat)
        for sku, title, price, cat, _, _ in data.PRODUCTS
    ]
    by_cat = [[p for p in products if p[4] == c] for c in categories]
    by_cat_cum = [_cum([w for *_, c, _, w in data.PRODUCTS if c == cat]) for cat in categories]
    season_cat_cum = [_cum([w * boost.get(c, 1) for c, w in data.CATEGORIES]) for boost in data.SEASON_BOOST]
    lines_cum, qty_cum = _cum((62, 25, 9, 4)), _cum((85, 11, 3, 1))
    gift = categories.index("礼盒")
    line_ids = [f"-{i}" for i in range(1, 5)]
    shift, idx_mask = IDX_BITS + SEQ_BITS, (1 << IDX_BITS) - 1

    def customer(prof: array, idx: int, src: int) -> CustomerIn:
        """The buyer as one store sees them: that store's identities plus shared contact data."""
        sur, sur_py, _ = surnames[prof[F_SUR]]
        given = given_tables[prof[F_FEMALE]]
        g1, g2 = given[prof[F_G1]], given[prof[F_G2] - 1] if prof[F_G2] else ("", "")
        name_py = sur_py + g1[1] + g2[1]
        city, province, _ = cities[prof[F_CITY]]
        phone = prefixes[prof[F_PREFIX]] + f"{_scramble(idx, 10**8, salt + 4):08d}"
        n = _scramble(idx, nick_mod, salt + 5)  # unique per customer, so nicks and handles never collide
        email = None
        if src == TAOBAO:
            style, word = prof[F_NICK_STYLE], nick_words[prof[F_NICK_WORD]]
            nick = (
                f"tb_{word}{n}"
                if style == 0
                else f"{word}{n}"
                if style == 1
                else f"{name_py}{n}"
                if style == 2
                else f"tb{n:0{nick_width}d}"
            )
            ids = [IdentityIn("taobao", "buyer_nick", nick, True)]
            # A Taobao receiver phone is unverified, unless the buyer joined the brand's Tmall membership
            # (会员通), which shares the bound mobile: that is how cross-store customers merge.
            verified = prof[F_STORE] == BOTH
        elif src == YOUZAN:
            ids = [
                IdentityIn("youzan", "customer_id", str(10**9 + _scramble(idx, 10**9, salt + 6)), True),
                IdentityIn("wechat", "unionid", _unionid(idx, salt), True),
            ]
            verified = True
        else:
            ids = [IdentityIn("shopify", "customer_id", f"7{_scramble(idx, 10**12, salt + 7):012d}", True)]
            email = f"{g1[1]}{g2[1]}.{sur_py}{n}@{data.EMAIL_DOMAINS[prof[F_EMAIL]]}"
            verified = True
        social = prof[F_SOCIAL]
        if social:
            word = data.SOCIAL_WORDS[prof[F_SOCIAL_WORD]]
            handles = (f"{word}{n}", f"{name_py}_{n}", f"{word}_{name_py}{n}")
            count = followers[idx]
            for bit, platform in enumerate(PLATFORMS):
                if social >> bit & 1:
                    ids.append(IdentityIn(platform, "handle", handles[bit], False, count))
                    count = count * (1 + prof[F_SOCIAL_WORD] % 5) // 6 + 3  # a smaller second account
        return CustomerIn(ids, sur + g1[0] + g2[0], phone, verified, email, province, city)

    for b, bucket in enumerate(buckets):
        keys = sorted(bucket)
        buckets[b] = array("Q")  # free the week's keys as soon as they are sorted
        for key in keys:
            ts, idx, seq = key >> shift, (key >> SEQ_BITS) & idx_mask, key & MAX_ORDERS
            prof = P[idx * NF : idx * NF + NF]
            store, flags = prof[F_STORE], prof[F_FLAGS]
            if store == BOTH:  # first two orders: one in each store, then either
                src = (
                    (TAOBAO if (seq == 0) == bool(flags & FLAG_TAOBAO_FIRST) else YOUZAN)
                    if seq < 2
                    else (TAOBAO if r() < 0.5 else YOUZAN)
                )
            else:
                src = store
            usd = src == SHOPIFY and flags & FLAG_USD
            uid = idx << SEQ_BITS | seq
            day = ts // DAY
            if src == SHOPIFY:
                source, oid = "shopify", f"54{_scramble(uid, 10**11, salt + 3):011d}"
            elif src == YOUZAN:
                sod = ts % DAY
                source = "youzan"
                oid = (
                    f"E{ymd[day]}{sod // 3600:02d}{sod // 60 % 60:02d}{sod % 60:02d}"
                    f"{_scramble(uid, yz_mod, salt + 2):0{yz_width}d}"
                )
            else:
                v = _scramble(uid, 10**11, salt + 1)
                source, oid = "taobao", f"{1 + v % 4}{v:011d}{v * 7919 % 10**7:07d}"

            # Lines: the favourite category half the time, otherwise what sells in this season.
            lines: list[LineItemIn] = []
            skus: list[str] = []
            subtotal = 0
            season = seasons[day]
            for _ in range(1 + bisect(lines_cum, r())):
                cat = prof[F_FAV] if r() < 0.55 else bisect(season_cat_cum[season], r())
                sku, title, fen, cents, cat_name = by_cat[cat][bisect(by_cat_cum[cat], r())]
                if sku in skus:
                    continue
                skus.append(sku)
                qty = 1 + bisect(qty_cum, r())
                if cat == gift and season == 1 and r() < 0.3:
                    qty += 2  # gift boxes go out by the handful before 春节 and 中秋
                price = cents if usd else fen
                subtotal += price * qty
                line_id = oid + line_ids[len(lines)]
                lines.append(LineItemIn(sku, title, qty, price, price * qty, cat_name, line_id))

            discount, codes = 0, []
            deal = promos[day]
            if src == SHOPIFY:
                if r() < 0.15:
                    code, pct = ("WELCOME10", 10) if seq == 0 else ("TEATIME15", 15)
                    codes = [(code, subtotal * pct // 100)]
                    discount = codes[0][1]
            elif deal is not None:
                discount = subtotal // deal[0] * deal[1]  # 每满300减30 style
            if seq == 0 and src != SHOPIFY and subtotal - discount >= 9900 and r() < 0.25:
                discount += 1000  # 新客立减 coupon
            net = subtotal - discount
            shipping = 0 if net >= (4900 if usd else 9900) else (999 if usd else 1000)
            total = net + shipping

            age, x = span - ts, r()
            paid_at: int | None = ts + 20 + int(r() * 600)
            paid, refunded, upd = total, 0, ts
            if age < 1800 and x < 0.4:
                status, paid, paid_at = "pending_payment", 0, None
            elif x < 0.02:
                status, paid, paid_at = ("closed" if src == TAOBAO else "cancelled"), 0, None
                # Taobao closes an unpaid order after 24 h; elsewhere the buyer cancels within the hour.
                upd = ts + (DAY if src == TAOBAO else 300 + int(r() * 3000))
            elif x < 0.05:
                status, refunded, upd = "refunded", total, ts + 2 * DAY + int(r() * 18 * DAY)
            elif x < 0.065:
                status, upd = "partially_refunded", ts + 2 * DAY + int(r() * 18 * DAY)
                refunded = min(lines[-1].total, total - 1) if len(lines) > 1 else max(1, total // 3)
            elif age < 2 * DAY and r() < 0.65:
                status = "paid"
                upd = paid_at if paid_at is not None else ts
            elif age < 8 * DAY and r() < 0.7:
                status, upd = "shipped", ts + 4 * 3600 + int(r() * 2 * DAY)
            else:
                status, upd = "completed", ts + 5 * DAY + int(r() * 10 * DAY)

            attribution: dict[str, str] = {}
            social = prof[F_SOCIAL]
            if r() < 0.2:
                if social and r() < 0.6:
                    utm = PLATFORMS[(social & -social).bit_length() - 1]
                elif src == YOUZAN:
                    utm = "wechat"
                else:
                    utm = ("wechat", "weibo", "douyin", "xiaohongshu")[int(r() * 4)]
                attribution = {"utm_source": utm, "utm_medium": "social", "utm_campaign": campaigns[day]}

            # Positional arguments: keywords cost ~0.6 µs an order here (field order checked at import).
            yield OrderIn(
                source,
                SHOPS[source],
                oid,
                status,
                "USD" if usd else "CNY",
                total,
                ts_at(start_ts + ts, utc),
                ts_at(start_ts + min(upd, span), utc),
                subtotal,
                discount,
                shipping,
                paid,
                refunded,
                None if paid_at is None else ts_at(start_ts + min(paid_at, span), utc),
                lines,
                codes,
                attribution,
                customer(prof, idx, src),
            )
