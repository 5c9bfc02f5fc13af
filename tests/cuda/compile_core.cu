// nvcc compile check of deq's device-facing core: a __global__ kernel that runs a deq functor
// using tensor_view, bit_mask_view, key_padding, accum_t, round_half_even and
// quantize_symmetric. The host program runs the same functor through deq::exec::serial and
// checks it against values computed independently; when a GPU is present it also launches the
// kernel and compares the device results with the host ones.
#include <deq/config.hpp>
#include <deq/core/accumulator.hpp>
#include <deq/core/bit_mask.hpp>
#include <deq/core/padding.hpp>
#include <deq/core/tensor.hpp>
#include <deq/exec/execution_space.hpp>
#include <deq/exec/serial.hpp>
#include <deq/numeric/rounding.hpp>
#include <deq/quant/symmetric_scalar.hpp>

#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <vector>

#if !DEQ_CUDA_COMPILER
#error "DEQ_CUDA_COMPILER must be 1 under nvcc"
#endif

namespace {

// One work item per row: quantize the row to 4 bits, keep the entries with |level| >= 2 of real
// keys in the mask, and store the row's kept count and its dequantized sum.
struct quantize_and_select {
    deq::tensor_view<float const, 2> x;
    deq::key_padding padding;
    float scale;
    deq::tensor_view<std::int32_t, 2> levels;
    deq::bit_mask_view kept;
    deq::tensor_view<deq::index_t, 1> kept_count;
    deq::tensor_view<deq::accum_t<float>, 1> row_sum;

    DEQ_HOST_DEVICE void operator()(deq::index_t i) const {
        deq::accum_t<float> sum = 0;
        for (deq::index_t j = 0; j < x.extent(1); ++j) {
            std::int32_t const q = deq::quant::quantize_symmetric(x(i, j), scale, 4);
            levels(i, j) = q;
            bool const keep = padding.is_valid(0, j) && (q >= 2 || q <= -2);
            kept.set(0, 0, i, j, keep);
            if (kept.test(0, 0, i, j)) sum += deq::quant::dequantize_symmetric(q, scale);
        }
        kept_count(i) = kept.count_row(0, 0, i);
        row_sum(i) = deq::round_half_even(sum * 4.0f) / 4.0f;
    }
};

__global__ void quantize_and_select_kernel(quantize_and_select f, deq::index_t rows) {
    deq::index_t const i = static_cast<deq::index_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < rows) f(i);
}

constexpr deq::index_t rows = 6;
constexpr deq::index_t cols = 70;   // two 64-bit mask words per row

struct buffers {
    std::vector<float> x = std::vector<float>(rows * cols);
    std::vector<std::uint8_t> valid = std::vector<std::uint8_t>(cols, 1);
    std::vector<std::int32_t> levels = std::vector<std::int32_t>(rows * cols, 99);
    std::vector<std::uint64_t> words;
    std::vector<deq::index_t> counts = std::vector<deq::index_t>(rows, -1);
    std::vector<float> sums = std::vector<float>(rows, -1.0f);
};

quantize_and_select make_functor(float const* x, std::uint8_t const* valid, std::int32_t* levels, std::uint64_t* words,
                                 deq::index_t* counts, float* sums) {
    return quantize_and_select{deq::tensor_view<float const, 2>(x, {rows, cols}),
                               deq::key_padding{deq::tensor_view<std::uint8_t const, 2>(valid, {1, cols})},
                               2.0f,
                               deq::tensor_view<std::int32_t, 2>(levels, {rows, cols}),
                               deq::bit_mask_view(words, 1, 1, rows, cols),
                               deq::tensor_view<deq::index_t, 1>(counts, {rows}),
                               deq::tensor_view<float, 1>(sums, {rows})};
}

int failures = 0;

void check(bool ok, char const* what, deq::index_t i, deq::index_t j) {
    if (!ok && failures++ < 20) std::printf("FAILED: %s at (%lld, %lld)\n", what, static_cast<long long>(i), static_cast<long long>(j));
}

}  // namespace

