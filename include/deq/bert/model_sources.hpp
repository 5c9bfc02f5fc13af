/// @file
/// @brief `deq::bert::model_sources`: the files a BERT model was read from, named in error messages
/// (deq::bert::bert_model::sources(), deq::bert::check_vocabulary).
#pragma once

#include <string>

namespace deq::bert {

/// The files a model was read from, named in error messages (empty for what was not read from a file).
struct model_sources {
    /// The configuration (config.json).
    std::string config;
    /// The weights (model.safetensors), or the origin given to the bert_model constructor.
    std::string weights;
    /// The vocabulary checked against the model (deq::bert::check_vocabulary), whose ids the model is fed.
    std::string vocabulary;
};

}  // namespace deq::bert
