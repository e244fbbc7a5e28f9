"""``insider-selling admin tenants|keys|audit …``: the GraphQL admin API, for operators.

Each command is one GraphQL operation sent to a running server (``--url``, default the configured
``INSIDER_HOST``/``INSIDER_PORT``), so it works against the embedded server as well as against a
production deployment; the server does the authorization, the audit entry and the revocation
broadcast. The operator's key comes from ``INSIDER_ADMIN_KEY`` or a prompt that does not echo,
never from an argument (arguments show in ``ps``). Output is a table, or JSON with ``--json``; an
issued key is printed once, on stdout, with a reminder on stderr.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

import httpx
import orjson

from insider_selling.settings import Settings
from tenants.plans import PLANS
from tenants.principal import SCOPES
from tenants.service import MAX_GRACE_SECONDS

__all__ = ["AdminCommandError", "add_arguments", "run"]

_TENANT = "id name plan rateLimitPerMinute quotaPerMonth customLimits createdAt"
_KEY = (
    "keyId tenantId name scopes state createdAt lastUsedAt expiresAt revokedAt graceUntil replacedBy "
    "rotatedFrom rateLimitPerMinute"
)
_AUDIT = "id at action actor actorKeyId tenantId targetType targetId details"
_WEBHOOK = (
    "id tenantId url description events minScore threshold direction state createdAt updatedAt "
    "consecutiveFailures disabledAt disabledReason previousSecretUntil"
)
_WEBHOOK_COLUMNS = ("id", "tenantId", "url", "events", "minScore", "threshold", "direction", "state")
_WEBHOOK_EVENTS = {
    "coin.listed": "COIN_LISTED",
    "coin.delisted": "COIN_DELISTED",
    "coin.score_crossed": "COIN_SCORE_CROSSED",
    "coin.phase_changed": "COIN_PHASE_CHANGED",
    "run.completed": "RUN_COMPLETED",
    "run.failed": "RUN_FAILED",
}


def _webhook_input(a: argparse.Namespace) -> dict[str, Any]:
    fields = {
        "url": a.url_,
        "events": None if a.events is None else [_WEBHOOK_EVENTS[e] for e in a.events],
        "description": a.description,
        "minScore": a.min_score,
        "threshold": a.threshold,
        "direction": None if a.direction is None else a.direction.upper(),
    }
    if getattr(a, "tenant", None):
        fields["tenantId"] = a.tenant
    return {k: v for k, v in fields.items() if v is not None}


class AdminCommandError(Exception):
    """Raised when an admin command fails: the server refused it, or could not be reached.
    ``exit_code`` is 2 for a refused argument, 1 otherwise."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True, slots=True)
class Operation:
    """One admin command: its GraphQL document, variables from the arguments, and how to print."""

    document: str
    variables: Callable[[argparse.Namespace], dict[str, Any]]
    root: str
    columns: tuple[str, ...]
    issued: bool = False  # the answer holds a full key, shown once
    secret: bool = False  # the answer holds a webhook endpoint's secret, shown once


def _when(value: str) -> str:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {value!r}") from None
    if parsed.tzinfo is None:
        raise argparse.ArgumentTypeError("give a timezone, e.g. 2027-01-01T00:00:00Z")
    return parsed.astimezone(UTC).isoformat().replace("+00:00", "Z")


_KEY_COLUMNS = ("keyId", "name", "scopes", "state", "createdAt", "lastUsedAt", "expiresAt", "graceUntil")

