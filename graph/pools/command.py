"""`routegraph pools list|advise|create|scale|retire|reload`: the pools of a running server.

The commands talk to the server's HTTP app (graph/pools/http.py) at `--url` (default
http://127.0.0.1:8123, `routegraph serve`'s port), because pool state lives in the serving process.
`list` with no server answering shows the registry's pools as declared, idle.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

DEFAULT_URL = "http://127.0.0.1:8123"
ACTIONS = ("list", "advise", "create", "scale", "retire", "reload")


def add_parser(add: Callable[..., argparse.ArgumentParser], run: Callable[[argparse.Namespace], int]) -> None:
    """Register the `pools` command (`add` makes a subcommand parser, as graph/cli.py's `add`)."""
    p = add("pools", help="the specialist pools of a running server: list, advise, create, scale, retire, reload")
    p.add_argument("action", choices=ACTIONS)
    p.add_argument("name", nargs="?", help="create: the template; scale: a template or capability; retire: the instance")
    p.add_argument("replicas", nargs="?", type=int, help="scale: how many live instances")
    p.add_argument("--as", dest="instance", help="create: the new instance's name (default: <template>-<n>)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="create: an option (JSON value or text)")
    p.add_argument("--capacity", type=int, help="create: steps it runs at once")
    p.add_argument("--weight", type=float, help="create: its weight under the weighted policy")
    p.add_argument("--url", default=DEFAULT_URL, help=f"the server (default: {DEFAULT_URL})")
    p.add_argument("--registry", type=Path, help="list without a server: this registry.yaml (default: ROUTEGRAPH_REGISTRY, else the shipped one)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def cmd_pools(args: argparse.Namespace, local: Callable[[], list[dict[str, Any]]]) -> int:
    """Run one action; `local()` lists the registry's pools when no server answers `list`."""
    action, name = args.action, args.name
    if action in ("create", "scale", "retire") and not name:
        return _usage(f"pools {action} needs a name")
    if action == "scale" and args.replicas is None:
        return _usage("pools scale needs a name and a number of replicas")
    if not _http_url(args.url):
        return _usage(f"--url takes the server's http:// or https:// address, not {args.url!r}")
    method, path, body = {
        "list": ("GET", "/pools", None),
        "advise": ("GET", "/pools/advise", None),
        "reload": ("POST", "/pools/reload", {}),
        "create": ("POST", "/pools/instances", _create_body(args)),
        "scale": ("POST", "/pools/scale", {"name": name, "replicas": args.replicas}),
        "retire": ("DELETE", f"/pools/instances/{urllib.parse.quote(name or '', safe='')}", None),
    }[action]
    try:
        status, reply = _call(args.url.rstrip("/") + path, method, body)
    except OSError as exc:
        if action != "list":
            print(f"routegraph pools: no server answers at {args.url} ({exc}); start one with `routegraph serve`", file=sys.stderr)
            return 1
        reply = {"pools": local(), "note": f"no server at {args.url}: the registry's pools, idle"}
        status = 200
    if args.json:
        print(json.dumps(reply, ensure_ascii=False))
    else:
        print(render(action, reply))
    return 0 if status < 300 else (2 if status in (400, 404, 422) else 1)


def _create_body(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for item in args.option:
        key, _, value = item.partition("=")
        try:
            options[key] = json.loads(value)
        except ValueError:
            options[key] = value
    body: dict[str, Any] = {"template": args.name, "options": options}
    for field in ("instance", "capacity", "weight"):
        if getattr(args, field) is not None:
            body["name" if field == "instance" else field] = getattr(args, field)
    return body


def _call(url: str, method: str, body: dict[str, Any] | None) -> tuple[int, dict[str, Any]]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return int(reply.status), json.loads(reply.read() or b"{}")
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read() or b"{}")
        except ValueError:
            return exc.code, {"error": f"HTTP {exc.code}"}


def render(action: str, reply: dict[str, Any]) -> str:
    """Human text for a reply."""
    if "error" in reply:
        return f"error: {reply['error']}"
    if action == "list":
        lines = [reply["note"]] if reply.get("note") else []
        header = f"{'instance':<22} {'health':<9} {'in flight':>9} {'p50 ms':>8} {'p95 ms':>8} {'success':>7} {'served':>6}"
        for pool in reply.get("pools", []):
            q = pool["queue"]
            lines.append(
                f"{pool['capability']} ({pool['policy']}; queue {q['waiting']}/{q['size']}, "
                f"waited {q['queued']} of {q['steps']}, timeouts {q['timeouts']}, full {q['rejected']})"
            )
            lines.append("  " + header)
            for i in pool["instances"]:
                cap = "∞" if i["capacity"] is None else i["capacity"]
                rate = "-" if i["success_rate"] is None else f"{i['success_rate']:.2f}"
                lines.append(
                    f"  {i['name']:<22} {i['health']:<9} {str(i['in_flight']) + '/' + str(cap):>9} "
                    f"{_ms(i['p50_ms']):>8} {_ms(i['p95_ms']):>8} {rate:>7} {i['served']:>6}"
                )
        return "\n".join(lines)
    if action == "advise":
        advice = reply.get("advice") or []
        return "\n".join(f"{a['action']} {a['target']}: {a['reason']}" for a in advice) or "nothing to change"
    if action == "reload":
        return "reloaded" if reply.get("reloaded") else "refused:\n  " + "\n  ".join(reply.get("problems", []))
    if action == "scale":
        return "\n".join(i["name"] for i in reply.get("instances", [])) or "no live instances"
    return json.dumps(reply.get("instance"), ensure_ascii=False)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _http_url(url: str) -> bool:
    """An http(s) URL with a host and a valid port, if any (urllib would try `ftp://` and
    `file://`, and raise ValueError on the rest)."""
    try:
        where = urllib.parse.urlsplit(url)
        where.port  # noqa: B018  (raises ValueError when out of range or not a number)
    except ValueError:
        return False
    return where.scheme in ("http", "https") and bool(where.hostname)


def _usage(message: str) -> int:
    print(f"routegraph pools: {message}", file=sys.stderr)
    return 2
