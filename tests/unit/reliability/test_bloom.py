from __future__ import annotations

import random

import mmh3
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chat.reliability.bloom import BloomFilter, RollingBloomFilter, bloom_shape


def test_murmur3_is_the_x86_32_variant_seed_0_signed() -> None:
    # Reference value of MurmurHash3_x86_32("abc", seed=0) = 0xB3DD93FA.
    assert mmh3.hash("abc", 0, signed=True) == 0xB3DD93FA - (1 << 32)


@pytest.mark.parametrize(
    ("capacity", "error_rate", "hash_count", "byte_size"),
    [
        (10_000, 0.001, 10, 18_752),  # @waku/sds defaults
        (2_000, 0.001, 10, 3_752),
        (1_000, 0.001, 10, 1_880),
        (1_000, 0.01, 7, 1_256),
        (500, 0.01, 7, 632),
        (200, 0.01, 7, 256),
    ],
)
def test_sizes_match_the_js_formula(
    capacity: int, error_rate: float, hash_count: int, byte_size: int
) -> None:
    _, k, _ = bloom_shape(capacity, error_rate)
    bloom = BloomFilter(capacity, error_rate)
    assert (k, bloom.byte_size, len(bloom.to_bytes())) == (hash_count, byte_size, byte_size)


def test_bit_layout_is_lsb_first_words_big_endian() -> None:
    bloom = BloomFilter(200, 0.01)
    item = "a" * 64
    bloom.add(item)
    raw = bloom.to_bytes()
    for index in bloom._indexes(item):
        word = int.from_bytes(raw[(index // 64) * 8 : (index // 64) * 8 + 8], "big")
        assert word >> (index % 64) & 1


@given(st.lists(st.text(alphabet="0123456789abcdef", min_size=1, max_size=64), max_size=60))
def test_no_false_negatives_and_bytes_round_trip(items: list[str]) -> None:
    bloom = BloomFilter(500, 0.01)
    for item in items:
        bloom.add(item)
    copy = BloomFilter.from_bytes(bloom.to_bytes(), 500, 0.01)
    assert all(item in bloom and item in copy for item in items)


def test_false_positive_rate_is_near_the_target() -> None:
    rng = random.Random(7)
    bloom = BloomFilter(500, 0.01)
    for _ in range(500):
        bloom.add(rng.randbytes(32).hex())
    trials = 20_000
    hits = sum(rng.randbytes(32).hex() in bloom for _ in range(trials))
    assert hits / trials < 0.02


def test_from_bytes_refuses_another_shape() -> None:
    with pytest.raises(ValueError, match="does not match"):
        BloomFilter.from_bytes(bytes(100), 500, 0.01)


def test_rolling_filter_forgets_the_oldest_and_keeps_the_newest() -> None:
    rolling = RollingBloomFilter(100, 0.01, keep_fraction=0.5)
    ids = [f"{i:064x}" for i in range(250)]
    for item in ids:
        rolling.add(item)
    assert all(item in rolling for item in ids[-50:])
    assert len(rolling.ids) <= 100
    assert sum(item in rolling for item in ids[:50]) < 10
    restored = RollingBloomFilter.from_ids(rolling.ids, 100, 0.01, keep_fraction=0.5)
    assert restored.to_bytes() == rolling.to_bytes()


def test_rolling_filter_counts_an_id_added_twice_once() -> None:
    rolling = RollingBloomFilter(100, 0.01, keep_fraction=0.5)
    ids = [f"{i:064x}" for i in range(100)]
    for item in ids:
        rolling.add(item)
        rolling.add(item)  # e.g. received, then delivered
    assert rolling.ids == ids  # full, but no id rolled out yet
    rolling.add("one more")
    assert rolling.ids == [*ids[50:], "one more"]