OPERATIONS: dict[tuple[str, str | None], Operation] = {
    ("tenants", "create"): Operation(
        "mutation($name: String!, $plan: String!, $rpm: Int, $qpm: Int) { createTenant(name: $name, plan: $plan, "
        f"rateLimitPerMinute: $rpm, quotaPerMonth: $qpm) {{ {_TENANT} }} }}",
        lambda a: {"name": a.name, "plan": a.plan, "rpm": a.rate_limit_per_minute, "qpm": a.quota_per_month},
        "createTenant",
        ("id", "name", "plan", "rateLimitPerMinute", "quotaPerMonth", "customLimits", "createdAt"),
    ),
    ("tenants", "list"): Operation(
        f"query {{ tenants {{ {_TENANT} }} }}",
        lambda a: {},
        "tenants",
        ("id", "name", "plan", "rateLimitPerMinute", "quotaPerMonth", "customLimits", "createdAt"),
    ),
    ("keys", "issue"): Operation(
        "mutation($tenant: ID!, $name: String!, $scopes: [String!]!, $expires: DateTime, $rpm: Int) { "
        "issueApiKey(tenantId: $tenant, name: $name, scopes: $scopes, expiresAt: $expires, "
        f"rateLimitPerMinute: $rpm) {{ key apiKey {{ {_KEY} }} }} }}",
        lambda a: {
            "tenant": a.tenant,
            "name": a.name,
            "scopes": a.scopes,
            "expires": a.expires_at,
            "rpm": a.rate_limit_per_minute,
        },
        "issueApiKey",
        ("key", *_KEY_COLUMNS),
        issued=True,
    ),
    ("keys", "list"): Operation(
        f"query($tenant: ID!) {{ apiKeys(tenantId: $tenant) {{ {_KEY} }} }}",
        lambda a: {"tenant": a.tenant},
        "apiKeys",
        _KEY_COLUMNS,
    ),
    ("keys", "rotate"): Operation(
        "mutation($key: ID!, $grace: Int!) { rotateApiKey(keyId: $key, gracePeriodSeconds: $grace) { "
        f"key apiKey {{ {_KEY} }} }} }}",
        lambda a: {"key": a.key_id, "grace": a.grace_seconds},
        "rotateApiKey",
        ("key", *_KEY_COLUMNS, "rotatedFrom"),
        issued=True,
    ),
    ("keys", "revoke"): Operation(
        f"mutation($key: ID!) {{ revokeApiKey(keyId: $key) {{ {_KEY} }} }}",
        lambda a: {"key": a.key_id},
        "revokeApiKey",
        (*_KEY_COLUMNS, "revokedAt"),
    ),
    ("webhooks", "create"): Operation(
        "mutation($input: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $input) { "
        f"secret endpoint {{ {_WEBHOOK} }} }} }}",
        lambda a: {"input": _webhook_input(a)},
        "createWebhookEndpoint",
        ("secret", *_WEBHOOK_COLUMNS),
        secret=True,
    ),
    ("webhooks", "list"): Operation(
        f"query($tenant: ID) {{ webhookEndpoints(tenantId: $tenant) {{ {_WEBHOOK} }} }}",
        lambda a: {"tenant": a.tenant},
        "webhookEndpoints",
        _WEBHOOK_COLUMNS,
    ),
    ("webhooks", "update"): Operation(
        "mutation($id: ID!, $input: UpdateWebhookEndpointInput!) { updateWebhookEndpoint(id: $id, input: $input) "
        f"{{ {_WEBHOOK} }} }}",
        lambda a: {"id": a.endpoint_id, "input": _webhook_input(a)},
        "updateWebhookEndpoint",
        _WEBHOOK_COLUMNS,
    ),
    ("webhooks", "pause"): Operation(
        f"mutation($id: ID!) {{ pauseWebhookEndpoint(id: $id) {{ {_WEBHOOK} }} }}",
        lambda a: {"id": a.endpoint_id},
        "pauseWebhookEndpoint",
        _WEBHOOK_COLUMNS,
    ),
    ("webhooks", "resume"): Operation(
        f"mutation($id: ID!) {{ resumeWebhookEndpoint(id: $id) {{ {_WEBHOOK} }} }}",
        lambda a: {"id": a.endpoint_id},
        "resumeWebhookEndpoint",
        _WEBHOOK_COLUMNS,
    ),
    ("webhooks", "delete"): Operation(
        "mutation($id: ID!) { deleted: deleteWebhookEndpoint(id: $id) }",
        lambda a: {"id": a.endpoint_id},
        "deleted",
        ("deleted",),
    ),
    ("webhooks", "rotate-secret"): Operation(
        f"mutation($id: ID!) {{ rotateWebhookSecret(id: $id) {{ secret endpoint {{ {_WEBHOOK} }} }} }}",
        lambda a: {"id": a.endpoint_id},
        "rotateWebhookSecret",
        ("secret", "id", "previousSecretUntil"),
        secret=True,
    ),
    ("webhooks", "test"): Operation(
        "mutation($id: ID!) { sendTestWebhook(endpointId: $id) { ok status statusCode latencyMs error } }",
        lambda a: {"id": a.endpoint_id},
        "sendTestWebhook",
        ("ok", "status", "statusCode", "latencyMs", "error"),
    ),
    ("webhooks", "replay"): Operation(
        "mutation($id: ID!, $since: DateTime!) { replayed: replayWebhookDeliveries(endpointId: $id, since: $since) }",
        lambda a: {"id": a.endpoint_id, "since": a.since},
        "replayed",
        ("replayed",),
    ),
    ("audit", None): Operation(
        "query($tenant: ID, $first: Int, $after: String) { auditLog(tenantId: $tenant, first: $first, "
        f"after: $after) {{ edges {{ cursor node {{ {_AUDIT} }} }} hasNextPage endCursor }} }}",
        lambda a: {"tenant": a.tenant, "first": a.first, "after": a.after},
        "auditLog",
        ("at", "action", "actor", "actorKeyId", "tenantId", "targetType", "targetId", "details"),
    ),
}


