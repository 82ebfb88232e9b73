import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from voxwire.engine.errors import AudioEvicted
from voxwire.engine.ring_buffer import RingBuffer


def test_reads_by_absolute_position_across_wraparound() -> None:
    buf = RingBuffer(10)
    data = np.arange(25, dtype=np.float32)
    for i in range(0, 25, 3):
        buf.append(data[i : i + 3])
    assert buf.end == 25
    assert buf.start == 15
    np.testing.assert_array_equal(buf.read(15, 25), data[15:25])
    np.testing.assert_array_equal(buf.read(18, 22), data[18:22])


def test_evicted_samples_are_counted_and_refused() -> None:
    buf = RingBuffer(8)
    buf.append(np.ones(20, dtype=np.float32))
    assert buf.evicted_samples == 12
    with pytest.raises(AudioEvicted, match="evicted"):
        buf.read(11, 14)


def test_reading_past_the_end_is_an_error() -> None:
    buf = RingBuffer(8)
    buf.append(np.ones(4, dtype=np.float32))
    with pytest.raises(ValueError):
        buf.read(0, 5)


@given(
    capacity=st.integers(1, 64),
    sizes=st.lists(st.integers(0, 100), max_size=30),
    window=st.tuples(st.integers(0, 200), st.integers(0, 64)),
)
def test_matches_a_plain_array(capacity: int, sizes: list[int], window: tuple[int, int]) -> None:
    buf = RingBuffer(capacity)
    total = sum(sizes)
    reference = np.arange(total, dtype=np.float32)
    pos = 0
    for n in sizes:
        buf.append(reference[pos : pos + n])
        pos += n
    assert buf.end == total
    assert buf.evicted_samples == max(0, total - capacity)
    assert len(buf) == min(total, capacity)
    start = min(window[0], total)
    end = min(start + window[1], total)
    if start >= buf.start:
        np.testing.assert_array_equal(buf.read(start, end), reference[start:end])
    elif end > start:
        with pytest.raises(AudioEvicted):
            buf.read(start, end)
