// Device instantiation of every deq kernel functor: each is launched from a __global__ wrapper
// for the element types deq supports, so nvcc checks the device pass of the real kernel bodies
// (not only the header syntax). Compiled only; nothing here needs a GPU.
#include <deq/attention/detail/attention_kernel.hpp>
#include <deq/core/accumulator.hpp>
#include <deq/mask/detail/select_kernels.hpp>
#include <deq/numeric/float16.hpp>
#include <deq/predict/detail/predictor_kernels.hpp>

#include <cstdint>

namespace {

template <class Kernel>
__global__ void run_kernel(Kernel kernel, deq::index_t n) {
    deq::index_t const i = static_cast<deq::index_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n) kernel(i);
}

template <class Kernel>
void launch(Kernel const& kernel) {
    run_kernel<<<1, 32>>>(kernel, 0);
}

template <class T>
void instantiate_element_type() {
    using S = deq::accum_t<T>;
    launch(deq::detail::predictor_quantize_rows<T, S, std::int8_t>{});
    launch(deq::detail::predictor_quantize_blocks<T, S, std::int8_t>{});
    launch(deq::detail::select_row_max<S>{});
    launch(deq::detail::select_group_max<S>{});
    launch(deq::detail::select_threshold_rows<S>{});
    launch(deq::detail::select_rank_rows<S>{});
    launch(deq::detail::attention_key_norm_kernel<T, S>{});
    launch(deq::detail::attention_row_kernel<T, S>{});
}

}  // namespace

void deq_cuda_instantiate_kernels() {
    instantiate_element_type<float>();
    instantiate_element_type<double>();
    instantiate_element_type<deq::float16>();
    launch(deq::detail::select_fill_rows{});
    launch(deq::detail::select_and_rows{});
}
