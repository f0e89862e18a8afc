// The builder's tuning step (one call in engine/builder.cc, after the backend's picks): reads the
// timing cache (file and/or BuilderConfig::setTimingCache), times each layer's candidates through
// the backend's TacticTimer (tuner.h), logs the outcome, and writes the cache back.
#pragma once
#include <string>
#include <vector>

#include "backends/registry.h"
#include "kiln/builder.h"
#include "tuning/tuner.h"

namespace kiln::tuning {

// `tactics` holds the backend's picks on entry and the tuned ones on return; `layers` gets one
// LayerTuning per node (for the engine's layer information).
Status run_tuning_step(const Graph& g, const BackendProvider& backend, const DeviceRecord& device,
                       const ValueShapes& opt, const BackendOptions& options, const BuilderConfig& config,
                       std::vector<std::string>& tactics, std::vector<LayerTuning>& layers);

}  // namespace kiln::tuning
