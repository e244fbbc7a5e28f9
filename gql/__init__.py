"""The web layer: Strawberry GraphQL schema, the REST /v1 shim, and the Starlette app factory.

``create_app(services, web=...)`` takes services built by the composition root
(:mod:`insider_selling.app`); this package never reads settings.
"""

from gql.app import WebConfig, create_app

__all__ = ["WebConfig", "create_app"]
