"""The SDS bloom filter, serialised byte for byte like @waku/sds.

Sizing: bits per element b = ceil(-ln p / ln(2)^2), hash count k = round-half-up(ln 2 * b),
m = n * b bits stored in 1 + m // 64 64-bit words, each written big-endian, no header (both
sides must agree on n and p). Index i of an item is |hA + i * hB| mod m, where hA and hB are
MurmurHash3 x86-32 (seed 0, signed) of the item and of the item + " b", each taken |.| mod m.

RollingBloomFilter adds what @waku/sds 0.0.8 lacks: when it holds `capacity` ids it rebuilds
from the newest ones, so it never saturates into "everything acknowledged".
"""

from __future__ import annotations

import math
from collections import deque

import mmh3

JS_DEFAULT_CAPACITY = 10_000
JS_DEFAULT_ERROR_RATE = 0.001


def bloom_shape(capacity: int, error_rate: float) -> tuple[int, int, int]:
    """(bits per element, hash count, total bits) for a capacity and false-positive rate."""
    if capacity <= 0 or not 0 < error_rate < 1:
        raise ValueError("capacity must be positive and error_rate between 0 and 1")
    bits_per_element = math.ceil(-math.log(error_rate) / (math.log(2) ** 2))
    hash_count = math.floor(math.log(2) * bits_per_element + 0.5)
    return bits_per_element, hash_count, capacity * bits_per_element


class BloomFilter:
    def __init__(self, capacity: int, error_rate: float) -> None:
        self.capacity = capacity
        self.error_rate = error_rate
        _, self.hash_count, self.bits = bloom_shape(capacity, error_rate)
        self._words = [0] * (1 + self.bits // 64)
        self.count = 0

    @property
    def byte_size(self) -> int:
        return 8 * len(self._words)

    def _indexes(self, item: str) -> list[int]:
        m = self.bits
        h_a = abs(mmh3.hash(item, 0, signed=True)) % m
        h_b = abs(mmh3.hash(item + " b", 0, signed=True)) % m
        return [abs(h_a + i * h_b) % m for i in range(self.hash_count)]

    def add(self, item: str) -> None:
        for index in self._indexes(item):
            self._words[index >> 6] |= 1 << (index & 63)
        self.count += 1

    def __contains__(self, item: str) -> bool:
        return all(self._words[i >> 6] >> (i & 63) & 1 for i in self._indexes(item))

    def to_bytes(self) -> bytes:
        return b"".join(word.to_bytes(8, "big") for word in self._words)

    @classmethod
    def from_bytes(cls, data: bytes, capacity: int, error_rate: float) -> BloomFilter:
        bloom = cls(capacity, error_rate)
        if len(data) != bloom.byte_size:
            raise ValueError(
                f"bloom filter of {len(data)} bytes does not match capacity {capacity} "
                f"and error rate {error_rate} ({bloom.byte_size} bytes)"
            )
        bloom._words = [int.from_bytes(data[i : i + 8], "big") for i in range(0, len(data), 8)]
        return bloom


class RollingBloomFilter:
    """A BloomFilter that forgets its oldest ids instead of filling up.

    When it holds `capacity` distinct ids it is rebuilt from the newest `keep` of them. Adding
    an id it already holds changes nothing, so an id never takes two places.
    """

    def __init__(self, capacity: int, error_rate: float, keep_fraction: float = 0.75) -> None:
        if not 0 < keep_fraction < 1:
            raise ValueError("keep_fraction must be between 0 and 1")
        self.capacity = capacity
        self.error_rate = error_rate
        self._keep = max(1, int(capacity * keep_fraction))
        self._recent: deque[str] = deque(maxlen=capacity)
        self._members: set[str] = set()
        self._bloom = BloomFilter(capacity, error_rate)

    def add(self, item: str) -> None:
        if item in self._members:
            return
        if len(self._recent) >= self.capacity:
            newest = list(self._recent)[-self._keep :]
            self._bloom = BloomFilter(self.capacity, self.error_rate)
            self._recent.clear()
            self._members.clear()
            for old in newest:
                self._recent.append(old)
                self._members.add(old)
                self._bloom.add(old)
        self._recent.append(item)
        self._members.add(item)
        self._bloom.add(item)

    def __contains__(self, item: str) -> bool:
        return item in self._bloom

    def to_bytes(self) -> bytes:
        return self._bloom.to_bytes()

    @property
    def ids(self) -> list[str]:
        """The ids the filter currently represents, oldest first (for persistence)."""
        return list(self._recent)

    @classmethod
    def from_ids(
        cls, ids: list[str], capacity: int, error_rate: float, keep_fraction: float = 0.75
    ) -> RollingBloomFilter:
        bloom = cls(capacity, error_rate, keep_fraction)
        for item in ids:
            bloom.add(item)
        return bloom
