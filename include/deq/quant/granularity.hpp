/// @file
/// @brief `deq::quant::granularity`: which elements of a [B, H, L, d] tensor share one scale.
#pragma once

#include <string>

#include "../config.hpp"
#include "../core/error.hpp"
#include "../core/tensor.hpp"

namespace deq::quant {

/// The grid of quantization groups of a [B, H, L, d] tensor: `batch` × `heads` × `blocks` groups,
/// stored in that (row-major) order.
struct group_shape {
    /// Groups along the batch dimension (B, or 1 per tensor).
    index_t batch = 1;
    /// Groups along the head dimension (H, or 1 per tensor).
    index_t heads = 1;
    /// Groups along the row dimension per (b, h): L per row, ⌈L / block⌉ per block, 1 otherwise.
    index_t blocks = 1;

    /// Total number of groups.
    /// @return `batch * heads * blocks`.
    DEQ_HOST_DEVICE constexpr index_t count() const noexcept { return batch * heads * blocks; }
    /// Printable form "[batch, heads, blocks]".
    /// @return "[batch, heads, blocks]" with the three extents, e.g. "[2, 8, 1]".
    std::string to_string() const {
        return "[" + std::to_string(batch) + ", " + std::to_string(heads) + ", " + std::to_string(blocks) + "]";
    }
    /// Equality of all three extents.
    /// @param a Left operand.
    /// @param b Right operand.
    friend constexpr bool operator==(group_shape const& a, group_shape const& b) noexcept = default;
};

/// Which elements of a tensor shaped [B, H, L, d] share one scale (and zero point):
/// per tensor (one group), per head (one per (b, h)), per row (one per (b, h, i): per token), or
/// per block (one per (b, h) and run of `block_size` consecutive rows; the last block of a head
/// may be shorter).
class granularity {
public:
    /// The grouping.
    enum class kind {
        /// One group.
        tensor,
        /// One group per (b, h).
        head,
        /// One group per (b, h, i).
        row,
        /// One group per (b, h, ⌊i / block_size⌋).
        block
    };

    /// Per tensor.
    constexpr granularity() noexcept = default;

    /// One scale for the whole tensor.
    /// @return A granularity of kind::tensor.
    static constexpr granularity per_tensor() noexcept { return granularity(kind::tensor, 0); }
    /// One scale per (b, h).
    /// @return A granularity of kind::head.
    static constexpr granularity per_head() noexcept { return granularity(kind::head, 0); }
    /// One scale per (b, h, i): per row / token.
    /// @return A granularity of kind::row (block_size() 1).
    static constexpr granularity per_row() noexcept { return granularity(kind::row, 1); }
    /// One scale per (b, h) and block of @p block_size consecutive rows.
    /// @param block_size Rows per block, >= 1 (deq::invalid_argument naming `block_size` otherwise).
    /// @return A granularity of kind::block with block_size() @p block_size.
    static granularity per_block(index_t block_size) {
        if (block_size < 1) ::deq::detail::throw_invalid_argument("block_size", block_size, "must be >= 1");
        return granularity(kind::block, block_size);
    }

    /// The grouping kind.
    /// @return The kind: tensor, head, row or block.
    DEQ_HOST_DEVICE constexpr kind type() const noexcept { return kind_; }
    /// Rows per group along L: 1 per row, the block size per block, 0 (all rows) otherwise.
    /// @return 1 for kind::row, the block size for kind::block, 0 for kind::tensor and kind::head.
    DEQ_HOST_DEVICE constexpr index_t block_size() const noexcept { return block_; }

    /// The group grid of a tensor with @p batch × @p heads × @p rows rows.
    /// @param batch Extent B.
    /// @param heads Extent H.
    /// @param rows  Extent L.
    /// @return {1, 1, 1} per tensor, {batch, heads, 1} per head, {batch, heads, rows} per row,
    ///         {batch, heads, ⌈rows / block_size⌉} per block.
    DEQ_HOST_DEVICE constexpr group_shape shape_for(index_t batch, index_t heads, index_t rows) const noexcept {
        switch (kind_) {
            case kind::tensor: return {1, 1, 1};
            case kind::head: return {batch, heads, 1};
            case kind::row: return {batch, heads, rows};
            case kind::block: return {batch, heads, (rows + block_ - 1) / block_};
        }
        return {1, 1, 1};
    }

    /// Flat index of the group of row (@p b, @p h, @p i) in the grid @p g (from shape_for()).
    /// @param b Batch index.
    /// @param h Head index.
    /// @param i Row index.
    /// @param g The group grid of the tensor.
    /// @return The flat (row-major) group index, in [0, g.count()).
    DEQ_HOST_DEVICE constexpr index_t group_of(index_t b, index_t h, index_t i, group_shape const& g) const noexcept {
        if (kind_ == kind::tensor) return 0;
        index_t const bi = kind_ == kind::head ? 0 : i / block_;
        return (b * g.heads + h) * g.blocks + bi;
    }

    /// Printable form: "per_tensor", "per_head", "per_row" or "per_block(32)".
    /// @return "per_tensor", "per_head", "per_row" or "per_block(N)" with N the block size.
    std::string describe() const {
        switch (kind_) {
            case kind::tensor: return "per_tensor";
            case kind::head: return "per_head";
            case kind::row: return "per_row";
            case kind::block: return "per_block(" + std::to_string(block_) + ")";
        }
        return "per_tensor";
    }

    /// Same kind and block size.
    /// @param a Left operand.
    /// @param b Right operand.
    friend constexpr bool operator==(granularity const& a, granularity const& b) noexcept = default;

private:
    constexpr granularity(kind k, index_t block) noexcept : kind_(k), block_(block) {}

    kind kind_ = kind::tensor;
    index_t block_ = 0;
};

}  // namespace deq::quant
