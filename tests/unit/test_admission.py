"""The admission limits (collector/admission.py) on their own: what is refused, with which
error, and that every admitted ticket gives its share back."""

from __future__ import annotations

import pytest

from collector.admission import Admission, MemoryPressure, Overloaded

pytestmark = pytest.mark.unit


def admission(**overrides) -> Admission:
    values = dict(max_requests=2, max_bytes=1000, memory_limit=0, retry_after=3.0)
    values.update(overrides)
    return Admission(**values)


def test_concurrent_requests_over_the_limit_are_overloaded_until_one_is_released():
    limits = admission()
    first, second = limits.admit(), limits.admit()
    with pytest.raises(Overloaded) as refused:
        limits.admit()
    assert refused.value.retry_after == 3.0 and refused.value.http_status == 429
    first.release()
    first.release()  # twice is harmless
    third = limits.admit()
    assert limits.requests == 2
    second.release(), third.release()
    assert (limits.requests, limits.inflight_bytes) == (0, 0)
    assert limits.refused["requests"] == 1


def test_bytes_in_flight_are_capped_but_one_request_always_passes():
    limits = admission(max_requests=10)
    with limits.admit() as big:
        big.charge(5000)  # alone: let through, however large
        with limits.admit() as other:
            with pytest.raises(Overloaded):
                other.charge(1)
        assert limits.inflight_bytes == 5000
    assert limits.inflight_bytes == 0
    with limits.admit() as a, limits.admit() as b:
        a.charge(600)
        with pytest.raises(Overloaded):
            b.charge(401)
        b.charge(400)
        assert limits.inflight_bytes == 1000
    assert (limits.requests, limits.inflight_bytes) == (0, 0)


def test_memory_over_the_soft_limit_refuses_and_recovers():
    limits = admission(memory_limit=10 * 1024**2)  # far below this process
    limits._sample()
    assert limits.under_pressure
    with pytest.raises(MemoryPressure) as refused:
        limits.admit()
    assert refused.value.http_status == 503
    limits.memory_limit = 1024**4  # as if memory fell back under the limit
    limits._sample()
    assert not limits.under_pressure
    limits.admit().release()
    assert admission(memory_limit=0).under_pressure is False  # 0 = off
