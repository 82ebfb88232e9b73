"""A bound on live audio sessions, shared by the protocols that open them (the Realtime
API, WebRTC calls, Wyoming streams)."""

from __future__ import annotations


class Slots:
    """Counts live sessions against `limit`: a slot is taken before anything else is
    allocated and given back when the session is gone; refusals are counted."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_use = 0
        self.refused = 0
        """Sessions refused at the limit since start (metrics)."""

    def try_reserve(self) -> bool:
        """Take a slot; False (and one more refusal) when all are in use."""
        if self.in_use >= self.limit:
            self.refused += 1
            return False
        self.in_use += 1
        return True

    def release(self) -> None:
        """Give back a slot taken by :meth:`try_reserve`."""
        self.in_use -= 1
