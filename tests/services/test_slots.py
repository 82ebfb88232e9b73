"""The session bound the Realtime API, WebRTC calls and Wyoming streams share."""

from __future__ import annotations

from voxwire.services.slots import Slots
from voxwire.transports.realtime.websocket import SessionSlots


def test_slots_refuse_at_the_limit_count_refusals_and_free_on_release() -> None:
    slots = Slots(2)
    assert slots.try_reserve() and slots.try_reserve()
    assert not slots.try_reserve()
    assert (slots.in_use, slots.refused) == (2, 1)
    slots.release()
    assert slots.try_reserve()
    assert (slots.in_use, slots.refused) == (2, 1)


def test_session_slots_are_slots() -> None:
    slots = SessionSlots(1)
    assert slots.try_reserve() and not slots.try_reserve()
    assert (slots.in_use, slots.refused, slots.limit) == (1, 1, 1)
    slots.release()
    assert slots.in_use == 0 and not slots.active
