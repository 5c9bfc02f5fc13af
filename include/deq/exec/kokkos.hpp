/// @file
/// @brief `deq::exec::kokkos<S>`: runs deq kernels on a Kokkos execution-space instance.
///
/// Needs Kokkos 3.4 or newer (link the `deq::kokkos` CMake target). Kernels used with a device
/// execution space (Kokkos::Cuda, HIP, ...) must be `DEQ_HOST_DEVICE` and may only touch memory
/// that space can access; deq's host algorithms require a host-accessible space
/// (`deq::exec::host_execution_space`).
#pragma once

#include <Kokkos_Core.hpp>

#include "detail/kokkos_compat.hpp"
#include "execution_space.hpp"

namespace deq::exec {

/// A deq execution space that wraps a Kokkos execution-space instance, e.g.
/// `deq::exec::kokkos{Kokkos::DefaultHostExecutionSpace{}}`. Construct it after
/// `Kokkos::initialize` (or inside a `Kokkos::ScopeGuard`) and destroy it before finalisation.
/// @tparam KokkosSpace A Kokkos execution space type (Kokkos::Serial, Kokkos::OpenMP, ...).
template <class KokkosSpace>
    requires ::deq::exec::detail::is_kokkos_execution_space<KokkosSpace>
struct kokkos {
    /// The Kokkos execution-space instance work is submitted to.
    KokkosSpace space;
};

/// Deduces `kokkos<S>` from the wrapped instance: `deq::exec::kokkos{Kokkos::Serial{}}`.
/// @tparam KokkosSpace A Kokkos execution space type.
template <class KokkosSpace>
kokkos(KokkosSpace) -> kokkos<KokkosSpace>;

namespace detail {

/// The functor handed to Kokkos::parallel_for: calls the deq kernel with the work-item index.
template <class Kernel>
struct kokkos_kernel {
    Kernel kernel;
    KOKKOS_INLINE_FUNCTION void operator()(std::int64_t i) const { kernel(static_cast<index_t>(i)); }
};

}  // namespace detail

/// Backend of deq::exec::kokkos: one `Kokkos::parallel_for` over a range policy on the wrapped
/// instance, followed by a fence of that instance.
/// @tparam KokkosSpace The wrapped Kokkos execution space type.
template <class KokkosSpace>
struct backend<kokkos<KokkosSpace>> {
    /// Backend name.
    static constexpr char const* name = "kokkos";
    /// Whether kernels run where host memory is accessible (true for Serial, OpenMP, Threads;
    /// false for device spaces such as Kokkos::Cuda).
    static constexpr bool host_accessible = ::deq::exec::detail::kokkos_host_accessible<KokkosSpace>;

    /// Runs `kernel(i)` for every i in [0, n) with
    /// `Kokkos::parallel_for("deq", RangePolicy<KokkosSpace>(space, 0, n), ...)`, then fences the
    /// instance so the results are visible on return.
    /// @tparam Kernel Callable `void(index_t) const`, copyable; `DEQ_HOST_DEVICE` for device spaces.
    /// @param space  The wrapped instance.
    /// @param n      Number of work items.
    /// @param kernel The kernel.
    template <class Kernel>
    static void parallel_for(kokkos<KokkosSpace> const& space, index_t n, Kernel const& kernel) {
        Kokkos::parallel_for("deq", ::deq::exec::detail::kokkos_range_policy<KokkosSpace>(space.space, 0, n),
                             ::deq::exec::detail::kokkos_kernel<Kernel>{kernel});
        ::deq::exec::detail::kokkos_fence(space.space);
    }

    /// Concurrency of the wrapped instance (`space.concurrency()`).
    /// @param space The wrapped instance.
    /// @return `space.space.concurrency()`, the wrapped instance's maximum number of concurrent work items.
    static int concurrency(kokkos<KokkosSpace> const& space) {
        return ::deq::exec::detail::kokkos_concurrency(space.space);
    }
};

}  // namespace deq::exec
