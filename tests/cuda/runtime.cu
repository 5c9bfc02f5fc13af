// deq::exec::cuda, deq::cuda::device_array and deq::cuda_error.
//
// Test suite "host": runs on every machine with the CUDA runtime library, with or without a GPU
// (error messages, size checks, the launch geometry, and the missing-device errors where no GPU is
// present). Test suite "gpu": needs a CUDA device (see main.cu).
#include <doctest/doctest.h>

#include <deq/cuda/device_array.hpp>
#include <deq/cuda/error.hpp>
#include <deq/exec/cuda.hpp>
#include <deq/exec/serial.hpp>
#include <deq/predict/detail/predictor_kernels.hpp>

#include "gpu_support.hpp"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace {

bool contains(std::string const& text, std::string const& part) { return text.find(part) != std::string::npos; }

/// Writes 3 i + 1 into out[i] (each work item once: the test checks the values and that no item ran twice).
struct affine_kernel {
    std::int64_t* out;
    DEQ_HOST_DEVICE void operator()(deq::index_t i) const { out[i] += 3 * i + 1; }
};

}  // namespace

TEST_SUITE("host") {
    TEST_CASE("cuda_check: a failed CUDA call is a deq::cuda_error naming the call, CUDA's description and the status") {
        CHECK_NOTHROW(deq::detail::cuda_check(cudaSuccess, "cudaFree"));
        try {
            deq::detail::cuda_check(cudaErrorMemoryAllocation, "cudaMalloc(4096 bytes)");
            FAIL("no exception");
        } catch (deq::cuda_error const& e) {
            std::string const what = e.what();
            CHECK(contains(what, "cudaMalloc(4096 bytes)"));
            CHECK(contains(what, cudaGetErrorString(cudaErrorMemoryAllocation)));
            CHECK(contains(what, "cudaErrorMemoryAllocation"));
            CHECK(e.code() == cudaErrorMemoryAllocation);
        }
        CHECK_THROWS_AS(deq::detail::cuda_check(cudaErrorInvalidValue, "cudaMemcpy"), deq::error);  // a deq exception
    }

    TEST_CASE("device_array: counts whose bytes overflow, and negative counts, are rejected before any CUDA call") {
        CHECK_THROWS_AS(deq::cuda::device_array<double>(std::numeric_limits<deq::index_t>::max() / 4), deq::shape_error);
        CHECK_THROWS_AS(deq::cuda::device_array<float>(-1), deq::shape_error);
        deq::cuda::device_array<float> const empty;
        CHECK(empty.size() == 0);
        CHECK(empty.empty());
        CHECK(empty.device_data() == nullptr);
    }

    TEST_CASE("memory kinds: a null pointer is host memory, and every kind has a name") {
        CHECK(deq::cuda::memory_kind_of(nullptr) == deq::cuda::memory_kind::host);
        CHECK(std::string(deq::cuda::name_of(deq::cuda::memory_kind::device)) == "device");
        CHECK(std::string(deq::cuda::name_of(deq::cuda::memory_kind::managed)) == "managed");
        CHECK(std::string(deq::cuda::name_of(deq::cuda::memory_kind::host)) == "host");
        // Zero bytes need no memory at all.
        CHECK_NOTHROW(deq::cuda::require_device_memory("q", nullptr, 0));
        CHECK_THROWS_AS(deq::cuda::require_device_memory("q", nullptr, 4), deq::invalid_argument);
        CHECK_THROWS_AS(deq::cuda::require_host_memory("out", nullptr, 4), deq::invalid_argument);
    }

    TEST_CASE("launch geometry: enough blocks for every work item, at most a full device") {
        using deq::exec::detail::cuda_grid_blocks;
        int const t = deq::exec::detail::cuda_block_threads;
        CHECK(cuda_grid_blocks(1, 132, 2048) == 1);
        CHECK(cuda_grid_blocks(t, 132, 2048) == 1);
        CHECK(cuda_grid_blocks(t + 1, 132, 2048) == 2);
        CHECK(cuda_grid_blocks(std::int64_t{1} << 40, 132, 2048) == 132 * (2048 / t));  // the grid-stride loop does the rest
        CHECK(cuda_grid_blocks(1000, 0, 0) == 1);                                          // degenerate attributes still launch
    }

    TEST_CASE("without a GPU: the space and device memory report the missing device as a deq::cuda_error naming the call") {
        if (deq_test::have_gpu()) {
            MESSAGE("a CUDA device is present: this case checks the behaviour without one");
            return;
        }
        try {
            deq::exec::cuda const space;
            FAIL("no exception");
        } catch (deq::cuda_error const& e) {
            CHECK(contains(e.what(), "cudaGetDeviceCount"));
            CHECK(contains(e.what(), "deq: CUDA call"));
        }
        CHECK_THROWS_AS(deq::exec::cuda(0), deq::cuda_error);
        CHECK_THROWS_AS(deq::cuda::device_array<float>(16), deq::cuda_error);
        std::vector<float> host(4, 1.0f);
        CHECK_THROWS_AS(deq::cuda::to_device(host), deq::cuda_error);
    }
}

