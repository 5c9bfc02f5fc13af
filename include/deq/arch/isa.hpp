/// @file
/// @brief `deq::arch::isa`: the instruction-set tiers of deq's hand-vectorised CPU kernels, detected at
/// run time, with an override (`DEQ_ISA` environment variable or deq::arch::limit_isa()).
///
/// deq never imposes a compiler flag on a program. Kernels that need an extension are compiled as
/// functions with a `target` attribute (GCC and Clang on x86-64) and called only after the CPU (and the
/// operating system's saved register state) was checked, so an old CPU takes a narrower path instead of
/// raising SIGILL. The tiers:
///
/// | tier | requires | used for |
/// |---|---|---|
/// | `avx512` | AVX-512 F, BW, VL, DQ, VNNI, and FMA | 16-wide float micro-kernels, `vpdpbusd` integer dot products |
/// | `avx2` | AVX2 and FMA | 8-wide float micro-kernels, `vpmaddwd` integer dot products |
/// | `portable` | nothing | plain C++ loops (every platform, and the reference for the other tiers) |
///
/// The active tier is the detected one, lowered by `DEQ_ISA=portable|avx2|avx512` (read once, at the
/// first use; it is an upper limit, so `DEQ_ISA=avx512` on an AVX2 machine runs AVX2) or by
/// limit_isa() (e.g. to test the portable path on an AVX-512 machine). limit_isa() with a tier the CPU
/// lacks is a deq::invalid_argument, never a crash.
#pragma once

#include <atomic>
#include <cstdlib>
#include <string>
#include <string_view>

#include "../core/error.hpp"

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__) && !defined(__CUDACC__) && !defined(__NVCOMPILER) && \
    !defined(__INTEL_LLVM_COMPILER)
/// 1 where deq compiles its x86-64 kernels (GCC or Clang on x86-64, not under a CUDA compiler).
#define DEQ_ARCH_X86 1
#else
/// 0: only the portable kernels are compiled.
#define DEQ_ARCH_X86 0
#endif

namespace deq::arch {

/// Instruction-set tiers, ordered from narrowest to widest.
enum class isa : int {
    portable = 0,  ///< Plain C++.
    avx2 = 1,      ///< AVX2 + FMA (x86-64).
    avx512 = 2     ///< AVX-512 F/BW/VL/DQ + VNNI + FMA (x86-64).
};

/// Name of a tier.
/// @param t The tier.
/// @return "portable", "avx2" or "avx512".
inline char const* to_string(isa t) noexcept {
    switch (t) {
        case isa::avx512: return "avx512";
        case isa::avx2: return "avx2";
        case isa::portable: break;
    }
    return "portable";
}

/// Parses a tier name ("portable", "avx2", "avx512").
/// @param name The name.
/// @param what Names the source in the error message (e.g. "DEQ_ISA").
/// @return The tier.
/// @throws deq::invalid_argument naming @p what for another name.
inline isa parse_isa(std::string_view name, char const* what = "isa") {
    if (name == "portable") return isa::portable;
    if (name == "avx2") return isa::avx2;
    if (name == "avx512") return isa::avx512;
    ::deq::detail::throw_invalid_name(what, name, "portable, avx2, avx512");
}

/// The widest tier this CPU and operating system support, detected once.
/// @return The tier (portable where no x86-64 kernel is compiled).
inline isa detected_isa() noexcept {
#if DEQ_ARCH_X86
    static isa const tier = [] {
        __builtin_cpu_init();
        // __builtin_cpu_supports checks the OS-enabled register state (XGETBV) as well.
        bool const avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                            __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
                            __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("fma");
        if (avx512) return isa::avx512;
        if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return isa::avx2;
        return isa::portable;
    }();
    return tier;
#else
    return isa::portable;
#endif
}

namespace detail {

/// The limit set by limit_isa(), or -1 for none.
inline std::atomic<int>& isa_limit_storage() noexcept {
    static std::atomic<int> limit{-1};
    return limit;
}

/// The limit of the `DEQ_ISA` environment variable (read once), or -1 when unset.
inline int isa_environment_limit() {
    static int const limit = [] {
        char const* value = std::getenv("DEQ_ISA");
        if (value == nullptr || *value == '\0') return -1;
        return static_cast<int>(parse_isa(value, "DEQ_ISA (environment variable)"));
    }();
    return limit;
}

}  // namespace detail

/// Limits the tiers deq's kernels may use to @p widest (process-wide; for tests, benchmarks and
/// reproducing results of a narrower CPU). limit_isa(isa::avx512) on an AVX-512 machine removes the limit.
/// @param widest The widest tier allowed.
/// @throws deq::invalid_argument when this CPU does not support @p widest.
inline void limit_isa(isa widest) {
    if (static_cast<int>(widest) > static_cast<int>(detected_isa())) {
        ::deq::detail::throw_invalid_argument("isa", to_string(widest),
                                              ::deq::detail::concat("is not supported by this CPU (widest: ",
                                                                    to_string(detected_isa()), ")"));
    }
    detail::isa_limit_storage().store(static_cast<int>(widest), std::memory_order_relaxed);
}

/// Removes a limit set by limit_isa() (the `DEQ_ISA` environment variable still applies).
inline void clear_isa_limit() noexcept { detail::isa_limit_storage().store(-1, std::memory_order_relaxed); }

/// The tier deq's kernels use now: the detected tier, lowered by `DEQ_ISA` and by limit_isa().
/// @return The active tier.
/// @throws deq::invalid_argument when `DEQ_ISA` names an unknown tier (a known tier wider than the CPU's
///         is no limit).
inline isa active_isa() {
    int tier = static_cast<int>(detected_isa());
    int const env = detail::isa_environment_limit();
    if (env >= 0 && env < tier) tier = env;
    int const limit = detail::isa_limit_storage().load(std::memory_order_relaxed);
    if (limit >= 0 && limit < tier) tier = limit;
    return static_cast<isa>(tier);
}

/// Restores the previous limit when it goes out of scope (tests: run a block on a narrower tier).
class scoped_isa_limit {
public:
    /// Limits the kernels to @p widest until destruction.
    /// @param widest The widest tier allowed (must be supported, see limit_isa()).
    explicit scoped_isa_limit(isa widest) : previous_(detail::isa_limit_storage().load(std::memory_order_relaxed)) {
        limit_isa(widest);
    }
    ~scoped_isa_limit() { detail::isa_limit_storage().store(previous_, std::memory_order_relaxed); }
    scoped_isa_limit(scoped_isa_limit const&) = delete;
    scoped_isa_limit& operator=(scoped_isa_limit const&) = delete;

private:
    int previous_;
};

}  // namespace deq::arch
