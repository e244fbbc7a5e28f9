"""Safe by default: no request reaches a loopback, private, link-local or otherwise non-public
address (literal, or a DNS name resolving to one, checked on every attempt), and a redirect is
never followed. Each blocked case is paired with a control that does reach the server, so the
tests fail if the check lets requests through."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.webhooks.receiver import Receiver
from webhooks.addresses import check_url
from webhooks.config import WebhookConfig
from webhooks.errors import InvalidArgument
from webhooks.sender import Sender
from webhooks.signing import SecretKeeper

KEY = b"k" * 32
PAYLOAD = {"type": "webhook.test", "timestamp": "2026-12-08T00:00:00Z", "data": {}}


def endpoint(url: str) -> dict[str, object]:
    return {"endpoint_id": "we_test", "tenant_id": "t", "url": url, "salt": "s"}


def sender(*, allow_private: bool, answers: dict[str, list[str]] | None = None) -> Sender:
    config = WebhookConfig(server_key=KEY, allow_http=True, allow_private=allow_private, timeout=5.0)
    calls: list[str] = []

    async def resolver(host: str, port: int) -> list[str]:
        calls.append(host)
        if answers is None or host not in answers:
            raise OSError("no such name")
        return answers[host]

    made = Sender(config, SecretKeeper(KEY), resolver)
    made.resolver_calls = calls  # type: ignore[attr-defined]
    return made


async def send(s: Sender, url: str) -> str:
    try:
        return (await s.send(endpoint(url), "msg_1", PAYLOAD)).status
    finally:
        await s.aclose()


async def test_loopback_is_refused_and_allowed_only_by_the_setting(receiver: Receiver) -> None:
    assert await send(sender(allow_private=False), receiver.url) == "blocked"
    url = receiver.url.replace("127.0.0.1", "127.0.0.2")  # all of 127/8 is loopback
    assert await send(sender(allow_private=False), url) == "blocked"
    assert receiver.requests == []
    assert await send(sender(allow_private=True), receiver.url) == "succeeded"  # control
    assert len(receiver.requests) == 1


@pytest.mark.parametrize(
    "host",
    [
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "100.64.0.1",  # carrier-grade NAT
        "169.254.169.254",  # link-local: cloud metadata
        "0.0.0.0",  # noqa: S104
        "[::1]",
        "[fe80::1]",  # IPv6 link-local
        "[fc00::1]",  # IPv6 unique local
        "[::ffff:127.0.0.1]",  # IPv4-mapped loopback
        "[::ffff:10.0.0.1]",
        "224.0.0.1",
    ],
)
async def test_private_and_link_local_literals_are_refused_before_any_connection(host: str) -> None:
    s = sender(allow_private=False)
    assert await send(s, f"http://{host}:9/hook") == "blocked"
    assert s.resolver_calls == []  # type: ignore[attr-defined]  # a literal is checked as is


async def test_a_name_resolving_to_a_private_address_is_refused(receiver: Receiver) -> None:
    url = receiver.url.replace("127.0.0.1", "hooks.customer.example")
    answers = {"hooks.customer.example": ["127.0.0.1"]}
    blocked = sender(allow_private=False, answers=answers)
    assert await send(blocked, url) == "blocked"
    assert blocked.resolver_calls == ["hooks.customer.example"]  # type: ignore[attr-defined]
    mixed = {"hooks.customer.example": ["93.184.215.14", "10.1.2.3"]}  # one bad answer is enough
    assert await send(sender(allow_private=False, answers=mixed), url) == "blocked"
    assert receiver.requests == []
    # control: allowed, the request goes to the resolved address with the URL's Host
    assert await send(sender(allow_private=True, answers=answers), url) == "succeeded"
    assert receiver.requests[0]["headers"]["host"] == f"hooks.customer.example:{receiver.port}"


async def test_the_address_is_checked_again_on_every_attempt(receiver: Receiver) -> None:
    answers = {"rebind.example": ["127.0.0.1"]}
    s = sender(allow_private=False, answers=answers)
    url = receiver.url.replace("127.0.0.1", "rebind.example")
    try:
        for _ in range(3):
            assert (await s.send(endpoint(url), "msg_1", PAYLOAD)).status == "blocked"
    finally:
        await s.aclose()
    assert s.resolver_calls == ["rebind.example"] * 3  # type: ignore[attr-defined]
    assert receiver.requests == []


async def test_a_redirect_is_not_followed(receiver_factory: Callable[..., Receiver]) -> None:
    target = receiver_factory()
    redirecting = receiver_factory(answer=lambda _id, _n: 302, location=target.url)
    s = sender(allow_private=True)
    try:
        outcome = await s.send(endpoint(redirecting.url), "msg_1", PAYLOAD)
    finally:
        await s.aclose()
    assert outcome.status == "failed" and outcome.status_code == 302
    assert len(redirecting.requests) == 1
    assert target.requests == []


@pytest.mark.parametrize(
    ("url", "allow_http"),
    [
        ("http://example.com/hook", False),
        ("ftp://example.com/hook", True),
        ("https://user:pw@example.com/hook", False),
        ("https:///nohost", False),
        ("https://example.com/" + "a" * 2100, False),
        ("https://exa mple.com/", False),
        ("https://example.com:99999/", False),
        ("", False),
    ],
)
def test_bad_urls_are_refused(url: str, allow_http: bool) -> None:
    with pytest.raises(InvalidArgument):
        check_url(url, allow_http=allow_http)
