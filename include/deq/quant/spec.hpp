/// @file
/// @brief `deq::quant::quant_spec`: the run-time description of a quantizer (scheme, bit width,
/// granularity).
#pragma once

#include <string>

#include "../core/error.hpp"
#include "../numeric/int_b.hpp"
#include "bit_width.hpp"
#include "granularity.hpp"
#include "scheme.hpp"

namespace deq::quant {

/// What to quantize to: a scheme, a bit width validated at use to [2, 16], and a granularity.
struct quant_spec {
    /// Symmetric (abs-max) or asymmetric (min/max with zero point).
    scheme kind = scheme::symmetric;
    /// Bit width, 2..16.
    int bits = 4;
    /// Which elements share a scale.
    granularity groups{};

    /// Throws deq::invalid_argument naming `bits` and its value unless it is in [2, 16].
    void validate() const { validate_bits(bits); }

    /// The spec a compile-time format implies: its bit width and scheme_of<Format>.
    /// @tparam Format An int_b type.
    /// @param groups The granularity.
    /// @return `quant_spec{scheme_of<Format>, Format::bits, groups}`.
    template <int_b_type Format>
    static constexpr quant_spec of(granularity groups = granularity::per_tensor()) noexcept {
        return quant_spec{scheme_of<Format>, std::remove_cv_t<Format>::bits, groups};
    }

    /// Printable form, e.g. "symmetric 4-bit per_row".
    /// @return The scheme, the bit width and the granularity's describe(), e.g. "symmetric 4-bit per_row".
    std::string describe() const {
        return ::deq::detail::concat(to_string(kind), " ", bits, "-bit ", groups.describe());
    }
};

}  // namespace deq::quant
