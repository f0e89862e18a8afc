// The CPU backend's kernels as the HostLayerFn the engine hands another backend for the layers
// the builder assigned to the CPU (kHostFallbackTactic): the backends never include each other.
#pragma once
#include "backends/backend.h"

namespace kiln::engine {

HostLayerFn host_layer();

}  // namespace kiln::engine
