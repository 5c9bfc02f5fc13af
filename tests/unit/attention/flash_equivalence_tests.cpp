// The fast attention paths (the flash-style kernel of the widest ISA tier) against the reference row
// kernel (the portable tier): outputs within 1e-5 of the largest magnitude in float (16-bit formats:
// their rounding), identical statistics, every mode, padding, fully pruned rows under each policy,
// Lq != Lk, head dimensions around the tile sizes, strided views and 16-bit inputs.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include <deq/arch/attention_avx512.hpp>
#include <deq/arch/isa.hpp>
#include <deq/attention/attention.hpp>
#include <deq/exec/serial.hpp>
#include <deq/exec/threads.hpp>
#include <deq/numeric/bfloat16.hpp>
#include <deq/numeric/float16.hpp>

#include "attention_test_util.hpp"

using deq::index_t;
using attn_test::problem;

namespace {

template <class T>
double output_tolerance() {
    if constexpr (std::is_same_v<T, float>) return 1e-5;
    else return 1e-2;  // one rounding of a 16-bit output (bfloat16: 2^-8)
}

/// Runs attention with @p options on the portable tier and on the widest tier; checks outputs and
/// statistics.
template <class T>
void check_against_reference(problem<T> const& p, deq::attention_options<deq::accum_t<T>> const& options, std::string const& what) {
    CAPTURE(what);
    problem<T> ref = p, fast = p;
    deq::attention_stats sr, sf;
    {
        deq::arch::scoped_isa_limit const portable(deq::arch::isa::portable);
        sr = deq::attention(deq::exec::serial{}, ref.q.cview(), ref.k.cview(), ref.v.cview(), ref.out.view(), options);
    }
    sf = deq::attention(deq::exec::threads{2}, fast.q.cview(), fast.k.cview(), fast.v.cview(), fast.out.view(), options);
    double scale = 0, err = 0;
    for (index_t n = 0; n < ref.out.size(); ++n) scale = std::fmax(scale, std::fabs(static_cast<double>(ref.out.data()[n])));
    for (index_t n = 0; n < ref.out.size(); ++n) {
        err = std::fmax(err, std::fabs(static_cast<double>(ref.out.data()[n]) - static_cast<double>(fast.out.data()[n])));
    }
    CHECK(err <= output_tolerance<T>() * std::fmax(scale, 1e-30));
    CHECK(sf.valid_pairs == sr.valid_pairs);
    CHECK(sf.kept_pairs == sr.kept_pairs);
    CHECK(sf.refined_pairs == sr.refined_pairs);
    CHECK(sf.empty_rows == sr.empty_rows);
    CHECK(sf.rows == sr.rows);
    CHECK(sf.density == sr.density);
    CHECK(sf.refinement_ratio == sr.refinement_ratio);
}

}  // namespace

TEST_CASE_TEMPLATE("flash attention equals the reference kernel: dense, padding, shapes", T, float, deq::float16, deq::bfloat16) {
    using S = deq::accum_t<T>;
    MESSAGE("widest tier: ", deq::arch::to_string(deq::arch::detected_isa()));
    std::uint64_t seed = 700;
    for (index_t d : {1, 7, 32, 64, 80, 128}) {
        for (auto [lq, lk] : {std::pair<index_t, index_t>{1, 1}, {13, 63}, {20, 64}, {7, 65}, {50, 130}, {64, 200}}) {
            for (index_t dv : {d, index_t{5}, index_t{70}}) {
                problem<T> p(2, 2, lq, lk, d, dv, ++seed, 1.3);
                deq::attention_options<S> o;
                CAPTURE(d);
                CAPTURE(lq);
                CAPTURE(lk);
                CAPTURE(dv);
                check_against_reference(p, o, "dense");
                p.pad({lk, (lk + 1) / 2});
                o.padding = p.padding;
                check_against_reference(p, o, "padded");
            }
        }
    }
}

