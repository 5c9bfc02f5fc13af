/// @file
/// @brief `deq::exec::detail::thread_pool`: the persistent worker threads behind deq::exec::threads
/// (internal).
///
/// A pool of `size() - 1` workers, started on the first parallel run and joined by the destructor. A run
/// publishes one job (a function pointer, its context and a number of parts) and wakes the workers; the
/// caller and every worker that wakes in time claim parts from a shared counter until none is left, and
/// the caller returns once every claimed part finished. A worker that wakes after the job closed does not
/// touch it, so a descheduled worker (a busy machine) never delays the caller: the caller then runs the
/// parts itself. Workers and the waiting caller spin briefly (about 50 µs), then sleep on a condition
/// variable. A run that finds the pool busy (a nested parallel run from inside a part, or a second host
/// thread) runs its parts inline on its own thread, in order.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "../../core/tensor.hpp"

namespace deq::exec::detail {

/// Persistent worker threads; see the file documentation.
class thread_pool {
public:
    /// A pool for @p threads threads in all (the caller and `threads - 1` workers); nothing starts yet.
    /// @param threads Number of threads, at least 1.
    explicit thread_pool(unsigned threads) : threads_(threads < 1 ? 1u : threads) {}

    thread_pool(thread_pool const&) = delete;
    thread_pool& operator=(thread_pool const&) = delete;

    /// Stops and joins the workers.
    ~thread_pool() { stop(); }

    /// @return The number of threads (caller included).
    unsigned size() const noexcept { return threads_; }

    /// Runs `part(i)` once for every i in [0, parts), on the calling thread and the workers (whoever
    /// claims i first), and returns when all finished. The first exception thrown by a part is rethrown
    /// here after every claimed part finished (the parts not yet claimed then still run). When the pool
    /// is busy (nested or concurrent use) the parts run inline, in order, on the calling thread.
    /// @tparam Part Callable `void(index_t)`, safe to call concurrently for distinct i.
    /// @param parts Number of parts.
    /// @param part  The part function.
    template <class Part>
    void run(index_t parts, Part const& part) {
        if (parts <= 1 || threads_ <= 1 || busy_.exchange(true, std::memory_order_acquire)) {
            run_inline(parts, part);
            return;
        }
        struct busy_reset {
            std::atomic<bool>& flag;
            ~busy_reset() { flag.store(false, std::memory_order_release); }
        } reset{busy_};
        start();
        job_ = [](void const* ctx, index_t i) { (*static_cast<Part const*>(ctx))(i); };
        ctx_ = &part;
        parts_ = parts;
        failure_ = nullptr;
        next_.store(0, std::memory_order_relaxed);
        open_.store(true, std::memory_order_seq_cst);  // publishes the fields above to registering workers
        {
            std::lock_guard lock(mutex_);
            generation_.fetch_add(1, std::memory_order_release);
            if (sleepers_ > 0) wake_.notify_all();
        }
        claim_parts();
        open_.store(false, std::memory_order_seq_cst);  // late workers leave the job alone from here on
        wait_for_registered();
        if (failure_) {
            std::exception_ptr f = failure_;
            failure_ = nullptr;
            std::rethrow_exception(f);
        }
    }

private:
    using job_fn = void (*)(void const*, index_t);

    template <class Part>
    static void run_inline(index_t parts, Part const& part) {
        std::exception_ptr failure;
        for (index_t i = 0; i < parts; ++i) {
            try {
                part(i);
            } catch (...) {
                if (!failure) failure = std::current_exception();
            }
        }
        if (failure) std::rethrow_exception(failure);
    }

    /// Spins for about 50 µs or until @p ready() holds.
    template <class Ready>
    static bool spin(Ready const& ready) {
        auto const until = std::chrono::steady_clock::now() + std::chrono::microseconds(50);
        for (;;) {
            for (int k = 0; k < 64; ++k) {
                if (ready()) return true;
#if defined(__x86_64__) || defined(__i386__)
                __builtin_ia32_pause();
#endif
            }
            if (std::chrono::steady_clock::now() >= until) return ready();
        }
    }

    /// Runs parts claimed from the shared counter until none is left.
    void claim_parts() {
        for (;;) {
            index_t const i = next_.fetch_add(1, std::memory_order_relaxed);
            if (i >= parts_) return;
            try {
                job_(ctx_, i);
            } catch (...) {
                std::lock_guard lock(failure_mutex_);
                if (!failure_) failure_ = std::current_exception();
            }
        }
    }

    void start() {
        std::call_once(started_, [this] {
            workers_.reserve(threads_ - 1);
            try {
                for (unsigned w = 1; w < threads_; ++w) workers_.emplace_back([this] { worker(); });
            } catch (...) {
                stop();  // joins the workers that did start; a later run tries again
                stopping_.store(false, std::memory_order_relaxed);
                throw;
            }
        });
    }

    void stop() {
        {
            std::lock_guard lock(mutex_);
            stopping_.store(true, std::memory_order_relaxed);
            generation_.fetch_add(1, std::memory_order_release);
        }
        wake_.notify_all();
        for (auto& t : workers_)
            if (t.joinable()) t.join();
        workers_.clear();
    }

    void worker() {
        std::uint64_t seen = 0;
        for (;;) {
            auto const changed = [&] { return generation_.load(std::memory_order_acquire) != seen; };
            if (!spin(changed)) {
                std::unique_lock lock(mutex_);
                ++sleepers_;
                wake_.wait(lock, changed);
                --sleepers_;
            }
            seen = generation_.load(std::memory_order_acquire);
            if (stopping_.load(std::memory_order_relaxed)) return;  // stored before the generation it saw
            // Register, then look whether the job is still open (both sequentially consistent, against the
            // caller's close-then-read-registered): either the caller waits for this worker, or the worker
            // sees the job closed and leaves without touching it.
            registered_.fetch_add(1, std::memory_order_seq_cst);
            if (open_.load(std::memory_order_seq_cst)) claim_parts();
            if (registered_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
                std::lock_guard lock(mutex_);
                if (caller_waiting_) done_.notify_one();
            }
        }
    }

    void wait_for_registered() {
        auto const finished = [this] { return registered_.load(std::memory_order_seq_cst) == 0; };
        if (spin(finished)) return;
        std::unique_lock lock(mutex_);
        caller_waiting_ = true;
        done_.wait(lock, finished);
        caller_waiting_ = false;
    }

    unsigned const threads_;
    std::vector<std::thread> workers_;
    std::once_flag started_;
    std::atomic<bool> busy_{false};
    std::atomic<bool> stopping_{false};
    std::atomic<std::uint64_t> generation_{0};
    std::atomic<bool> open_{false};
    std::atomic<int> registered_{0};
    std::atomic<index_t> next_{0};
    std::mutex mutex_;
    std::condition_variable wake_;
    std::condition_variable done_;
    int sleepers_ = 0;
    bool caller_waiting_ = false;
    job_fn job_ = nullptr;
    void const* ctx_ = nullptr;
    index_t parts_ = 0;
    std::mutex failure_mutex_;
    std::exception_ptr failure_;
};

}  // namespace deq::exec::detail
