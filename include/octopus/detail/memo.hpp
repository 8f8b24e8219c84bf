// A process-wide cache for tables that depend only on (d, b): built on first use, then shared.
#pragma once

#include <map>
#include <memory>
#include <mutex>

namespace octopus::detail {

/// The value for `key`, built by make() on first request and shared read-only afterwards. One cache
/// per (Key, Value, Tag); building happens under the lock, so two threads never build the same table.
template <class Tag, class Key, class Value, class Make>
std::shared_ptr<const Value> memoize(const Key& key, Make&& make) {
    static std::mutex mutex;
    static std::map<Key, std::shared_ptr<const Value>> cache;
    std::lock_guard<std::mutex> lock(mutex);
    auto& slot = cache[key];
    if (!slot) slot = std::make_shared<const Value>(make());
    return slot;
}

}  // namespace octopus::detail
