"""Per-tenant and per-user fair shares (pure: no server)."""

from __future__ import annotations

from arktos.apiserver.flowcontrol import FairShare, InflightLimiter, KeyedLimiter


def test_inflight_share_is_per_key() -> None:
    limiter = KeyedLimiter(FairShare(inflight=2))
    assert limiter.admit("a") is None and limiter.admit("a") is None
    assert limiter.admit("a") == "too many requests in flight"
    assert limiter.admit("b") is None, "another tenant is not held up by the first"
    limiter.release("a")
    assert limiter.admit("a") is None
    for _ in range(2):
        limiter.release("a")
    limiter.release("b")
    assert limiter.inflight == {}


def test_rate_share_spends_only_admitted_requests() -> None:
    limiter = KeyedLimiter(FairShare(qps=0.001, burst=3))
    results = [limiter.admit("a") for _ in range(5)]
    assert results[:3] == [None, None, None]
    assert results[3:] == ["request rate limit exceeded"] * 2
    assert limiter.admit("b") is None


def test_system_tenant_is_exempt_and_users_share_their_tenant() -> None:
    limiter = InflightLimiter(tenant=FairShare(inflight=3), user=FairShare(inflight=2))
    assert limiter._admit_fair("system", "system/admin") == []
    first = limiter._admit_fair("acme", "acme/alice")
    second = limiter._admit_fair("acme", "acme/alice")
    assert first and second
    try:
        limiter._admit_fair("acme", "acme/alice")
    except Exception as exc:  # noqa: BLE001
        assert getattr(exc, "code", None) == 429
    else:
        raise AssertionError("a user over its share must get 429")
    assert limiter.tenants.inflight == {"acme": 2}, "a refused request holds no tenant slot"
    assert limiter._admit_fair("acme", "acme/bob")
    assert limiter.tenants.inflight == {"acme": 3}
