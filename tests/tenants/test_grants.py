"""Issue 9, defect 1: no mutation hands a caller a key with a scope the caller does not hold, and
only ``admin`` grants ``admin`` (issue, rotate, and the service-level check they share)."""

from __future__ import annotations

import pytest

from store import StoreHandle
from tenants.errors import PermissionDenied
from tenants.hashing import KeyHasher
from tenants.principal import Principal
from tenants.repository import TenantRepository
from tenants.service import KeyService
from tests.helpers import make_settings
from tests.tenants.helpers import ISSUE, ROTATE, error_of, instance, new_key, new_tenant


async def test_manager_cannot_rotate_an_admin_key_into_its_hands() -> None:
    async with instance(make_settings(), prime=False) as inst:
        admin = inst.app.state.bootstrap[0].key
        t = await new_tenant(inst, admin, "escalation")
        manager, _ = await new_key(inst, admin, t, ["keys:manage", "signals:read"])
        _, admin_id = await new_key(inst, admin, t, ["admin"], name="tenant admin")
        body = await inst.gql(manager, ROTATE, keyId=admin_id, grace=0)
        code, _ = error_of(body)
        assert code == "insufficient_scope"
        assert "sk_live_" not in str(body)
        # nothing changed: the admin key is still active and was not replaced
        doc = await inst.services.keys.repo.get_key(admin_id)
        assert doc["replaced_by"] is None and doc["grace_until"] is None
        # an admin may rotate it
        rotated = await inst.ok(admin, ROTATE, keyId=admin_id, grace=0)
        assert rotated["rotateApiKey"]["apiKey"]["scopes"] == ["admin"]


async def test_a_key_grants_only_scopes_it_holds() -> None:
    async with instance(make_settings(), prime=False) as inst:
        admin = inst.app.state.bootstrap[0].key
        t = await new_tenant(inst, admin, "grants")
        manage_only, _ = await new_key(inst, admin, t, ["keys:manage"])
        reader_manager, _ = await new_key(inst, admin, t, ["keys:manage", "signals:read"])
        _, read_id = await new_key(inst, admin, t, ["signals:read"], name="reader")
        # keys:manage alone cannot mint or rotate a key that reads the data it cannot read
        for query, variables in (
            (ISSUE, {"tenantId": t, "name": "n", "scopes": ["signals:read"]}),
            (ROTATE, {"keyId": read_id, "grace": 0}),
        ):
            body = await inst.gql(manage_only, query, **variables)
            assert error_of(body)[0] == "insufficient_scope" and "sk_live_" not in str(body)
        # with both scopes it may; still never admin
        await new_key(inst, reader_manager, t, ["signals:read"])
        await inst.ok(reader_manager, ROTATE, keyId=read_id, grace=0)
        body = await inst.gql(reader_manager, ISSUE, tenantId=t, name="n", scopes=["admin", "signals:read"])
        assert error_of(body)[0] == "insufficient_scope"


async def test_every_key_handing_path_uses_one_grant_check(store: StoreHandle) -> None:
    repo = TenantRepository(store.db)
    service = KeyService(repo, KeyHasher("test"))
    tenant = (await repo.create_tenant("t", "free"))["tenant_id"]
    manager = Principal(tenant_id=tenant, key_id="key_manager00000", scopes=frozenset({"keys:manage"}), plan="free")
    with pytest.raises(PermissionDenied):
        service.check_grant(manager, ["admin"])
    with pytest.raises(PermissionDenied):
        service.check_grant(manager, ["signals:read"])
    service.check_grant(manager, ["keys:manage"])
    service.check_grant(None, ["admin"])  # the operator CLI acts with the store's authority
    admin = Principal(tenant_id=tenant, key_id="key_admin0000000", scopes=frozenset({"admin"}), plan="free")
    service.check_grant(admin, ["admin", "signals:read", "keys:manage"])
