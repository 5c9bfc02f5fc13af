/// @file
/// @brief `deq::exec::accelerator`: an execution space that runs deq's kernels on the host (it is
/// host-accessible, so every pipeline call that runs on deq::exec::serial runs on it unchanged) and
/// models their cost on an attention accelerator (deq::accel::architecture: dense systolic array,
/// Sanger, DEQ v1 / v2 / v3, the reference Sanger cost model).
///
/// Each attention computation (attention(), sanger_attention(), deq_attention(), three_level_attention(),
/// static_sparse_attention()) reaches the dispatch point deq::impl::attention_impl, which this header
/// specialises: the computation runs as on the host (same outputs and statistics; or the fixed-point
/// datapath with `numerics.mode = fixed_point`), and its cost (deq::accel::evaluate) is added to the
/// space's report. The report is shared by all copies of a space object (like a Kokkos instance), so a
/// space passed by value into a model still reports to its owner: read it with report(), clear it with
/// reset().
///
/// The architecture is a runtime value, not a template parameter: the host kernels do not depend on
/// it, so one set of kernel instantiations serves every design, and a sweep over designs or parameters
/// (the report example) needs no recompilation.
#pragma once

#include <memory>
#include <mutex>
#include <utility>

#include "../accel/architecture.hpp"
#include "../accel/cost_model.hpp"
#include "../accel/cost_report.hpp"
#include "../accel/fixed_point_attention.hpp"
#include "../accel/workload.hpp"
#include "../attention/attention.hpp"
#include "execution_space.hpp"

namespace deq::exec {

/// The accelerator-model execution space (see the file documentation).
class accelerator {
public:
    /// A space modelling Sanger with its default parameters.
    accelerator() : accelerator(accel::architecture::sanger()) {}
    /// A space modelling @p arch.
    /// @param arch The architecture (validated here).
    /// @throws deq::invalid_argument for an impossible configuration, naming the parameter.
    explicit accelerator(accel::architecture arch)
        : arch_(std::make_shared<accel::architecture const>(validated(std::move(arch)))), state_(std::make_shared<state>()) {}

    /// @return The modelled architecture.
    accel::architecture const& architecture() const noexcept { return *arch_; }

    /// The accumulated cost of every attention call run on this space (or a copy of it) since
    /// construction or the last reset().
    /// @return A copy of the report.
    accel::cost_report report() const {
        std::lock_guard lock(state_->mutex);
        return state_->total;
    }
    /// Clears the accumulated report (for every copy of this space).
    void reset() const {
        std::lock_guard lock(state_->mutex);
        state_->total = accel::cost_report{};
    }
    /// Adds a cost to the report (what the attention hook does after each call).
    /// @param cost The cost of one call.
    void record(accel::cost_report const& cost) const {
        std::lock_guard lock(state_->mutex);
        state_->total += cost;
    }

private:
    struct state {
        std::mutex mutex;
        accel::cost_report total;
    };
    static accel::architecture validated(accel::architecture arch) {
        arch.validate();
        return arch;
    }
    std::shared_ptr<accel::architecture const> arch_;
    std::shared_ptr<state> state_;
};

/// Backend of deq::exec::accelerator: the functional model runs on the host, one work item after another.
template <>
struct backend<accelerator> {
    /// Backend name.
    static constexpr char const* name = "accelerator";
    /// Kernels run on host memory.
    static constexpr bool host_accessible = true;
    /// Calls `kernel(i)` for i = 0, 1, ..., n-1 in order.
    /// @tparam Kernel Callable `void(index_t) const`.
    /// @param n      Number of work items.
    /// @param kernel The kernel.
    template <class Kernel>
    static void parallel_for(accelerator const&, index_t n, Kernel const& kernel) {
        for (index_t i = 0; i < n; ++i) kernel(i);
    }
    /// @return Always 1.
    static int concurrency(accelerator const&) { return 1; }
};

}  // namespace deq::exec

namespace deq::impl {

/// The accelerator model costs every attention call through attention_impl, so the pipelines pass it
/// materialised predicted scores.
template <>
struct fused_attention<exec::accelerator> : std::false_type {};

/// Attention on the accelerator model: the host computation (or the fixed-point datapath), plus its cost
/// added to the space's report.
template <>
struct attention_impl<exec::accelerator> {
    /// Runs and costs one attention computation.
    /// @tparam T Element type.
    /// @param space   The accelerator space.
    /// @param q       Queries [B, H, Lq, d].
    /// @param k       Keys [B, H, Lk, d].
    /// @param v       Values [B, H, Lk, dv].
    /// @param out     Output [B, H, Lq, dv].
    /// @param options Padding, masks, predicted scores, empty-row policy and checks.
    /// @param info    The entry point; `predictor_bits` > 0 adds the predictor's cost.
    /// @return The call's statistics (identical to the host's).
    /// @throws As attention(), and as deq::accel::evaluate (e.g. a predictor wider than the datapath).
    template <class T>
    static attention_stats run(exec::accelerator const& space, tensor_view<T const, 4> q, tensor_view<T const, 4> k,
                               tensor_view<T const, 4> v, tensor_view<T, 4> out,
                               attention_options<accum_t<T>> const& options, attention_call_info const& info) {
        accel::architecture const& arch = space.architecture();
        attention_stats const st = ::deq::detail::attention_compute(space, q, k, v, out, options);
        accel::attention_workload w;
        w.batch = q.extent(0);
        w.heads = q.extent(1);
        w.lq = q.extent(2);
        w.lk = k.extent(2);
        w.dim = q.extent(3);
        w.dv = v.extent(3);
        w.padding = options.padding;
        w.query_padding = options.query_padding;
        w.kept = options.kept;
        w.refined = options.refined;
        w.predictor_bits = info.predictor_bits;
        accel::cost_report const cost = accel::evaluate(arch, w);
        if (arch.numerics.mode == accel::numerics_mode::fixed_point) accel::fixed_point_attention(arch, q, k, v, out, options);
        space.record(cost);
        return st;
    }
};

}  // namespace deq::impl
