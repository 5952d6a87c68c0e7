"""A room on one link, small: five Chromium sessions upload a photo to Classify at the same moment
(benchmarks/room.py is the same with 1, 3, 12 and 30)."""
import asyncio

import pytest
from conftest import ROOT
from real_browser import CHROMIUM

from benchmarks.room import room

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (apt-get install chromium)")


def test_five_sessions_uploading_at_once_are_all_answered(server):
    url, _ = server
    # uploads while pages may still be loading: harsher than the benchmark's settled room, and no wait for quiet
    measured = asyncio.run(room(url, 5, ROOT / "photos" / "chelsea.jpg", timeout_s=150, settle=False))
    assert [kind for kind, _ in measured.results] == ["answered"] * 5, measured.results
