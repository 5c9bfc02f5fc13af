/// @file
/// @brief The flash-style attention path of deq::attention (internal): tiles of 64 keys, online softmax,
/// register-blocked micro-kernels (deq/arch/attention_avx512.hpp), no L x L buffer.
///
/// It runs when the score type is float (float, float16 and bfloat16 inputs) and the CPU tier is
/// AVX-512 (with a `refined` mask, the predicted scores must be contiguous along the keys); the
/// reference row kernel (attention_kernel.hpp) runs otherwise, and also for the rows the flash path
/// does not handle itself:
/// - rows with no kept real key (every empty_row_policy), whose reference arithmetic adds -10000 to
///   every entry — except, under the reference policy without a refined mask, where the flash path
///   computes the reference kernel's own score bits (arch::avx512::flash_reference_scores(): its
///   operations in its order, which the -10000 rounding needs; only where the reference is compiled
///   without FMA contraction) and then its own softmax and P·V;
/// - rows where a score was not finite (finite inputs whose scores overflow), so that the reference
///   kernel's checks decide.
/// A *sparse row* (a kept mask, no refined one, at most 1 / flash_sparse_row_fraction of the keys kept)
/// computes only its kept entries, one dot product each, when the bound below proves every pruned weight
/// exactly 0 against its largest kept score; otherwise it joins the tiles.
/// Every other row is computed with exactly the reference's score arithmetic (`q·k / sqrt(d)`, the
/// predicted Ŝ where the entry is not refined, then -10000 for a pruned entry, then -10000 for a padded
/// key), so results agree with the reference kernel to rounding (about 1e-6 relative;
/// tests/unit/attention). Work is skipped per tile of 64 keys and group of 6 rows: a tile in which no
/// row of the group has a refined entry uses the predicted scores without computing q·k, one with few
/// refined entries computes only those (one dot product each), the others the whole register tile. With a
/// kept mask (and no refined one), P·V of a group's tile reads only the values of the keys a row of the
/// group keeps, when for every row of the group the reference kernel's bound (‖q‖·max‖k‖/√d, plus -10000)
/// lies more than 800 below the row's running maximum: that proves every pruned entry's weight exactly 0,
/// so the outputs do not change (nor does this depend on `attention_options::skip_pruned`); a tile in which
/// no row keeps an entry is skipped on the same proof (`attention_options::skip_pruned`; not with a
/// refined mask).
/// `attention_stats::exact_scores` counts the q·k products of the computed tiles.
///
/// Work items are (batch, head, block of flash_block_rows query rows); each processes its rows in
/// groups of 6 over all key tiles. Keys are packed transposed once per (batch, head): before the launch, or
/// with a kept mask (and no refined one) by the first work item of the head that needs the tiles (heads
/// whose rows are all sparse rows never pack them).
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <new>
#include <type_traits>
#include <utility>
#include <vector>

#include "../../arch/attention_avx512.hpp"
#include "../../arch/isa.hpp"
#include "../../core/accumulator.hpp"
#include "../../core/bit_mask.hpp"
#include "../../core/checked_size.hpp"
#include "../../core/padding.hpp"
#include "../../core/tensor.hpp"
#include "../../exec/execution_space.hpp"
#include "../../predict/detail/predictor_tiles.hpp"
#include "../options.hpp"
#include "attention_kernel.hpp"

