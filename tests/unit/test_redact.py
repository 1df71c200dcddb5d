"""Passwords never printed: one redaction for URLs and sentences; a moved URL keeps its credentials."""

from __future__ import annotations

from kvmaint.client import with_address
from kvmaint.redact import redact, redact_url
from server.domain.credentials import AddonCredentials, generate, redis_url


def test_redact_url_hides_only_the_password() -> None:
    assert redact_url("redis://app:s3cr-t_@10.0.0.1:7001") == "redis://app:***@10.0.0.1:7001"
    assert redact_url("rediss://:pw@h:1/0") == "rediss://:***@h:1/0"
    assert redact_url("redis://10.0.0.1:7001") == "redis://10.0.0.1:7001"
    assert redact_url("not a url") == "not a url"


def test_redact_finds_every_url_in_a_sentence() -> None:
    text = "REDIS_URL changed from redis://a:p1@h:1 to rediss://a:p-2_x@h:2: restarting (redis://h:3)"
    assert (
        redact(text)
        == "REDIS_URL changed from redis://a:***@h:1 to rediss://a:***@h:2: restarting (redis://h:3)"
    )


def test_with_address_keeps_scheme_user_and_password() -> None:
    assert with_address("rediss://app:pw@h1:1", "h2", 2) == "rediss://app:pw@h2:2"
    assert with_address("redis://h1:1", "h2", 2) == "redis://h2:2"


def test_generated_credentials_and_the_url() -> None:
    a, b = generate("redis-x-1"), generate("redis-x-1")
    assert a.app_user == "redis-x-1" and a.agent_user == "kvmaint-agent"
    assert len({a.app_password, a.agent_password, b.app_password}) == 3  # random, every time
    assert a.app_password not in repr(a) and a.agent_password not in repr(a)
    assert redis_url("h:1", a) == f"redis://redis-x-1:{a.app_password}@h:1"
    tls = AddonCredentials("u", "p", "q", tls=True)
    assert redis_url("h:1", tls) == "rediss://u:p@h:1"
    assert redis_url("h:1", None) == "redis://h:1"
