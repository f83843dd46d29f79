"""The simulator's HTTP face: the Starlette routes of Runway's API over an
engine, the admin routes tests use (/_simulator/faults, /_simulator/requests,
/health), and the front door every request passes first: the request log,
injected faults, then the API's key and version header checks."""
from __future__ import annotations

import asyncio
import base64
import hmac
import json
import re
import shutil
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import Headers, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from lib import media
from lib.contract import API_VERSION
from lib.simulator.engine import ApiError, Simulator
from lib.simulator.faults import FaultRule, answer_late, pause_halfway, take_fault


def error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


def _answer(exc: ApiError) -> JSONResponse:
    return error(exc.status, exc.message, **({"issues": exc.issues} if exc.issues is not None else {}))


async def _json_object(request: Request) -> dict | None:
    try:
        body = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def make_app(sim: Simulator) -> Callable:
    """The ASGI app serving `sim`."""

    async def create_task(request: Request) -> Response:
        body = await _json_object(request)
        if body is None:
            return error(400, "The request body must be a JSON object.")
        try:
            return JSONResponse(sim.create_task(request.url.path, body))
        except ApiError as exc:
            return _answer(exc)

    async def get_task(request: Request) -> Response:
        try:
            body = sim.get_task(request.path_params["task_id"], _base_url(request))
        except ApiError as exc:
            return _answer(exc)
        if status_value := request.scope.get("state", {}).get("status_value"):
            body["status"] = status_value
        return JSONResponse(body)

    async def delete_task(request: Request) -> Response:
        try:
            sim.delete_task(request.path_params["task_id"])
        except ApiError as exc:
            return _answer(exc)
        return Response(status_code=204)

    async def organization(request: Request) -> Response:
        return JSONResponse(sim.organization())

    async def usage(request: Request) -> Response:
        body = await _json_object(request) if await request.body() else {}
        if body is None:
            return error(400, "The request body must be a JSON object.")
        try:
            return JSONResponse(sim.usage(body))
        except ApiError as exc:
            return _answer(exc)

    async def create_upload(request: Request) -> Response:
        body = await _json_object(request)
        if body is None:
            return error(400, "The request body must be a JSON object.")
        issues = []
        filename = body.get("filename")
        if not isinstance(filename, str) or not filename.strip():
            issues.append({"code": "invalid", "path": ["filename"], "message": "filename is required."})
        if body.get("type") != "ephemeral":
            issues.append({"code": "invalid", "path": ["type"], "message": "type must be 'ephemeral'."})
        if issues:
            return error(400, issues[0]["message"], issues=issues)
        upload_id = sim.open_upload(filename)
        # Shaped like an S3 presigned POST: the fields carry a signed policy naming the upload.
        policy = base64.urlsafe_b64encode(json.dumps({"upload": upload_id}).encode()).decode()
        safe_name = re.sub(r"[^\w.-]", "_", filename)[-100:]
        return JSONResponse({
            "uploadUrl": f"{_base_url(request)}/uploads",
            "fields": {"key": f"uploads/{upload_id}/{safe_name}", "policy": policy, "signature": sim.sign(policy)},
            "runwayUri": f"runway://uploads/{upload_id}",
        })

    async def receive_upload(request: Request) -> Response:
        declared = int(request.headers.get("content-length") or 0)
        if declared > media.UPLOAD_MAX_BYTES + media.MB:
            return error(400, "The file is larger than 200 MB.")
        async with request.form() as form:
            policy, signature, upload = form.get("policy"), form.get("signature"), form.get("file")
            if not isinstance(policy, str) or not hmac.compare_digest(sim.sign(policy), str(signature or "")):
                return error(403, "The upload policy is missing or its signature does not match.")
            upload_id = json.loads(base64.urlsafe_b64decode(policy))["upload"]
            filename = sim.upload_filename(upload_id)
            if filename is None:
                return error(403, "The upload policy names an unknown upload.")
            if not isinstance(upload, UploadFile):
                return error(400, "The form has no file part.")
            size = upload.size or 0
            if not media.UPLOAD_MIN_BYTES <= size <= media.UPLOAD_MAX_BYTES:
                return error(400, f"Files must be between 512 bytes and 200 MB (got {size} bytes).")
            head = await upload.read(64)
            await upload.seek(0)
            mime = media.sniff_mime(head) or media.mime_from_name(filename) or upload.content_type
            with open(sim.upload_dir / upload_id, "wb") as target:
                await asyncio.to_thread(shutil.copyfileobj, upload.file, target)
        sim.finish_upload(upload_id, mime, size)
        return Response(status_code=204)

    async def output_file(request: Request) -> Response:
        name = request.path_params["name"]
        try:
            path = sim.output_file(name, request.query_params.get("exp", ""), request.query_params.get("sig", ""))
        except ApiError as exc:
            return _answer(exc)
        return FileResponse(path, media_type=media.mime_from_name(name))

    async def health(request: Request) -> Response:
        return JSONResponse({"simulator": True, "instance": sim.instance})

    async def faults(request: Request) -> Response:
        if request.method == "POST":
            try:
                rules = [FaultRule.from_json(rule) for rule in json.loads(await request.body())["rules"]]
            except (ValueError, KeyError, TypeError) as exc:
                return error(400, f"Expected {{\"rules\": [...]}}: {exc}")
            sim.fault_rules = rules  # the posted list replaces the active one
        elif request.method == "DELETE":
            sim.fault_rules = []
        return JSONResponse({"rules": [asdict(rule) for rule in sim.fault_rules]})

    async def requests(request: Request) -> Response:
        if request.method == "DELETE":
            sim.request_log.clear()
        return JSONResponse({"requests": list(sim.request_log)})

    routes = [Route(endpoint, create_task, methods=["POST"]) for endpoint in sim.endpoints()]
    routes += [
        Route("/v1/tasks/{task_id}", get_task, methods=["GET"]),
        Route("/v1/tasks/{task_id}", delete_task, methods=["DELETE"]),
        Route("/v1/organization", organization, methods=["GET"]),
        Route("/v1/organization/usage", usage, methods=["POST"]),
        Route("/v1/uploads", create_upload, methods=["POST"]),
        Route("/uploads", receive_upload, methods=["POST"]),
        Route("/outputs/{name}", output_file, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/_simulator/faults", faults, methods=["GET", "POST", "DELETE"]),
        Route("/_simulator/requests", requests, methods=["GET", "DELETE"]),
    ]

    async def http_error(request: Request, exc: HTTPException) -> Response:
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    return _Frontdoor(sim, Starlette(routes=routes, exception_handlers={HTTPException: http_error}))


class _Frontdoor:
    """What every request passes before the routes: the request log, injected
    faults, then the API's header checks."""

    def __init__(self, simulator: Simulator, routes: Starlette):
        self.simulator = simulator
        self.routes = routes

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return await self.routes(scope, receive, send)
        sim = self.simulator
        method, path = scope["method"], scope["path"]
        headers = Headers(scope=scope)
        admin = path.startswith("/_simulator/")
        # The client's address and port: a test with several dashboard processes finds which one sent it.
        client = scope.get("client") or ("", 0)
        entry = {"method": method, "path": path, "time": sim.clock(),
                 "auth": "authorization" in headers, "status": None, "client": f"{client[0]}:{client[1]}"}

        async def logged_send(message: dict) -> None:
            if message["type"] == "http.response.start":
                entry["status"] = message["status"]
            await send(message)

        if not admin:
            sim.request_log.append(entry)
            rule = take_fault(sim.fault_rules, method, path)
            if rule is not None:
                if rule.delay and (rule.status or rule.drop or rule.malformed):
                    await asyncio.sleep(rule.delay)
                elif rule.delay:  # a slow server: the request is handled, the answer comes late
                    logged_send = answer_late(logged_send, rule.delay)
                if rule.drop and await self._drop(scope):
                    return
                if rule.status:
                    retry = {"Retry-After": f"{rule.retry_after:g}"} if rule.retry_after is not None else {}
                    response = JSONResponse({"error": f"Simulated fault: HTTP {rule.status}."},
                                            status_code=rule.status, headers=retry)
                    return await response(scope, receive, logged_send)
                if rule.malformed:
                    response = Response(b'{"id": "', media_type="application/json")
                    return await response(scope, receive, logged_send)
                if rule.status_value:
                    scope.setdefault("state", {})["status_value"] = rule.status_value
                if rule.slow_body:
                    logged_send = pause_halfway(logged_send, rule.slow_body)

        if path.startswith("/v1/") or admin:
            token = headers.get("authorization", "")
            if not hmac.compare_digest(token.encode(), f"Bearer {sim.api_key}".encode()):
                problem = "Missing API key" if not token else "Invalid API key"
                return await error(401, f"{problem}: send Authorization: Bearer <key>.")(scope, receive, logged_send)
            if not admin and headers.get("x-runway-version") != API_VERSION:
                return await error(400, f"Missing or unsupported X-Runway-Version header; use {API_VERSION}.")(
                    scope, receive, logged_send)
        await self.routes(scope, receive, logged_send)

    async def _drop(self, scope: dict) -> bool:
        """Close the client's connection with no response at all (uvicorn only)."""
        server = self.simulator.uvicorn_server
        client = tuple(scope.get("client") or ())
        for connection in list(server.server_state.connections if server else ()):
            if getattr(connection, "client", None) == client:
                connection.transport.abort()
                await asyncio.sleep(0.01)  # lets uvicorn notice, so it sends no error page
                return True
        return False
