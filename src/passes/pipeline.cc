#include "passes/pipeline.h"

#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "core/log.h"

namespace kiln::passes {

const std::vector<Pass>& pipeline() {
  static const std::vector<Pass> passes = {
      {"fuse_qdq", "fold Q/DQ pairs around Conv/MatMul into QLinearConv/QLinearMatMul (explicit INT8; before weights fold)",
       fuse_qdq},
      {"fold_constants", "evaluate nodes whose inputs are all constants; their outputs become weights", fold_constants},
      {"eliminate_dead_nodes", "remove nodes whose outputs nothing reads", eliminate_dead_nodes},
      {"canonicalize_reshape", "give Reshapes whose target is built from the input's own dims a constant target",
       canonicalize_reshape},
      {"conv_to_matmul", "run a patchify convolution (kernel == stride, no padding: ViT's patch embedding) as a GEMM",
       conv_to_matmul},
      {"fuse_attention", "turn exported scaled-dot-product attention into one Attention node (--fp16/--bf16)",
       fuse_attention},
      {"fuse_mha", "one packed QKV GEMM + kiln.PackedAttention for torchvision's MultiheadAttention and BERT (--fp16/--bf16)",
       fuse_mha},
      {"fuse_epilogue",
       "fold what follows a convolution (residual Add, Relu: kiln.ConvAct) or a Linear layer (bias Add, Relu/GELU or "
       "residual Add: kiln.MatMulBias) into its epilogue, as the backend's kernels take it",
       fuse_epilogue},
      {"convert_precision", "run float32 layers in float16/bfloat16 (--fp16/--bf16); I/O keep their types",
       convert_precision},
      {"convert_layout", "run 2-D convolutions channels-last (NHWC) when the backend asks for it", convert_layout},
  };
  return passes;
}

Status run_pipeline(Graph& graph, PassContext& ctx) {
  // KILN_SKIP_PASSES=a,b: leave those passes out (A/B timing of a fusion; diagnosis).
  std::set<std::string> skip;
  if (const char* env = std::getenv("KILN_SKIP_PASSES")) {
    std::stringstream list(env);
    for (std::string name; std::getline(list, name, ',');) skip.insert(name);
  }
  for (const Pass& p : pipeline()) {
    if (skip.count(p.name)) {
      log_verbose(std::string("pass ") + p.name + ": skipped (KILN_SKIP_PASSES)");
      continue;
    }
    size_t before = graph.nodes().size();
    Status s = p.run(graph, ctx);
    if (!s) return err("pass ", p.name, ": ", s.message());
    s = graph.verify();
    if (!s) return err("pass ", p.name, " left an invalid graph: ", s.message());
    log_verbose(std::string("pass ") + p.name + ": " + std::to_string(before) + " -> " +
                std::to_string(graph.nodes().size()) + " nodes");
  }
  for (const auto& [k, v] : ctx.counters) log_verbose("  " + k + " = " + std::to_string(v));
  // KILN_DUMP_IR=file: the optimized graph as text (refactors must keep the zoo's dumps identical).
  if (const char* path = std::getenv("KILN_DUMP_IR")) {
    std::ofstream f(path);
    f << print_graph(graph);
    if (!f) return err("KILN_DUMP_IR: cannot write '", path, "'");
  }
  return Status::ok();
}

}  // namespace kiln::passes
