"""Signed webhooks (issue 22): endpoints per tenant, the outbox fan-out, and durable delivery.

Layered between the web layer and ``tenants``/``scoring``: ``gql`` manages endpoints through
:class:`~webhooks.service.WebhookService`; the composition root runs the
:class:`~webhooks.dispatcher.Dispatcher` (in ``worker`` and in the embedded scheduler). Settings
never reach this package: the root hands it a :class:`~webhooks.config.WebhookConfig`.
"""

from webhooks.config import WebhookConfig
from webhooks.dispatcher import Dispatcher
from webhooks.service import WebhookService

__all__ = ["Dispatcher", "WebhookConfig", "WebhookService"]