namespace deq::detail {

/// A row with a kept mask runs as a sparse row when at most 1 / flash_sparse_row_fraction of its keys are kept.
inline constexpr index_t flash_sparse_row_fraction = 4;

/// Query rows per flash work item (8 groups of 6 share each key tile while it is in the L1 cache).
inline constexpr index_t flash_block_rows = 48;

/// A std::allocator-like allocator of 64-byte aligned storage (the vector kernels' loads then never
/// split a cache line).
/// @tparam T Element type.
template <class T>
struct cache_aligned_allocator {
    /// The element type.
    using value_type = T;
    cache_aligned_allocator() = default;
    /// Converting constructor.
    template <class U>
    constexpr cache_aligned_allocator(cache_aligned_allocator<U> const&) noexcept {}
    /// Allocates @p n elements aligned to 64 bytes.
    /// @param n Element count.
    /// @return The storage.
    T* allocate(std::size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t{64})); }
    /// Default-initialises an element: `resize()` leaves new arithmetic elements uninitialised (a buffer
    /// that is written before it is read is not zero-filled first); `assign(n, value)` still fills.
    /// @param p Where.
    template <class U>
    void construct(U* p) noexcept(std::is_nothrow_default_constructible_v<U>) {
        ::new (static_cast<void*>(p)) U;
    }
    /// Constructs an element from @p args.
    /// @param p    Where.
    /// @param args Constructor arguments.
    template <class U, class... A>
    void construct(U* p, A&&... args) {
        ::new (static_cast<void*>(p)) U(std::forward<A>(args)...);
    }
    /// Frees storage from allocate().
    /// @param p The storage.
    void deallocate(T* p, std::size_t) noexcept { ::operator delete(p, std::align_val_t{64}); }
    /// @return True: all instances are interchangeable.
    friend bool operator==(cache_aligned_allocator const&, cache_aligned_allocator const&) noexcept { return true; }
};

/// A std::vector whose storage is 64-byte aligned.
/// @tparam T Element type.
template <class T>
using aligned_vector = std::vector<T, cache_aligned_allocator<T>>;

/// A scratch buffer of at least @p n elements owned by the calling thread and reused by its later calls
/// (one buffer per @p Slot and type; it only grows). Work items of the host spaces run to completion on
/// one thread, so a work item may use it until it returns.
/// @tparam T    Element type.
/// @tparam Slot Distinguishes buffers used at the same time.
/// @param n Number of elements needed.
/// @return The buffer (contents unspecified).
template <class T, int Slot>
T* thread_scratch(std::size_t n) {
    thread_local aligned_vector<T> buffer;
    if (buffer.size() < n) buffer.resize(n);
    return buffer.data();
}

/// Whether the flash path is available for score type @p S on this CPU (tier AVX-512).
/// @tparam S Score type.
/// @return True for float scores on the AVX-512 tier.
template <class S>
bool flash_available() {
#if DEQ_ARCH_X86
    if constexpr (std::is_same_v<S, float>) return arch::active_isa() == arch::isa::avx512;
#endif
    return false;
}

/// Whether the flash path runs a call with these options (see the file documentation).
/// @tparam T Element type.
/// @tparam S Score type.
/// @param options The call's options.
/// @return True when the flash path applies.
template <class T, class S>
bool flash_applies(attention_options<S> const& options) {
#if DEQ_ARCH_X86
    if constexpr (std::is_same_v<S, float>) {
        bool const predicted_ok = options.refined.empty() || options.predicted.stride(3) == 1;
        return predicted_ok && arch::active_isa() == arch::isa::avx512;
    }
#endif
    (void)options;
    return false;
}

#if DEQ_ARCH_X86

/// Per-call data shared by the flash work items.
struct flash_shared {
    mutable aligned_vector<float> kt;    ///< Transposed key tiles of every (b, h) (packed lazily where
                                         ///< tiles_packed is set, by the first work item of the head that needs them).
    mutable std::unique_ptr<std::once_flag[]> tiles_packed;  ///< Per (b, h), or null: kt packed before the launch.
    index_t kt_stride = 0;               ///< Floats per (b, h) in kt.
    aligned_vector<float> v;             ///< Values converted to float (16-bit inputs), [B*H*Lk][dv]; empty: use v itself.
    aligned_vector<float> k;             ///< With a refined mask, keys as contiguous float rows [B*H*Lk][dim] when
                                         ///< k itself is not (16-bit inputs, strided views); empty otherwise.
    std::vector<std::uint64_t> padded;   ///< Padded-key words per (b, tile); empty without padding.
    std::vector<index_t> real_keys;      ///< Real keys per sequence.
    std::vector<double> key_norm_max;    ///< Largest key norm per (b, h) (the bound of exact skipping).
    index_t tiles = 0;                   ///< Key tiles.
};

