"""The operations dashboard: a page, its data and its charts, served by the HTTP app (graph/ops/http.py)
under `langgraph dev` / `routegraph serve`, and alone by `routegraph dashboard --port N`:

    GET /dashboard                      the page (graph/ops/static/: HTML, CSS and a little JS)
    GET /dashboard/static/...           its assets, all local (no CDN)
    GET /dashboard/data?since=7d        the figures as JSON (`dashboard_data`); `&charts=svg` adds
                                        the charts, rendered on the server (`render_charts`)

The data is `routing_analytics` (graph/ops/analytics.py) plus what a page needs besides: volume per
hour or day, the feedback queue (recent turns nobody has judged yet, request redacted) and, when
graph/ops/experiments.py exists, each running experiment's comparison. The queue's buttons post to
the app's `/feedback`, so a mark from the page goes through the same `give_feedback` as the CLI.

Charts are matplotlib figures written as SVG (text kept as text, so the page and its tests can read
the figures) and inlined into the page: no JavaScript chart library and no build step.
"""

from __future__ import annotations

import functools
import importlib
import io
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from graph.capability.base import jsonable, run_blocking
from graph.config.registry import Registry
from graph.config.settings import Settings
from graph.ops.analytics import analytics, parse_since
from graph.ops.store import TraceStore, TraceStoreError
from graph.redact import Redactor

STATIC = Path(__file__).resolve().with_name("static")
QUEUE_LIMIT = 25
"""How many unjudged turns the feedback queue shows (newest first)."""
_HOUR, _DAY = 3600, 86400
MAX_BUCKETS = 520
"""The volume series' most buckets: ten years of weeks."""
_RENDER = threading.Lock()  # matplotlib's rcParams are global: one rendering at a time
_COLORS = {"success": "#2f7d4f", "clarify": "#c9a227", "other": "#b24a3b"}
_ACCENT, _MUTED, _INK = "#3465a4", "#9bb5d6", "#333333"


