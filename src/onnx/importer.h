// ONNX -> kiln Graph. Reads IR versions 3 to 14 and default-domain opsets 7 to 24 (newer
// ones are read as 24, with a warning); initializers in every encoding and external data;
// Constant nodes become initializers. Fails with one error that lists every unsupported
// (op, domain, opset) with the first node of each.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "ir/graph.h"

namespace kiln::onnx_import {

constexpr int kMinIrVersion = 3, kMaxIrVersion = 14;
constexpr int kMinOpset = 7, kMaxOpset = 24;

struct UnsupportedOp {
  std::string op_type, domain;
  int opset = 0;
  std::string first_node;
};

struct ImportOptions {
  bool run_shape_inference = true;
  bool require_supported_ops = true;  // false: import anyway (e.g. to print the graph)
  std::vector<UnsupportedOp>* unsupported_out = nullptr;  // if set, receives each unsupported op
};

Expected<std::unique_ptr<Graph>> import_file(const std::string& path, const ImportOptions& opts = {});
// `base_dir` resolves external data; empty when the model has none.
Expected<std::unique_ptr<Graph>> import_bytes(const std::string& bytes, const std::string& base_dir,
                                              const ImportOptions& opts = {});

}  // namespace kiln::onnx_import