/// Packs the transposed key tiles of (b, h) = @p bh into `shared.kt`.
/// @tparam T Element type.
/// @param k      Keys.
/// @param shared The call's shared data.
/// @param bh     b * heads + h.
template <class T>
void flash_pack_tiles(tensor_view<T const, 4> const& k, flash_shared const& shared, index_t bh) {
    index_t const heads = k.extent(1), b = bh / heads, h = bh - b * heads;
    arch::avx512::pack_keys_transposed(&k(b, h, 0, 0), k.stride(2), k.stride(3), k.extent(2), k.extent(3),
                                       shared.kt.data() + bh * shared.kt_stride);
}

/// Kernel: packs the keys (and, for 16-bit inputs, the values) of one (b, h).
template <class T>
struct flash_pack_kernel {
    tensor_view<T const, 4> k;  ///< Keys.
    tensor_view<T const, 4> v;  ///< Values.
    flash_shared* shared;       ///< Output.

    void operator()(index_t bh) const {
        index_t const heads = k.extent(1), lk = k.extent(2), dim = k.extent(3), dv = v.extent(3);
        index_t const b = bh / heads, h = bh - b * heads;
        if (!shared->tiles_packed) flash_pack_tiles(k, *shared, bh);
        if (!shared->key_norm_max.empty()) attention_key_norm_kernel<T, float>{k, shared->key_norm_max.data()}(bh);
        if (!shared->k.empty()) {
            float* dst = shared->k.data() + bh * lk * dim;
            for (index_t j = 0; j < lk; ++j)
                for (index_t t = 0; t < dim; ++t) dst[j * dim + t] = static_cast<float>(k(b, h, j, t));
        }
        if (!shared->v.empty()) {
            float* dst = shared->v.data() + bh * lk * dv;
            for (index_t j = 0; j < lk; ++j)
                for (index_t t = 0; t < dv; ++t) dst[j * dv + t] = static_cast<float>(v(b, h, j, t));
        }
    }
};

/// Kernel: one work item per (b, h, block of flash_block_rows rows).
template <class T>
struct flash_attention_kernel {
    tensor_view<T const, 4> q;                  ///< Queries.
    tensor_view<T const, 4> k;                  ///< Keys.
    tensor_view<T const, 4> v;                  ///< Values.
    tensor_view<T, 4> out;                      ///< Output.
    key_padding padding;                        ///< Key padding.
    const_bit_mask_view kept;                   ///< Kept set or empty.
    const_bit_mask_view refined;                ///< Refined set or empty.
    tensor_view<float const, 4> predicted;      ///< Ŝ (with `refined`).
    empty_row_policy policy;                    ///< Empty-row policy (for the reference rows).
    bool skip_pruned;                           ///< Skip pruned tiles where that is exact.
    flash_shared const* shared;                 ///< Packed keys and padding words.
    attention_row_record* records;              ///< One record per row.
    predictor_operands<float, std::int8_t> const* fused;  ///< Computes Ŝ of unrefined entries, or null (use `predicted`).

    /// The reference kernel for one row r (scratch given; @p row_scores: the row's Ŝ in fused mode).
    void reference_row(index_t r, float* scratch, float const* row_scores) const {
        tensor_view<float const, 4> pred = predicted;
        if (row_scores != nullptr) {  // a broadcast view: every (b, h, i) reads this row's Ŝ
            pred = tensor_view<float const, 4>(row_scores, {q.extent(0), q.extent(1), q.extent(2), k.extent(2)}, {0, 0, 0, 1});
        }
        attention_row_kernel<T, float> kernel{q, k, v, out, padding, kept, refined, pred, policy, nullptr, scratch, records, r};
        kernel(0);
    }

