// Structured fuzz target: the attention pipelines (deq::attention, sanger_attention, deq_attention,
// three_level_attention, static_sparse_attention) and their steps (predict_scores, select_elements,
// make_precision_map, make_static_mask), on deq::exec::serial and deq::exec::threads(2).
//
// The input bytes are decoded (byte_reader; past the end every byte reads 0) into:
//   header  bit 0: double (else float); bits 1-3: operation (see `op` below); bits 4-5: key padding
//           (none / valid / some rows all padded / wrong shape); bit 6: Lk = Lq; bit 7: query padding;
//   shapes  B, H in 0..3, Lq, Lk, d, dv in 0..9 (0 is a shape error);
//   layouts for q, k, v, out: memory order, per-dimension padding, a negative stride, a zero
//           (broadcast) stride for the inputs: every view stays inside its own buffer;
//   values  small numbers, 0 / -0, denormals, huge values, NaN, +-inf, raw bits;
//   settings predictor thresholds and bits, mask rules, theta, empty-row policy, static pattern or
//           random masks, attention options (all possibly invalid).
// Properties: every call returns or throws a deq error; serial and threads(2) give bit-identical
// outputs, statistics, masks and errors; nothing outside the output view is written; statistics
// are in range; attention with and without skip_pruned is bit-identical; DEQ / three-level attention
// that refine (and keep) everything and static attention with a full mask equal dense attention bit
// for bit; for finite inputs the output is finite (inputs whose scores overflow the score type end in
// deq::numeric_error).
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include <deq/attention/attention.hpp>
#include <deq/attention/pipelines.hpp>
#include <deq/core/bit_mask.hpp>
#include <deq/core/padding.hpp>
#include <deq/exec/serial.hpp>
#include <deq/exec/threads.hpp>
#include <deq/mask/precision_map.hpp>
#include <deq/mask/select.hpp>
#include <deq/mask/static_pattern.hpp>
#include <deq/predict/sanger_predictor.hpp>

#include "fuzz_support.hpp"