TEST_CASE_TEMPLATE("flash attention equals the reference kernel: masks, refinement and empty rows", T, float, deq::float16) {
    using S = deq::accum_t<T>;
    std::uint64_t seed = 800;
    for (index_t lk : {24, 64, 150}) {
        problem<T> p(2, 3, 37, lk, 32, 24, ++seed, 1.5);
        p.pad({lk, lk / 3});
        deq::bit_mask kept = attn_test::random_mask(2, 3, 37, lk, 0.2, ++seed);
        for (index_t i = 0; i < 37; i += 5)
            for (index_t j = 0; j < lk; ++j) kept.set(0, 1, i, j, false);  // fully pruned rows
        deq::bit_mask const refined = attn_test::random_mask(2, 3, 37, lk, 0.1, ++seed);
        deq::bit_mask const sparse_refined = attn_test::random_mask(2, 3, 37, lk, 0.003, ++seed);
        deq::bit_mask const dense_refined = attn_test::random_mask(2, 3, 37, lk, 0.6, ++seed);
        deq::tensor<S, 4> pred({2, 3, 37, lk});
        deq_test::fill_normal(pred, ++seed, 0.0, 1.2);
        for (auto policy : {deq::empty_row_policy::reference, deq::empty_row_policy::uniform, deq::empty_row_policy::zero}) {
            deq::attention_options<S> o;
            o.padding = p.padding;
            o.kept = kept.view();
            o.empty_rows = policy;
            check_against_reference(p, o, std::string("kept, policy ") + deq::to_string(policy));
            o.skip_pruned = false;
            check_against_reference(p, o, "kept, no skipping");
            o.skip_pruned = true;
            o.refined = refined.view();
            o.predicted = pred.cview();
            check_against_reference(p, o, "three-level");
        }
        // Refined tiles computed entry by entry (few refined), as a whole (many) or not at all.
        for (deq::bit_mask const* r : {&refined, &sparse_refined, &dense_refined}) {
            deq::attention_options<S> o;
            o.padding = p.padding;
            o.refined = r->view();
            o.predicted = pred.cview();
            check_against_reference(p, o, "DEQ mixed precision");
            if (r == &sparse_refined && deq::arch::detected_isa() == deq::arch::isa::avx512) {
                problem<T> f = p;
                deq::attention_stats const st = deq::attention(deq::exec::serial{}, f.q.cview(), f.k.cview(), f.v.cview(), f.out.view(), o);
                CHECK(st.exact_scores < 2 * 3 * 37 * lk / 10);  // only the refined entries' q·k
            }
        }
        // A broadcast [1, 1, Lq, Lk] static pattern.
        deq::bit_mask const pattern = attn_test::random_mask(1, 1, 37, lk, 0.5, ++seed);
        deq::attention_options<S> o;
        o.kept = pattern.view();
        check_against_reference(p, o, "broadcast pattern");
    }
}

