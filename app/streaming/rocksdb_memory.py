"""One memory budget for every RocksDB table partition in the worker.

Faust opens one RocksDB per table partition (8 tables x 8 partitions = 64 here) and gives
each its own block cache, its own memtables and uncapped index and filter blocks, so a
worker's memory grows with partitions and data: a 10-minute soak went 116 -> 167 MB with
per-DB caps. Here all of them share one LRU cache; memtables are charged to that cache
through one write buffer manager, and index and filter blocks live in it too, so RocksDB's
memory is capped by a single number (RGSYNC_ROCKSDB_CACHE_MB).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import rocksdict
from faust.stores.rocksdb import RocksDBOptions

__all__ = ["SharedMemory", "install", "shared"]

_MB = 1024 * 1024


class SharedMemory:
    """The cache and write buffer manager every table partition is opened with."""

    def __init__(self, cache_mb: int, memtable_mb: int) -> None:
        self.cache_bytes = cache_mb * _MB
        self.memtable_bytes = min(memtable_mb, cache_mb) * _MB
        self.cache = rocksdict.Cache(self.cache_bytes)
        # Charged to the cache: memtables and cached blocks together stay under cache_mb.
        # No stall: a full budget makes RocksDB flush, never blocks the event loop.
        self.write_buffers = rocksdict.WriteBufferManager.new_write_buffer_manager_with_cache(
            self.memtable_bytes, False, self.cache
        )

    def usage_bytes(self) -> int:
        """Bytes held in the shared cache (cached blocks, index/filter blocks, memtables)."""
        return int(self.cache.get_usage())

    def apply(self, options: Any, bloom_bits: int) -> Any:
        """Point a rocksdict Options at the shared budget; returns it."""
        table = rocksdict.BlockBasedOptions()
        table.set_bloom_filter(bloom_bits, True)
        table.set_block_cache(self.cache)
        table.set_cache_index_and_filter_blocks(True)
        # Level-0 index/filter blocks are read on every lookup: keep them from eviction.
        table.set_pin_l0_filter_and_index_blocks_in_cache(True)
        table.set_index_type(rocksdict.BlockBasedIndexType.binary_search())
        options.set_block_based_table_factory(table)
        options.set_write_buffer_manager(self.write_buffers)
        return options


_shared: SharedMemory | None = None
_original_as_options: Callable[[RocksDBOptions], Any] | None = None


def shared() -> SharedMemory | None:
    """The installed budget, if any (for metrics)."""
    return _shared


def install(cache_mb: int, memtable_mb: int) -> SharedMemory:
    """Make every RocksDB table Faust opens in this process use one budget.

    Installing again replaces the budget for tables opened afterwards.
    """
    global _shared, _original_as_options
    _shared = SharedMemory(cache_mb, memtable_mb)
    if _original_as_options is None:
        _original_as_options = RocksDBOptions.as_options

        def as_options(self: RocksDBOptions) -> Any:
            assert _original_as_options is not None
            options = _original_as_options(self)
            if self.use_rocksdict and _shared is not None:
                _shared.apply(options, int(self.bloom_filter_size))
            return options

        RocksDBOptions.as_options = as_options  # type: ignore[method-assign]
    return _shared
