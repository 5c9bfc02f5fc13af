// peak: the FP32 FMA throughput of one core of this machine, measured with 12 independent chains of
// 512-bit FMAs (AVX-512), so that the attention benchmark's GFLOP/s can be read against what this core
// reaches (docs/benchmarks.md).
//
//   peak [--seconds S]     prints one JSON object: isa, fma_per_s, fp32_gflops (0 without AVX-512)
//
// fp32_gflops = 2 · 16 lanes · 512-bit FMAs per second. One thread; run it on a quiet machine.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <deq/arch/isa.hpp>
#include <deq/arch/predictor_avx512.hpp>  // DEQ_TARGET_AVX512

#if DEQ_ARCH_X86
#include <immintrin.h>
#endif

namespace {

#if DEQ_ARCH_X86
/// 512-bit FMAs per second over @p seconds: 12 independent accumulators (more than the FMA latency times
/// the number of FMA pipes, so the loop is bound by throughput); the asm barrier keeps the operands in
/// registers and the loop from being folded.
DEQ_TARGET_AVX512 double fma512_per_second(double seconds) {
    using clock_type = std::chrono::steady_clock;
    __m512 acc[12];
    for (int i = 0; i < 12; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i) * 1e-3f);
    __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
    long long count = 0;
    auto const start = clock_type::now();
    double elapsed = 0;
    while (elapsed < seconds) {
        for (int n = 0; n < 100000; ++n) {
#pragma GCC unroll 12
            for (int i = 0; i < 12; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
            __asm__ volatile("" : "+v"(a), "+v"(b));
        }
        count += 100000LL * 12;
        elapsed = std::chrono::duration<double>(clock_type::now() - start).count();
    }
    for (int i = 1; i < 12; ++i) acc[0] = _mm512_add_ps(acc[0], acc[i]);
    __asm__ volatile("" : : "v"(acc[0]));
    return static_cast<double>(count) / elapsed;
}
#endif

}  // namespace

int main(int argc, char** argv) {
    double seconds = 0.5;
    for (int i = 1; i < argc; ++i) {
        std::string const a = argv[i];
        if (a == "--seconds" && i + 1 < argc) {
            seconds = std::atof(argv[++i]);
        } else {
            std::fprintf(stderr, "usage: peak [--seconds S]\n");
            return 2;
        }
    }
    if (!(seconds > 0.0 && seconds < 60.0)) {
        std::fprintf(stderr, "peak: --seconds must be in (0, 60)\n");
        return 2;
    }
    std::string isa = deq::arch::to_string(deq::arch::detected_isa());
    double fma = 0;
#if DEQ_ARCH_X86
    if (deq::arch::detected_isa() >= deq::arch::isa::avx512) fma = fma512_per_second(seconds);
#endif
    std::printf("{\"isa\": \"%s\", \"fma_per_s\": %.6g, \"fp32_gflops\": %.6g}\n", isa.c_str(), fma, 32.0 * fma / 1e9);
    return 0;
}
