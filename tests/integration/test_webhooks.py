"""Inbound order webhooks, signed exactly as each platform signs them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from urllib.parse import quote

from sqlalchemy import select

from shequn.commerce.models import Order, OrderWebhook
from shequn.commerce.webhooks import _verify_standard
from shequn.core.security import decrypt_secret
from tests.conftest import Tenant

SHOPIFY_ORDER = {
    "id": 820982911946154508,
    "name": "#1001",
    "financial_status": "paid",
    "currency": "CNY",
    "total_price": "199.00",
    "subtotal_price": "189.00",
    "created_at": "2026-06-18T20:05:00+08:00",
    "updated_at": "2026-06-18T20:06:00+08:00",
    "processed_at": "2026-06-18T20:05:10+08:00",
    "customer": {
        "id": 115310627314723954,
        "email": "Lin@Example.com",
        "phone": "+8613800001234",
        "first_name": "林",
        "last_name": "小",
    },
    "line_items": [{"id": 1, "sku": "TEA-HC-100", "title": "红茶 100g", "quantity": 1, "price": "189.00"}],
}


def _create(client, tenant: Tenant, **body) -> dict:
    r = client.post("/api/v1/webhooks", json=body, headers=tenant.headers("admin"))
    assert r.status_code == 201, r.text
    return r.json()


def test_shopify_signed_webhook_creates_order_and_secret_is_encrypted(client, db, tenant: Tenant) -> None:
    hook = _create(client, tenant, source="shopify", shop_id="global", secret="shpss_test_secret")
    body = json.dumps(SHOPIFY_ORDER).encode()
    sig = base64.b64encode(hmac.new(b"shpss_test_secret", body, hashlib.sha256).digest()).decode()
    r = client.post(
        hook["url_path"], content=body, headers={"X-Shopify-Hmac-Sha256": sig, "Content-Type": "application/json"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["created"] == 1
    order = db.scalar(select(Order))
    assert order.source_order_id == "820982911946154508" and order.total == 19900 and order.shop_id == "global"
    row = db.scalar(select(OrderWebhook))
    assert (
        "shpss_test_secret" not in row.secret_encrypted and decrypt_secret(row.secret_encrypted) == "shpss_test_secret"
    )
    # The same delivery again changes nothing.
    again = client.post(hook["url_path"], content=body, headers={"X-Shopify-Hmac-Sha256": sig})
    assert again.json()["unchanged"] == 1


def test_bad_signature_and_unknown_hook(client, db, tenant: Tenant) -> None:
    hook = _create(client, tenant, source="woocommerce", secret="wc-secret")
    body = json.dumps(
        {
            "id": 77,
            "status": "processing",
            "total": "59.00",
            "currency": "CNY",
            "date_created_gmt": "2026-05-01T02:00:00",
            "date_modified_gmt": "2026-05-01T02:00:00",
            "line_items": [{"sku": "A", "name": "a", "quantity": 1, "subtotal": "59.00", "total": "59.00"}],
        }
    ).encode()
    r = client.post(hook["url_path"], content=body, headers={"X-WC-Webhook-Signature": "forged"})
    assert r.status_code == 401 and r.json()["code"] == "webhook_rejected"
    good = base64.b64encode(hmac.new(b"wc-secret", body, hashlib.sha256).digest()).decode()
    assert client.post(hook["url_path"], content=body, headers={"X-WC-Webhook-Signature": good}).status_code == 200
    assert client.post("/api/v1/hooks/orders/sqw_nope", content=body).status_code == 404
    hooks = client.get("/api/v1/webhooks", headers=tenant.headers("admin")).json()
    assert hooks[0]["received"] == 1 and hooks[0]["rejected"] == 1
    assert client.get("/api/v1/webhooks", headers=tenant.headers("operator")).status_code == 403


def test_youzan_push_with_md5_sign(client, db, tenant: Tenant) -> None:
    hook = _create(client, tenant, source="youzan", secret="yz-secret", client_id="yz-client")
    trade = {
        "full_order_info": {
            "order_info": {
                "tid": "E20260601120000001",
                "status": "TRADE_SUCCESS",
                "created": "2026-06-01 12:00:00",
                "update_time": "2026-06-03 09:00:00",
                "pay_time": "2026-06-01 12:01:00",
            },
            "pay_info": {"total_fee": "88.00", "payment": "88.00", "post_fee": "0.00"},
            "buyer_info": {"buyer_phone": "13912345678", "yz_open_id": "yz-open-1"},
            "orders": [
                {
                    "oid": "1",
                    "outer_sku_id": "TEA-LJ-250",
                    "title": "龙井",
                    "num": 1,
                    "price": "88.00",
                    "payment": "88.00",
                }
            ],
        }
    }
    body = json.dumps(
        {"client_id": "yz-client", "type": "trade_TradeSuccess", "msg": quote(json.dumps(trade, ensure_ascii=False))}
    ).encode()
    sign = hashlib.md5(b"yz-client" + body + b"yz-secret").hexdigest()
    r = client.post(hook["url_path"], content=body, headers={"Event-Sign": sign})
    assert r.status_code == 200, r.text
    assert db.scalar(select(Order)).source_order_id == "E20260601120000001"


def test_standard_webhooks_vector_and_replay_window() -> None:
    # The vector from shared/protocols.md.
    secret = "whsec_eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
    body = b'{"type":"order.paid","timestamp":"2024-01-01T00:00:00Z","data":{"id":"o_1"}}'
    headers = {
        "webhook-id": "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W",
        "webhook-timestamp": "1700000000",
        "webhook-signature": "v0,xxx v1,yvo8FxZ6004XLBsXCZWnW3FRiIyx9Y49baepPdqEcVQ=",
    }
    _verify_standard(secret, body, headers, 1700000100)
    import pytest

    from shequn.commerce.errors import WebhookRejected

    with pytest.raises(WebhookRejected):
        _verify_standard(secret, body, headers, 1700000000 + 301)
    with pytest.raises(WebhookRejected):
        _verify_standard(secret, body + b" ", headers, 1700000000)


def test_shequn_webhook_end_to_end(client, db, tenant: Tenant) -> None:
    hook = _create(client, tenant, source="shequn")
    key = base64.b64decode(hook["secret"].removeprefix("whsec_"))
    body = json.dumps(
        {
            "orders": [
                {"source_order_id": "S-1", "status": "paid", "total": 5000, "created_at": "2026-07-01T10:00:00+08:00"}
            ]
        }
    ).encode()
    ts = str(int(time.time()))
    sig = base64.b64encode(hmac.new(key, f"msg_1.{ts}.".encode() + body, hashlib.sha256).digest()).decode()
    r = client.post(
        hook["url_path"],
        content=body,
        headers={"webhook-id": "msg_1", "webhook-timestamp": ts, "webhook-signature": f"v1,{sig}"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["created"] == 1
