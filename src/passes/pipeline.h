// Graph optimization passes. Each pass does one thing, lives in its own file named
// verb_object.cc, states its pre- and postconditions at the top, and is listed once in
// pipeline.cc. Passes never name a backend: what they need from one comes through PassContext.
#pragma once
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "ir/graph.h"

namespace kiln::passes {

struct PassContext {
  // Evaluates one node on concrete inputs (constant folding); provided by the builder.
  std::function<Expected<std::vector<Tensor>>(const Node&, const std::vector<const Tensor*>&)> evaluate;
  std::map<std::string, int> counters;  // "fold_constants.folded" -> 12, shown with --verbose
  // kFloat16 / kBFloat16: run the float32 part of the graph in that type (--fp16 / --bf16).
  DataType reduced_precision = DataType::kUndefined;
  // Run 2-D convolutions channels-last (convert_layout): set for backends whose convolutions
  // are fastest in NHWC (CUDA tensor cores in float16).
  bool channels_last = false;
  // Whether the backend the engine is built for has its own kernel for (domain, op): a pass that
  // makes a fused op only the CPU reference implements (a CUDA kernel not written yet) would
  // turn fast layers into CPU fallbacks. Null: every op (the CPU backend runs them all).
  std::function<bool(const std::string& domain, const std::string& op)> has_kernel;
  // Whether the backend runs this node (its kernels' check()), with the reason when not: the
  // question a fusing pass asks about the node it would make (fuse_epilogue: which epilogues the
  // backend takes). Null: every node (the CPU backend runs them all).
  std::function<bool(const Node& node, std::string* why)> supports;
  // Layers a precision constraint keeps in float32 (--layerPrecisions=name:fp32): convert_precision
  // leaves them (with Casts around them). Null: none.
  std::function<bool(const Node&)> keep_float32;
};

struct Pass {
  const char* name;
  const char* summary;
  Status (*run)(Graph& graph, PassContext& ctx);
};

const std::vector<Pass>& pipeline();
// The opset a pass gives the default-domain nodes it makes: the graph's, else 17.
inline int default_opset(const Graph& graph) { return graph.opsets.count("") ? graph.opsets.at("") : 17; }
// Runs every pass in order, verifying the graph after each; logs counters at verbose level.
Status run_pipeline(Graph& graph, PassContext& ctx);

// The passes (one file each).
Status fold_constants(Graph& graph, PassContext& ctx);
Status eliminate_dead_nodes(Graph& graph, PassContext& ctx);
Status canonicalize_reshape(Graph& graph, PassContext& ctx);
Status conv_to_matmul(Graph& graph, PassContext& ctx);
Status fuse_qdq(Graph& graph, PassContext& ctx);
Status fuse_epilogue(Graph& graph, PassContext& ctx);
Status fuse_attention(Graph& graph, PassContext& ctx);
Status fuse_mha(Graph& graph, PassContext& ctx);
Status convert_precision(Graph& graph, PassContext& ctx);
Status convert_layout(Graph& graph, PassContext& ctx);

}  // namespace kiln::passes
