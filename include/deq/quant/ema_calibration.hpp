/// @file
/// @brief `deq::quant::ema_calibrator`: Sanger's exponential-moving-average abs-max calibration of
/// a per-tensor clipping threshold, with a serializable state.
///
/// **Reference** (`QuantizedMatMul._update_ema` in `quant_utils.py`): while training, the first
/// step sets `thresh = max|x|`, every later step does
/// `thresh.sub_((1 - ema_decay) * (thresh - max|x|))` with `ema_decay = 0.9999`, on float32
/// tensors. In eval mode the stored threshold is used unchanged.
///
/// **Exact arithmetic.** The threshold is a float. `1 - decay` is computed in double (the Python
/// expression `1 - self.ema_decay`) and PyTorch rounds that scalar to float when multiplying the
/// float32 tensor, so with m = max|x| rounded to float:
/// `c = float(1.0 - decay)`, `d = float(thresh - m)`, `e = float(c * d)`, `thresh = float(thresh - e)`
/// (each operation rounded to float; deq rounds c·d explicitly, so FMA contraction cannot change
/// the result). For decay 0.9999, thresholds 0.9, then m = 0.5 and m = 0.7 give 0x3F6663C7
/// (0.89995998) and 0x3F666278 (0.89994001), as PyTorch does.
///
/// **State and serialization.** threshold (or none), step count, decay and the calibrating flag.
/// `to_string()` writes one line `deq-ema v1 threshold=<t|none> steps=<n> decay=<d> calibrating=<0|1>`,
/// floats in the shortest form that reads back exactly (std::to_chars). from_string() accepts the
/// tokens separated by any whitespace, the four keys in any order, each exactly once.
///
/// A threshold is finite and >= 0: calibrating on an all-zero first batch gives 0, as in the
/// reference. Building quantization parameters from it (deq::quant::symmetric_params) needs > 0.
#pragma once

#include <bit>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <vector>

#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "../numeric/finite.hpp"

namespace deq::quant {

/// Sanger's EMA abs-max threshold calibration (see the file documentation for the exact arithmetic).
///
/// update() changes the state only while calibrating() is true (the reference's training mode); in
/// eval mode it returns without any change (and without inspecting its argument). The first update
/// (steps() == 0) sets the threshold to max|x| — also when a threshold was set by hand, as the
/// reference's `fill_` at its first step — and every update increments steps().
class ema_calibrator {
public:
    /// The reference's decay, 0.9999.
    static constexpr double default_decay = 0.9999;
    /// Version written by to_string().
    static constexpr int format_version = 1;

    /// A calibrator with no threshold, zero steps and the calibrating flag set.
    /// @param decay EMA decay in [0, 1] (deq::invalid_argument naming `decay` otherwise).
    explicit ema_calibrator(double decay = default_decay) : decay_(checked_decay(decay)) {}

    /// A calibrator with a given state (e.g. a fine-tuned checkpoint's `input_x_thresh`).
    /// @param threshold   Threshold, finite and >= 0 (deq::invalid_argument naming `threshold` otherwise).
    /// @param steps       Updates already done, >= 0 (deq::invalid_argument naming `steps` otherwise).
    /// @param decay       EMA decay in [0, 1].
    /// @param calibrating Whether update() changes the state.
    ema_calibrator(float threshold, std::int64_t steps, double decay = default_decay, bool calibrating = false)
        : decay_(checked_decay(decay)), calibrating_(calibrating) {
        set_threshold(threshold);
        if (steps < 0) ::deq::detail::throw_invalid_argument("steps", steps, "must be >= 0");
        steps_ = steps;
    }

    /// Whether update() changes the state (training mode).
    /// @return True in calibration (training) mode, false in eval mode.
    bool calibrating() const noexcept { return calibrating_; }
    /// Enters (true, training) or leaves (false, eval) calibration mode.
    /// @param on New mode.
    void set_calibrating(bool on) noexcept { calibrating_ = on; }

    /// Whether a threshold is known (calibrated or set).
    /// @return True if a threshold was calibrated or set, false otherwise.
    bool has_threshold() const noexcept { return threshold_.has_value(); }
    /// The threshold; throws deq::error when it was never calibrated nor set.
    /// @return The current threshold (finite and >= 0).
    float threshold() const {
        if (!threshold_) throw error("deq: ema_calibrator has no threshold: it was never calibrated and none was set");
        return *threshold_;
    }
    /// Sets the threshold (steps() is unchanged).
    /// @param threshold Finite and >= 0 (deq::invalid_argument naming `threshold` otherwise).
    void set_threshold(float threshold) {
        if (!(std::isfinite(threshold) && threshold >= 0.0f)) {
            ::deq::detail::throw_invalid_argument("threshold", threshold, "must be finite and >= 0");
        }
        threshold_ = threshold;
    }
    /// Number of updates done while calibrating.
    /// @return The step count, >= 0.
    std::int64_t steps() const noexcept { return steps_; }
    /// The EMA decay.
    /// @return The decay, in [0, 1].
    double decay() const noexcept { return decay_; }

