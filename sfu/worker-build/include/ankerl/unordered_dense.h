// BlockRTC compat header for building the mediasoup worker offline on Debian 12.
//
// Why this exists: mediasoup 3.27 uses ankerl::unordered_dense (a header-only
// hash map library that its meson wrap downloads from GitHub). Debian 12 does
// not package it and we cannot download it, so this header provides the small
// part of its API that mediasoup uses -- map, set and hash -- on top of the
// standard containers. Semantics mediasoup relies on (find/emplace/erase/
// iteration/contains) are the same; only performance characteristics differ.
//
// build.sh copies this file to worker/subprojects/unordered_dense/include/ankerl/.

#ifndef BLOCKRTC_ANKERL_UNORDERED_DENSE_COMPAT_H
#define BLOCKRTC_ANKERL_UNORDERED_DENSE_COMPAT_H

#include <functional>
#include <memory>
#include <unordered_map>
#include <unordered_set>
#include <utility>

namespace ankerl::unordered_dense
{
	// Callable as ankerl::unordered_dense::hash<T>{}(value), and usable as the
	// default hasher of map/set below.
	template<class T, class Enable = void>
	struct hash : std::hash<T>
	{
	};

	template<
	  class Key,
	  class T,
	  class Hash      = hash<Key>,
	  class KeyEqual  = std::equal_to<Key>,
	  class Allocator = std::allocator<std::pair<const Key, T>>>
	using map = std::unordered_map<Key, T, Hash, KeyEqual, Allocator>;

	template<
	  class Key,
	  class Hash      = hash<Key>,
	  class KeyEqual  = std::equal_to<Key>,
	  class Allocator = std::allocator<Key>>
	using set = std::unordered_set<Key, Hash, KeyEqual, Allocator>;
} // namespace ankerl::unordered_dense

#endif