TEST_CASE_TEMPLATE("flash attention: sparse rows (few kept keys) equal the reference kernel, with and without skipping", T, float,
                   deq::float16) {
    // Rows that keep at most a quarter of their keys are computed over their kept keys only (their weights
    // after the bound's proof); padded kept keys, value widths with tails and several 64-column blocks,
    // Lq != Lk, 16-bit inputs. Without skip_pruned the pruned scores are computed too, with the same bits.
    using S = deq::accum_t<T>;
    std::uint64_t seed = 1900;
    for (index_t d : {32, 64, 80}) {
        for (index_t dv : {index_t{32}, index_t{40}, index_t{96}}) {
            index_t const B = 2, H = 2, Lq = 29, L = 211;
            problem<T> p(B, H, Lq, L, d, dv, ++seed, 1.2);
            p.pad({L, 150});
            deq::bit_mask kept = attn_test::random_mask(B, H, Lq, L, 0.05, ++seed);
            for (index_t h = 0; h < H; ++h)
                for (index_t i = 0; i < Lq; ++i) kept.set(1, h, i, 160 + i % 40, true);  // kept padded keys
            for (index_t j = 0; j < L; ++j) kept.set(0, 0, 3, j, j % 5 == 0);     // a denser row (20 %)
            deq::attention_options<S> o;
            o.padding = p.padding;
            o.kept = kept.view();
            CAPTURE(d);
            CAPTURE(dv);
            check_against_reference(p, o, "sparse rows");
            problem<T> a = p, b = p;
            deq::attention_stats const sa = deq::attention(deq::exec::threads{2}, a.q.cview(), a.k.cview(), a.v.cview(), a.out.view(), o);
            o.skip_pruned = false;
            deq::attention_stats const sb = deq::attention(deq::exec::threads{2}, b.q.cview(), b.k.cview(), b.v.cview(), b.out.view(), o);
            CHECK(attn_test::bitwise_equal(a.out, b.out));
            CHECK(sb.exact_scores == B * H * Lq * L);
            if (deq::arch::active_isa() == deq::arch::isa::avx512) {
                CHECK(sa.exact_scores < sb.exact_scores / 4);  // only the kept entries of the sparse rows
            }
        }
    }
}

TEST_CASE_TEMPLATE("flash attention: rows without a kept real key under the reference policy match the reference's rounding", T, float,
                   deq::float16) {
    // Every score of such a row gets -10000, rounded to float's 2^-10 grid there: scores that differ in the
    // last bit can land on neighbouring grid points, which changes a weight by about 1e-3. Large, peaked
    // scores make that visible above the 1e-5 tolerance, so the flash path must reproduce the reference
    // kernel's score bits (contiguous and strided keys, dims with and without a multiple of 8, padding).
    using S = deq::accum_t<T>;
    std::uint64_t seed = 2100;
    for (index_t d : {8, 13, 32, 64}) {
        index_t const B = 2, H = 2, Lq = 40, L = 150;
        problem<T> p(B, H, Lq, L, d, 24, ++seed, 4.0);
        p.pad({L, 101});
        deq::bit_mask kept = attn_test::random_mask(B, H, Lq, L, 0.05, ++seed);
        for (index_t b = 0; b < B; ++b)
            for (index_t h = 0; h < H; ++h)
                for (index_t i = 0; i < Lq; i += 2) {
                    for (index_t j = 0; j < L; ++j) kept.set(b, h, i, j, false);  // every other row fully pruned
                    if (b == 1 && i % 4 == 0) kept.set(b, h, i, 120, true);        // or keeping a padded key only
                }
        deq::attention_options<S> o;
        o.padding = p.padding;
        o.kept = kept.view();
        CAPTURE(d);
        check_against_reference(p, o, "empty rows, reference policy");
    }
}

TEST_CASE("flash attention: a sparse row whose pruned key dominates is not computed over its kept keys alone") {
    // One kept key per row and a pruned key whose score is about 2e4: s - 10000 still dominates, the bound
    // proves nothing, and the row must run over every key (the pruned key wins the softmax).
    index_t const L = 100, d = 2;
    problem<float> p(1, 1, 3, L, d, 2, 61, 0.1);
    for (index_t i = 0; i < 3; ++i) {
        p.q(0, 0, i, 0) = 200.0f;
        p.q(0, 0, i, 1) = 0.0f;
    }
    p.k(0, 0, 70, 0) = 141.5f;
    p.k(0, 0, 70, 1) = 0.0f;
    deq::bit_mask kept(1, 1, 3, L, false);
    for (index_t i = 0; i < 3; ++i) kept.set(0, 0, i, i, true);
    deq::attention_options<float> o;
    o.kept = kept.view();
    check_against_reference(p, o, "dominating pruned key");
    problem<float> a = p;
    deq::attention(deq::exec::serial{}, a.q.cview(), a.k.cview(), a.v.cview(), a.out.view(), o);
    for (index_t i = 0; i < 3; ++i)
        for (index_t t = 0; t < 2; ++t)
            CHECK(static_cast<double>(a.out(0, 0, i, t)) == doctest::Approx(static_cast<double>(p.v(0, 0, 70, t))));
}

