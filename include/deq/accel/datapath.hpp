/// @file
/// @brief The accelerator's arithmetic: `deq::accel::datapath_numerics` (fixed-point formats of the
/// high-precision datapath and of the exp unit), fixed-point conversions, and `deq::accel::exp_unit`,
/// which emulates Sanger's `ExpUnitFixPoint` (shift-add log2(e), 64-entry LUT) or an exact exp.
///
/// Sanger's exp unit (`hardware/src/main/scala/exp_unit/exp_unit.scala`, algorithm.md §1.6) computes
/// `exp(x) = 2^(x·log2 e)` with log2 e ≈ 1 + 1/2 − 1/16 = 1.4375 (`y = (x<<4) + (x<<3) − x` with 4
/// appended fraction bits), splits y into an integer part u and a fraction v, approximates
/// `2^v ≈ v + d(v)` with a 2^lut_bits-entry table indexed by the top lut_bits of v, and shifts by u.
/// The table entries of the RTL are `2^(k/2^lut) − k/2^lut` (its `Range.Double(x, x + 2^-lut, 2^-lut)`
/// holds the single point x, so the "midpoint of max and min" it computes is that point). The RTL
/// takes unsigned inputs; deq's emulation accepts x <= 0 (softmax after max subtraction), where u is
/// negative and the shift is an arithmetic right shift (floor). Fraction bits beyond the output format
/// are dropped (truncation), as a Chisel FixedPoint assignment to fewer fraction bits does.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "../core/error.hpp"

namespace deq::accel {

/// Which arithmetic the accelerator space uses for the outputs it writes.
enum class numerics_mode {
    host,        ///< The host float kernels (outputs identical to deq::exec::serial); the default.
    fixed_point  ///< The fixed-point datapath of deq/accel/fixed_point_attention.hpp.
};

/// How the exp unit computes exp(x).
enum class exp_method {
    exact,      ///< exp(x) rounded to the output format.
    sanger_lut  ///< Sanger's ExpUnitFixPoint (see the file documentation).
};

/// Fixed-point formats of the high-precision datapath (used with numerics_mode::fixed_point).
/// Operands q, k, v have the architecture's `operand_bits` with `operand_frac_bits` fraction bits.
struct datapath_numerics {
    /// Which arithmetic writes the outputs.
    numerics_mode mode = numerics_mode::host;
    /// Fraction bits of the q, k, v operands (two's complement, `operand_bits` wide).
    int operand_frac_bits = 10;
    /// Width of scores and exp values (the exp unit's format; Sanger's sparse-array unit test: 32).
    int score_bits = 32;
    /// Fraction bits of scores and exp values (Sanger's sparse-array unit test: 16).
    int score_frac_bits = 16;
    /// Width of the multiply-accumulate registers (score dot products, Σ exp, Σ exp·v).
    int accumulator_bits = 64;
    /// The exp unit's method.
    exp_method exp = exp_method::exact;
    /// Address bits of the exp LUT (Sanger: 6, i.e. 64 entries).
    int lut_bits = 6;

