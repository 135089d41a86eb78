"""bedrock-runtime InvokeModel and Converse over the same engines as batch jobs."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from . import errors
from .catalog import ModelCatalog
from .config import EmulatorConfig
from .engines import UnknownModel, base_model_id
from .faults import ThrottleDecider
from .stats import Stats

log = logging.getLogger("bedrock_assets.emulator")

# Record-level failures map onto the runtime's modelled exceptions.
RUNTIME_ERROR_CODES = {
    400: "ValidationException",
    429: "ThrottlingException",
    500: "InternalServerException",
    503: "ServiceUnavailableException",
}


class Runtime:
    def __init__(self, config: EmulatorConfig, catalog: ModelCatalog, stats: Stats) -> None:
        self.config = config
        self.catalog = catalog
        self.stats = stats
        self._throttle = ThrottleDecider(config.seed, "runtime")

    def invoke(self, model_id: str, operation: str, raw_body: bytes) -> tuple[bytes, dict[str, str]]:
        """Run InvokeModel ("invoke") or Converse ("converse"); returns (body, extra headers)."""
        model = base_model_id(model_id)
        if self._throttle.throttle(self.config.effective_runtime_throttle_rate()):
            self.stats.count(model, "runtime_throttled")
            raise errors.throttled()
        try:
            body: Any = json.loads(raw_body or b"null")
        except ValueError:
            raise errors.validation("Malformed input request, please reformat your input and try again.") from None
        if operation == "converse":
            # Converse carries the model in the path, never in the body.
            body = {key: value for key, value in (body or {}).items() if key != "modelId"} if isinstance(body, dict) else body
        invocation_type = "Converse" if operation == "converse" else "InvokeModel"
        try:
            engine = self.catalog.engine(model_id, invocation_type)
        except UnknownModel as exc:
            raise errors.validation(str(exc)) from None
        started = time.monotonic()
        outcome = engine.run([body])[0]
        latency_ms = int((time.monotonic() - started) * 1000)
        self.stats.count(model, "runtime_invocations")
        if not outcome.ok:
            code = RUNTIME_ERROR_CODES.get(outcome.error_code or 400, "ModelErrorException")
            raise errors.ApiError(code, outcome.error_message or "The model returned an error.")
        log.info("%s model=%s", "Converse" if operation == "converse" else "InvokeModel", model)
        headers = {
            "X-Amzn-Bedrock-Input-Token-Count": str(outcome.input_tokens),
            "X-Amzn-Bedrock-Output-Token-Count": str(outcome.output_tokens),
            "X-Amzn-Bedrock-Invocation-Latency": str(latency_ms),
        }
        return outcome.output_json.encode(), headers