    /// One calibration step with the batch abs-max @p max_abs: the first step sets the threshold,
    /// later steps move it by (1 - decay) towards @p max_abs (float arithmetic as documented). No-op
    /// when not calibrating.
    /// @param max_abs max|x| of the batch: finite (deq::numeric_error) and >= 0 (deq::invalid_argument).
    void update(float max_abs) {
        if (!calibrating_) return;
        if (!std::isfinite(max_abs)) {
            throw numeric_error(::deq::detail::concat("deq: non-finite value ", max_abs, " in 'max_abs'"));
        }
        if (max_abs < 0.0f) ::deq::detail::throw_invalid_argument("max_abs", max_abs, "must be >= 0");
        if (steps_ == 0 || !threshold_) {
            threshold_ = max_abs;
        } else {
            float const c = static_cast<float>(1.0 - decay_);
            float const d = *threshold_ - max_abs;
            auto const e = static_cast<float>(static_cast<double>(c) * static_cast<double>(d));  // exact product, one rounding
            threshold_ = *threshold_ - e;
        }
        ++steps_;
    }

    /// One calibration step with the abs-max of @p x (computed in the element type, then rounded to
    /// float). No-op when not calibrating.
    /// @tparam T    Element type.
    /// @tparam Rank Rank.
    /// @param x    Batch; non-empty (deq::shape_error) and finite (deq::numeric_error naming @p name and the index).
    /// @param name Name of @p x in error messages.
    template <class T, int Rank>
    void update(tensor_view<T const, Rank> x, std::string_view name = "x") {
        if (!calibrating_) return;
        if (x.size() == 0) {
            ::deq::detail::throw_shape_error(::deq::detail::concat("'", name, "' ", x.shape_string(), " is empty"));
        }
        ::deq::detail::require_finite(name, x);
        float m = 0.0f;
        if constexpr (std::is_same_v<std::remove_cv_t<T>, double>) {
            double md = 0.0;
            visit(x, [&](double v) { md = std::fmax(md, std::fabs(v)); });
            m = static_cast<float>(md);
        } else {
            visit(x, [&](float v) { m = std::fmax(m, std::fabs(v)); });
        }
        update(m);
    }

    /// The state as one line (see the file documentation), e.g.
    /// `deq-ema v1 threshold=0.9 steps=1 decay=0.9999 calibrating=1`.
    /// @return The serialized state, one line without a trailing newline.
    std::string to_string() const {
        std::string s = "deq-ema v" + std::to_string(format_version) + " threshold=";
        s += threshold_ ? shortest(*threshold_) : std::string("none");
        s += " steps=" + std::to_string(steps_);
        s += " decay=" + shortest(decay_);
        s += calibrating_ ? " calibrating=1" : " calibrating=0";
        return s;
    }

    /// Parses to_string()'s format. Throws deq::format_error naming the problem for empty input, a
    /// wrong magic word, an unknown version, unknown, missing, duplicated or malformed fields, and
    /// out-of-range values (threshold not finite and >= 0, negative steps, decay outside [0, 1],
    /// calibrating not 0/1, steps > 0 without a threshold).
    /// @param text The serialized state.
    /// @return A calibrator with the parsed threshold, steps, decay and calibrating flag.
    static ema_calibrator from_string(std::string_view text) {
        std::vector<std::string_view> tokens = split(text);
        if (tokens.empty()) throw format_error("deq: ema_calibrator state is empty");
        if (tokens[0] != "deq-ema") {
            throw format_error(::deq::detail::concat("deq: ema_calibrator state must start with 'deq-ema', found '",
                                                     tokens[0], "'"));
        }
        if (tokens.size() < 2) throw format_error("deq: ema_calibrator state has no version after 'deq-ema'");
        if (tokens[1] != "v1") {
            throw format_error(::deq::detail::concat("deq: unknown ema_calibrator state version '", tokens[1],
                                                     "' (supported: v1)"));
        }
        std::optional<std::string_view> fields[4];
        constexpr std::string_view keys[4] = {"threshold", "steps", "decay", "calibrating"};
        for (std::size_t i = 2; i < tokens.size(); ++i) {
            std::string_view const tok = tokens[i];
            std::size_t const eq = tok.find('=');
            if (eq == std::string_view::npos) {
                throw format_error(::deq::detail::concat("deq: ema_calibrator field '", tok, "' is not key=value"));
            }
            std::string_view const key = tok.substr(0, eq);
            int k = 0;
            while (k < 4 && keys[k] != key) ++k;
            if (k == 4) throw format_error(::deq::detail::concat("deq: unknown ema_calibrator field '", key, "'"));
            if (fields[k]) throw format_error(::deq::detail::concat("deq: duplicate ema_calibrator field '", key, "'"));
            fields[k] = tok.substr(eq + 1);
        }
        for (int k = 0; k < 4; ++k) {
            if (!fields[k]) throw format_error(::deq::detail::concat("deq: missing ema_calibrator field '", keys[k], "'"));
        }

        ema_calibrator c(parse_decay(*fields[2]));
        if (*fields[0] != "none") {
            float const t = parse_number<float>("threshold", *fields[0]);
            if (!(std::isfinite(t) && t >= 0.0f)) {
                throw format_error(::deq::detail::concat("deq: ema_calibrator field 'threshold' = ", *fields[0],
                                                         " must be finite and >= 0 (or none)"));
            }
            c.threshold_ = t;
        }
        auto const steps = parse_number<std::int64_t>("steps", *fields[1]);
        if (steps < 0) {
            throw format_error(::deq::detail::concat("deq: ema_calibrator field 'steps' = ", steps, " must be >= 0"));
        }
        if (steps > 0 && !c.threshold_) {
            throw format_error(::deq::detail::concat("deq: ema_calibrator field 'steps' = ", steps,
                                                     " but threshold=none (a calibrated state has a threshold)"));
        }
        c.steps_ = steps;
        if (*fields[3] != "0" && *fields[3] != "1") {
            throw format_error(::deq::detail::concat("deq: ema_calibrator field 'calibrating' = ", *fields[3],
                                                     " must be 0 or 1"));
        }
        c.calibrating_ = *fields[3] == "1";
        return c;
    }