TEST_CASE("flash attention: P·V reads no value of a key whose weight is exactly 0, and the outputs do not change") {
    // A sparse kept mask (3 % of the entries, Sanger's regime) over 5 key tiles; the keys that no query row
    // keeps (outside the first tile, which starts every row) get NaN values. The flash kernel proves their
    // weights exactly 0 and does not read them, so the output equals, bit for bit, the output with the
    // original values (with the finiteness checks off; reading one would give NaN, as 0 · NaN is NaN).
    index_t const B = 1, H = 2, Lq = 24, L = 300, d = 32, dv = 32;
    problem<float> p(B, H, Lq, L, d, dv, 4242, 1.0);
    deq::bit_mask kept = attn_test::random_mask(B, H, Lq, L, 0.03, 4243);
    for (index_t h = 0; h < H; ++h)
        for (index_t i = 0; i < Lq; ++i) kept.set(0, h, i, i % 64, true);  // a kept key in the first tile
    deq::attention_options<float> o;
    o.kept = kept.view();
    o.check_finite = false;
    problem<float> a = p, b = p;
    deq::attention_stats const sa = deq::attention(deq::exec::serial{}, a.q.cview(), a.k.cview(), a.v.cview(), a.out.view(), o);
    index_t unread = 0;
    for (index_t h = 0; h < H; ++h)
        for (index_t j = 64; j < L; ++j) {
            bool any = false;
            for (index_t i = 0; i < Lq && !any; ++i) any = kept.test(0, h, i, j);
            if (any) continue;
            ++unread;
            for (index_t t = 0; t < dv; ++t) b.v(0, h, j, t) = std::numeric_limits<float>::quiet_NaN();
        }
    REQUIRE(unread > 0);
    deq::attention_stats const sb = deq::attention(deq::exec::threads{2}, b.q.cview(), b.k.cview(), b.v.cview(), b.out.view(), o);
    CHECK(sa.exact_scores == sb.exact_scores);
    if (deq::arch::active_isa() == deq::arch::isa::avx512) {
        CHECK(attn_test::bitwise_equal(a.out, b.out));
    }
    // And the kernel still equals the reference kernel (which computes every weight).
    check_against_reference(p, o, "sparse kept mask");
}