def add_arguments(admin_sub: Any, handler: Callable[..., int]) -> None:
    """Add ``tenants``, ``keys`` and ``audit`` under ``insider-selling admin``."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--url",
        help="the server to manage (default http://INSIDER_HOST:INSIDER_PORT); "
        "the key comes from INSIDER_ADMIN_KEY or a prompt",
    )
    common.add_argument("--json", action="store_true", help="print JSON (the GraphQL answer) instead of a table")
    common.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the server (default 30)")

    tenants = admin_sub.add_parser("tenants", help="create and list tenants")
    tsub = tenants.add_subparsers(dest="tenants_command", required=True, metavar="TENANTS_COMMAND")
    create = tsub.add_parser("create", parents=[common], help="create a tenant")
    create.add_argument("--name", required=True, help="the tenant's display name")
    create.add_argument("--plan", required=True, choices=list(PLANS), help="the plan, which sets the limits")
    create.add_argument("--rate-limit-per-minute", type=int, help="replaces the plan's per-minute limit")
    create.add_argument("--quota-per-month", type=int, help="replaces the plan's monthly quota")
    tsub.add_parser("list", parents=[common], help="list every tenant")
    tenants.set_defaults(handler=handler)

    keys = admin_sub.add_parser("keys", help="issue, list, rotate and revoke API keys")
    ksub = keys.add_subparsers(dest="keys_command", required=True, metavar="KEYS_COMMAND")
    issue = ksub.add_parser("issue", parents=[common], help="issue a key and print it once")
    issue.add_argument("--tenant", required=True, help="tenant id (ten_...)")
    issue.add_argument("--name", required=True, help="a name for the key, e.g. where it is used")
    issue.add_argument(
        "--scope", action="append", required=True, choices=list(SCOPES), dest="scopes", help="repeat for several scopes"
    )
    issue.add_argument("--expires-at", type=_when, help="ISO 8601 with a timezone")
    issue.add_argument("--rate-limit-per-minute", type=int, help="this key's own, lower limit")
    listing = ksub.add_parser("list", parents=[common], help="list a tenant's keys (never a secret)")
    listing.add_argument("--tenant", required=True, help="tenant id (ten_...)")
    rotate = ksub.add_parser(
        "rotate", parents=[common], help="issue a replacement; the old key works for the grace period"
    )
    rotate.add_argument("key_id", help="the key to replace (key_...)")
    rotate.add_argument(
        "--grace-seconds", type=int, required=True, help=f"0 to {MAX_GRACE_SECONDS}; 0 stops the old key at once"
    )
    revoke = ksub.add_parser("revoke", parents=[common], help="revoke a key now")
    revoke.add_argument("key_id", help="the key to revoke (key_...)")
    keys.set_defaults(handler=handler)

    _add_webhooks(admin_sub, common, handler)

    audit = admin_sub.add_parser("audit", parents=[common], help="print audit entries, newest first")
    audit.add_argument("--tenant", help="only this tenant's entries")
    audit.add_argument("--first", type=int, default=50, help="entries per page (default 50)")
    audit.add_argument("--after", help="a cursor printed by a previous page")
    audit.set_defaults(handler=handler)


def default_url(settings: Settings) -> str:
    host = settings.host
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - a bind address, not one to call
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}"


def read_key(settings: Settings, prompt: Callable[[str], str]) -> str:
    """The operator's key: ``INSIDER_ADMIN_KEY``, else asked for without echo."""
    if settings.admin_key is not None:
        return settings.admin_key.get_secret_value()
    try:
        key = prompt("admin key (sk_live_…, not echoed): ").strip()
    except (EOFError, KeyboardInterrupt):
        key = ""
    if not key:
        raise AdminCommandError("no admin key: set INSIDER_ADMIN_KEY or type it at the prompt", 2)
    return key


