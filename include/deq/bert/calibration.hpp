/// @file
/// @brief `deq::bert::calibrate`: the predictor's quantizer thresholds from data, for checkpoints that
/// do not store them (e.g. sentence-transformers' all-MiniLM-L6-v2).
///
/// The rule is the reference's training-time calibration (`QuantizedMatMul` in training mode), one
/// deq::quant::ema_calibrator per layer and operand:
///
/// - each batch runs the encoder with **dense** attention (one set of thresholds serves every predictor
///   mode, and no mode's approximation leaks into another's calibration);
/// - at each layer, the batch's absolute maximum of the L2-normalised query rows and key rows is taken over
///   the whole [B, heads, L, d] tensor, padded positions included, as the reference does
///   (deq::calibrate_predictor);
/// - the first batch sets the threshold, every later batch moves it by
///   `thresh -= (1 - decay) · (thresh - max|x|)` with decay 0.9999 (float arithmetic of the reference).
///
/// Because the EMA barely moves after the first batch, the result is close to the first batch's abs-max;
/// the batches' order therefore matters and is part of the documented calibration set.
///
/// calibrate_encodings() does the same from tokenized sequences (e.g. the first N training examples of a
/// task), cut in file order into batches of calibration_options::batch_size padded to their longest.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "../exec/execution_space.hpp"
#include "../predict/sanger_predictor.hpp"
#include "../quant/ema_calibration.hpp"
#include "attention_mode.hpp"
#include "encoder.hpp"
#include "inputs.hpp"
#include "thresholds.hpp"

namespace deq::bert {

/// Options of calibrate().
struct calibration_options {
    /// Predictor bit width stored in the result (2..8 or 16; the reference uses 4).
    int bits = 4;
    /// EMA decay (the reference's 0.9999).
    double decay = quant::ema_calibrator::default_decay;
    /// Provenance text stored in the result (e.g. which sentences were used).
    std::string origin = "calibration";
};

/// Calibrates the predictor thresholds of every layer on @p batches (see the file documentation).
/// @tparam Space A host execution space.
/// @param space   Execution space.
/// @param model   The model.
/// @param batches Calibration batches, in order (at least one).
/// @param options Bit width, decay, provenance.
/// @return The thresholds (not installed in @p model: call bert_model::set_thresholds()).
/// @throws deq::invalid_argument for no batches or bad options; what bert_model::forward() throws.
template <exec::host_execution_space Space>
predictor_thresholds calibrate(Space const& space, bert_model const& model, std::span<model_input const> batches,
                               calibration_options const& options = {}) {
    if (batches.empty()) detail::throw_invalid_argument("batches", "<empty>", "calibration needs at least one batch");
    predictor_config{1.0, 1.0, options.bits}.validate();
    index_t const layers = model.config().num_hidden_layers;
    std::vector<quant::ema_calibrator> ema_q(static_cast<std::size_t>(layers), quant::ema_calibrator(options.decay));
    std::vector<quant::ema_calibrator> ema_k = ema_q;
    forward_options fo;
    fo.on_qk = [&](index_t layer, tensor_view<float const, 4> q, tensor_view<float const, 4> k) {
        predictor_config const c = calibrate_predictor(q, k, options.bits);
        ema_q[static_cast<std::size_t>(layer)].update(static_cast<float>(c.threshold_q));
        ema_k[static_cast<std::size_t>(layer)].update(static_cast<float>(c.threshold_k));
    };
    for (model_input const& batch : batches) model.forward(space, batch, attention_mode::dense(), fo);
    predictor_thresholds t;
    t.bits = options.bits;
    t.origin = options.origin;
    t.decay = options.decay;
    t.steps = ema_q.front().steps();
    for (index_t l = 0; l < layers; ++l) {
        t.layers.push_back({ema_q[static_cast<std::size_t>(l)].threshold(), ema_k[static_cast<std::size_t>(l)].threshold()});
    }
    t.validate(layers);
    return t;
}

/// calibrate() for a vector of batches.
/// @tparam Space A host execution space.
/// @param space   Execution space.
/// @param model   The model.
/// @param batches Calibration batches, in order.
/// @param options Bit width, decay, provenance.
/// @return The thresholds.
template <exec::host_execution_space Space>
predictor_thresholds calibrate(Space const& space, bert_model const& model, std::vector<model_input> const& batches,
                               calibration_options const& options = {}) {
    return calibrate(space, model, std::span<model_input const>(batches), options);
}

/// Calibrates the predictor thresholds on tokenized sequences: calibrate() over consecutive batches of
/// @p batch_size sequences (the last one shorter), each padded to its longest sequence
/// (model_input::from_encodings with @p pad_id).
/// @tparam Space A host execution space.
/// @tparam E     A sequence type satisfying encoding_like (e.g. deq::text::encoding).
/// @param space      Execution space.
/// @param model      The model (its own thresholds are ignored; dense attention).
/// @param encodings  The calibration sequences, in the order they are batched.
/// @param batch_size Sequences per batch (>= 1; the reference's calibration used the training batch, 32).
/// @param pad_id     Id of the padding token.
/// @param options    Bit width, EMA decay, provenance.
/// @return The thresholds.
/// @throws deq::invalid_argument for no sequence, an empty sequence, batch_size < 1 or a bad bit width;
///         what bert_model::forward throws.
template <exec::host_execution_space Space, encoding_like E>
predictor_thresholds calibrate_encodings(Space const& space, bert_model const& model, std::span<E const> encodings, index_t batch_size,
                                         std::int32_t pad_id, calibration_options const& options = {}) {
    if (batch_size < 1) detail::throw_invalid_argument("batch_size", batch_size, "must be >= 1");
    if (encodings.empty()) detail::throw_invalid_argument("encodings", "<empty>", "calibration needs at least one sequence");
    std::vector<model_input> batches;
    auto const step = static_cast<std::size_t>(batch_size);
    for (std::size_t i = 0; i < encodings.size(); i += step) {
        batches.push_back(model_input::from_encodings(encodings.subspan(i, std::min(step, encodings.size() - i)), pad_id));
    }
    return calibrate(space, model, batches, options);
}

/// calibrate_encodings() for a vector.
/// @tparam Space A host execution space.
/// @tparam E     A sequence type satisfying encoding_like.
/// @param space      Execution space.
/// @param model      The model.
/// @param encodings  The calibration sequences.
/// @param batch_size Sequences per batch.
/// @param pad_id     Id of the padding token.
/// @param options    Bit width, EMA decay, provenance.
/// @return The thresholds.
template <exec::host_execution_space Space, encoding_like E>
predictor_thresholds calibrate_encodings(Space const& space, bert_model const& model, std::vector<E> const& encodings, index_t batch_size,
                                         std::int32_t pad_id, calibration_options const& options = {}) {
    return calibrate_encodings(space, model, std::span<E const>(encodings), batch_size, pad_id, options);
}

}  // namespace deq::bert
