/// @file
/// @brief The execution-space dispatch point: `deq::exec::backend<Space>`, the `execution_space`
/// concept and `deq::exec::parallel_for`.
///
/// Every deq kernel is written once, as a functor called with a flat work-item index, and is run
/// through `parallel_for(space, n, functor)`. A backend (serial, threads, Kokkos, the accelerator
/// model, CUDA) specialises `deq::exec::backend<Space>`; algorithms with a hand-tuned version for a
/// backend specialise `deq::impl::*_impl<Space>` at the same point (e.g. `deq::impl::attention_impl`
/// in deq/attention/attention.hpp, which deq/exec/accelerator.hpp specialises to cost every attention call).
#pragma once

#include <concepts>
#include <type_traits>

#include "../core/tensor.hpp"

namespace deq::exec {

/// Customisation point: specialise for each execution-space type. A specialisation provides
/// `static constexpr const char* name`, `static constexpr bool host_accessible` (whether kernels
/// run on host memory), `static void parallel_for(Space const&, index_t n, F const& f)` which calls
/// `f(i)` once for every i in [0, n), possibly concurrently, and returns after all calls finished,
/// and `static int concurrency(Space const&)`.
/// @tparam Space The execution-space type.
template <class Space>
struct backend;

namespace detail {
/// Kernel used only to check a backend's parallel_for signature.
struct probe_kernel {
    DEQ_HOST_DEVICE void operator()(index_t) const {}
};
}  // namespace detail

/// An execution space: a type for which `deq::exec::backend` is specialised.
/// @tparam Space Candidate type.
template <class Space>
concept execution_space = requires(Space const& space, index_t n) {
    { backend<Space>::name } -> std::convertible_to<char const*>;
    { backend<Space>::host_accessible } -> std::convertible_to<bool>;
    backend<Space>::parallel_for(space, n, detail::probe_kernel{});
    { backend<Space>::concurrency(space) } -> std::convertible_to<int>;
};

/// An execution space whose kernels read and write host memory (serial, threads, Kokkos host spaces).
/// @tparam Space Candidate type.
template <class Space>
concept host_execution_space = execution_space<Space> && backend<Space>::host_accessible;

/// Runs `kernel(i)` for every i in [0, n) on @p space and waits for completion.
/// @tparam Space  Execution-space type.
/// @tparam Kernel Callable with signature `void(index_t) const`.
/// @param space  Execution-space instance.
/// @param n      Number of work items.
/// @param kernel The kernel; copied to the workers as the backend requires.
template <execution_space Space, class Kernel>
void parallel_for(Space const& space, index_t n, Kernel const& kernel) {
    if (n <= 0) return;
    backend<Space>::parallel_for(space, n, kernel);
}

/// Name of the backend of @p Space (e.g. "serial", "threads", "kokkos").
/// @tparam Space Execution-space type.
/// @return The backend's name.
template <execution_space Space>
constexpr char const* name_of() {
    return backend<Space>::name;
}

}  // namespace deq::exec
