// The CPU backend behind the engine runtime: runs the graph with the reference Executor on
// host buffers. Inputs are read in place (views of the caller's memory); outputs are copied
// into the caller's buffers.
#pragma once
#include "backends/registry.h"

namespace kiln::cpu {

// `tactics`: one per node (empty: every layer on its reference kernel with OpenBLAS).
Expected<std::unique_ptr<BackendEngine>> create_cpu_engine(const Graph& graph, const std::vector<std::string>& tactics = {});

// Adds the CPU reference backend ("cpu") to the registry (engine/backend_list.cc).
void register_cpu_backend(BackendRegistry& r);

}  // namespace kiln::cpu