def volume_series(
    started: Sequence[float], *, since: float | None, now: float | None = None
) -> dict[str, Any]:
    """Turns per UTC hour (windows up to two days), day (up to 120 days) or week, empty buckets
    included, from `since` (or the first turn) to `now`, over at most `MAX_BUCKETS` of them (ten
    years of weeks: an older `since` starts the series there, instead of filling memory)."""
    now = time.time() if now is None else now
    start = since if since is not None else (min(started) if started else now)
    start = max(start, now - MAX_BUCKETS * 7 * _DAY)
    span = max(now - start, 0.0)
    step = _HOUR if span <= 2 * _DAY else _DAY if span <= 120 * _DAY else 7 * _DAY
    first, last = int(start // step) * step, int(now // step) * step
    count = (last - first) // step + 1
    counts = Counter(int(t // step) * step for t in started)
    buckets = [first + i * step for i in range(max(count, 0))]
    fmt = "%Y-%m-%d %H:00" if step == _HOUR else "%Y-%m-%d"
    return {
        "unit": {_HOUR: "hour", _DAY: "day"}.get(step, "week"),
        "buckets": [
            {"start": b, "label": datetime.fromtimestamp(b, tz=UTC).strftime(fmt), "turns": counts[b]}
            for b in buckets
        ],
    }


def feedback_queue(
    traces: Sequence[Mapping[str, Any]], redactor: Redactor, limit: int = QUEUE_LIMIT
) -> list[dict[str, Any]]:
    """The newest turns without feedback: what an operator judges next."""
    unjudged = [t for t in traces if not t.get("feedback")]
    unjudged.sort(key=lambda t: -float(t["started_at"]))
    return [
        {
            "run_id": t["run_id"],
            "thread_id": t["thread_id"],
            "started_at": t["started_at"],
            "request": redactor.redact(t.get("request") or ""),
            "selected": list(t.get("selected") or []),
            "top_capability": t.get("top_capability"),
            "top_score": t.get("top_score"),
            "stop_reason": t["stop_reason"],
        }
        for t in unjudged[:limit]
    ]


def experiment_comparisons(
    store: TraceStore, traces: Sequence[Mapping[str, Any]], since: float | None
) -> list[dict[str, Any]]:
    """`compare_experiment` (graph/ops/experiments.py, when present) for each experiment seen in the
    window; an empty list when there are none or the module is absent."""
    names = sorted({str(t["experiment"]) for t in traces if t.get("experiment")})
    if not names:
        return []
    try:
        module = importlib.import_module("graph.ops.experiments")
    except ImportError:
        return []
    compare: Callable[..., dict[str, Any]] | None = getattr(module, "compare_experiment", None)
    if compare is None:
        return []
    found = []
    for name in names:
        try:
            result = compare(store, name, since=since)
        except Exception as exc:  # one experiment's failure does not blank the page
            result = {"error": f"{type(exc).__name__}: {exc}"}
        found.append({"name": name, "comparison": result})
    return found


def dashboard_data(
    store: TraceStore,
    *,
    since: float | None,
    capabilities: Sequence[str] = (),
    redactor: Redactor | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """Everything the page shows, as JSON-ready data (redacted): `analytics`, `volume`, `queue`,
    `experiments`, and `capabilities` (the names an operator may correct a turn to)."""
    redactor = redactor or Redactor()
    now = time.time() if now is None else now
    traces = store.traces(since=since)
    result = {
        "generated_at": now,
        "since": since,
        "analytics": analytics(store, since=since),
        "volume": volume_series([float(t["started_at"]) for t in traces], since=since, now=now),
        "queue": feedback_queue(traces, redactor),
        "experiments": experiment_comparisons(store, traces, since),
        "capabilities": sorted(capabilities),
    }
    return redactor.redact_value(jsonable(result))


# -- charts ---------------------------------------------------------------------------------------


def _figure(height: float = 2.6) -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.0, height), layout="constrained")
    return fig, fig.add_subplot()


def _svg(fig: Any) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    return text[text.index("<svg") :]  # the XML prolog and doctype are not wanted inline


def _style(ax: Any) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(colors=_INK, labelsize=8)


def _volume_chart(volume: Mapping[str, Any]) -> str:
    fig, ax = _figure()
    buckets = volume["buckets"]
    xs = range(len(buckets))
    ax.bar(xs, [b["turns"] for b in buckets], color=_ACCENT, width=0.8)
    every = max(1, len(buckets) // 8)
    ax.set_xticks(list(xs)[::every], [b["label"] for b in buckets][::every], rotation=30, ha="right")
    ax.set_ylabel(f"turns per {volume['unit']}", fontsize=8)
    ax.yaxis.get_major_locator().set_params(integer=True)
    _style(ax)
    return _svg(fig)


def _stop_reason_chart(stops: Mapping[str, int]) -> str:
    names = list(stops)[::-1]
    fig, ax = _figure(max(1.4, 0.35 * len(names) + 0.8))
    colors = [_COLORS.get(n, _COLORS["other"]) for n in names]
    bars = ax.barh(names, [stops[n] for n in names], color=colors)
    ax.bar_label(bars, padding=3, fontsize=8)
    ax.set_xlabel("turns", fontsize=8)
    ax.xaxis.get_major_locator().set_params(integer=True)
    _style(ax)
    return _svg(fig)


def _latency_chart(capabilities: Mapping[str, Mapping[str, Any]]) -> str:
    names = [n for n, c in capabilities.items() if c["latency_ms_p50"] is not None][::-1]
    fig, ax = _figure(max(1.6, 0.3 * len(names) + 0.9))
    ys = range(len(names))
    p50 = [capabilities[n]["latency_ms_p50"] for n in names]
    p95 = [capabilities[n]["latency_ms_p95"] for n in names]
    ax.barh([y + 0.2 for y in ys], p95, height=0.4, color=_MUTED, label="p95")
    bars = ax.barh([y - 0.2 for y in ys], p50, height=0.4, color=_ACCENT, label="p50")
    ax.bar_label(bars, labels=[f"{v:.0f}" for v in p50], padding=3, fontsize=7)
    ax.set_yticks(list(ys), names)
    ax.set_xlabel("step time, ms", fontsize=8)
    ax.legend(fontsize=8, frameon=False, ncols=2, loc="lower right", bbox_to_anchor=(1, 1))
    _style(ax)
    return _svg(fig)


def _confidence_chart(days: Sequence[Mapping[str, Any]]) -> str:
    fig, ax = _figure()
    xs = range(len(days))
    ax.fill_between(
        xs, [d["p25"] for d in days], [d["p75"] for d in days], color=_MUTED, alpha=0.5, label="p25-p75"
    )
    ax.plot(xs, [d["median"] for d in days], color=_ACCENT, marker="o", label="median")
    ax.set_xticks(list(xs), [f"{d['day']}\nn={d['n']}" for d in days])
    ax.set_ylim(0, 1.02)
    ax.set_xlim(-0.5, len(days) - 0.5)
    ax.set_ylabel("top candidate's score", fontsize=8)
    ax.legend(fontsize=8, frameon=False, loc="lower left")
    _style(ax)
    return _svg(fig)


def _health_chart(capabilities: Mapping[str, Mapping[str, Any]]) -> str:
    names = list(capabilities)[::-1]
    fig, ax = _figure(max(1.6, 0.36 * len(names) + 0.9))
    ys = range(len(names))
    series = [("selections", _ACCENT), ("errors", _COLORS["other"]), ("retries", _COLORS["clarify"])]
    for i, (key, color) in enumerate(series):
        values = [capabilities[n][key] for n in names]
        bars = ax.barh([y + (1 - i) * 0.27 for y in ys], values, height=0.27, color=color, label=key)
        ax.bar_label(bars, labels=[str(v) if v else "" for v in values], padding=2, fontsize=7)
    ax.set_yticks(list(ys), names)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(fontsize=8, frameon=False, ncols=3, loc="lower right", bbox_to_anchor=(1, 1))
    _style(ax)
    return _svg(fig)


def render_charts(data: Mapping[str, Any]) -> dict[str, str]:
    """The page's charts as inline SVG, from `dashboard_data`'s result; {} when there is no traffic
    (the page shows its empty state)."""
    import matplotlib

    a = data["analytics"]
    if not a["volume"]:
        return {}
    with (
        _RENDER,
        matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "routegraph", "font.size": 8}),
    ):
        charts = {
            "volume": _volume_chart(data["volume"]),
            "stop_reasons": _stop_reason_chart(a["stop_reasons"]),
        }
        if any(c["latency_ms_p50"] is not None for c in a["capabilities"].values()):
            charts["latency"] = _latency_chart(a["capabilities"])
        if a["confidence_by_day"]:
            charts["confidence"] = _confidence_chart(a["confidence_by_day"])
        if a["capabilities"]:
            charts["health"] = _health_chart(a["capabilities"])
    return charts


# -- routes ---------------------------------------------------------------------------------------


def routes(settings: Settings, store: TraceStore) -> list[BaseRoute]:
    """The dashboard's routes, for the HTTP app (graph/ops/http.py)."""
    redactor = settings.redactor()

    @functools.cache
    def routable() -> tuple[str, ...]:
        return tuple(c.name for c in Registry.from_file(settings.registry).routable)

    async def page(_: Request) -> Response:
        return FileResponse(STATIC / "dashboard.html", media_type="text/html")

    async def data(request: Request) -> JSONResponse:
        text = request.query_params.get("since", "7d").strip()
        try:
            since = None if text in ("", "all") else parse_since(text)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)

        def build() -> dict[str, Any]:
            result = dashboard_data(store, since=since, capabilities=routable(), redactor=redactor)
            if request.query_params.get("charts") == "svg":
                result["charts"] = render_charts(result)
            return result

        try:
            return JSONResponse(await run_blocking(build))
        except TraceStoreError as exc:
            return JSONResponse({"error": redactor.redact(str(exc))}, status_code=503)
        except Exception as exc:  # no traceback reaches the page: one line, redacted
            return JSONResponse({"error": redactor.redact(f"{type(exc).__name__}: {exc}")}, status_code=500)

    return [
        Route("/dashboard", page, methods=["GET"]),
        Route("/dashboard/data", data, methods=["GET"]),
        Mount("/dashboard/static", app=StaticFiles(directory=STATIC), name="dashboard-static"),
    ]
