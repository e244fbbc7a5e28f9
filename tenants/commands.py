"""``insider-selling admin tenants|keys|audit …``: the GraphQL admin operations, for operators.

They run against the configured store with the operator's authority (audit entries name the actor
``operator-cli``). A rotation or revocation is broadcast on Redis when ``REDIS_URL`` is set, so
running workers drop the key from their caches at once. Output is JSON; an issued key is printed
once, on stdout, with a reminder on stderr.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

from tenants.audit import encode_cursor
from tenants.errors import InvalidArgument, TenantError
from tenants.hashing import KeyHasher
from tenants.plans import PLANS, limits_for
from tenants.principal import SCOPES
from tenants.repository import TenantRepository
from tenants.revocation import CHANNEL
from tenants.service import MAX_GRACE_SECONDS, KeyService, key_state

__all__ = ["add_arguments", "run"]


def _dump(value: Any, out: TextIO) -> None:
    out.write(orjson.dumps(value, option=orjson.OPT_INDENT_2, default=str).decode() + "\n")


def _tenant(doc: dict[str, Any]) -> dict[str, Any]:
    limits = limits_for(doc)
    return {"id": doc["tenant_id"], "name": doc["name"], "plan": doc["plan"],
            "rate_limit_per_minute": limits.per_minute, "quota_per_month": limits.per_month,
            "custom_limits": bool(doc.get("limits")), "created_at": doc["created_at"]}


def _key(doc: dict[str, Any]) -> dict[str, Any]:
    fields = ("key_id", "tenant_id", "name", "scopes", "created_at", "last_used_at", "expires_at",
              "revoked_at", "grace_until", "replaced_by", "rotated_from", "rate_limit_per_minute")
    return {**{f: doc.get(f) for f in fields}, "state": key_state(doc)}


def _when(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {value!r}") from None
    if parsed.tzinfo is None:
        raise argparse.ArgumentTypeError("give a timezone, e.g. 2027-01-01T00:00:00Z")
    return parsed.astimezone(UTC)


def add_arguments(admin_sub: Any, handler: Callable[..., int]) -> None:
    """Add ``tenants``, ``keys`` and ``audit`` under ``insider-selling admin``."""
    tenants = admin_sub.add_parser("tenants", help="create and list tenants")
    tsub = tenants.add_subparsers(dest="tenants_command", required=True, metavar="TENANTS_COMMAND")
    create = tsub.add_parser("create", help="create a tenant")
    create.add_argument("--name", required=True)
    create.add_argument("--plan", required=True, choices=list(PLANS))
    create.add_argument("--rate-limit-per-minute", type=int, help="replaces the plan's per-minute limit")
    create.add_argument("--quota-per-month", type=int, help="replaces the plan's monthly quota")
    tsub.add_parser("list", help="list every tenant")
    tenants.set_defaults(handler=handler)

    keys = admin_sub.add_parser("keys", help="issue, list, rotate and revoke API keys")
    ksub = keys.add_subparsers(dest="keys_command", required=True, metavar="KEYS_COMMAND")
    issue = ksub.add_parser("issue", help="issue a key and print it once")
    issue.add_argument("--tenant", required=True, help="tenant id (ten_...)")
    issue.add_argument("--name", required=True)
    issue.add_argument("--scope", action="append", required=True, choices=list(SCOPES), dest="scopes",
                       help="repeat for several scopes")
    issue.add_argument("--expires-at", type=_when, help="ISO 8601 with a timezone")
    issue.add_argument("--rate-limit-per-minute", type=int, help="this key's own, lower limit")
    listing = ksub.add_parser("list", help="list a tenant's keys (never a secret)")
    listing.add_argument("--tenant", required=True)
    rotate = ksub.add_parser("rotate", help="issue a replacement; the old key works for the grace period")
    rotate.add_argument("key_id")
    rotate.add_argument("--grace-seconds", type=int, required=True,
                        help=f"0 to {MAX_GRACE_SECONDS}; 0 stops the old key at once")
    revoke = ksub.add_parser("revoke", help="revoke a key now")
    revoke.add_argument("key_id")
    keys.set_defaults(handler=handler)

    audit = admin_sub.add_parser("audit", help="print audit entries, newest first")
    audit.add_argument("--tenant", help="only this tenant's entries")
    audit.add_argument("--first", type=int, default=50)
    audit.add_argument("--after", help="a cursor printed by a previous page")
    audit.set_defaults(handler=handler)


async def run(args: argparse.Namespace, db: Any, *, argon2_profile: str = "owasp", redis: Any = None,
              out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """Run one admin command against ``db``; returns the exit code (2 for a refused argument)."""

    async def broadcast(key_id: str) -> None:
        if redis is not None:
            try:
                await redis.publish(CHANNEL, key_id)
            except Exception as exc:
                err.write(f"warning: could not broadcast the change to running workers: {exc}\n")

    service = KeyService(TenantRepository(db), KeyHasher(argon2_profile),  # type: ignore[arg-type]
                         on_key_change=[broadcast])
    command = args.admin_command
    actions: dict[tuple[str, str | None], Callable[[], Awaitable[int]]] = {}

    async def tenants_create() -> int:
        doc = await service.create_tenant(None, args.name, args.plan,
                                          rate_limit_per_minute=args.rate_limit_per_minute,
                                          quota_per_month=args.quota_per_month)
        _dump(_tenant(doc), out)
        return 0

    async def tenants_list() -> int:
        _dump([_tenant(d) for d in await service.list_tenants(None)], out)
        return 0

    async def keys_issue() -> int:
        issued = await service.issue_key(None, args.tenant, args.name, args.scopes, expires_at=args.expires_at,
                                         rate_limit_per_minute=args.rate_limit_per_minute)
        _dump({"key": issued.key, "api_key": _key(issued.record)}, out)
        err.write("the key is shown only once: store it now\n")
        return 0

    async def keys_list() -> int:
        _dump([_key(d) for d in await service.list_keys(None, args.tenant)], out)
        return 0

    async def keys_rotate() -> int:
        issued = await service.rotate_key(None, args.key_id, args.grace_seconds)
        _dump({"key": issued.key, "api_key": _key(issued.record)}, out)
        err.write(f"{args.key_id} keeps working for {args.grace_seconds} s; the new key is shown only once\n")
        return 0

    async def keys_revoke() -> int:
        _dump(_key(await service.revoke_key(None, args.key_id)), out)
        return 0

    async def audit_page() -> int:
        entries, more = await service.audit_page(None, args.tenant, args.first, args.after)
        page = {"entries": entries, "has_next_page": more,
                "end_cursor": encode_cursor(entries[-1]["seq"]) if entries else None}
        for entry in entries:
            entry.pop("seq", None)
        _dump(page, out)
        return 0

    actions = {
        ("tenants", "create"): tenants_create, ("tenants", "list"): tenants_list,
        ("keys", "issue"): keys_issue, ("keys", "list"): keys_list, ("keys", "rotate"): keys_rotate,
        ("keys", "revoke"): keys_revoke, ("audit", None): audit_page,
    }
    sub = getattr(args, f"{command}_command", None)
    try:
        return await actions[(command, sub)]()
    except InvalidArgument as exc:
        err.write(f"error: {exc.param}: {exc}\n")
        return 2
    except TenantError as exc:
        err.write(f"error: {exc}\n")
        return 1
