// deq::exec::threads on its persistent worker pool: coverage of every work item over many calls,
// persistent workers, exceptions, nested and concurrent parallel_for, copies sharing the pool.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include <deq/core/error.hpp>
#include <deq/exec/threads.hpp>

namespace {

// Runs parallel_for over n items and checks that every item ran exactly once.
bool covers_once(deq::exec::threads const& space, deq::index_t n) {
    std::vector<std::atomic<int>> hits(static_cast<std::size_t>(n));
    deq::exec::parallel_for(space, n, [&](deq::index_t i) { hits[static_cast<std::size_t>(i)].fetch_add(1); });
    for (auto const& h : hits)
        if (h.load() != 1) return false;
    return true;
}

}  // namespace

TEST_CASE("threads: every work item runs exactly once, over many calls and thread counts") {
    for (int count : {1, 2, 3, 5}) {
        deq::exec::threads const space(count);
        CHECK(space.count() == count);
        CHECK((space.pool() == nullptr) == (count == 1));
        bool ok = true;
        for (int call = 0; call < 300; ++call) ok = ok && covers_once(space, call % 37);
        CHECK_MESSAGE(ok, "count " << count);
        CHECK(covers_once(space, 10007));
    }
}

TEST_CASE("threads: the workers persist between calls and copies share them") {
    deq::exec::threads const space(3);
    std::mutex m;
    std::set<std::thread::id> first, later;
    auto record = [&](std::set<std::thread::id>& ids) {
        return [&](deq::index_t) {
            std::this_thread::sleep_for(std::chrono::milliseconds(2));  // every thread gets its chunk
            std::lock_guard lock(m);
            ids.insert(std::this_thread::get_id());
        };
    };
    for (int call = 0; call < 5; ++call) deq::exec::parallel_for(space, 24, record(first));
    CHECK(first.size() >= 2);  // the workers took part (they claim chunks as they wake)
    CHECK(first.size() <= 3);
    CHECK(first.count(std::this_thread::get_id()) == 1);  // the caller runs chunks too
    deq::exec::threads const copy = space;                // shares the pool
    CHECK(copy.pool() == space.pool());
    for (int call = 0; call < 20; ++call) deq::exec::parallel_for(copy, 24, record(later));
    std::set<std::thread::id> all = first;
    all.insert(later.begin(), later.end());
    CHECK(all.size() <= 3);  // no new threads: only the caller and the two workers ever ran chunks
}

TEST_CASE("threads: a kernel's exception is rethrown on the caller and the pool stays usable") {
    deq::exec::threads const space(2);
    for (int round = 0; round < 20; ++round) {
        deq::index_t const bad = round % 2 == 0 ? 3 : 97;  // in the caller's chunk, then in the worker's
        std::atomic<int> done{0};
        CHECK_THROWS_WITH_AS(deq::exec::parallel_for(space, 100,
                                                     [&](deq::index_t i) {
                                                         if (i == bad) throw deq::numeric_error("boom");
                                                         done.fetch_add(1);
                                                     }),
                             "boom", deq::numeric_error);
        CHECK(done.load() >= 92);  // only the rest of the throwing chunk (16 chunks of 6 or 7) is skipped
        CHECK(covers_once(space, 1000));
    }
    // both chunks throw: one of the exceptions arrives, nothing hangs
    CHECK_THROWS_AS(deq::exec::parallel_for(space, 2, [](deq::index_t i) { throw std::runtime_error(i == 0 ? "a" : "b"); }),
                    std::runtime_error);
    CHECK(covers_once(space, 64));
}

TEST_CASE("threads: nested parallel_for inside a kernel runs inline without deadlock") {
    deq::exec::threads const space(2);
    std::vector<std::atomic<int>> hits(40 * 50);
    deq::exec::parallel_for(space, 40, [&](deq::index_t i) {
        deq::exec::parallel_for(space, 50, [&](deq::index_t j) { hits[static_cast<std::size_t>(i * 50 + j)].fetch_add(1); });
    });
    int wrong = 0;
    for (auto const& h : hits) wrong += h.load() != 1;
    CHECK(wrong == 0);
    // an exception from a nested call propagates through both levels
    CHECK_THROWS_AS(deq::exec::parallel_for(space, 4,
                                            [&](deq::index_t) {
                                                deq::exec::parallel_for(space, 4, [](deq::index_t j) {
                                                    if (j == 2) throw deq::invalid_argument("nested");
                                                });
                                            }),
                    deq::invalid_argument);
    CHECK(covers_once(space, 100));
}

TEST_CASE("threads: several host threads calling parallel_for on the same space") {
    deq::exec::threads const space(2);
    std::atomic<int> failures{0};
    std::vector<std::thread> callers;
    for (int t = 0; t < 4; ++t) {
        callers.emplace_back([&, t] {
            deq::exec::threads const copy = space;  // copies too share the pool
            for (int call = 0; call < 200; ++call)
                if (!covers_once(t % 2 == 0 ? space : copy, 1 + (call * 7 + t) % 300)) failures.fetch_add(1);
        });
    }
    for (auto& c : callers) c.join();
    CHECK(failures.load() == 0);
}

TEST_CASE("threads: spaces created and destroyed repeatedly, used or not") {
    for (int i = 0; i < 50; ++i) {
        deq::exec::threads const space(1 + i % 4);
        if (i % 3 != 0) CHECK(covers_once(space, 1 + i));
    }
    CHECK_THROWS_AS(deq::exec::threads{0}, deq::invalid_argument);
    CHECK_THROWS_AS(deq::exec::threads{-3}, deq::invalid_argument);
}