namespace {

using deq::index_t;
using deq_fuzz::byte_reader;
using extents4 = std::array<index_t, 4>;

// Largest magnitude for which the scores q·k/√d (d <= 9) and the outputs cannot overflow float.
constexpr double moderate_limit = 1e15;

// ------------------------------------------------------------------------------------------------
// Values

// What the decoded values contain.
struct value_summary {
    bool finite = true;     // no NaN / inf
    bool moderate = true;   // every |x| <= moderate_limit
    void add(double x) {
        if (!std::isfinite(x)) finite = false;
        if (!(std::fabs(x) <= moderate_limit)) moderate = false;
    }
};

// One element value of type T from the bytes (a pseudo-random small value past the end).
template <class T>
T next_value(byte_reader& in, std::uint32_t& counter) {
    using lim = std::numeric_limits<T>;
    if (in.empty()) {
        counter = counter * 1664525u + 1013904223u;
        return static_cast<T>(static_cast<int>(counter >> 27) - 16) / T(8);
    }
    std::uint8_t const b = in.byte();
    if (b < 192) return static_cast<T>(static_cast<int>(b) - 96) / T(32);
    switch (b) {
        case 192: return in.raw<T>();
        case 193: return lim::quiet_NaN();
        case 194: return lim::infinity();
        case 195: return -lim::infinity();
        case 196: return lim::max();
        case 197: return lim::lowest();
        case 198: return lim::denorm_min();
        case 199: return -lim::denorm_min();
        case 200: return lim::min();
        case 201: return static_cast<T>(moderate_limit);
        case 202: return static_cast<T>(-moderate_limit);
        case 203: return static_cast<T>(1e30);
        case 204: return T(0);
        case 205: return -T(0);
        default: return static_cast<T>(static_cast<int>(b) - 205) * T(16);
    }
}

// ------------------------------------------------------------------------------------------------
// Strided operands

// A 4-d view into a buffer larger than the view (padding, permuted order, negative or zero strides);
// buffer elements outside the view hold `fill`.
template <class T>
struct operand {
    std::vector<T> buffer;
    std::vector<char> in_view;  // buffer elements the view reaches
    deq::tensor_view<T, 4> view;
};

template <class T>
operand<T> make_operand(byte_reader& in, extents4 const& ext, bool input, T fill) {
    std::uint8_t const layout = in.byte();
    std::array<int, 4> order{0, 1, 2, 3};  // memory order, outermost first
    switch (layout & 3u) {
        case 1: std::swap(order[1], order[2]); break;  // [B, L, H, d] in memory, as BERT's projections
        case 2: std::reverse(order.begin(), order.end()); break;
        case 3: std::next_permutation(order.begin(), order.end()); std::rotate(order.begin(), order.begin() + (layout >> 6), order.end()); break;
        default: break;
    }
    std::array<index_t, 4> pad{};
    if ((layout & 4u) != 0) {
        for (auto& p : pad) p = in.byte() % 3;
    }
    extents4 stride{};
    index_t s = 1;
    for (int m = 3; m >= 0; --m) {
        int const r = order[static_cast<std::size_t>(m)];
        stride[static_cast<std::size_t>(r)] = s;
        s *= ext[static_cast<std::size_t>(r)] + pad[static_cast<std::size_t>(r)];
    }
    operand<T> o;
    o.buffer.assign(static_cast<std::size_t>(std::max<index_t>(s, 1)), fill);
    o.in_view.assign(o.buffer.size(), 0);
    index_t base = 0;
    if ((layout & 8u) != 0) {  // reverse one dimension
        std::size_t const r = in.byte() % 4;
        if (ext[r] > 0) base += (ext[r] - 1) * stride[r];
        stride[r] = -stride[r];
    }
    if (input && (layout & 16u) != 0) stride[in.byte() % 4] = 0;  // broadcast one dimension
    o.view = deq::tensor_view<T, 4>(o.buffer.data() + base, {ext[0], ext[1], ext[2], ext[3]}, {stride[0], stride[1], stride[2], stride[3]});
    for (index_t a = 0; a < ext[0]; ++a)
        for (index_t b = 0; b < ext[1]; ++b)
            for (index_t c = 0; c < ext[2]; ++c)
                for (index_t d = 0; d < ext[3]; ++d) {
                    o.in_view[static_cast<std::size_t>(&o.view(a, b, c, d) - o.buffer.data())] = 1;
                }
    return o;
}

template <class T>
operand<T> make_input(byte_reader& in, extents4 const& ext, value_summary& summary, std::uint32_t& counter) {
    // Elements outside the view are NaN: reading one makes the output non-finite (caught below).
    operand<T> o = make_operand<T>(in, ext, true, std::numeric_limits<T>::quiet_NaN());
    for (index_t a = 0; a < ext[0]; ++a)
        for (index_t b = 0; b < ext[1]; ++b)
            for (index_t c = 0; c < ext[2]; ++c)
                for (index_t d = 0; d < ext[3]; ++d) o.view(a, b, c, d) = next_value<T>(in, counter);
    for (index_t a = 0; a < ext[0]; ++a)  // after the writes: broadcast elements hold their last value
        for (index_t b = 0; b < ext[1]; ++b)
            for (index_t c = 0; c < ext[2]; ++c)
                for (index_t d = 0; d < ext[3]; ++d) summary.add(static_cast<double>(o.view(a, b, c, d)));
    return o;
}

// ------------------------------------------------------------------------------------------------
// Settings

double choose_real(byte_reader& in) {
    static constexpr double table[] = {0.02, 0.002, 0.0, 1.0, 0.5, 0.8, 0.1, 0.9, -0.1, 1.5, 1e-300, -0.0};
    std::uint8_t const b = in.byte();
    if (b < 12 * 16) return table[b % 12];
    if (b < 240) return std::numeric_limits<double>::quiet_NaN();
    return in.raw<double>();
}

deq::predictor_config choose_predictor(byte_reader& in) {
    static constexpr double thresholds[] = {1.0, 0.5, 2.0, 0.7, 1e-3, 1e-30, 1e30, 1e18, 0.0, -1.0};
    static constexpr int bits[] = {4, 4, 2, 3, 8, 16, 1, 9, 0, 17};
    auto threshold = [&] {
        std::uint8_t const b = in.byte();
        if (b < 10 * 24) return thresholds[b % 10];
        if (b < 250) return std::numeric_limits<double>::infinity();
        return in.raw<double>();
    };
    deq::predictor_config c;
    c.threshold_q = threshold();
    c.threshold_k = threshold();
    c.bits = bits[in.byte() % 10];
    return c;
}

// A rule built without the factories' validation, so that the pipelines' own checks run.
deq::mask_rule choose_rule(byte_reader& in) {
    using kind = deq::mask_rule::kind;
    std::uint8_t const b = in.byte();
    deq::mask_rule r;
    r.type = static_cast<kind>((b & 0x7fu) % 9);  // 8 is not a kind
    r.value = choose_real(in);
    std::uint8_t const k = in.byte();
    r.k = k == 255 ? std::numeric_limits<index_t>::max() : static_cast<index_t>(k % 12) - 1;
    r.granularity = static_cast<deq::max_granularity>(in.byte() % 4);  // 3 is not a granularity
    r.before_softmax = (b & 0x80u) != 0;
    return r;
}

deq::static_pattern choose_pattern(byte_reader& in) {
    deq::static_pattern p;
    std::uint8_t const b = in.byte();
    p.type = static_cast<deq::static_pattern::kind>(b % 4);
    p.block = 1 + in.byte() % 4;
    p.max_position = p.block * (1 + in.byte() % 8) + ((b & 0x80u) != 0 ? 1 : 0);
    p.window_blocks = in.byte() % 4;
    p.global_block_indices = {static_cast<index_t>(in.byte() % 12) - 1};
    if ((b & 0x40u) != 0) p.global_block_end_indices = {static_cast<index_t>(in.byte() % 13)};
    p.global_blocks = in.byte() % 3;
    p.random_blocks = in.byte() % 3;
    p.seed = in.byte();
    p.local_blocks = in.byte() % 5;
    p.horizontal_global = (b & 0x20u) != 0;
    return p;
}

// A random mask of [Bm, Hm, Lq, Lk] (extent 1 broadcasts), sometimes of a wrong shape.
deq::bit_mask choose_mask(byte_reader& in, index_t batch, index_t heads, index_t lq, index_t lk) {
    std::uint8_t const b = in.byte();
    index_t const mb = (b & 1u) != 0 ? 1 : std::max<index_t>(batch, 1);
    index_t const mh = (b & 2u) != 0 ? 1 : std::max<index_t>(heads, 1);
    index_t const rows = lq + ((b & 0x40u) != 0 ? 1 : 0);
    deq::bit_mask m(mb, mh, rows, lk);
    std::uint8_t const density = in.byte();
    for (index_t x = 0; x < mb; ++x)
        for (index_t h = 0; h < mh; ++h)
            for (index_t i = 0; i < rows; ++i)
                for (index_t j = 0; j < lk; ++j) m.set(x, h, i, j, in.byte() < density);
    return m;
}

// Key / query padding [B, L] (1 = real), or of a wrong shape.
struct padding_buffer {
    std::vector<std::uint8_t> flags;
    deq::key_padding padding;
};

padding_buffer choose_padding(byte_reader& in, unsigned mode, index_t batch, index_t length) {
    padding_buffer p;
    if (mode == 0) return p;
    index_t const cols = length + (mode == 3 ? 1 : 0);
    p.flags.assign(static_cast<std::size_t>(std::max<index_t>(batch * cols, 1)), 1);
    for (index_t bb = 0; bb < batch; ++bb) {
        bool const all_padded = mode == 2 && in.flag();
        for (index_t j = 0; j < cols; ++j) {
            std::uint8_t const v = in.byte();
            p.flags[static_cast<std::size_t>(bb * cols + j)] = all_padded ? 0 : static_cast<std::uint8_t>(v % 4 == 0 ? 0 : v);
        }
    }
    p.padding.valid = deq::tensor_view<std::uint8_t const, 2>(p.flags.data(), {batch, cols});
    return p;
}

// ------------------------------------------------------------------------------------------------
// Results

template <class T>
struct outcome {
    std::string error;  // empty when the call returned
    deq::attention_stats stats{};
    std::vector<T> out;                   // the whole output buffer
    std::vector<std::uint64_t> words;     // masks (select / precision-map operations)
    std::vector<deq::accum_t<T>> scores;  // predicted scores (predict operation)
};

// exact_scores counts the work done, which skip_pruned changes.
bool same_stats(deq::attention_stats const& a, deq::attention_stats const& b, bool same_work) {
    auto bits = [](double x) {
        std::uint64_t u;
        std::memcpy(&u, &x, sizeof u);
        return u;
    };
    return a.valid_pairs == b.valid_pairs && a.kept_pairs == b.kept_pairs && a.refined_pairs == b.refined_pairs &&
           a.empty_rows == b.empty_rows && a.rows == b.rows && bits(a.density) == bits(b.density) &&
           bits(a.refinement_ratio) == bits(b.refinement_ratio) && (!same_work || a.exact_scores == b.exact_scores);
}

template <class T>
void check_same(outcome<T> const& a, outcome<T> const& b, char const* what, bool same_work = true) {
    DEQ_FUZZ_CHECK_MSG(a.error == b.error, std::string(what) + ": '" + a.error + "' vs '" + b.error + "'");
    DEQ_FUZZ_CHECK_MSG(same_stats(a.stats, b.stats, same_work), what);
    DEQ_FUZZ_CHECK_MSG(a.out.size() == b.out.size() && (a.out.empty() || std::memcmp(a.out.data(), b.out.data(), a.out.size() * sizeof(T)) == 0), what);
    DEQ_FUZZ_CHECK_MSG(a.words == b.words, what);
    DEQ_FUZZ_CHECK_MSG(a.scores.size() == b.scores.size() &&
                           (a.scores.empty() || std::memcmp(a.scores.data(), b.scores.data(), a.scores.size() * sizeof(a.scores[0])) == 0),
                       what);
}

void check_stats(deq::attention_stats const& s, index_t batch, index_t heads, index_t lq) {
    DEQ_FUZZ_CHECK(s.rows <= batch * heads * lq && s.empty_rows >= 0 && s.empty_rows <= s.rows);
    DEQ_FUZZ_CHECK(s.kept_pairs >= 0 && s.kept_pairs <= s.valid_pairs && s.refined_pairs >= 0 && s.refined_pairs <= s.valid_pairs);
    DEQ_FUZZ_CHECK(s.density >= 0.0 && s.density <= 1.0 && s.refinement_ratio >= 0.0 && s.refinement_ratio <= 1.0);
    DEQ_FUZZ_CHECK(s.exact_scores >= 0);
}

// Padding bits of every row of a mask are 0.
void check_mask_tail(deq::bit_mask const& m) {
    if (m.empty() || m.cols() % deq::mask_word_bits == 0) return;
    for (index_t b = 0; b < m.batch(); ++b)
        for (index_t h = 0; h < m.heads(); ++h)
            for (index_t i = 0; i < m.rows(); ++i) {
                DEQ_FUZZ_CHECK((m.view().row(b, h, i)[m.words_per_row() - 1] >> (m.cols() % deq::mask_word_bits)) == 0);
            }
}

// ------------------------------------------------------------------------------------------------
// The case

enum class op : unsigned {
    dense,            // attention() with padding and the empty-row policy
    options,          // attention() with random kept / refined masks, predicted scores, flags
    sanger,           // sanger_attention
    deq_mixed,        // deq_attention
    three_level,      // three_level_attention
    static_pattern,   // make_static_mask + static_sparse_attention
    static_random,    // static_sparse_attention with a random mask
    steps             // predict_scores + select_elements + make_precision_map
};

template <class T>
void run_case(byte_reader& in, std::uint8_t header) {
    using S = deq::accum_t<T>;
    op const operation = static_cast<op>((header >> 1) & 7u);
    unsigned const key_padding_mode = (header >> 4) & 3u;
    bool const self_attention = (header & 0x40u) != 0;
    bool const with_query_padding = (header & 0x80u) != 0;

    index_t const batch = in.byte() % 4, heads = in.byte() % 4;
    index_t const lq = in.byte() % 10;
    index_t const lk = self_attention ? lq : in.byte() % 10;
    index_t const d = in.byte() % 10, dv = in.byte() % 10;

    std::uint32_t counter = header;
    value_summary summary;
    operand<T> const q = make_input<T>(in, {batch, heads, lq, d}, summary, counter);
    operand<T> const k = make_input<T>(in, {batch, heads, lk, d}, summary, counter);
    operand<T> const v = make_input<T>(in, {batch, heads, lk, dv}, summary, counter);
    T const sentinel = static_cast<T>(-12345.5);
    operand<T> const out_template = make_operand<T>(in, {batch, heads, lq, dv}, false, sentinel);

    padding_buffer const kpad = choose_padding(in, key_padding_mode, batch, lk);
    padding_buffer const qpad = choose_padding(in, with_query_padding ? 1u : 0u, batch, lq);
    deq::predictor_config const config = choose_predictor(in);
    deq::mask_rule const rule_a = choose_rule(in);
    deq::mask_rule const rule_b = choose_rule(in);
    double const theta = choose_real(in);
    auto const policy = static_cast<deq::empty_row_policy>(in.byte() % 4);  // 3 is not a policy
    deq::static_pattern const pattern = choose_pattern(in);
    index_t const pattern_heads = in.flag() ? 1 : heads;
    deq::bit_mask const kept = choose_mask(in, batch, heads, lq, lk);
    deq::bit_mask const refined = choose_mask(in, batch, heads, lq, lk);
    std::uint8_t const option_bits = in.byte();
    std::vector<S> predicted_storage(static_cast<std::size_t>(std::max<index_t>(batch * heads * lq * lk, 1)));
    value_summary predicted_summary;
    for (auto& x : predicted_storage) {
        x = next_value<S>(in, counter);
        predicted_summary.add(static_cast<double>(x));
    }
    deq::tensor_view<S const, 4> const predicted(predicted_storage.data(), {batch, heads, lq, lk});

    deq::attention_options<S> options;
    options.padding = kpad.padding;
    options.query_padding = qpad.padding;
    if (operation == op::options) {
        if ((option_bits & 1u) != 0) options.kept = kept.view();
        if ((option_bits & 2u) != 0) options.refined = refined.view();
        if ((option_bits & 4u) != 0) options.predicted = predicted;
        options.empty_rows = policy;
        options.check_finite = (option_bits & 8u) == 0;
    }
    bool const uses_predicted = operation == op::options && (option_bits & 2u) != 0 && (option_bits & 4u) != 0;

    deq::tensor_view<T const, 4> const qv = q.view, kv = k.view, vv = v.view;
    // Runs operation `which` (dense attention uses `dense_policy` for empty rows).
    auto run = [&](auto const& space, op which, bool skip_pruned, deq::empty_row_policy dense_policy) {
        outcome<T> r;
        operand<T> out = out_template;
        out.view = deq::tensor_view<T, 4>(out.buffer.data() + (out_template.view.data() - out_template.buffer.data()),
                                          {batch, heads, lq, dv},
                                          {out_template.view.stride(0), out_template.view.stride(1), out_template.view.stride(2),
                                           out_template.view.stride(3)});
        r.error = deq_fuzz::error_of([&] {
            switch (which) {
                case op::dense: {
                    deq::attention_options<S> o;
                    o.padding = kpad.padding;
                    o.query_padding = qpad.padding;
                    o.empty_rows = dense_policy;
                    r.stats = deq::attention(space, qv, kv, vv, out.view, o);
                    break;
                }
                case op::options: {
                    deq::attention_options<S> o = options;
                    o.skip_pruned = skip_pruned;
                    r.stats = deq::attention(space, qv, kv, vv, out.view, o);
                    break;
                }
                case op::sanger:
                    r.stats = deq::sanger_attention(space, qv, kv, vv, out.view, config, theta, kpad.padding, policy);
                    break;
                case op::deq_mixed: r.stats = deq::deq_attention(space, qv, kv, vv, out.view, config, rule_a, kpad.padding); break;
                case op::three_level:
                    r.stats = deq::three_level_attention(space, qv, kv, vv, out.view, config, rule_a, rule_b, kpad.padding, policy);
                    break;
                case op::static_pattern: {
                    deq::bit_mask const m = deq::make_static_mask(space, pattern, lq, pattern_heads);
                    check_mask_tail(m);
                    r.words = m.words();
                    r.stats = deq::static_sparse_attention(space, qv, kv, vv, out.view, m.view(), kpad.padding, policy);
                    break;
                }
                case op::static_random:
                    r.stats = deq::static_sparse_attention(space, qv, kv, vv, out.view, kept.view(), kpad.padding, policy);
                    break;
                case op::steps: {
                    deq::tensor<S, 4> const scores = deq::predict_scores(space, qv, kv, config);
                    r.scores = scores.storage();
                    for (S x : r.scores) DEQ_FUZZ_CHECK(std::isfinite(x));
                    deq::bit_mask const selected = deq::select_elements(space, scores.cview(), kpad.padding, rule_a);
                    check_mask_tail(selected);
                    r.words = selected.words();
                    deq::precision_map const map = deq::make_precision_map(space, scores.cview(), kpad.padding, rule_a, rule_b);
                    check_mask_tail(map.kept);
                    check_mask_tail(map.refined);
                    for (std::size_t w = 0; w < map.refined.words().size(); ++w) {
                        DEQ_FUZZ_CHECK((map.refined.words()[w] & ~map.kept.words()[w]) == 0);  // refined ⊆ kept
                    }
                    r.words.insert(r.words.end(), map.kept.words().begin(), map.kept.words().end());
                    r.words.insert(r.words.end(), map.refined.words().begin(), map.refined.words().end());
                    return;  // no attention output
                }
            }
        });
        // Nothing outside the output view was written.
        for (std::size_t i = 0; i < out.buffer.size(); ++i) {
            if (!out_template.in_view[i]) DEQ_FUZZ_CHECK(std::memcmp(&out.buffer[i], &sentinel, sizeof(T)) == 0);
        }
        bool const attention_ran = r.error.empty() && which != op::steps;
        if (attention_ran) {
            check_stats(r.stats, batch, heads, lq);
            bool const finite_inputs = summary.finite && (!uses_predicted || predicted_summary.finite);
            bool const checked = which != op::options || options.check_finite;
            // Finite inputs give a finite output or a deq::numeric_error (scores that overflow the score
            // type are reported, not returned as NaN), whatever their magnitude.
            bool const expect_finite = checked && finite_inputs;
            if (expect_finite) {
                for (std::size_t i = 0; i < out.buffer.size(); ++i) {
                    if (out_template.in_view[i]) DEQ_FUZZ_CHECK_MSG(std::isfinite(out.buffer[i]), "output element is not finite");
                }
            }
        }
        r.out = std::move(out.buffer);
        return r;
    };

    static deq::exec::threads const two_threads(2);
    outcome<T> const serial = run(deq::exec::serial{}, operation, true, policy);
    check_same(serial, run(two_threads, operation, true, policy), "serial vs threads(2)");
    if (operation == op::options && options.check_finite) {
        check_same(serial, run(deq::exec::serial{}, operation, false, policy), "skip_pruned on vs off", false);
    }
    // Modes that keep and refine everything compute dense attention: bit for bit on the reference kernel
    // (double); on the flash path (float), which computes the exact scores of a tile with few refined
    // entries one by one (another summation order of the same products), to rounding: each score by at
    // most delta = 2 (d + 1) eps sum_t |q_t k_t| / sqrt(d), so each output by at most about
    // 2 delta max|v|, plus 1e-5 of the largest output (the accuracy the fast kernels promise).
    using kind = deq::mask_rule::kind;
    bool const all_kept = kept.count() == kept.batch() * kept.heads() * kept.rows() * kept.cols();
    bool const dense_equivalent = (operation == op::deq_mixed && rule_a.type == kind::all) ||
                                  (operation == op::three_level && rule_a.type == kind::all && rule_b.type == kind::all) ||
                                  (operation == op::static_random && all_kept);
    if (dense_equivalent && serial.error.empty()) {
        auto const dense_policy = operation == op::deq_mixed ? deq::empty_row_policy::reference : policy;
        outcome<T> const dense = run(deq::exec::serial{}, op::dense, true, dense_policy);
        DEQ_FUZZ_CHECK_MSG(dense.error.empty() && dense.out.size() == serial.out.size(), "dense attention failed: " + dense.error);
        if constexpr (std::is_same_v<T, double>) {
            DEQ_FUZZ_CHECK_MSG(std::memcmp(dense.out.data(), serial.out.data(), dense.out.size() * sizeof(T)) == 0,
                               "differs from dense attention");
        } else {
            double largest = 0, abs_dot = 0, abs_v = 0;
            for (std::size_t i = 0; i < dense.out.size(); ++i) {
                if (out_template.in_view[i]) largest = std::max(largest, std::abs(static_cast<double>(dense.out[i])));
            }
            for (index_t b = 0; b < batch; ++b)
                for (index_t h = 0; h < heads; ++h) {
                    for (index_t j = 0; j < lk; ++j) {
                        for (index_t t = 0; t < dv; ++t) abs_v = std::max(abs_v, std::abs(static_cast<double>(vv(b, h, j, t))));
                        for (index_t i = 0; i < lq; ++i) {
                            double dot = 0;
                            for (index_t t = 0; t < d; ++t) dot += std::abs(static_cast<double>(qv(b, h, i, t)) * static_cast<double>(kv(b, h, j, t)));
                            abs_dot = std::max(abs_dot, dot);
                        }
                    }
                }
            double const eps = std::numeric_limits<float>::epsilon();
            double const delta = 2.0 * static_cast<double>(d + 1) * eps * abs_dot / std::sqrt(static_cast<double>(std::max<index_t>(d, 1)));
            double const tolerance = 1e-5 * largest + 2.5 * delta * abs_v;
            for (std::size_t i = 0; i < dense.out.size(); ++i) {
                double const diff = std::abs(static_cast<double>(dense.out[i]) - static_cast<double>(serial.out[i]));
                DEQ_FUZZ_CHECK_MSG(out_template.in_view[i] ? diff <= tolerance : diff == 0,
                                   "differs from dense attention by more than rounding (1e-5 of the largest output plus the "
                                   "bound for another summation order of the scores)");
            }
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    byte_reader in(data, size);
    std::uint8_t const header = in.byte();
    if ((header & 1u) != 0) {
        run_case<double>(in, header);
    } else {
        run_case<float>(in, header);
    }
    return 0;
}
