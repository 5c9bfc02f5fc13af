// A CUDA C++ consumer of deq::cuda: deq::exec::cuda and deq::cuda::device_array through
// find_package(deq COMPONENTS CUDA). With a GPU it runs a kernel and checks its results; without one
// it checks that the missing device is a deq::cuda_error naming the CUDA call.
#include <cstdio>
#include <cstring>
#include <vector>

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
        return ok ? 0 : 1;
    } catch (deq::cuda_error const& e) {
        bool const named = std::strstr(e.what(), "deq: CUDA call cudaGetDeviceCount") != nullptr;
        std::printf("deq::exec::cuda consumer: no usable device: %s\n", e.what());
        return named ? 0 : 1;
    }
}