    // Compiled for the AVX-512 tier it runs on (inlined micro-kernels, popcnt); so are its lambdas.
    DEQ_TARGET_AVX512 void operator()(index_t item) const {
        index_t const heads = q.extent(1), lq = q.extent(2), dim = q.extent(3);
        index_t const lk = k.extent(2), dv = v.extent(3);
        index_t const blocks = lq / flash_block_rows + (lq % flash_block_rows != 0 ? 1 : 0);
        index_t const bh = item / blocks;
        index_t const i0 = (item - bh * blocks) * flash_block_rows;
        index_t const i1 = std::min(lq, i0 + flash_block_rows);
        index_t const b = bh / heads, h = bh - b * heads;
        index_t const tiles = shared->tiles;
        index_t const ldacc = dv / 16 * 16 + (dv % 16 != 0 ? 16 : 0);
        constexpr int G = arch::avx512::flash_rows;
        constexpr index_t R = flash_block_rows;

        arch::avx512::flash_head head;
        head.kt = shared->kt.data() + bh * shared->kt_stride;
        if (shared->v.empty()) {
            head.v = reinterpret_cast<float const*>(&v(b, h, 0, 0));
            head.v_row = v.stride(2);
        } else {
            head.v = shared->v.data() + bh * lk * dv;
            head.v_row = dv;
        }
        head.lk = lk;
        head.dim = dim;
        head.dv = dv;
        head.sqrt_d = static_cast<float>(std::sqrt(static_cast<double>(dim)));
        head.padded = shared->padded.empty() ? nullptr : shared->padded.data() + b * tiles;
        if (!shared->k.empty()) {
            head.k_rows = shared->k.data() + bh * lk * dim;
            head.k_row = dim;
        } else if ((!refined.empty() || !kept.empty()) && lk > 0) {
            head.k_rows = reinterpret_cast<float const*>(&k(b, h, 0, 0));
            head.k_row = k.stride(2);
        }

        // Scratch of this thread (reused by its work items): queries, accumulators, outputs, probabilities
        // and, in fused mode, the block's predicted rows.
        bool const fused_rows = fused != nullptr && !refined.empty();
        float* const qbuf = thread_scratch<float, 0>(static_cast<std::size_t>(R * dim));
        float* const acc = thread_scratch<float, 1>(static_cast<std::size_t>(R * ldacc));
        float* const obuf = thread_scratch<float, 2>(static_cast<std::size_t>(R * ldacc));
        float* const pbuf = thread_scratch<float, 3>(static_cast<std::size_t>(G * arch::avx512::flash_keys));
        float* const pred = fused_rows ? thread_scratch<float, 4>(static_cast<std::size_t>(R * lk)) : nullptr;
        std::int32_t* const dots =
            fused_rows ? thread_scratch<std::int32_t, 0>(static_cast<std::size_t>(predictor_tile_rows * predictor_key_chunk)) : nullptr;

        auto reference = [&](index_t r) {
            float* const scratch = thread_scratch<float, 5>(static_cast<std::size_t>(lk + dv + dim));
            float* row_scores = nullptr;
            if (fused_rows) {
                row_scores = thread_scratch<float, 6>(static_cast<std::size_t>(lk));
                for (index_t j0 = 0; j0 < lk; j0 += predictor_key_chunk) {
                    predictor_score_tile(*fused, bh, r - bh * lq, 1, j0, std::min(predictor_key_chunk, lk - j0), row_scores + j0, lk, dots);
                }
            }
            reference_row(r, scratch, row_scores);
        };

        // The keys of tile w that exist (all 64 but in a partial last tile).
        auto tile_range = [&](index_t w) {
            return w + 1 < tiles || lk % 64 == 0 ? ~std::uint64_t{0} : (std::uint64_t{1} << (lk % 64)) - 1;
        };
        double const sqrt_d = std::sqrt(static_cast<double>(dim));
        float const inv_sqrt_d = static_cast<float>(1.0 / sqrt_d);
        bool const direct = std::is_same_v<T, float> && out.stride(3) == 1;
        // A sparse row (kept mask, no refined one, few kept keys): only the kept entries are computed, one
        // by one, when the reference kernel's bound proves every other weight exactly 0 against the largest
        // kept score (see sparse_row()).
        bool const sparse_rows = !kept.empty() && refined.empty() && !shared->key_norm_max.empty();
        enum class sparse_status { done, tiles, bad };
        // The softmax over the kept keys of row i (q pre-scaled, `bound` the reference's bound of its pruned
        // scores): done (output written), tiles (the bound does not prove the pruned weights 0: use the
        // tiles), or bad (a non-finite score or output: the reference kernel decides). Without skip_pruned,
        // the pruned scores are computed as well, and each must give a weight of exactly 0.
        auto sparse_row = [&](index_t i, float const* qr, double bound, std::uint64_t const* kept_row, float* buf,
                              index_t& exact) DEQ_TARGET_AVX512 {
            index_t* const keys = thread_scratch<index_t, 7>(static_cast<std::size_t>(lk));
            float* const sc = thread_scratch<float, 7>(static_cast<std::size_t>(lk));
            index_t count = 0;
            for (index_t w = 0; w < tiles; ++w)
                for (std::uint64_t x = kept_row[w] & tile_range(w); x != 0; x &= x - 1) keys[count++] = w * 64 + std::countr_zero(x);
            float m = 0;
            if (!arch::avx512::flash_sparse_scores(head, qr, keys, count, sc, m)) return sparse_status::bad;
            if (!attention_skip_proved(bound, static_cast<double>(m))) return sparse_status::tiles;
            exact = count;
            if (!skip_pruned) {
                for (index_t j = 0; j < lk; ++j) {
                    if (attention_bit(kept_row, j)) continue;
                    float x = arch::avx512::flash_dot(qr, head.k_rows + j * head.k_row, dim) + -10000.0f;
                    if (head.padded != nullptr && attention_bit(head.padded, j)) x = x + -10000.0f;
                    ++exact;
                    if (!(static_cast<double>(x) - static_cast<double>(m) < -attention_skip_margin)) return sparse_status::tiles;
                }
            }
            float* const o = direct ? reinterpret_cast<float*>(&out(b, h, i, 0)) : buf;
            if (!arch::avx512::flash_sparse_softmax_pv(head, keys, count, sc, m, o)) return sparse_status::bad;
            if constexpr (!std::is_same_v<T, float>) {
                for (index_t t = 0; t < dv; ++t) out(b, h, i, t) = static_cast<T>(o[t]);
            } else if (!direct) {
                for (index_t t = 0; t < dv; ++t) out(b, h, i, t) = o[t];
            }
            return sparse_status::done;
        };

        // The key tiles of this head, packed by the first of its items that needs them (where packing is lazy).
        auto ensure_tiles = [&] {
            if (shared->tiles_packed) std::call_once(shared->tiles_packed[static_cast<std::size_t>(bh)], [&] { flash_pack_tiles(k, *shared, bh); });
        };

        // A row without a kept real key under the reference policy: every score gets -10000, whose float
        // rounding (a 2^-10 grid) would amplify any other rounding of q·k, so the scores are the reference
        // kernel's own bits (flash_reference_scores(), its operations in its order; only where the reference
        // is compiled without FMA contraction), then the softmax and P·V of the flash path (to rounding).
        // False: the reference kernel decides (a score or output not finite).
#if defined(__FMA__) || defined(__FP_FAST_FMAF)
        bool const fast_empty = false;  // the reference may contract q_t k_t into FMAs: it runs itself
#else
        bool const fast_empty = policy == empty_row_policy::reference && refined.empty() && !kept.empty() && lk > 0;
#endif
        auto empty_row = [&](index_t i, index_t r) DEQ_TARGET_AVX512 {
            float* const qi = thread_scratch<float, 8>(static_cast<std::size_t>(dim + dv));
            float* const o = qi + dim;
            T const* qsrc = &q(b, h, i, 0);
            for (index_t t = 0; t < dim; ++t) qi[t] = static_cast<float>(qsrc[t * q.stride(3)]);
            index_t* const keys = thread_scratch<index_t, 7>(static_cast<std::size_t>(lk));
            float* const sc = thread_scratch<float, 7>(static_cast<std::size_t>(lk));
            float m = 0;
            ensure_tiles();
            if (!arch::avx512::flash_reference_scores(head, qi, kept.row(b, h, i), k.stride(3) == 1, sc, m)) return false;
            for (index_t j = 0; j < lk; ++j) keys[j] = j;
            if (!arch::avx512::flash_sparse_softmax_pv(head, keys, lk, sc, m, o)) return false;
            for (index_t t = 0; t < dv; ++t) out(b, h, i, t) = static_cast<T>(o[t]);
            records[r].exact_scores = lk;
            return true;
        };

        // The block's rows: a reference row for each row without a kept real key, flash rows otherwise.
        arch::avx512::flash_row rows[R];
        index_t ids[R];
        double bounds[R];
        index_t computed[R];
        int n = 0;
        for (index_t i = i0; i < i1; ++i) {
            index_t const r = bh * lq + i;
            std::uint64_t const* kept_row = kept.empty() ? nullptr : kept.row(b, h, i);
            std::uint64_t const* refined_row = refined.empty() ? nullptr : refined.row(b, h, i);
            attention_row_record rec;
            index_t kept_keys = 0;  // kept keys, padded ones included
            if (kept_row == nullptr && refined_row == nullptr) {
                rec.kept_real = shared->real_keys[static_cast<std::size_t>(b)];
                rec.high_real = rec.kept_real;
            } else if (head.padded == nullptr && refined_row == nullptr) {  // every key real, every kept entry high
                for (index_t w = 0; w < tiles; ++w) kept_keys += std::popcount(kept_row[w] & tile_range(w));
                rec.kept_real = kept_keys;
                rec.high_real = kept_keys;
            } else {
                for (index_t w = 0; w < tiles; ++w) {
                    std::uint64_t const in_range = tile_range(w);
                    std::uint64_t const real = (head.padded != nullptr ? ~head.padded[w] : ~std::uint64_t{0}) & in_range;
                    std::uint64_t const kw = (kept_row != nullptr ? kept_row[w] : ~std::uint64_t{0}) & real;
                    rec.kept_real += std::popcount(kw);
                    if (kept_row != nullptr) kept_keys += std::popcount(kept_row[w] & in_range);
                    rec.high_real += std::popcount(refined_row != nullptr ? kw & refined_row[w] : kw);
                }
            }
            records[r] = rec;
            if (rec.kept_real == 0) {  // no kept real key: the reference arithmetic of the policy
                if (!(fast_empty && empty_row(i, r))) reference(r);
                continue;
            }
            arch::avx512::flash_row& row = rows[n];
            row = arch::avx512::flash_row{};
            float* qr = qbuf + n * dim;
            T const* qsrc = &q(b, h, i, 0);
            index_t const qs = q.stride(3);
            for (index_t t = 0; t < dim; ++t) qr[t] = static_cast<float>(qsrc[t * qs]) * inv_sqrt_d;  // scores = q·k / sqrt(d)
            if (!shared->key_norm_max.empty()) {  // the skipping bound needs ‖q_i‖
                double const qn = attention_bound_sum_squares(dim, [&](index_t t) { return static_cast<double>(static_cast<float>(qsrc[t * qs])); });
                bounds[n] = attention_skip_bound<float>(qn, shared->key_norm_max[static_cast<std::size_t>(bh)], dim);
            }
            if (sparse_rows && kept_keys * flash_sparse_row_fraction <= lk) {
                index_t exact = 0;
                sparse_status const st = sparse_row(i, qr, bounds[n], kept_row, obuf + n * ldacc, exact);
                if (st == sparse_status::bad) {
                    reference(r);
                    continue;
                }
                if (st == sparse_status::done) {
                    records[r].exact_scores = exact;
                    continue;
                }
            }
            row.q = qr;
            row.kept = kept_row;
            row.refined = refined_row;
            row.predicted = refined_row == nullptr ? nullptr : (fused_rows ? pred + n * lk : &predicted(b, h, i, 0));
            row.out = direct ? reinterpret_cast<float*>(&out(b, h, i, 0)) : obuf + n * ldacc;
            ids[n] = r;
            computed[n] = 0;
            ++n;
        }
        if (n == 0) return;
        ensure_tiles();
        int const groups = (n + G - 1) / G;
        auto group_size = [&](int g) { return std::min(G, n - g * G); };

        if (fused_rows) {  // Ŝ of every flash row, runs of consecutive rows at a time
            for (int g = 0; g < n;) {
                int e = g + 1;
                while (e < n && e - g < predictor_tile_rows && ids[e] == ids[e - 1] + 1) ++e;
                for (index_t j0 = 0; j0 < lk; j0 += predictor_key_chunk) {
                    index_t const keys = std::min(predictor_key_chunk, lk - j0);
                    predictor_score_tile(*fused, bh, ids[g] - bh * lq, e - g, j0, keys, pred + g * lk + j0, lk, dots);
                }
                g = e;
            }
        }
        std::fill(acc, acc + n * ldacc, 0.0f);

        // Every group of 6 rows runs over the key tiles; the tile loop is outside the group loop, so a
        // tile's 64 keys and values stay in the L1 cache for all the groups of the block.
        // Whether every row of group g has a running maximum that the reference kernel's bound, plus the
        // -10000 penalty, lies more than 800 below: then every pruned entry's weight is exactly 0.
        auto pruned_weights_zero = [&](int g) {
            for (int x = g * G; x < g * G + group_size(g); ++x) {
                if (!rows[x].started || !attention_skip_proved(bounds[x], static_cast<double>(rows[x].m))) return false;
            }
            return true;
        };

        auto compute = [&](int g, index_t tile) DEQ_TARGET_AVX512 {
            using arch::avx512::flash_scores;
            int const ng = group_size(g);
            arch::avx512::flash_row* gr = rows + g * G;
            index_t const nk = std::min<index_t>(arch::avx512::flash_keys, lk - tile * arch::avx512::flash_keys);
            flash_scores scores = flash_scores::dense;
            std::uint64_t const in_range = nk == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << nk) - 1;
            if (refined.empty() && !kept.empty()) {  // P·V over the kept keys only, when the others' weights are 0
                std::uint64_t any = 0;
                for (int x = 0; x < ng; ++x) any |= gr[x].kept[tile] & in_range;
                if (any != in_range && pruned_weights_zero(g)) scores = flash_scores::kept;
            }
            if (!refined.empty()) {  // exact scores only where refined: none, one by one, or the whole tile
                int count = 0;
                for (int x = 0; x < ng; ++x) count += std::popcount(gr[x].refined[tile] & in_range);
                scores = count == 0 ? flash_scores::none
                         : count <= arch::avx512::flash_sparse_per_row * ng ? flash_scores::sparse
                                                                            : flash_scores::dense;
                if (scores == flash_scores::sparse) {
                    for (int x = 0; x < ng; ++x) computed[g * G + x] += std::popcount(gr[x].refined[tile] & in_range);
                }
            }
            arch::avx512::flash_tile_rows(ng, head, gr, tile, acc + g * G * ldacc, ldacc, pbuf, scores);
            if (scores == flash_scores::dense || scores == flash_scores::kept) {
                for (int x = 0; x < ng; ++x) computed[g * G + x] += nk;
            }
        };
        if (kept.empty() || !refined.empty()) {
            for (index_t tile = 0; tile < tiles; ++tile)
                for (int g = 0; g < groups; ++g) compute(g, tile);
        } else {
            // Tiles with a kept entry in the block first; then a tile without one is skipped for a group
            // when, for each of its rows, the tile's entries (exact score <= bound, plus -10000) sit more
            // than 800 below the row's running maximum, so exp() of them is exactly 0 (the reference
            // kernel's rule). The order is the same with and without skipping: such a computed tile adds 0.
            auto any_kept = [&](index_t tile) DEQ_TARGET_AVX512 {
                for (int x = 0; x < n; ++x)
                    if (rows[x].kept[tile] != 0) return true;
                return false;
            };
            for (index_t tile = 0; tile < tiles; ++tile)
                if (any_kept(tile))
                    for (int g = 0; g < groups; ++g) compute(g, tile);
            for (index_t tile = 0; tile < tiles; ++tile) {
                if (any_kept(tile)) continue;
                for (int g = 0; g < groups; ++g) {
                    if (!(skip_pruned && pruned_weights_zero(g))) compute(g, tile);
                }
            }
        }
        for (int g = 0; g < groups; ++g) arch::avx512::flash_finish(group_size(g), rows + g * G, dv, acc + g * G * ldacc, ldacc);
        for (int x = 0; x < n; ++x) {
            index_t const r = ids[x];
            index_t const i = r - bh * lq;
            if (rows[x].bad) {
                reference(r);
                continue;
            }
            if constexpr (!std::is_same_v<T, float>) {
                for (index_t t = 0; t < dv; ++t) out(b, h, i, t) = static_cast<T>(rows[x].out[t]);
            } else if (out.stride(3) != 1) {
                for (index_t t = 0; t < dv; ++t) out(b, h, i, t) = rows[x].out[t];
            }
            records[r].exact_scores = computed[x];
        }
    }
};