TEST_SUITE("gpu") {
    TEST_CASE("exec::cuda: a device ordinal out of range is a deq::invalid_argument naming 'device'") {
        int const count = deq::exec::cuda::device_count();
        try {
            deq::exec::cuda const space(count);
            FAIL("no exception");
        } catch (deq::invalid_argument const& e) {
            CHECK(contains(e.what(), "'device'"));
        }
        CHECK_THROWS_AS(deq::exec::cuda(-1), deq::invalid_argument);
        deq::exec::cuda const space;
        CHECK(space.multiprocessors() >= 1);
        CHECK(deq::exec::backend<deq::exec::cuda>::concurrency(space) >= space.multiprocessors());
    }

    TEST_CASE("device_array: round trip, memory kinds, size mismatches and host / device confusion") {
        std::vector<float> host(1000);
        for (std::size_t i = 0; i < host.size(); ++i) host[i] = static_cast<float>(i) * 0.5f - 7.0f;
        deq::cuda::device_array<float> d = deq::cuda::to_device(host);
        CHECK(d.size() == host.size());
        CHECK(deq::cuda::memory_kind_of(d.device_data()) == deq::cuda::memory_kind::device);
        CHECK(deq::cuda::memory_kind_of(host.data()) == deq::cuda::memory_kind::host);
        CHECK(deq::cuda::to_host(d) == host);

        std::vector<float> wrong(999);
        CHECK_THROWS_AS(deq::cuda::copy_to_host(d, std::span<float>(wrong)), deq::shape_error);
        CHECK_THROWS_AS(deq::cuda::copy_to_device(std::span<float const>(wrong), d), deq::shape_error);
        try {
            deq::cuda::require_device_memory("q", host.data(), 4);
            FAIL("no exception");
        } catch (deq::invalid_argument const& e) {
            CHECK(contains(e.what(), "'q' is host memory"));
        }
        CHECK_THROWS_AS(deq::cuda::require_host_memory("out", d.device_data(), 4), deq::invalid_argument);
        CHECK_NOTHROW(deq::cuda::require_device_memory("q", d.device_data(), 4));

        deq::cuda::device_array<float> moved = std::move(d);
        CHECK(d.empty());
        CHECK(moved.size() == host.size());
        CHECK(deq::cuda::to_host(moved) == host);
    }

    TEST_CASE("exec::cuda parallel_for: every work item runs exactly once, beyond one full grid") {
        deq::exec::cuda const space;
        // More items than one grid of resident threads, so the grid-stride loop is exercised.
        deq::index_t const n = static_cast<deq::index_t>(deq::exec::backend<deq::exec::cuda>::concurrency(space)) * 3 + 17;
        std::vector<std::int64_t> zeros(static_cast<std::size_t>(n), 0);
        deq::cuda::device_array<std::int64_t> out = deq::cuda::to_device(zeros);
        deq::exec::parallel_for(space, n, affine_kernel{out.device_data()});
        std::vector<std::int64_t> const got = deq::cuda::to_host(out);
        bool all = true;
        for (deq::index_t i = 0; i < n; ++i) all = all && got[static_cast<std::size_t>(i)] == 3 * i + 1;
        CHECK(all);
    }

    TEST_CASE("the predictor's normalise-and-quantize kernel gives the host's levels, norms and status bits on the device") {
        deq::index_t const batch = 2, heads = 3, length = 37, dim = 64;
        deq::index_t const rows = batch * heads * length;
        std::vector<float> x(static_cast<std::size_t>(rows * dim));
        std::mt19937 rng(7);
        std::normal_distribution<float> normal(0.0f, 1.0f);
        for (float& v : x) v = normal(rng);
        for (deq::index_t t = 0; t < dim; ++t) x[static_cast<std::size_t>(5 * dim + t)] = 0.0f;  // a zero row
        x[static_cast<std::size_t>(9 * dim + 3)] = std::numeric_limits<float>::infinity();     // a bad row
        for (deq::index_t t = 0; t < dim; ++t) x[static_cast<std::size_t>(11 * dim + t)] = 0.125f * static_cast<float>(t % 5) - 0.25f;  // ties

        float const scale = 7.0f / 0.37f;
        auto run = [&](auto const& space, float const* xs, std::int8_t* levels, float* norms, deq::index_t* status) {
            deq::tensor_view<float const, 4> view(xs, {batch, heads, length, dim});
            deq::detail::predictor_quantize_rows<float, float, std::int8_t> const kernel{view, levels, norms, status, scale, 4, dim,
                                                                                        deq::arch::isa::portable};
            deq::exec::parallel_for(space, rows, kernel);
        };
        std::vector<std::int8_t> levels(x.size(), 0);
        std::vector<float> norms(static_cast<std::size_t>(rows), 0.0f);
        std::vector<deq::index_t> status(static_cast<std::size_t>(rows), 0);
        run(deq::exec::serial{}, x.data(), levels.data(), norms.data(), status.data());

        deq::exec::cuda const space;
        auto const dx = deq::cuda::to_device(x);
        deq::cuda::device_array<std::int8_t> dlevels = deq::cuda::to_device(std::vector<std::int8_t>(x.size(), 0));
        deq::cuda::device_array<float> dnorms(rows);
        deq::cuda::device_array<deq::index_t> dstatus(rows);
        run(space, dx.device_data(), dlevels.device_data(), dnorms.device_data(), dstatus.device_data());

        CHECK(deq::cuda::to_host(dlevels) == levels);
        std::vector<float> const got_norms = deq::cuda::to_host(dnorms);
        CHECK(std::memcmp(got_norms.data(), norms.data(), norms.size() * sizeof(float)) == 0);
        CHECK(deq::cuda::to_host(dstatus) == status);
        CHECK(status[9] == 3);  // the host itself flagged the bad row's first non-finite column
    }
}

