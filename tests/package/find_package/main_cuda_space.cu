// A CUDA C++ consumer of deq::cuda: deq::exec::cuda, deq::cuda::device_array and the device attention
// through find_package(deq COMPONENTS CUDA). With a GPU it runs a kernel and a dense attention of one
// head and checks their results; without one it checks that the missing device is a deq::cuda_error
// naming the CUDA call.
#include <cstdio>
#include <cstring>
#include <vector>

#include <cmath>

#include <deq/attention/cuda/attention.hpp>
#include <deq/cuda/device_array.hpp>
#include <deq/exec/cuda.hpp>

namespace {
struct square {
    float* x;
    DEQ_HOST_DEVICE void operator()(deq::index_t i) const { x[i] = x[i] * x[i]; }
};
}  // namespace

int main() {
    try {
        deq::exec::cuda const space;
        std::vector<float> host{1.0f, -2.0f, 3.0f, 0.5f};
        auto device = deq::cuda::to_device(host);
        deq::exec::parallel_for(space, static_cast<deq::index_t>(host.size()), square{device.device_data()});
        std::vector<float> const got = deq::cuda::to_host(device);
        bool const ok = got == std::vector<float>{1.0f, 4.0f, 9.0f, 0.25f};
        std::printf("deq::exec::cuda consumer: kernel on device %d: %s\n", space.device(), ok ? "ok" : "WRONG");
        // two keys with scores q·k/sqrt(1) = 1 and -1 for the query 1: weights 1/(1+e^-2), e^-2/(1+e^-2)
        auto const q = deq::cuda::to_device(std::vector<float>{1.0f}), k = deq::cuda::to_device(std::vector<float>{1.0f, -1.0f});
        auto const v = deq::cuda::to_device(std::vector<float>{1.0f, 3.0f});
        deq::cuda::device_array<float> out(1);
        (void)deq::attention(space, deq::tensor_view<float const, 4>(q.device_data(), {1, 1, 1, 1}),
                             deq::tensor_view<float const, 4>(k.device_data(), {1, 1, 2, 1}),
                             deq::tensor_view<float const, 4>(v.device_data(), {1, 1, 2, 1}), deq::tensor_view<float, 4>(out.device_data(), {1, 1, 1, 1}));
        double const p0 = 1.0 / (1.0 + std::exp(-2.0));
        float const o = deq::cuda::to_host(out)[0];
        bool const attention_ok = std::fabs(o - (p0 + 3.0 * (1.0 - p0))) < 1e-5;
        std::printf("deq::exec::cuda consumer: attention %.6f: %s\n", o, attention_ok ? "ok" : "WRONG");
        return ok && attention_ok ? 0 : 1;
    } catch (deq::cuda_error const& e) {
        bool const named = std::strstr(e.what(), "deq: CUDA call cudaGetDeviceCount") != nullptr;
        std::printf("deq::exec::cuda consumer: no usable device: %s\n", e.what());
        return named ? 0 : 1;
    }
}