TEST_CASE("flash attention equals the reference kernel: strided views and structured sparsity") {
    // Transposed views of q, k, v and out ([B, H, L, d] over [B, L, H, d] storage, the layout of a
    // projection output), and a kept mask whose kept keys lie in a band (whole pruned tiles skipped).
    index_t const B = 2, H = 3, L = 140, d = 16;
    deq::tensor<float, 4> qs({B, L, H, d}), ks({B, L, H, d}), vs({B, L, H, d}), os({B, L, H, d}), os2({B, L, H, d});
    deq_test::fill_normal(qs, 901, 0.0, 2.0);
    deq_test::fill_normal(ks, 902, 0.0, 2.0);
    deq_test::fill_normal(vs, 903);
    auto view = [&](auto& t) {
        using E = std::remove_reference_t<decltype(*t.data())>;
        return deq::tensor_view<E, 4>(t.data(), {B, H, L, d}, {L * H * d, d, H * d, 1});
    };
    deq::bit_mask band(B, H, L, L);
    for (index_t b = 0; b < B; ++b)
        for (index_t h = 0; h < H; ++h)
            for (index_t i = 0; i < L; ++i)
                for (index_t j = std::max<index_t>(0, i - 10); j < std::min(L, i + 10); ++j) band.set(b, h, i, j);
    deq::attention_options<float> o;
    o.kept = band.view();
    deq::attention_stats sr, sf;
    {
        deq::arch::scoped_isa_limit const portable(deq::arch::isa::portable);
        sr = deq::attention(deq::exec::serial{}, deq::tensor_view<float const, 4>(view(qs)), deq::tensor_view<float const, 4>(view(ks)),
                            deq::tensor_view<float const, 4>(view(vs)), view(os), o);
    }
    sf = deq::attention(deq::exec::threads{3}, deq::tensor_view<float const, 4>(view(qs)), deq::tensor_view<float const, 4>(view(ks)),
                        deq::tensor_view<float const, 4>(view(vs)), view(os2), o);
    double err = 0, scale = 0;
    for (index_t n = 0; n < os.size(); ++n) {
        scale = std::fmax(scale, std::fabs(os.data()[n]));
        err = std::fmax(err, std::fabs(os.data()[n] - os2.data()[n]));
    }
    CHECK(err <= 1e-5 * scale);
    CHECK(sf.kept_pairs == sr.kept_pairs);
    CHECK(sf.density == sr.density);
    if (deq::arch::detected_isa() == deq::arch::isa::avx512) {
        CHECK(sf.exact_scores < static_cast<index_t>(B * H * L * L) * 3 / 4);  // whole pruned tiles were skipped
    }

    // DEQ with keys whose head dimension is not contiguous ([B, H, d, L] storage): the refined entries'
    // dot products read a contiguous copy of the keys.
    deq::tensor<float, 4> kd({B, H, d, L});
    for (index_t b = 0; b < B; ++b)
        for (index_t h = 0; h < H; ++h)
            for (index_t j = 0; j < L; ++j)
                for (index_t t = 0; t < d; ++t) kd(b, h, t, j) = ks(b, j, h, t);
    deq::tensor_view<float const, 4> const kview(kd.data(), {B, H, L, d}, {H * d * L, d * L, 1, L});
    deq::bit_mask const refined = attn_test::random_mask(B, H, L, L, 0.01, 904);
    deq::tensor<float, 4> pred({B, H, L, L});
    deq_test::fill_normal(pred, 905, 0.0, 1.0);
    deq::attention_options<float> od;
    od.refined = refined.view();
    od.predicted = pred.cview();
    {
        deq::arch::scoped_isa_limit const portable(deq::arch::isa::portable);
        sr = deq::attention(deq::exec::serial{}, deq::tensor_view<float const, 4>(view(qs)), kview,
                            deq::tensor_view<float const, 4>(view(vs)), view(os), od);
    }
    sf = deq::attention(deq::exec::threads{2}, deq::tensor_view<float const, 4>(view(qs)), kview,
                        deq::tensor_view<float const, 4>(view(vs)), view(os2), od);
    err = 0;
    scale = 0;
    for (index_t n = 0; n < os.size(); ++n) {
        scale = std::fmax(scale, std::fabs(os.data()[n]));
        err = std::fmax(err, std::fabs(os.data()[n] - os2.data()[n]));
    }
    CHECK(err <= 1e-5 * scale);
    CHECK(sf.refined_pairs == sr.refined_pairs);
}

TEST_CASE("attention: the padding overload and attention_options_for need no score type") {
    problem<deq::float16> p(1, 2, 5, 7, 8, 4, 1901, 1.0);
    p.pad({5});
    problem<deq::float16> a = p, b = p;
    deq::attention(deq::exec::serial{}, a.q.cview(), a.k.cview(), a.v.cview(), a.out.view(), p.padding);
    deq::attention_options_for<deq::float16> o;  // attention_options<float>
    o.padding = p.padding;
    deq::attention(deq::exec::serial{}, b.q.cview(), b.k.cview(), b.v.cview(), b.out.view(), o);
    CHECK(attn_test::bitwise_equal(a.out, b.out));
}

