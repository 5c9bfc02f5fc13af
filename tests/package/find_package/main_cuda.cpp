// A host program built against deq::cuda with the host compiler: the CUDA runtime API and the
// toolkit's CCCL headers are on the include path and cudart links. No GPU is needed.
#include <cstdio>

#include <cuda/std/span>
#include <cuda_runtime_api.h>
#include <thrust/version.h>

#include <deq/core/tensor.hpp>
#include <deq/numeric/rounding.hpp>

static_assert(THRUST_VERSION == DEQ_EXPECTED_THRUST_VERSION,
              "the Thrust headers on the include path are not the CCCL that find_package(deq COMPONENTS CUDA) found");

int main() {
    int failures = 0;
    float data[6] = {0.5f, 1.5f, 2.5f, -0.5f, -1.5f, 3.25f};
    cuda::std::span<float const> span(data, 6);
    float const expected[6] = {0.0f, 2.0f, 2.0f, -0.0f, -2.0f, 3.0f};
    for (std::size_t i = 0; i < span.size(); ++i) failures += deq::round_half_even(span[i]) != expected[i];

    int devices = 0;
    cudaError_t const status = cudaGetDeviceCount(&devices);
    std::printf("deq::cuda consumer: Thrust %d, cudaGetDeviceCount -> %s, %d device(s)\n", THRUST_VERSION,
                cudaGetErrorName(status), status == cudaSuccess ? devices : 0);
    return failures == 0 ? 0 : 1;
}
