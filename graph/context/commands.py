"""`routegraph profile show|set|forget`: the user profiles in the store (graph/context/profiles.py)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from graph.config.settings import Settings
from graph.errors import ConfigError


def add_parser(add: Any) -> None:
    """Register the `profile` command; `add(name, help=...)` makes a subcommand parser."""
    prof = add("profile", help="show, set or forget what routegraph keeps about a user")
    actions = prof.add_subparsers(dest="action", required=True)
    show = actions.add_parser("show", help="print a user's profile (JSON)")
    show.add_argument("user")
    put = actions.add_parser(
        "set",
        help="set profile fields: expertise=beginner|expert|auto, answer_length=short|long|auto, "
        "language=..., channel=..., preferred_instances.CAP=INSTANCE",
    )
    put.add_argument("user")
    put.add_argument("fields", nargs="+", metavar="KEY=VALUE")
    drop = actions.add_parser("forget", help="delete everything kept about a user")
    drop.add_argument("user")
    prof.set_defaults(func=cmd_profile)


def cmd_profile(args: argparse.Namespace) -> int:
    from graph.context import profiles

    settings: Settings = args.settings
    store = profiles.resolve_store("auto", settings)
    assert store is not None
    redactor = settings.redactor()
    user = args.user.strip()
    if not user or len(user) > 200:
        raise ConfigError("a user id is 1 to 200 characters")
    if args.action == "forget":
        removed = profiles.forget(store, user)
        print(f"forgot {user}: {removed} item{'s' if removed != 1 else ''} deleted", file=sys.stderr)
        return 0
    profile = profiles.load(store, user)
    if args.action == "set":
        for field in args.fields:
            key, sep, value = field.partition("=")
            if not sep:
                raise ConfigError(f"expected KEY=VALUE, not {field!r}")
            profile = profiles.set_field(profile, key.strip(), value)
        profiles.save(store, profile)
    elif not profiles.exists(store, user):
        print(f"no profile for {user}", file=sys.stderr)
        return 1
    print(redactor.redact(json.dumps(profile.model_dump(mode="json"), ensure_ascii=False, indent=2)))
    return 0


__all__ = ["add_parser", "cmd_profile"]
