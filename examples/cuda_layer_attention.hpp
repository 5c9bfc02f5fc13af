// The examples' access to deq::bert::cuda_layer_attention (a CUDA translation unit,
// examples/cuda_layer_attention.cu, compiled when the build has deq::cuda): `--device cuda` of
// bert_stsb and bert_glue runs every layer's attention on a GPU with it.
#pragma once

#include <deq/bert/layer_attention.hpp>
#include <deq/core/error.hpp>

#include <string>

namespace deq_examples {

#if DEQ_EXAMPLES_WITH_CUDA
/// The runner of every layer's attention on CUDA device @p device (examples/cuda_layer_attention.cu).
deq::bert::layer_attention_runner cuda_layer_attention(int device);
/// The name of CUDA device @p device and its driver version, for the reports.
std::string cuda_device_description(int device);
#else
inline deq::bert::layer_attention_runner cuda_layer_attention(int) {
    throw deq::invalid_argument("deq: --device cuda: this build has no CUDA support (configure with -DDEQ_ENABLE_CUDA=ON and nvcc)");
}
inline std::string cuda_device_description(int) { return "none"; }
#endif

/// The layer-attention runner of a `--device` value: none for "cpu", the CUDA runner for "cuda" or
/// "cuda:N"; deq::invalid_argument for anything else.
/// @param device The flag's value.
/// @return The runner (empty for the host).
inline deq::bert::layer_attention_runner layer_attention_for(std::string const& device) {
    if (device == "cpu") return {};
    if (device == "cuda") return cuda_layer_attention(0);
    if (device.rfind("cuda:", 0) == 0 && device.size() > 5 && device.find_first_not_of("0123456789", 5) == std::string::npos && device.size() < 10) {
        return cuda_layer_attention(std::stoi(device.substr(5)));
    }
    deq::detail::throw_invalid_argument("--device", device, "must be cpu, cuda or cuda:N");
}

}  // namespace deq_examples
