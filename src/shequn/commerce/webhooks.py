"""Inbound order webhooks: per-shop URLs, signature checks in each platform's scheme (protocols.md).

Shopify and WooCommerce sign the raw body with base64 HMAC-SHA256; Youzan sends
md5(client_id + body + client_secret); shequn's own format uses Standard Webhooks signatures.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping
from urllib.parse import unquote

from sqlalchemy import select
from sqlalchemy.orm import Session

from shequn.commerce.canonical import OrderIn
from shequn.commerce.errors import WebhookRejected
from shequn.commerce.models import OrderWebhook
from shequn.core.clock import utcnow
from shequn.core.errors import NotFound, ValidationFailed
from shequn.core.security import decrypt_secret, encrypt_secret, hash_token, new_token
from shequn.identity import service as identity_service
from shequn.identity.roles import Perm
from shequn.identity.service import Actor

WEBHOOK_SOURCES = ("shopify", "woocommerce", "youzan", "shequn")
TOLERANCE_S = 300


def create_webhook(
    session: Session, actor: Actor, *, source: str, shop_id: str, name: str, secret: str = "", client_id: str = ""
) -> tuple[str, str, OrderWebhook]:
    """Create an inbound webhook; returns (url token, signing secret, row) — both shown once."""
    identity_service.check_perm(actor, Perm.MANAGE_TOKENS)
    if source not in WEBHOOK_SOURCES:
        raise ValidationFailed(details=[{"field": "source", "message": f"one of {', '.join(WEBHOOK_SOURCES)}"}])
    if source == "youzan" and not client_id:
        raise ValidationFailed(details=[{"field": "client_id", "message": "Youzan signs with client_id"}])
    if not secret:
        secret = (
            "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
            if source == "shequn"
            else secrets.token_hex(24)
        )
    token = new_token("sqw")
    hook = OrderWebhook(
        workspace_id=actor.workspace_id,
        source=source,
        shop_id=shop_id or "default",
        name=name[:120] or source,
        token_hash=hash_token(token),
        secret_encrypted=encrypt_secret(secret),
        client_id=client_id[:128],
    )
    session.add(hook)
    session.flush()
    identity_service.record_audit(session, actor, "webhook.created", "order_webhook", hook.id, {"source": source})
    return token, secret, hook


def list_webhooks(session: Session, actor: Actor) -> list[OrderWebhook]:
    """The workspace's inbound webhooks."""
    identity_service.check_perm(actor, Perm.MANAGE_TOKENS)
    return list(session.scalars(select(OrderWebhook).where(OrderWebhook.workspace_id == actor.workspace_id)))


def find_webhook(session: Session, token: str) -> OrderWebhook:
    """The live webhook for a URL token."""
    hook = session.scalar(select(OrderWebhook).where(OrderWebhook.token_hash == hash_token(token)))
    if hook is None or hook.disabled_at is not None:
        raise NotFound(what="webhook")
    return hook


def verify_signature(hook: OrderWebhook, body: bytes, headers: Mapping[str, str], *, now: float | None = None) -> None:
    """Check the request's signature in the hook's platform scheme; raise WebhookRejected if it fails."""
    secret = decrypt_secret(hook.secret_encrypted)
    if hook.source in ("shopify", "woocommerce"):
        header = "x-shopify-hmac-sha256" if hook.source == "shopify" else "x-wc-webhook-signature"
        expected = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
        if not hmac.compare_digest(headers.get(header, ""), expected):
            raise WebhookRejected(reason="bad signature")
    elif hook.source == "youzan":
        expected = hashlib.md5(hook.client_id.encode() + body + secret.encode()).hexdigest()
        if not hmac.compare_digest(headers.get("event-sign", ""), expected):
            raise WebhookRejected(reason="bad signature")
    else:
        _verify_standard(secret, body, headers, now or time.time())


def _verify_standard(secret: str, body: bytes, headers: Mapping[str, str], now: float) -> None:
    msg_id, ts, sigs = (
        headers.get("webhook-id", ""),
        headers.get("webhook-timestamp", ""),
        headers.get("webhook-signature", ""),
    )
    if not (msg_id and ts.isdigit() and sigs):
        raise WebhookRejected(reason="missing webhook headers")
    if abs(now - int(ts)) > TOLERANCE_S:
        raise WebhookRejected(reason="timestamp outside tolerance")
    key = base64.b64decode(secret.removeprefix("whsec_"))
    expected = base64.b64encode(hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()).decode()
    for sig in sigs.split():
        version, _, value = sig.partition(",")
        if version == "v1" and hmac.compare_digest(value, expected):
            return
    raise WebhookRejected(reason="bad signature")


def parse_webhook_orders(hook: OrderWebhook, body: bytes) -> list[OrderIn]:
    """The orders in a webhook body, parsed by the hook's source (bad records reject the call)."""
    from shequn.commerce.sources import FileError, parse_orders

    data = body
    try:
        doc = json.loads(body)
    except ValueError:
        raise WebhookRejected(reason="body is not JSON") from None
    if hook.source == "youzan" and isinstance(doc, dict) and isinstance(doc.get("msg"), str):
        # Youzan pushes the trade URL-encoded inside "msg".
        data = unquote(doc["msg"]).encode()
    elif hook.source == "shopify" and isinstance(doc, dict) and "order" not in doc and "orders" not in doc:
        data = json.dumps({"order": doc}).encode()
    try:
        rows = list(parse_orders(data, "webhook.json", source=hook.source, shop_id=hook.shop_id))
    except FileError as exc:
        raise WebhookRejected(reason=exc.code) from None
    errors = [{"field": r.error.field, "message": r.error.reason} for r in rows if r.error is not None]
    if errors:
        raise ValidationFailed(details=errors)
    return [r.item for r in rows if isinstance(r.item, OrderIn)]


def record_delivery(hook: OrderWebhook, *, ok: bool) -> None:
    """Count a delivery on the hook (shown to operators)."""
    if ok:
        hook.received += 1
        hook.last_received_at = utcnow()
    else:
        hook.rejected += 1
