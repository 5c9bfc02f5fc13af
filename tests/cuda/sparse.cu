// to_csr() / to_bsr() / to_pack_split() / to_bit_mask() on deq::exec::cuda against the host's: the same row pointers,
// columns and block patterns (CUB's scan for the offsets), and the mask back bit for bit (suite "gpu":
// needs a CUDA device).
#include <doctest/doctest.h>

#include <deq/core/bit_mask.hpp>
#include <deq/cuda/device_array.hpp>
#include <deq/exec/cuda.hpp>
#include <deq/exec/serial.hpp>
#include <deq/sparse/bsr.hpp>
#include <deq/sparse/csr.hpp>
#include <deq/sparse/cuda/bsr.hpp>
#include <deq/sparse/cuda/csr.hpp>
#include <deq/sparse/cuda/pack_split.hpp>
#include <deq/sparse/pack_split.hpp>

#include <random>
#include <type_traits>
#include <utility>
#include <string>
#include <vector>

#include "gpu_support.hpp"

namespace {

deq::bit_mask random_mask(deq::index_t b, deq::index_t h, deq::index_t rows, deq::index_t cols, double density, unsigned seed) {
    std::mt19937 rng(seed);
    std::bernoulli_distribution keep(density);
    deq::bit_mask m(b, h, rows, cols);
    for (deq::index_t x = 0; x < b; ++x)
        for (deq::index_t y = 0; y < h; ++y)
            for (deq::index_t i = 0; i < rows; ++i)
                for (deq::index_t j = 0; j < cols; ++j)
                    if (i % 5 != 3 && keep(rng)) m.set(x, y, i, j);  // every fifth row empty
    return m;
}

}  // namespace

TEST_SUITE("gpu") {
    TEST_CASE("to_csr on exec::cuda: the host's CSR for masks of any shape, and to_bit_mask gives the mask back") {
        deq::exec::cuda const space;
        struct shape {
            deq::index_t b, h, rows, cols;
            double density;
        };
        for (shape const s : {shape{2, 3, 17, 130, 0.2}, shape{1, 1, 64, 64, 0.5}, shape{1, 4, 9, 1, 0.7}, shape{3, 2, 33, 200, 0.02},
                              shape{1, 1, 5, 300, 0.0}}) {
            CAPTURE(s.rows);
            CAPTURE(s.cols);
            deq::bit_mask const host = random_mask(s.b, s.h, s.rows, s.cols, s.density, 11);
            deq::csr const expected = deq::to_csr(deq::exec::serial{}, host.view());
            auto const words = deq::cuda::to_device(host.words());
            deq::const_bit_mask_view const dmask(words.device_data(), s.b, s.h, s.rows, s.cols);
            deq::cuda::device_csr const dcsr = deq::to_csr(space, dmask);
            CHECK(dcsr.nnz() == expected.nnz());
            CHECK(deq::cuda::to_host(dcsr) == expected);

            deq::cuda::device_array<std::uint64_t> back(static_cast<deq::index_t>(host.words().size()));
            deq::to_bit_mask(space, dcsr, deq::bit_mask_view(back.device_data(), s.b, s.h, s.rows, s.cols));
            CHECK(deq::cuda::to_host(back) == host.words());
        }
    }

    TEST_CASE("to_bsr on exec::cuda: the host's BSR (blocks 16x16, 64x64, 32x96) for masks of any shape, and to_bit_mask gives the mask back") {
        deq::exec::cuda const space;
        auto check = [&](auto block, deq::index_t b, deq::index_t h, deq::index_t rows, deq::index_t cols, double density) {
            constexpr deq::index_t br = decltype(block)::first_type::value, bc = decltype(block)::second_type::value;
            CAPTURE(br);
            CAPTURE(bc);
            CAPTURE(rows);
            CAPTURE(cols);
            deq::bit_mask const host = random_mask(b, h, rows, cols, density, 13);
            auto const expected = deq::to_bsr<br, bc>(deq::exec::serial{}, host.view());
            auto const words = deq::cuda::to_device(host.words());
            auto const dbsr = deq::to_bsr<br, bc>(space, deq::const_bit_mask_view(words.device_data(), b, h, rows, cols));
            CHECK(deq::cuda::to_host(dbsr) == expected);
            deq::cuda::device_array<std::uint64_t> back(static_cast<deq::index_t>(host.words().size()));
            deq::to_bit_mask(space, dbsr, deq::bit_mask_view(back.device_data(), b, h, rows, cols));
            CHECK(deq::cuda::to_host(back) == host.words());
        };
        using b16 = std::pair<std::integral_constant<deq::index_t, 16>, std::integral_constant<deq::index_t, 16>>;
        using b64 = std::pair<std::integral_constant<deq::index_t, 64>, std::integral_constant<deq::index_t, 64>>;
        using b32x96 = std::pair<std::integral_constant<deq::index_t, 32>, std::integral_constant<deq::index_t, 96>>;
        check(b16{}, 2, 3, 45, 130, 0.05);
        check(b16{}, 1, 1, 16, 16, 0.5);
        check(b64{}, 1, 2, 200, 300, 0.01);
        check(b32x96{}, 2, 1, 70, 250, 0.02);
        check(b32x96{}, 1, 1, 3, 5, 0.0);
    }

    TEST_CASE("to_pack_split on exec::cuda: the host's segments, offsets and gaps (several heights, windows and slots), and the mask back") {
        deq::exec::cuda const space;
        struct setup {
            deq::index_t b, h, rows, cols;
            double density;
            deq::pack_split_params params;
        };
        for (setup const s : {setup{2, 3, 70, 200, 0.1, {}}, setup{1, 2, 33, 130, 0.4, {16, 32, 4}}, setup{1, 1, 8, 64, 0.9, {8, 64, 2}},
                              setup{1, 1, 5, 40, 0.0, {4, 16, 3}}}) {
            CAPTURE(s.rows);
            CAPTURE(s.params.height);
            deq::bit_mask const host = random_mask(s.b, s.h, s.rows, s.cols, s.density, 17);
            deq::pack_split const expected = deq::to_pack_split(deq::exec::serial{}, host.view(), s.params);
            auto const words = deq::cuda::to_device(host.words());
            auto const dps = deq::to_pack_split(space, deq::const_bit_mask_view(words.device_data(), s.b, s.h, s.rows, s.cols), s.params);
            CHECK(deq::cuda::to_host(dps) == expected);
            deq::cuda::device_array<std::uint64_t> back(static_cast<deq::index_t>(host.words().size()));
            deq::to_bit_mask(space, dps, deq::bit_mask_view(back.device_data(), s.b, s.h, s.rows, s.cols));
            CHECK(deq::cuda::to_host(back) == host.words());
        }
    }

    TEST_CASE("to_csr on exec::cuda: host memory is refused, a mask of the wrong shape is an error") {
        deq::exec::cuda const space;
        deq::bit_mask const host = random_mask(1, 1, 4, 10, 0.5, 1);
        CHECK(deq_test::message_of([&] { (void)deq::to_csr(space, host.view()); }).find("'mask' is host memory") != std::string::npos);
        auto const words = deq::cuda::to_device(host.words());
        deq::cuda::device_csr const dcsr = deq::to_csr(space, deq::const_bit_mask_view(words.device_data(), 1, 1, 4, 10));
        deq::cuda::device_array<std::uint64_t> back(8);
        CHECK(deq_test::message_of([&] { deq::to_bit_mask(space, dcsr, deq::bit_mask_view(back.device_data(), 1, 1, 8, 10)); })
                  .find("expected the csr's [1, 1, 4, 10]") != std::string::npos);
    }
}
