"""How counts read on the pages: exact ones in full, estimates rounded and said to be one."""

from __future__ import annotations

import pytest

from dashboards import format

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("value, estimated, shown", [
    (629_109, False, "629,109"),
    (629_109, True, "about 629,000"),
    (32_001, True, "about 32,000"),
    (999_999, True, "about 1,000,000"),
    (45, True, "about 45"),
    (0, False, "0"),
])
def test_a_count_is_shown_in_full_or_as_an_estimate(value, estimated, shown):
    assert format.count(value, estimated) == shown