    /// Checks the formats against the operand width; throws deq::invalid_argument naming the field.
    /// @param operand_bits Width of the high-precision operands.
    void validate(int operand_bits) const {
        if (operand_frac_bits < 0 || operand_frac_bits >= operand_bits) {
            ::deq::detail::throw_invalid_argument("numerics.operand_frac_bits", operand_frac_bits,
                                           ::deq::detail::concat("must be in [0, operand_bits = ", operand_bits, ")"));
        }
        if (score_bits < 2 || score_bits > 48) ::deq::detail::throw_invalid_argument("numerics.score_bits", score_bits, "must be in [2, 48]");
        if (score_frac_bits < 0 || score_frac_bits >= score_bits - 1) {
            ::deq::detail::throw_invalid_argument("numerics.score_frac_bits", score_frac_bits,
                                           ::deq::detail::concat("must be in [0, score_bits - 1 = ", score_bits - 1,
                                                          ") (exp values up to 1.0 need an integer bit)"));
        }
        if (accumulator_bits < 2 || accumulator_bits > 64) {
            ::deq::detail::throw_invalid_argument("numerics.accumulator_bits", accumulator_bits, "must be in [2, 64]");
        }
        if (lut_bits < 1 || lut_bits > 12) ::deq::detail::throw_invalid_argument("numerics.lut_bits", lut_bits, "must be in [1, 12]");
        if (exp == exp_method::sanger_lut && lut_bits > score_frac_bits + 4) {
            ::deq::detail::throw_invalid_argument("numerics.lut_bits", lut_bits,
                                           ::deq::detail::concat("must be <= score_frac_bits + 4 = ", score_frac_bits + 4,
                                                          " (the LUT is addressed by fraction bits)"));
        }
        if (exp != exp_method::exact && exp != exp_method::sanger_lut) {
            ::deq::detail::throw_invalid_argument("numerics.exp", static_cast<int>(exp), "is not an exp_method");
        }
        if (mode != numerics_mode::host && mode != numerics_mode::fixed_point) {
            ::deq::detail::throw_invalid_argument("numerics.mode", static_cast<int>(mode), "is not a numerics_mode");
        }
    }
};

/// Whether the two's-complement integer @p v fits in @p bits bits.
/// @param v    The value.
/// @param bits Width, 1..64.
/// @return True when `-2^(bits-1) <= v < 2^(bits-1)`.
inline bool fits_signed(std::int64_t v, int bits) {
    if (bits >= 64) return true;
    std::int64_t const lim = std::int64_t{1} << (bits - 1);
    return v >= -lim && v < lim;
}

/// Number of bits needed to hold the unsigned value @p n (0 for 0).
/// @param n The value.
/// @return `floor(log2(n)) + 1`, or 0.
inline int bit_length(std::uint64_t n) {
    int b = 0;
    while (n != 0) {
        ++b;
        n >>= 1;
    }
    return b;
}

/// Rounds `x · 2^frac` to the nearest integer (ties to even).
/// @param x    The real value.
/// @param frac Fraction bits.
/// @return The fixed-point integer (unchecked; compare with fits_signed()).
inline std::int64_t to_fixed(double x, int frac) { return static_cast<std::int64_t>(std::nearbyint(std::ldexp(x, frac))); }

/// The exp unit: exp(x) for x <= 0 in a fixed-point format with `point` fraction bits (see the file
/// documentation for the LUT method).
class exp_unit {
public:
    /// Builds the unit (and its LUT).
    /// @param point    Fraction bits of input and output.
    /// @param method   Exact or Sanger's LUT approximation.
    /// @param lut_bits LUT address bits (sanger_lut only).
    exp_unit(int point, exp_method method, int lut_bits = 6) : point_(point), lut_bits_(lut_bits), method_(method) {
        if (point < 0 || point > 40) ::deq::detail::throw_invalid_argument("exp_unit.point", point, "must be in [0, 40]");
        if (method == exp_method::sanger_lut) {
            if (lut_bits < 1 || lut_bits > point + append_bits) {
                ::deq::detail::throw_invalid_argument("exp_unit.lut_bits", lut_bits,
                                               ::deq::detail::concat("must be in [1, point + 4 = ", point + append_bits, "]"));
            }
            std::size_t const n = std::size_t{1} << lut_bits;
            lut_.resize(n);
            for (std::size_t k = 0; k < n; ++k) {
                double const x = std::ldexp(static_cast<double>(k), -lut_bits);
                lut_[k] = to_fixed(std::exp2(x) - x, point + append_bits);
            }
        }
    }

    /// exp(x · 2^-point), in the same format.
    /// @param x Fixed-point input, <= 0.
    /// @return The fixed-point exponential (0 when it underflows the format).
    /// @throws deq::invalid_argument for a positive input.
    std::int64_t operator()(std::int64_t x) const {
        if (x > 0) ::deq::detail::throw_invalid_argument("exp_unit input", x, "must be <= 0 (scores minus the row maximum)");
        if (method_ == exp_method::exact) return to_fixed(std::exp(std::ldexp(static_cast<double>(x), -point_)), point_);
        int const vp = point_ + append_bits;
        std::int64_t const y = x * 23;  // (x<<4) + (x<<3) - x: x·1.4375 with 4 appended fraction bits
        std::int64_t const u = y >> vp;                  // floor (arithmetic shift), <= 0
        std::int64_t const v = y - u * (std::int64_t{1} << vp);  // fraction in [0, 2^vp)
        std::int64_t const d = lut_[static_cast<std::size_t>(v >> (vp - lut_bits_))];
        std::int64_t const z1 = v + d;
        std::int64_t const z2 = -u >= 62 ? 0 : (z1 >> (-u));
        return z2 >> append_bits;
    }

    /// @return Fraction bits of input and output.
    int point() const { return point_; }

private:
    static constexpr int append_bits = 4;
    int point_;
    int lut_bits_;
    exp_method method_;
    std::vector<std::int64_t> lut_;
};

}  // namespace deq::accel