def _error(payload: Any, status: int) -> AdminCommandError:
    """The server's refusal as one line (REST envelope for 401/429, GraphQL errors otherwise)."""
    if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
        err = payload["error"]
        return AdminCommandError(f"{err.get('code')}: {err.get('message')}", 2 if status == 400 else 1)
    if isinstance(payload, dict) and payload.get("errors"):
        first = payload["errors"][0]
        ext = first.get("extensions") or {}
        code = ext.get("code", "error")
        param = f" ({ext['param']})" if ext.get("param") else ""
        refused = code in ("parameter_invalid", "graphql_validation_failed", "bad_request")
        return AdminCommandError(f"{code}{param}: {first.get('message')}", 2 if refused else 1)
    return AdminCommandError(f"the server answered HTTP {status}")


def call(
    url: str,
    key: str,
    document: str,
    variables: Mapping[str, Any],
    *,
    timeout: float = 30.0,
    transport: httpx.BaseTransport | None = None,
) -> Any:
    """POST one operation to ``url``/graphql; return its ``data`` or raise :class:`AdminCommandError`."""
    endpoint = url.rstrip("/") + "/graphql"
    try:
        with httpx.Client(timeout=timeout, transport=transport) as client:
            response = client.post(
                endpoint,
                content=orjson.dumps({"query": document, "variables": dict(variables)}),
                headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
            )
    except httpx.HTTPError as exc:
        raise AdminCommandError(
            f"cannot reach {endpoint}: {exc.__class__.__name__}: {exc} "
            "(is the server running there? give its address with --url)"
        ) from None
    try:
        payload = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        raise AdminCommandError(f"{endpoint} answered HTTP {response.status_code} without JSON") from None
    if response.status_code != 200 or payload.get("errors") or payload.get("data") is None:
        raise _error(payload, response.status_code)
    return payload["data"]


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if isinstance(value, dict):
        return orjson.dumps(value).decode()
    return str(value)


def render_table(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[str], out: TextIO, title: str | None = None
) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(*columns, title=title, show_lines=False, header_style="bold")
    for row in rows:
        table.add_row(*(_cell(row.get(c)) for c in columns))
    Console(file=out, width=None if out.isatty() else 240).print(table)


