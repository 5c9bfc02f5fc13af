// peak: the FP32 FMA and int8 dot-product throughput of one core of this machine, measured with
// independent 512-bit (AVX-512) or 256-bit (AVX2) instruction chains, so that the attention
// benchmark's GFLOP/s can be read against what this core reaches (docs/benchmarks.md).
//
//   peak [--seconds S]     prints one JSON object: isa, fma_per_s, fp32_gflops, int8_dot_gops
//
// fp32_gflops = 2 · (lanes per FMA) · FMAs per second; int8_dot_gops = 2 · 64 products per vpdpbusd
// (AVX-512 VNNI) · instructions per second (0 without VNNI). One thread; run it on a quiet machine.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <deq/arch/isa.hpp>
#include <deq/arch/predictor_avx2.hpp>    // DEQ_TARGET_AVX2
#include <deq/arch/predictor_avx512.hpp>  // DEQ_TARGET_AVX512

#if DEQ_ARCH_X86
#include <immintrin.h>
#endif

namespace {

using clock_type = std::chrono::steady_clock;

#if DEQ_ARCH_X86
// 12 independent accumulators: more than the FMA latency times the number of FMA pipes, so the loop is
// bound by throughput. The asm barrier keeps the operands in registers and the loop from being folded.
DEQ_TARGET_AVX512 double fma512_per_second(double seconds) {
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
    float sink = 0;
    for (int i = 0; i < 12; ++i) sink += _mm512_reduce_add_ps(acc[i]);
    __asm__ volatile("" : : "x"(sink));
    return static_cast<double>(count) / elapsed;
}

DEQ_TARGET_AVX512 double dpbusd512_per_second(double seconds) {
    __m512i acc[12];
    for (int i = 0; i < 12; ++i) acc[i] = _mm512_set1_epi32(i);
    __m512i a = _mm512_set1_epi32(0x01020304), b = _mm512_set1_epi32(0x01010101);
    long long count = 0;
    auto const start = clock_type::now();
    double elapsed = 0;
    while (elapsed < seconds) {
        for (int n = 0; n < 100000; ++n) {
#pragma GCC unroll 12
            for (int i = 0; i < 12; ++i) acc[i] = _mm512_dpbusd_epi32(acc[i], a, b);
            __asm__ volatile("" : "+v"(a), "+v"(b));
        }
        count += 100000LL * 12;
        elapsed = std::chrono::duration<double>(clock_type::now() - start).count();
    }
    int sink = 0;
    for (int i = 0; i < 12; ++i) sink += _mm512_reduce_add_epi32(acc[i]);
    __asm__ volatile("" : : "r"(sink));
    return static_cast<double>(count) / elapsed;
}

DEQ_TARGET_AVX2 double fma256_per_second(double seconds) {
    __m256 acc[12];
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_ps(static_cast<float>(i) * 1e-3f);
    __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
    long long count = 0;
    auto const start = clock_type::now();
    double elapsed = 0;
    while (elapsed < seconds) {
        for (int n = 0; n < 100000; ++n) {
#pragma GCC unroll 12
            for (int i = 0; i < 12; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
            __asm__ volatile("" : "+x"(a), "+x"(b));
        }
        count += 100000LL * 12;
        elapsed = std::chrono::duration<double>(clock_type::now() - start).count();
    }
    __m256 s = acc[0];
    for (int i = 1; i < 12; ++i) s = _mm256_add_ps(s, acc[i]);
    __asm__ volatile("" : : "x"(s));
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
    std::string isa = "portable";
    double fma = 0, lanes = 0, dot = 0;
#if DEQ_ARCH_X86
    if (deq::arch::detected_isa() >= deq::arch::isa::avx512) {
        isa = "avx512";
        fma = fma512_per_second(seconds);
        lanes = 16;
        dot = dpbusd512_per_second(seconds) * 128.0;
    } else if (deq::arch::detected_isa() >= deq::arch::isa::avx2) {
        isa = "avx2";
        fma = fma256_per_second(seconds);
        lanes = 8;
    }
#endif
    std::printf("{\"isa\": \"%s\", \"fma_per_s\": %.6g, \"fp32_gflops\": %.6g, \"int8_dot_gops\": %.6g}\n", isa.c_str(), fma,
                2.0 * lanes * fma / 1e9, dot / 1e9);
    return 0;
}
