"""One WSGI app for everything: admin, Bedrock control plane, bedrock-runtime, else moto.

Bedrock requests are recognised by the SigV4 credential scope (service `bedrock`; botocore signs
bedrock-runtime as `bedrock` too, `bedrock-runtime` is accepted as well) plus the path; every
other request -- S3 from boto3, dagster-aws or polars/object_store -- goes to moto's server.
"""

from __future__ import annotations

import json
import logging
import re
import urllib.parse
import uuid
from typing import Any, Callable, Iterable

from moto.server import DomainDispatcherApplication, create_backend_app

from . import errors
from .admin import Admin
from .control_plane import ControlPlane
from .runtime import Runtime

log = logging.getLogger("bedrock_assets.emulator")

CREDENTIAL_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/([^/,\s]+)/([^/,\s]+)/aws4_request")
BEDROCK_SERVICES = ("bedrock", "bedrock-runtime")
ADMIN_PREFIX = "/_emulator/"

StartResponse = Callable[..., Any]


def credential_scope(environ: dict[str, Any]) -> tuple[str | None, str | None]:
    """(region, service) from the Authorization header; never logged (it carries the key id)."""
    match = CREDENTIAL_SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    return (match.group(1), match.group(2)) if match else (None, None)


def path_segments(environ: dict[str, Any]) -> list[str]:
    """Percent-decoded path segments, split on the *raw* `/` so an ARN's `%2F` stays in one."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw:
        raw = urllib.parse.urlsplit(raw).path if raw.startswith("http") else raw.split("?", 1)[0]
    else:
        raw = urllib.parse.quote(environ.get("PATH_INFO", ""), safe="/")
    return [urllib.parse.unquote(segment) for segment in raw.split("/")[1:]]


class EmulatorApp:
    def __init__(self, control: ControlPlane, runtime: Runtime, admin: Admin) -> None:
        self.control = control
        self.runtime = runtime
        self.admin = admin
        self.moto = DomainDispatcherApplication(create_backend_app)
        # Called before a request that may change moto's state (any method but GET/HEAD/OPTIONS),
        # so the data directory saves it; a no-op without one.
        self.on_moto_write: Callable[[], None] = lambda: None

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith(ADMIN_PREFIX):
            return self._respond(start_response, lambda: self.admin.handle(environ, path[len(ADMIN_PREFIX):]))
        region, service = credential_scope(environ)
        if service is None and environ.get("HTTP_AUTHORIZATION", "").startswith("Bearer "):
            # Bedrock API keys (AWS_BEARER_TOKEN_BEDROCK) carry no credential scope; only the
            # Bedrock APIs accept them, so route by path alone.
            service = "bedrock"
        if service in BEDROCK_SERVICES:
            handler = self._bedrock_route(environ, region or "us-east-1")
            if handler is not None:
                return self._respond(start_response, handler)
        if environ.get("REQUEST_METHOD", "GET") not in ("GET", "HEAD", "OPTIONS"):
            self.on_moto_write()
        return self.moto(environ, start_response)

    def _bedrock_route(self, environ: dict[str, Any], region: str) -> Callable[[], tuple] | None:
        method = environ.get("REQUEST_METHOD", "GET")
        segments = path_segments(environ)
        if method == "POST" and segments == ["model-invocation-job"]:
            return lambda: (200, self.control.create(_json_body(environ), region), {})
        if method == "POST" and segments == ["listTagsForResource"]:
            return lambda: (200, self.control.list_tags(_json_body(environ)), {})
        if method == "GET" and segments == ["model-invocation-jobs"]:
            query = dict(urllib.parse.parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
            return lambda: (200, self.control.list(query), {})
        if len(segments) == 2 and segments[0] == "model-invocation-job" and method == "GET":
            return lambda: (200, self.control.get(segments[1]), {})
        if len(segments) == 3 and segments[0] == "model-invocation-job" and segments[2] == "stop" and method == "POST":
            return lambda: (200, self.control.stop(segments[1]), {})
        if len(segments) == 3 and segments[0] == "model" and segments[2] in ("invoke", "converse") and method == "POST":
            body = _read_body(environ)
            return lambda: self._runtime_response(segments[1], segments[2], body)
        return None  # any other Bedrock API is moto's

    def _runtime_response(self, model_id: str, operation: str, body: bytes) -> tuple:
        payload, headers = self.runtime.invoke(model_id, operation, body)
        return 200, payload, headers

    @staticmethod
    def _respond(start_response: StartResponse, handler: Callable[[], tuple]) -> list[bytes]:
        request_id = str(uuid.uuid4())
        headers = {"x-amzn-RequestId": request_id, "Content-Type": "application/json"}
        try:
            status, body, extra = handler()
            headers.update(extra)
        except errors.ApiError as exc:
            # botocore reads the code from x-amzn-ErrorType and the text from body "message".
            status, body = exc.status, {"message": exc.message}
            headers["x-amzn-ErrorType"] = exc.code
        except Exception:
            log.exception("internal emulator error")
            status, body = 500, {"message": "Internal emulator error"}
            headers["x-amzn-ErrorType"] = "InternalServerException"
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers["Content-Length"] = str(len(payload))
        start_response(f"{status} {_REASONS.get(status, 'Status')}", list(headers.items()))
        return [payload]


_REASONS = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 424: "Failed Dependency",
            429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}


def _read_body(environ: dict[str, Any]) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    stream = environ["wsgi.input"]
    return stream.read(length) if length > 0 else stream.read()


def _json_body(environ: dict[str, Any]) -> dict[str, Any]:
    raw = _read_body(environ)
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        raise errors.validation("The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise errors.validation("The request body must be a JSON object.")
    return body
