"""Optional OpenTelemetry spans, one per node, when an OTLP endpoint is configured
(`OTEL_EXPORTER_OTLP_ENDPOINT`, the standard variable; the `otel` extra installs the SDK).

Each graph gets its own `TracerProvider` (no global one is set: two graphs in a process do not
fight over it) exporting over OTLP/HTTP to `<endpoint>/v1/traces` in batches. A span is named
`routegraph.<node>` and carries the run id, thread id and node, like the log lines; a node that
leaves an error record marks its span as an error. Without the endpoint or the SDK, `node_tracer`
returns None and nodes run without spans.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from typing import Any

log = logging.getLogger("routegraph.ops")


def node_tracer(endpoint: str | None, *, service: str = "routegraph", delay_ms: int = 1000) -> Any:
    """A tracer exporting to `endpoint` (OTLP/HTTP), or None without one or without the SDK."""
    if not endpoint:
        return None
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        log.warning("OTEL_EXPORTER_OTLP_ENDPOINT is set but the `otel` extra is not installed: no spans")
        return None
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    exporter = OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces")
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=delay_ms))
    return provider.get_tracer("routegraph")


@contextlib.contextmanager
def node_span(tracer: Any, node: str, ids: Mapping[str, Any]) -> Iterator[Any]:
    """A span around one node execution (nothing when `tracer` is None)."""
    if tracer is None:
        yield None
        return
    attributes = {"routegraph.node": node, **{f"routegraph.{k}": v for k, v in ids.items() if v}}
    with tracer.start_as_current_span(f"routegraph.{node}", attributes=attributes) as span:
        yield span


def end_span(span: Any, update: Mapping[str, Any]) -> None:
    """Mark the span failed when the node left an error record for the router."""
    if span is None:
        return
    errors = update.get("control_errors") or []
    stop = update.get("control_stop_reason")
    if stop:
        span.set_attribute("routegraph.stop_reason", str(stop))
    if errors:
        from opentelemetry.trace import Status, StatusCode

        span.set_status(Status(StatusCode.ERROR, str(errors[-1].get("message", ""))[:200]))