int main() {
    buffers host;
    // x = (j - 35) / 8 + i / 4: multiples of 1/8, so x * 2 hits exact halves (ties to even).
    for (deq::index_t i = 0; i < rows; ++i)
        for (deq::index_t j = 0; j < cols; ++j) host.x[i * cols + j] = static_cast<float>(j - 35) / 8.0f + static_cast<float>(i) / 4.0f;
    for (deq::index_t j = 60; j < cols; ++j) host.valid[j] = 0;   // the last ten keys are padding
    host.words.assign(static_cast<std::size_t>(rows * ((cols + 63) / 64)), 0);

    auto f = make_functor(host.x.data(), host.valid.data(), host.levels.data(), host.words.data(), host.counts.data(),
                          host.sums.data());
    deq::exec::parallel_for(deq::exec::serial{}, rows, f);

    // Independent expectations: std::nearbyint rounds ties to even in the default FP mode.
    for (deq::index_t i = 0; i < rows; ++i) {
        deq::index_t count = 0;
        double sum = 0;
        for (deq::index_t j = 0; j < cols; ++j) {
            double const level = std::fmax(-7.0, std::fmin(7.0, std::nearbyint(2.0 * host.x[i * cols + j])));
            check(host.levels[i * cols + j] == static_cast<std::int32_t>(level), "level", i, j);
            bool const keep = j < 60 && std::fabs(level) >= 2.0;
            check(f.kept.test(0, 0, i, j) == keep, "kept bit", i, j);
            count += keep;
            if (keep) sum += level / 2.0;
        }
        check(host.counts[i] == count, "kept count", i, -1);
        check(host.sums[i] == static_cast<float>(std::nearbyint(sum * 4.0) / 4.0), "row sum", i, -1);
    }

    int devices = 0;
    if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
        std::printf("host pass checked (%d failures); no CUDA device: kernel launch skipped\n", failures);
        return failures == 0 ? 0 : 1;
    }

    // Device run: same functor, device buffers, compare with the host results.
    buffers device_result;
    float* x = nullptr;
    std::uint8_t* valid = nullptr;
    std::int32_t* levels = nullptr;
    std::uint64_t* words = nullptr;
    deq::index_t* counts = nullptr;
    float* sums = nullptr;
    bool ok = cudaMalloc(&x, host.x.size() * sizeof(float)) == cudaSuccess &&
              cudaMalloc(&valid, host.valid.size()) == cudaSuccess &&
              cudaMalloc(&levels, host.levels.size() * sizeof(std::int32_t)) == cudaSuccess &&
              cudaMalloc(&words, host.words.size() * sizeof(std::uint64_t)) == cudaSuccess &&
              cudaMalloc(&counts, rows * sizeof(deq::index_t)) == cudaSuccess &&
              cudaMalloc(&sums, rows * sizeof(float)) == cudaSuccess &&
              cudaMemcpy(x, host.x.data(), host.x.size() * sizeof(float), cudaMemcpyHostToDevice) == cudaSuccess &&
              cudaMemcpy(valid, host.valid.data(), host.valid.size(), cudaMemcpyHostToDevice) == cudaSuccess &&
              cudaMemset(words, 0, host.words.size() * sizeof(std::uint64_t)) == cudaSuccess;
    if (ok) {
        quantize_and_select_kernel<<<1, 32>>>(make_functor(x, valid, levels, words, counts, sums), rows);
        device_result.words.assign(host.words.size(), 0);
        ok = cudaDeviceSynchronize() == cudaSuccess &&
             cudaMemcpy(device_result.levels.data(), levels, host.levels.size() * sizeof(std::int32_t), cudaMemcpyDeviceToHost) ==
                 cudaSuccess &&
             cudaMemcpy(device_result.words.data(), words, host.words.size() * sizeof(std::uint64_t), cudaMemcpyDeviceToHost) ==
                 cudaSuccess &&
             cudaMemcpy(device_result.counts.data(), counts, rows * sizeof(deq::index_t), cudaMemcpyDeviceToHost) == cudaSuccess &&
             cudaMemcpy(device_result.sums.data(), sums, rows * sizeof(float), cudaMemcpyDeviceToHost) == cudaSuccess;
    }
    check(ok, "CUDA runtime call", -1, -1);
    if (ok) {
        check(device_result.levels == host.levels, "device levels", -1, -1);
        check(device_result.words == host.words, "device mask words", -1, -1);
        check(device_result.counts == host.counts, "device counts", -1, -1);
        check(device_result.sums == host.sums, "device row sums", -1, -1);
    }
    cudaFree(x);
    cudaFree(valid);
    cudaFree(levels);
    cudaFree(words);
    cudaFree(counts);
    cudaFree(sums);
    std::printf("host and device (%d GPU(s)) passes checked: %d failures\n", devices, failures);
    return failures == 0 ? 0 : 1;
}
