"""Plans and their default limits; a tenant may carry custom limits instead.

| plan         | requests per minute | requests per month | open sockets per key | per tenant |
|--------------|--------------------:|-------------------:|---------------------:|-----------:|
| `free`       |                  60 |             10 000 |                    5 |         10 |
| `pro`        |                 600 |          1 000 000 |                   20 |         50 |
| `enterprise` |               6 000 |         50 000 000 |                  100 |        500 |

| plan         | webhook endpoints per tenant | webhook deliveries per minute per tenant |
|--------------|-----------------------------:|-----------------------------------------:|
| `free`       |                            2 |                                       60 |
| `pro`        |                           20 |                                      600 |
| `enterprise` |                          200 |                                    6 000 |

The per-minute limit applies to each key and, separately, to the whole tenant (all its keys
together); the monthly quota applies to the tenant and resets at 00:00 UTC on the 1st. The socket
caps bound the graphql-transport-ws sockets open at once (each API process counts its own).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tenants.errors import InvalidArgument

__all__ = ["PLANS", "Limits", "limits_for", "socket_caps", "validate_limits"]


@dataclass(frozen=True, slots=True)
class Limits:
    per_minute: int
    per_month: int
    sockets_per_key: int = 5
    sockets_per_tenant: int = 10
    webhook_endpoints: int = 2  # webhook endpoints per tenant
    webhook_deliveries_per_minute: int = 60  # webhook deliveries per tenant and minute


PLANS: dict[str, Limits] = {
    "free": Limits(per_minute=60, per_month=10_000, sockets_per_key=5, sockets_per_tenant=10),
    "pro": Limits(
        per_minute=600,
        per_month=1_000_000,
        sockets_per_key=20,
        sockets_per_tenant=50,
        webhook_endpoints=20,
        webhook_deliveries_per_minute=600,
    ),
    "enterprise": Limits(
        per_minute=6_000,
        per_month=50_000_000,
        sockets_per_key=100,
        sockets_per_tenant=500,
        webhook_endpoints=200,
        webhook_deliveries_per_minute=6_000,
    ),
}


def socket_caps(plan: str) -> tuple[int, int]:
    """(open sockets per key, per tenant) of ``plan`` (an unknown plan gets free's)."""
    limits = PLANS.get(plan, PLANS["free"])
    return limits.sockets_per_key, limits.sockets_per_tenant


MAX_PER_MINUTE = 1_000_000_000
MAX_PER_MONTH = 2_000_000_000  # GraphQL Int is 32-bit


def validate_plan(plan: str) -> str:
    if plan not in PLANS:
        raise InvalidArgument("plan", f"plan must be one of {', '.join(PLANS)}")
    return plan


def validate_limits(per_minute: int | None, per_month: int | None) -> dict[str, int]:
    """Custom limits as stored on the tenant (only the ones given)."""
    custom: dict[str, int] = {}
    if per_minute is not None:
        if not 1 <= per_minute <= MAX_PER_MINUTE:
            raise InvalidArgument("rateLimitPerMinute", f"rateLimitPerMinute must be from 1 to {MAX_PER_MINUTE}")
        custom["per_minute"] = per_minute
    if per_month is not None:
        if not 1 <= per_month <= MAX_PER_MONTH:
            raise InvalidArgument("quotaPerMonth", f"quotaPerMonth must be from 1 to {MAX_PER_MONTH}")
        custom["per_month"] = per_month
    return custom


def limits_for(tenant: Mapping[str, Any] | None) -> Limits:
    """The tenant's effective limits: its custom ones where set, else its plan's."""
    tenant = tenant or {}
    base = PLANS.get(str(tenant.get("plan", "free")), PLANS["free"])
    custom = tenant.get("limits") or {}
    return Limits(
        per_minute=int(custom.get("per_minute", base.per_minute)),
        per_month=int(custom.get("per_month", base.per_month)),
        sockets_per_key=base.sockets_per_key,
        sockets_per_tenant=base.sockets_per_tenant,
        webhook_endpoints=base.webhook_endpoints,
        webhook_deliveries_per_minute=base.webhook_deliveries_per_minute,
    )
