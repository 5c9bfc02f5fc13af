/// @file
/// @brief `deq::exec::serial`: runs kernels in a plain loop on the calling thread.
#pragma once

#include "execution_space.hpp"

namespace deq::exec {

/// The serial host execution space: every work item runs in order on the calling thread.
struct serial {};

/// Backend of deq::exec::serial.
template <>
struct backend<serial> {
    /// Backend name.
    static constexpr char const* name = "serial";
    /// Kernels run on host memory.
    static constexpr bool host_accessible = true;
    /// Calls `kernel(i)` for i = 0, 1, ..., n-1 in order.
    /// @tparam Kernel Callable `void(index_t) const`.
    /// @param n      Number of work items.
    /// @param kernel The kernel.
    template <class Kernel>
    static void parallel_for(serial const&, index_t n, Kernel const& kernel) {
        for (index_t i = 0; i < n; ++i) kernel(i);
    }
    /// @return Always 1.
    static int concurrency(serial const&) { return 1; }
};

}  // namespace deq::exec
