/// @file
/// @brief `deq::quant::quantizer<Format>`: a quantizer whose bit width and scheme are a compile-time
/// format type (`quantizer<deq::int4b_t>` is Sanger's symmetric 4-bit quantizer,
/// `quantizer<deq::uint8b_t>` an asymmetric 8-bit one).
#pragma once

#include <string_view>
#include <type_traits>

#include "../core/accumulator.hpp"
#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "../exec/execution_space.hpp"
#include "../numeric/int_b.hpp"
#include "../numeric/packed.hpp"
#include "bit_width.hpp"
#include "calibrate.hpp"
#include "granularity.hpp"
#include "params.hpp"
#include "quantize.hpp"
#include "spec.hpp"

namespace deq::quant {

/// A quantizer to the levels of @p Format: signed formats quantize symmetrically to
/// [-(2^(b-1) - 1), 2^(b-1) - 1], unsigned formats asymmetrically to [0, 2^b - 1] (scheme_of).
/// The operations are those of deq/quant/calibrate.hpp and deq/quant/quantize.hpp with the
/// spec `quant_spec::of<Format>(groups())`, writing and reading @p Format values (unpacked in a
/// tensor, or packed with deq::packed_array).
/// @tparam Format A non-const deq::int_b type.
template <int_b_type Format>
class quantizer {
    static_assert(!std::is_const_v<Format> && !std::is_volatile_v<Format>, "quantizer needs an unqualified int_b");

public:
    /// The level format.
    using format = Format;
    /// The scheme the format implies.
    static constexpr scheme kind = scheme_of<Format>;
    /// Bit width.
    static constexpr int bits = Format::bits;

    /// A quantizer with the given granularity.
    /// @param groups Which elements share a scale.
    explicit constexpr quantizer(granularity groups = granularity::per_tensor()) noexcept : groups_(groups) {}

    /// The granularity.
    /// @return The granularity given at construction.
    constexpr granularity groups() const noexcept { return groups_; }
    /// The equivalent run-time spec.
    /// @return `quant_spec::of<Format>(groups())`.
    constexpr quant_spec spec() const noexcept { return quant_spec::of<Format>(groups_); }

    /// Parameters from the data of @p x (deq::quant::calibrate).
    /// @tparam Space Host execution space.
    /// @tparam T     Element type.
    /// @param space Execution space instance.
    /// @param x     Tensor [B, H, L, d].
    /// @param name  Name of @p x in error messages.
    /// @return `deq::quant::calibrate(space, x, spec(), name)`: one scale and zero point per group of groups().
    template <exec::host_execution_space Space, class T>
    quant_params<accum_t<T>> calibrate(Space const& space, tensor_view<T const, 4> x, std::string_view name = "x") const {
        return quant::calibrate(space, x, spec(), name);
    }

    /// Quantizes @p x into @p Format levels (deq::quant::quantize).
    /// @tparam Space Host execution space.
    /// @tparam T     Element type.
    /// @param space  Execution space instance.
    /// @param x      Tensor [B, H, L, d].
    /// @param params Parameters; their scheme and bit width must be this quantizer's
    ///               (deq::invalid_argument naming `params.bits` / `params.kind` otherwise).
    /// @param out    Output levels, same shape as @p x.
    /// @param name   Name of @p x in error messages.
    template <exec::host_execution_space Space, class T>
    void quantize(Space const& space, tensor_view<T const, 4> x, quant_params<accum_t<T>> const& params,
                  tensor_view<Format, 4> out, std::string_view name = "x") const {
        require_matching(params);
        quant::quantize(space, x, params, out, name);
    }

    /// Quantizes @p x and packs the levels densely, in row-major order of @p x.
    /// @tparam Space Host execution space.
    /// @tparam T     Element type.
    /// @param space  Execution space instance.
    /// @param x      Tensor [B, H, L, d].
    /// @param params Parameters (checked as in quantize()).
    /// @param name   Name of @p x in error messages.
    /// @return The `x.size()` levels, packed densely in row-major order of @p x.
    template <exec::host_execution_space Space, class T>
    packed_array<Format> quantize_packed(Space const& space, tensor_view<T const, 4> x,
                                         quant_params<accum_t<T>> const& params, std::string_view name = "x") const {
        tensor<Format, 4> levels({x.extent(0), x.extent(1), x.extent(2), x.extent(3)});
        quantize(space, x, params, levels.view(), name);
        packed_array<Format> out(levels.size());
        deq::pack(space, tensor_view<Format const, 4>(levels.cview()), out.view());
        return out;
    }

    /// Dequantizes @p Format levels (deq::quant::dequantize).
    /// @tparam Space Host execution space.
    /// @tparam T     Output element type.
    /// @param space  Execution space instance.
    /// @param q      Levels [B, H, L, d].
    /// @param params Parameters (checked as in quantize()).
    /// @param out    Output, same shape as @p q.
    template <exec::host_execution_space Space, class T>
    void dequantize(Space const& space, tensor_view<Format const, 4> q, quant_params<accum_t<T>> const& params,
                    tensor_view<T, 4> out) const {
        require_matching(params);
        quant::dequantize(space, q, params, out);
    }

    /// Dequantizes densely packed levels (row-major order of @p out).
    /// @tparam Space Host execution space.
    /// @tparam T     Output element type.
    /// @param space  Execution space instance.
    /// @param q      Packed levels; must hold out.size() elements (deq::shape_error otherwise).
    /// @param params Parameters (checked as in quantize()).
    /// @param out    Output [B, H, L, d].
    template <exec::host_execution_space Space, class T>
    void dequantize_packed(Space const& space, packed_view<Format const> q, quant_params<accum_t<T>> const& params,
                           tensor_view<T, 4> out) const {
        tensor<Format, 4> levels({out.extent(0), out.extent(1), out.extent(2), out.extent(3)});
        deq::unpack(space, q, levels.view());
        dequantize(space, levels.cview(), params, out);
    }

private:
    template <class S>
    static void require_matching(quant_params<S> const& params) {
        if (params.bits != bits) {
            ::deq::detail::throw_invalid_argument("params.bits", params.bits,
                                                  ::deq::detail::concat("must be ", bits, " for a quantizer of ",
                                                                        format_name<Format>()));
        }
        if (params.kind != kind) {
            ::deq::detail::throw_invalid_argument("params.kind", to_string(params.kind),
                                                  ::deq::detail::concat("must be ", to_string(kind),
                                                                        " for a quantizer of ", format_name<Format>()));
        }
    }

    granularity groups_;
};

}  // namespace deq::quant