def _add_webhooks(admin_sub: Any, common: argparse.ArgumentParser, handler: Callable[..., int]) -> None:
    """``admin webhooks create|list|update|pause|resume|delete|rotate-secret|test|replay``."""
    hooks = admin_sub.add_parser("webhooks", help="manage webhook endpoints (the webhooks:manage scope)")
    wsub = hooks.add_subparsers(dest="webhooks_command", required=True, metavar="WEBHOOKS_COMMAND")

    def fields(parser: argparse.ArgumentParser, *, create: bool) -> None:
        parser.add_argument("--endpoint-url", dest="url_", required=create, help="https:// URL of the receiver")
        parser.add_argument(
            "--event",
            dest="events",
            action="append",
            choices=list(_WEBHOOK_EVENTS),
            required=create,
            help="repeat for several events",
        )
        parser.add_argument("--description", help="a note for the endpoint")
        parser.add_argument("--min-score", type=float, help="coin.listed/delisted: only at or above this score")
        parser.add_argument("--threshold", type=float, help="coin.score_crossed: the line (0 to 10)")
        parser.add_argument("--direction", choices=("up", "down", "both"), help="coin.score_crossed's direction")

    create = wsub.add_parser("create", parents=[common], help="create an endpoint and print its secret once")
    create.add_argument("--tenant", help="admin only: another tenant's id")
    fields(create, create=True)
    listing = wsub.add_parser("list", parents=[common], help="list endpoints (never a secret)")
    listing.add_argument("--tenant", help="admin only: another tenant's id")
    update = wsub.add_parser("update", parents=[common], help="change an endpoint")
    update.add_argument("endpoint_id", help="the endpoint (we_...)")
    fields(update, create=False)
    for name, text in (
        ("pause", "stop sending events to an endpoint"),
        ("resume", "send events again (also re-enables a disabled endpoint)"),
        ("delete", "delete an endpoint"),
        ("rotate-secret", "a new secret, printed once; the old one also signs for 24 h"),
        ("test", "send a signed webhook.test ping now"),
    ):
        wsub.add_parser(name, parents=[common], help=text).add_argument("endpoint_id", help="the endpoint (we_...)")
    replay = wsub.add_parser("replay", parents=[common], help="send the stored messages since a time again")
    replay.add_argument("endpoint_id", help="the endpoint (we_...)")
    replay.add_argument("--since", type=_when, required=True, help="ISO 8601 with a timezone")
    hooks.set_defaults(handler=handler)


def _rows(operation: Operation, answer: Any) -> tuple[list[dict[str, Any]], str | None]:
    """Flatten an answer into table rows, and a footer line (the audit log's next cursor)."""
    if operation.root == "auditLog":
        rows = [edge["node"] for edge in answer["edges"]]
        more = f"more: --after {answer['endCursor']}" if answer["hasNextPage"] else None
        return rows, more
    if operation.issued:
        return [{"key": answer["key"], **answer["apiKey"]}], None
    if operation.secret:
        return [{"secret": answer["secret"], **answer["endpoint"]}], None
    if not isinstance(answer, list | dict):  # a scalar answer (deleted, replayed)
        return [{operation.root: answer}], None
    return (answer if isinstance(answer, list) else [answer]), None


def run(
    args: argparse.Namespace,
    settings: Settings,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    prompt: Callable[[str], str] | None = None,
    transport: httpx.BaseTransport | None = None,
) -> int:
    """Run one admin command against the server; returns the exit code (2 for a refused argument)."""
    out = out or sys.stdout
    err = err or sys.stderr
    command = args.admin_command
    operation = OPERATIONS[(command, getattr(args, f"{command}_command", None))]
    url = args.url or default_url(settings)
    try:
        key = read_key(settings, prompt or getpass.getpass)
        data = call(url, key, operation.document, operation.variables(args), timeout=args.timeout, transport=transport)
    except AdminCommandError as exc:
        err.write(f"error: {exc}\n")
        return exc.exit_code
    answer = data[operation.root]
    if args.json:  # the operation's own result (docs/operations.md): a list for `list`, an object otherwise
        out.write(orjson.dumps(answer, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        rows, footer = _rows(operation, answer)
        render_table(rows, operation.columns, out)
        if footer:
            out.write(footer + "\n")
    if operation.issued:
        if command == "keys" and args.keys_command == "rotate":
            err.write(f"{args.key_id} keeps working for {args.grace_seconds} s; ")
        err.write("the new key is shown only once: store it now\n")
    if operation.secret:
        err.write("the webhook secret is shown only once: store it now\n")
    return 0