#if DEQ_ARCH_X86
TEST_CASE("flash attention: the scores of a row without a kept real key are the reference kernel's bits") {
    // flash_reference_scores() against attention_row_kernel::raw_score() plus the penalties, entry by entry
    // (contiguous and strided keys; dims below, at and off a multiple of 8; padded keys; large scores).
    if (deq::arch::detected_isa() != deq::arch::isa::avx512) return;
    std::uint64_t seed = 2300;
    for (index_t d : {3, 8, 13, 32, 64, 80}) {
        for (bool strided : {false, true}) {
            index_t const L = 150;
            deq::tensor<float, 4> q({1, 1, 9, d}), kc({1, 1, L, d}), kt({1, 1, d, L});
            deq_test::fill_normal(q, ++seed, 0.0, 3.0);
            deq_test::fill_normal(kc, ++seed, 0.0, 3.0);
            for (index_t j = 0; j < L; ++j)
                for (index_t t = 0; t < d; ++t) kt(0, 0, t, j) = kc(0, 0, j, t);
            // the keys as the reference sees them: contiguous rows, or a transposed (strided) view
            deq::tensor_view<float const, 4> const k =
                strided ? deq::tensor_view<float const, 4>(kt.data(), {1, 1, L, d}, {d * L, d * L, 1, L}) : kc.cview();
            std::vector<std::uint64_t> packed_pad(3, 0);
            std::vector<std::uint8_t> valid(static_cast<std::size_t>(L), 1);
            for (index_t j = 97; j < L; ++j) {
                valid[static_cast<std::size_t>(j)] = 0;
                packed_pad[static_cast<std::size_t>(j / 64)] |= std::uint64_t{1} << (j % 64);
            }
            deq::key_padding const padding{deq::tensor_view<std::uint8_t const, 2>(valid.data(), {1, L})};
            std::vector<float> tiles(static_cast<std::size_t>(3 * 64 * d));
            deq::arch::avx512::pack_keys_transposed(&k(0, 0, 0, 0), k.stride(2), k.stride(3), L, d, tiles.data());
            deq::bit_mask kept(1, 1, 9, L, false);
            for (index_t i = 0; i < 9; ++i) {  // a kept padded key, and real kept keys (unpenalised: every bit shows)
                kept.set(0, 0, i, 100 + i, true);
                for (index_t j = i; j < 97; j += 3) kept.set(0, 0, i, j, true);
            }
            deq::arch::avx512::flash_head head;
            head.kt = tiles.data();
            head.lk = L;
            head.dim = d;
            head.sqrt_d = static_cast<float>(std::sqrt(static_cast<double>(d)));
            head.padded = packed_pad.data();
            deq::detail::attention_row_kernel<float, float> ref{q.cview(), k, {}, {}, padding, kept.view(), {}, {},
                                                                deq::empty_row_policy::reference, nullptr, nullptr, nullptr, 0};
            std::vector<float> scores(static_cast<std::size_t>(L));
            index_t mismatches = 0;
            for (index_t i = 0; i < 9; ++i) {
                float m = 0;
                REQUIRE(deq::arch::avx512::flash_reference_scores(head, &q(0, 0, i, 0), kept.view().row(0, 0, i), k.stride(3) == 1,
                                                                  scores.data(), m));
                float best = -std::numeric_limits<float>::infinity();
                for (index_t j = 0; j < L; ++j) {
                    index_t count = 0;
                    float x = ref.raw_score(&q(0, 0, i, 0), 0, 0, i, j, true, head.sqrt_d, count);
                    if (!kept.test(0, 0, i, j)) x = x + -10000.0f;
                    if (!padding.is_valid(0, j)) x = x + -10000.0f;
                    best = std::fmax(best, x);
                    if (std::memcmp(&x, &scores[static_cast<std::size_t>(j)], sizeof(float)) != 0) ++mismatches;
                }
                CHECK(m == best);
            }
            CAPTURE(d);
            CAPTURE(strided);
            CHECK(mismatches == 0);
        }
    }
}
#endif
