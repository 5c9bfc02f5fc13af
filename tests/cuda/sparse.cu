// to_csr() / to_bit_mask() on deq::exec::cuda against the host's: the same row pointers and columns
// (CUB's scan for the row pointers), and the mask back bit for bit (suite "gpu": needs a CUDA device).
#include <doctest/doctest.h>

#include <deq/core/bit_mask.hpp>
#include <deq/cuda/device_array.hpp>
#include <deq/exec/cuda.hpp>
#include <deq/exec/serial.hpp>
#include <deq/sparse/csr.hpp>
#include <deq/sparse/cuda/csr.hpp>

#include <random>
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
