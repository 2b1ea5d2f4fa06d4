"""OpenTelemetry traces, off unless configured.

On when OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_TRACES_EXPORTER=otlp
is set: spans go to the OTLP/HTTP exporter, configured by the standard OTEL_* variables. Needs the
optional extra (`pip install 'keeprouter[otel]'`); configured without it, start-up fails with one
line saying so. Off, nothing here is imported and the request path pays one `is None` test.

Spans (GenAI semantic conventions): one SERVER span per client request (`chat {model}`), the
current span while the request is handled; one CLIENT span per upstream attempt (`chat {upstream
model}`), from the call until its answer (a stream's: until its first event) or its failure.
Attributes never carry a key, a key name or any content.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

CONFIG_VARS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


class TracingUnavailable(Exception):
    """Traces are configured but the optional OpenTelemetry packages are not installed."""


def configured(env: Mapping[str, str]) -> bool:
    return any(env.get(v) for v in CONFIG_VARS) or env.get("OTEL_TRACES_EXPORTER") == "otlp"


def from_env(env: Mapping[str, str] | None = None) -> Tracing | None:
    """A Tracing exporting over OTLP/HTTP when the environment configures it, else None."""
    env = os.environ if env is None else env
    if not configured(env):
        return None
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        raise TracingUnavailable(
            "OpenTelemetry is configured (OTEL_EXPORTER_OTLP_*) but not installed: pip install 'keeprouter[otel]'"
        ) from None
    return Tracing(BatchSpanProcessor(OTLPSpanExporter()))


class Tracing:
    """Owns one tracer provider; `processor` receives every ended span (tests pass an in-memory one)."""

    def __init__(self, processor: Any) -> None:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context

        self._kinds = SpanKind
        self._status, self._error = Status, StatusCode.ERROR
        self._in_context = set_span_in_context
        name = os.environ.get("OTEL_SERVICE_NAME") or "keeprouter"
        self.provider = TracerProvider(resource=Resource.create({"service.name": name}))
        self.provider.add_span_processor(processor)
        self.tracer = self.provider.get_tracer("keeprouter")

    # ---- the request span ----------------------------------------------------------------
    def start_request(self, api: str, operation: str = "chat") -> tuple[Any, object]:
        """A SERVER span made current (attempt spans become its children); pass both to end_request.
        `operation`: GenAI's operation name (chat, embeddings, rerank)."""
        from opentelemetry import context

        attributes = {"gen_ai.operation.name": operation, "keeprouter.api": api}
        span = self.tracer.start_span(operation, kind=self._kinds.SERVER, attributes=attributes)
        return span, context.attach(self._in_context(span))

    def end_request(self, span: Any, token: object, status: int) -> None:
        from opentelemetry import context

        context.detach(token)  # type: ignore[arg-type]
        span.set_attribute("http.response.status_code", status)
        if status >= 400:
            span.set_status(self._status(self._error))
            span.set_attribute("error.type", str(status))
        span.end()

    @staticmethod
    def served(span: Any, gen_id: str, model: str, provider: str, response_model: str | None,
               operation: str = "chat") -> None:  # fmt: skip
        span.update_name(f"{operation} {model}")
        span.set_attribute("gen_ai.request.model", model)
        span.set_attribute("gen_ai.provider.name", provider)
        span.set_attribute("keeprouter.generation.id", gen_id)
        if response_model:
            span.set_attribute("gen_ai.response.model", response_model)

    @staticmethod
    def usage(span: Any, input_tokens: int, output_tokens: int, finish: str | None) -> None:
        span.set_attribute("gen_ai.usage.input_tokens", input_tokens)
        span.set_attribute("gen_ai.usage.output_tokens", output_tokens)
        if finish:
            span.set_attribute("gen_ai.response.finish_reasons", (finish,))

    # ---- one span per upstream attempt ----------------------------------------------------
    def start_attempt(self, provider: str, model: str, base_url: str, max_tokens: int | None) -> Any:
        attrs: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": provider,
            "gen_ai.request.model": model,
            "server.address": base_url,
        }
        if max_tokens:
            attrs["gen_ai.request.max_tokens"] = max_tokens
        return self.tracer.start_span(f"chat {model}", kind=self._kinds.CLIENT, attributes=attrs)

    def end_attempt(self, span: Any, error: str | None = None, response_model: str | None = None,
                    input_tokens: int = 0, output_tokens: int = 0) -> None:  # fmt: skip
        if error is not None:
            span.set_status(self._status(self._error, error))
            span.set_attribute("error.type", error)
        if response_model:
            span.set_attribute("gen_ai.response.model", response_model)
        if input_tokens or output_tokens:
            span.set_attribute("gen_ai.usage.input_tokens", input_tokens)
            span.set_attribute("gen_ai.usage.output_tokens", output_tokens)
        span.end()

    def close(self) -> None:
        """Flush and stop the exporter (blocking: run it off the event loop)."""
        self.provider.shutdown()
