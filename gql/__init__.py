"""The web layer: Strawberry GraphQL schema, the REST /v1 shim, and the Starlette app factory."""
