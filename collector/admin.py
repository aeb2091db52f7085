"""Loopback-only admin API on the OTLP/HTTP port: `POST /api/sql` runs a read-only query.

While `policyscope up` or `policyscope collector` owns the embedded chDB path, no other process
can open it; `policyscope sql` then asks the running process through this endpoint. Requests
from any address but loopback get 403.
"""

from __future__ import annotations

import ipaddress

from aiohttp import web
from clickhouse_connect.driver.exceptions import ClickHouseError

from collector.pipeline import Pipeline
from core import readonly_sql


def add_admin_routes(app: web.Application, pipeline: Pipeline) -> None:
    async def sql(request: web.Request) -> web.Response:
        peer = request.remote or ""
        try:
            loopback = ipaddress.ip_address(peer).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            return web.json_response({"error": "the admin API answers loopback only"},
                                     status=403)
        try:
            body = await request.json()
            query = body["query"]
            if not isinstance(query, str):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            return web.json_response({"error": 'body must be JSON {"query": "SELECT ..."}'},
                                     status=400)
        try:
            result = readonly_sql.run(pipeline.client, query)
        except readonly_sql.NotReadOnly as exc:
            return web.json_response({"error": str(exc)}, status=400)
        except ClickHouseError as exc:
            return web.json_response({"error": str(exc).split("\n")[0]}, status=400)
        return web.json_response({"columns": result.columns,
                                  "rows": readonly_sql.to_records(result)})

    app.router.add_post("/api/sql", sql)
