#include "engine/host_layer.h"

#include "backends/cpu/executor.h"

namespace kiln::engine {

HostLayerFn host_layer() {
  return [](const Node& node, const std::vector<const Tensor*>& inputs,
            const std::vector<const Tensor*>& scope) -> Expected<std::vector<Tensor>> {
    return node.implicit_inputs().empty() ? cpu::run_node(node, inputs) : cpu::run_node_in_scope(node, inputs, scope);
  };
}

}  // namespace kiln::engine
