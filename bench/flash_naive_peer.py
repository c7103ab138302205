"""The naive flash-sale peer for bench_flash.py: a plain FastAPI app, one PostgreSQL transaction per claim.

Per request: look the member session up by its token hash (the same table and token as shequn), then
`UPDATE naive_flash_stock SET stock = stock - 1 WHERE id = :id AND stock > 0` and an order INSERT, the way a
first version of a flash sale is usually written. Run by bench_flash.py with uvicorn --workers 2:

    NAIVE_DATABASE_URL=postgresql://... uvicorn --app-dir bench flash_naive_peer:app --workers 2
"""

from __future__ import annotations

import hashlib
import os

from fastapi import FastAPI, Header
from fastapi.responses import JSONResponse
from sqlalchemy import create_engine, text

URL = os.environ.get("NAIVE_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/flash_bench")
engine = create_engine(URL.replace("postgresql://", "postgresql+psycopg://"), pool_size=40, max_overflow=0)
app = FastAPI(title="naive flash-sale peer")

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS naive_flash_stock (id BIGINT PRIMARY KEY, stock INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS naive_flash_orders (id BIGSERIAL PRIMARY KEY, sale_id BIGINT NOT NULL, "
    "customer_id BIGINT NOT NULL, price BIGINT NOT NULL, status VARCHAR(24) NOT NULL, "
    "created_at TIMESTAMPTZ NOT NULL DEFAULT now())",
)


def reset(stock: int, sale_id: int = 1) -> None:
    """Create the peer's two tables and put stock units on sale sale_id (called by the bench before starting)."""
    with engine.begin() as conn:
        for ddl in SCHEMA:
            conn.execute(text(ddl))
        conn.execute(text("TRUNCATE naive_flash_stock, naive_flash_orders"))
        conn.execute(text("INSERT INTO naive_flash_stock (id, stock) VALUES (:id, :s)"), {"id": sale_id, "s": stock})


@app.post("/claim/{sale_id}")
def claim(sale_id: int, authorization: str = Header(default="")) -> JSONResponse:
    """Authenticate, decrement stock if any is left, insert the order."""
    token = authorization[7:].strip() if authorization.lower().startswith("member ") else ""
    digest = hashlib.sha256(token.encode()).hexdigest()
    with engine.begin() as conn:
        member = conn.execute(
            text(
                "SELECT customer_id FROM member_sessions WHERE token_hash = :h AND revoked_at IS NULL "
                "AND expires_at > now()"
            ),
            {"h": digest},
        ).first()
        if member is None:
            return JSONResponse({"code": "member_login_required"}, status_code=401)
        moved = conn.execute(
            text("UPDATE naive_flash_stock SET stock = stock - 1 WHERE id = :id AND stock > 0"), {"id": sale_id}
        ).rowcount
        if moved != 1:
            return JSONResponse({"code": "flash_sold_out"}, status_code=409)
        conn.execute(
            text(
                "INSERT INTO naive_flash_orders (sale_id, customer_id, price, status) "
                "VALUES (:s, :c, 9900, 'pending_payment')"
            ),
            {"s": sale_id, "c": member[0]},
        )
    return JSONResponse({"outcome": "ok"}, status_code=201)
