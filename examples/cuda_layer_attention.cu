// deq::bert::cuda_layer_attention for the examples (see cuda_layer_attention.hpp).
#include <deq/bert/cuda/layer_attention.hpp>
#include <deq/cuda/error.hpp>
#include <deq/exec/cuda.hpp>

#include <cuda_runtime_api.h>

#include <string>

#include "cuda_layer_attention.hpp"

namespace deq_examples {

deq::bert::layer_attention_runner cuda_layer_attention(int device) { return deq::bert::cuda_layer_attention(deq::exec::cuda(device)); }

std::string cuda_device_description(int device) {
    deq::exec::cuda const space(device);  // validates the ordinal
    cudaDeviceProp prop{};
    deq::detail::cuda_check(cudaGetDeviceProperties(&prop, space.device()), "cudaGetDeviceProperties");
    int driver = 0;
    deq::detail::cuda_check(cudaDriverGetVersion(&driver), "cudaDriverGetVersion");
    return std::string(prop.name) + " (sm_" + std::to_string(prop.major) + std::to_string(prop.minor) + ", CUDA driver " +
           std::to_string(driver / 1000) + "." + std::to_string((driver % 1000) / 10) + ")";
}

}  // namespace deq_examples