    /// Writes to_string() and a newline to the file @p path (replacing it). Throws deq::format_error
    /// naming the path when it cannot be written.
    /// @param path File path.
    void save(std::filesystem::path const& path) const {
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        if (!out) throw format_error(::deq::detail::concat("deq: cannot open '", path.string(), "' for writing"));
        out << to_string() << '\n';
        out.flush();
        if (!out) throw format_error(::deq::detail::concat("deq: cannot write '", path.string(), "'"));
    }

    /// Reads a state written by save(). Throws deq::format_error naming the path when the file cannot
    /// be read, and as from_string() (with the path) when its content is malformed.
    /// @param path File path.
    /// @return A calibrator with the state read from @p path.
    static ema_calibrator load(std::filesystem::path const& path) {
        std::ifstream in(path, std::ios::binary);
        if (!in) throw format_error(::deq::detail::concat("deq: cannot open '", path.string(), "' for reading"));
        std::ostringstream buf;
        buf << in.rdbuf();
        try {
            return from_string(buf.str());
        } catch (format_error const& e) {
            throw format_error(::deq::detail::concat(e.what(), " (in '", path.string(), "')"));
        }
    }

    /// Same state (threshold, steps, decay and flag; thresholds compared bit for bit).
    /// @param a Left operand.
    /// @param b Right operand.
    friend bool operator==(ema_calibrator const& a, ema_calibrator const& b) noexcept {
        bool const same_threshold =
            a.threshold_.has_value() == b.threshold_.has_value() &&
            (!a.threshold_ || std::bit_cast<std::uint32_t>(*a.threshold_) == std::bit_cast<std::uint32_t>(*b.threshold_));
        return same_threshold && a.steps_ == b.steps_ && a.decay_ == b.decay_ && a.calibrating_ == b.calibrating_;
    }

private:
    static double checked_decay(double decay) {
        if (!(decay >= 0.0 && decay <= 1.0)) ::deq::detail::throw_invalid_argument("decay", decay, "must be in [0, 1]");
        return decay;
    }

    static double parse_decay(std::string_view text) {
        double const d = parse_number<double>("decay", text);
        if (!(d >= 0.0 && d <= 1.0)) {
            throw format_error(::deq::detail::concat("deq: ema_calibrator field 'decay' = ", text, " must be in [0, 1]"));
        }
        return d;
    }

    template <class N>
    static N parse_number(std::string_view field, std::string_view text) {
        N value{};
        auto const [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
        if (ec != std::errc() || end != text.data() + text.size() || text.empty()) {
            throw format_error(::deq::detail::concat("deq: ema_calibrator field '", field, "' has malformed value '",
                                                     text, "'"));
        }
        return value;
    }

    template <class F>
    static std::string shortest(F v) {
        char buf[64];
        auto const r = std::to_chars(buf, buf + sizeof(buf), v);
        return std::string(buf, r.ptr);
    }

    static std::vector<std::string_view> split(std::string_view text) {
        std::vector<std::string_view> out;
        std::size_t i = 0;
        auto const space = [](char ch) { return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\v' || ch == '\f'; };
        while (i < text.size()) {
            while (i < text.size() && space(text[i])) ++i;
            std::size_t const j = i;
            while (i < text.size() && !space(text[i])) ++i;
            if (i > j) out.push_back(text.substr(j, i - j));
        }
        return out;
    }

    template <class T, int Rank, class F>
    static void visit(tensor_view<T const, Rank> const& x, F&& f) {
        index_t idx[Rank] = {};
        for (index_t flat = 0; flat < x.size(); ++flat) {
            index_t off = 0;
            for (int r = 0; r < Rank; ++r) off += idx[r] * x.stride(r);
            f(x.data()[off]);
            for (int r = Rank - 1; r >= 0; --r) {
                if (++idx[r] < x.extent(r)) break;
                idx[r] = 0;
            }
        }
    }

    std::optional<float> threshold_;
    std::int64_t steps_ = 0;
    double decay_ = default_decay;
    bool calibrating_ = true;
};

}  // namespace deq::quant
