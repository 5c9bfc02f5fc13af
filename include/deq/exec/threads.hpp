/// @file
/// @brief `deq::exec::threads`: a multi-threaded host execution space on a persistent pool of
/// std::thread workers.
#pragma once

#include <algorithm>
#include <memory>
#include <thread>

#include "../core/error.hpp"
#include "detail/thread_pool.hpp"
#include "execution_space.hpp"

namespace deq::exec {

/// Multi-threaded host execution space. Work items are split into contiguous chunks that the calling
/// thread and the workers claim one at a time. An exception thrown by a kernel is rethrown on the
/// calling thread after every claimed chunk finished.
///
/// The `count() - 1` worker threads are created on the first parallel_for and live until the last copy
/// of the space is destroyed (copies share them); each parallel_for wakes them (they spin for about
/// 50 µs after a job, then sleep). A parallel_for issued from inside a kernel, or from a second host
/// thread while the workers are busy, runs its chunks in order on its own thread.
class threads {
public:
    /// Uses `std::thread::hardware_concurrency()` threads (at least 1).
    threads() : threads(static_cast<int>(std::max(1u, std::thread::hardware_concurrency()))) {}
    /// Uses exactly @p count threads.
    /// @param count Number of threads, at least 1.
    explicit threads(int count) : count_(static_cast<unsigned>(count)) {
        if (count < 1) ::deq::detail::throw_invalid_argument("threads.count", count, "must be >= 1");
        if (count > 1) pool_ = std::make_shared<detail::thread_pool>(count_);
    }
    /// @return The number of threads.
    int count() const { return static_cast<int>(count_); }

    /// The shared worker pool (internal; null for one thread).
    /// @return The pool.
    detail::thread_pool* pool() const noexcept { return pool_.get(); }

private:
    unsigned count_;
    std::shared_ptr<detail::thread_pool> pool_;
};

/// Backend of deq::exec::threads.
template <>
struct backend<threads> {
    /// Backend name.
    static constexpr char const* name = "threads";
    /// Kernels run on host memory.
    static constexpr bool host_accessible = true;
    /// Splits [0, n) into `min(n, 8·count)` contiguous chunks that the calling thread and the space's
    /// workers claim one at a time (so a thread the operating system delays gets fewer chunks).
    /// @tparam Kernel Callable `void(index_t) const`; must be safe to call concurrently for distinct i.
    /// @param space  The thread space.
    /// @param n      Number of work items.
    /// @param kernel The kernel.
    template <class Kernel>
    static void parallel_for(threads const& space, index_t n, Kernel const& kernel) {
        if (n <= 1 || space.count() <= 1) {
            for (index_t i = 0; i < n; ++i) kernel(i);
            return;
        }
        index_t const chunks = std::min<index_t>(n, index_t{8} * space.count());
        space.pool()->run(chunks, [&](index_t c) {
            index_t const begin = n * c / chunks;
            index_t const end = n * (c + 1) / chunks;
            for (index_t i = begin; i < end; ++i) kernel(i);
        });
    }
    /// Number of threads.
    /// @param space The thread space.
    /// @return `space.count()`.
    static int concurrency(threads const& space) { return space.count(); }
};

}  // namespace deq::exec
