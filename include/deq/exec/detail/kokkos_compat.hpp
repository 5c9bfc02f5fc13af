/// @file
/// @brief The only place deq looks at the Kokkos version: the subset of the Kokkos API that is the
/// same from Kokkos 3.4 (Debian bookworm) through 5.x.
///
/// Rules (see the research notes, ecosystem.md section 4.2): integer `KOKKOS_VERSION` checks only
/// (`KOKKOS_VERSION_GREATER_EQUAL` is 4.0+); `Kokkos::is_execution_space<T>::value` (the `_v`
/// variable templates are 3.7+); unlabelled `fence()` (labels are 3.5+); no `Kokkos::Impl`; no
/// execution-space objects at namespace scope (an error from 5.1).
#pragma once

#include <Kokkos_Core.hpp>

#include <cstdint>

#if !defined(KOKKOS_VERSION)
#error "deq: Kokkos_Core.hpp did not define KOKKOS_VERSION"
#elif KOKKOS_VERSION < 30400
#error "deq: the Kokkos backend needs Kokkos 3.4 or newer"
#endif

namespace deq::exec::detail {

/// The Kokkos version deq was compiled against, as major * 10000 + minor * 100 + patch.
inline constexpr int kokkos_version = KOKKOS_VERSION;

/// Whether @p T is a Kokkos execution space (Kokkos::Serial, OpenMP, Threads, Cuda, HIP, ...).
template <class T>
inline constexpr bool is_kokkos_execution_space = Kokkos::is_execution_space<T>::value;

/// Whether kernels run on @p Space can dereference host pointers.
template <class Space>
inline constexpr bool kokkos_host_accessible =
    Kokkos::SpaceAccessibility<Kokkos::HostSpace, typename Space::memory_space>::accessible;

/// The range policy deq uses: 64-bit signed indices (deq::index_t) on @p Space.
template <class Space>
using kokkos_range_policy = Kokkos::RangePolicy<Space, Kokkos::IndexType<std::int64_t>>;

/// Blocks until the work submitted to @p space has finished (unlabelled: labels need 3.5+).
template <class Space>
void kokkos_fence(Space const& space) {
    space.fence();
}

/// Number of concurrent workers of @p space (a static member in 3.x, a member function in 4.x+;
/// the instance call spells both).
template <class Space>
int kokkos_concurrency(Space const& space) {
    return static_cast<int>(space.concurrency());
}

}  // namespace deq::exec::detail
