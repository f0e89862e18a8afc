#include "passes/pipeline.h"

#include "core/log.h"

namespace kiln::passes {

const std::vector<Pass>& pipeline() {
  static const std::vector<Pass> passes = {
      {"fold_constants", "evaluate nodes whose inputs are all constants; their outputs become weights", fold_constants},
      {"eliminate_dead_nodes", "remove nodes whose outputs nothing reads", eliminate_dead_nodes},
      {"fuse_conv_act", "fold a convolution's residual Add and Relu into one kiln.ConvAct layer", fuse_conv_act},
      {"convert_precision", "run float32 layers in float16/bfloat16 (--fp16/--bf16); I/O keep their types",
       convert_precision},
      {"convert_layout", "run 2-D convolutions channels-last (NHWC) when the backend asks for it", convert_layout},
  };
  return passes;
}

Status run_pipeline(Graph& graph, PassContext& ctx) {
  for (const Pass& p : pipeline()) {
    size_t before = graph.nodes().size();
    Status s = p.run(graph, ctx);
    if (!s) return err("pass ", p.name, ": ", s.message());
    s = graph.verify();
    if (!s) return err("pass ", p.name, " left an invalid graph: ", s.message());
    log_verbose(std::string("pass ") + p.name + ": " + std::to_string(before) + " -> " +
                std::to_string(graph.nodes().size()) + " nodes");
  }
  for (const auto& [k, v] : ctx.counters) log_verbose("  " + k + " = " + std::to_string(v));
  return Status::ok();
}

}  // namespace kiln::passes