/// Runs the flash path of a validated attention call (see the file documentation).
/// @tparam Space Host execution space.
/// @tparam T     Element type (float score type).
/// @param space   The space.
/// @param q       Queries.
/// @param k       Keys.
/// @param v       Values.
/// @param out     Output.
/// @param options The call's options (no `refined`).
/// @param records One record per row, written.
/// @param fused   Quantized q and k that define Ŝ for unrefined entries (fused pipelines), or null.
template <class Space, class T>
void flash_attention(Space const& space, tensor_view<T const, 4> q, tensor_view<T const, 4> k, tensor_view<T const, 4> v,
                     tensor_view<T, 4> out, attention_options<float> const& options,
                     std::vector<attention_row_record>& records, predictor_operands<float, std::int8_t> const* fused) {
    index_t const batch = q.extent(0), heads = q.extent(1), lq = q.extent(2), dim = q.extent(3);
    index_t const lk = k.extent(2), dv = v.extent(3);
    flash_shared shared;
    shared.tiles = lk / arch::avx512::flash_keys + (lk % arch::avx512::flash_keys != 0 ? 1 : 0);
    shared.kt_stride = checked_size("flash attention key tiles", {shared.tiles, arch::avx512::flash_keys, dim});
    // every float is written by the packing (keys past lk as 0)
    shared.kt.resize(checked_bytes("flash attention key tiles", checked_size("flash attention key tiles", {batch * heads, shared.kt_stride}),
                                   sizeof(float)) / sizeof(float));
    if (!std::is_same_v<T, float> || v.stride(3) != 1) shared.v.assign(static_cast<std::size_t>(batch * heads * lk * dv), 0.0f);
    if ((!options.refined.empty() || !options.kept.empty()) && (!std::is_same_v<T, float> || k.stride(3) != 1)) {
        shared.k.assign(static_cast<std::size_t>(batch * heads * lk * dim), 0.0f);
    }
    shared.real_keys.assign(static_cast<std::size_t>(batch), lk);
    if (!options.padding.none()) {
        shared.padded.assign(static_cast<std::size_t>(batch * shared.tiles), 0);
        for (index_t b = 0; b < batch; ++b)
            for (index_t j = 0; j < lk; ++j)
                if (!options.padding.is_valid(b, j)) {
                    shared.padded[static_cast<std::size_t>(b * shared.tiles + j / 64)] |= std::uint64_t{1} << (j % 64);
                    --shared.real_keys[static_cast<std::size_t>(b)];
                }
    }
    if (!options.kept.empty() && options.refined.empty()) {
        shared.key_norm_max.assign(static_cast<std::size_t>(batch * heads), 0.0);
        // sparse rows read the keys as rows: a head none of whose rows reaches the tiles needs no key tiles
        shared.tiles_packed = std::make_unique<std::once_flag[]>(static_cast<std::size_t>(batch * heads));
    }
    exec::parallel_for(space, batch * heads, flash_pack_kernel<T>{k, v, &shared});
    index_t const blocks = lq / flash_block_rows + (lq % flash_block_rows != 0 ? 1 : 0);
    exec::parallel_for(space, batch * heads * blocks,
                       flash_attention_kernel<T>{q, k, v, out, options.padding, options.kept, options.refined, options.predicted,
                                                 options.empty_rows, options.skip_pruned, &shared, records.data(), fused});
}

#endif  // DEQ_ARCH_X86

}  // namespace deq::detail
