"""Webhook fixtures (the receiver lives in ``tests/webhooks/receiver.py``)."""

from tests.webhooks.receiver import receiver, receiver_factory

__all__ = ["receiver", "receiver_factory"]
