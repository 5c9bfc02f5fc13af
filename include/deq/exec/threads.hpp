/// @file
/// @brief `deq::exec::threads`: a multi-threaded host execution space built on std::thread.
#pragma once

#include <algorithm>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "../core/error.hpp"
#include "execution_space.hpp"

namespace deq::exec {

/// Multi-threaded host execution space. Work items are split into contiguous chunks, one per
/// thread; the calling thread runs the first chunk. An exception thrown by a kernel is rethrown on
/// the calling thread after all threads joined.
class threads {
public:
    /// Uses `std::thread::hardware_concurrency()` threads (at least 1).
    threads() : count_(std::max(1u, std::thread::hardware_concurrency())) {}
    /// Uses exactly @p count threads.
    /// @param count Number of threads, at least 1.
    explicit threads(int count) : count_(static_cast<unsigned>(count)) {
        if (count < 1) ::deq::detail::throw_invalid_argument("threads.count", count, "must be >= 1");
    }
    /// @return The number of threads.
    int count() const { return static_cast<int>(count_); }

private:
    unsigned count_;
};

/// Backend of deq::exec::threads.
template <>
struct backend<threads> {
    /// Backend name.
    static constexpr char const* name = "threads";
    /// Kernels run on host memory.
    static constexpr bool host_accessible = true;
    /// Splits [0, n) into `min(n, count)` contiguous chunks run concurrently.
    /// @tparam Kernel Callable `void(index_t) const`; must be safe to call concurrently for distinct i.
    /// @param space  The thread space.
    /// @param n      Number of work items.
    /// @param kernel The kernel.
    template <class Kernel>
    static void parallel_for(threads const& space, index_t n, Kernel const& kernel) {
        index_t const workers = std::min<index_t>(n, space.count());
        if (workers <= 1) {
            for (index_t i = 0; i < n; ++i) kernel(i);
            return;
        }
        std::exception_ptr failure;
        std::mutex failure_mutex;
        auto run_chunk = [&](index_t w) {
            index_t const begin = n * w / workers;
            index_t const end = n * (w + 1) / workers;
            try {
                for (index_t i = begin; i < end; ++i) kernel(i);
            } catch (...) {
                std::lock_guard lock(failure_mutex);
                if (!failure) failure = std::current_exception();
            }
        };
        std::vector<std::thread> pool;
        pool.reserve(static_cast<std::size_t>(workers - 1));
        for (index_t w = 1; w < workers; ++w) pool.emplace_back(run_chunk, w);
        run_chunk(0);
        for (auto& t : pool) t.join();
        if (failure) std::rethrow_exception(failure);
    }
    /// Number of threads.
    /// @param space The thread space.
    /// @return `space.count()`.
    static int concurrency(threads const& space) { return space.count(); }
};

}  // namespace deq::exec
