/// @file
/// @brief `deq::detail::bert_simd_run`: runs a vectorisable row kernel of the BERT encoder compiled for
/// the widest x86 vector extension the CPU has (AVX-512F, AVX2, else the build's own target), chosen
/// once at run time (internal).
///
/// The kernels are written as plain loops that compilers vectorise without -ffast-math; this only gives
/// them wider vectors when the program was built for an older baseline (e.g. x86-64 with SSE2), with no
/// compiler flag imposed on the program: the body is inlined (`flatten`) into a function compiled with
/// `target("avx512f")` or `target("avx2")`, selected by `__builtin_cpu_supports`. GCC and Clang on x86
/// only; elsewhere (and under nvcc) the body runs as compiled. AVX-512F has FMA instructions, so where
/// the compiler contracts a·b + c (GCC's default for C++), the AVX-512 tier can differ from the others
/// in the last bits: results agree to rounding across CPUs, not bit for bit.
#pragma once

#include "../../core/tensor.hpp"

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__)) && !defined(__CUDACC__) && \
    !defined(__NVCOMPILER) && !defined(__INTEL_LLVM_COMPILER)
#define DEQ_BERT_SIMD_DISPATCH 1
#else
#define DEQ_BERT_SIMD_DISPATCH 0
#endif

namespace deq::detail {

/// Elements processed together by the vectorisable row loops of the BERT kernels (fixed-length inner
/// loops over this many elements vectorise at -O2 too).
inline constexpr index_t bert_block = 16;

/// The vector extension tiers of bert_simd_run().
enum class bert_simd_tier {
    baseline,  ///< What the program was compiled for.
    avx2,      ///< AVX2 (256-bit).
    avx512     ///< AVX-512F (512-bit).
};

/// The widest tier this CPU (and operating system) supports, detected once.
/// @return The tier; always baseline where dispatch is not compiled in.
inline bert_simd_tier bert_host_simd_tier() noexcept {
#if DEQ_BERT_SIMD_DISPATCH
    static bert_simd_tier const tier = [] {
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx512f")) return bert_simd_tier::avx512;
        if (__builtin_cpu_supports("avx2")) return bert_simd_tier::avx2;
        return bert_simd_tier::baseline;
    }();
    return tier;
#else
    return bert_simd_tier::baseline;
#endif
}

#if DEQ_BERT_SIMD_DISPATCH
/// Runs @p body inlined into AVX-512F code.
/// @tparam Body Callable `void()`.
/// @param body The work.
template <class Body>
__attribute__((target("avx512f"), flatten)) inline void bert_simd_avx512(Body const& body) {
    body();
}
/// Runs @p body inlined into AVX2 code.
/// @tparam Body Callable `void()`.
/// @param body The work.
template <class Body>
__attribute__((target("avx2"), flatten)) inline void bert_simd_avx2(Body const& body) {
    body();
}
#endif

/// Runs @p body compiled for the widest tier the CPU supports (see the file documentation).
/// @tparam Body Callable `void()`; everything it calls should be inline (it is inlined into the tier).
/// @param body The work.
template <class Body>
inline void bert_simd_run(Body const& body) {
#if DEQ_BERT_SIMD_DISPATCH
    switch (bert_host_simd_tier()) {
        case bert_simd_tier::avx512: bert_simd_avx512(body); return;
        case bert_simd_tier::avx2: bert_simd_avx2(body); return;
        case bert_simd_tier::baseline: break;
    }
#endif
    body();
}

}  // namespace deq::detail
