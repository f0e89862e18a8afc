// The public OnnxParser: fills a Network through the importer, keeping one ParserError per
// unsupported operator (with its first node) so callers can list them.
#include "core/mapped_file.h"
#include "engine/api_logging.h"
#include "kiln/parser.h"
#include "onnx/importer.h"

namespace kiln {

bool OnnxParser::finish(const std::string& error) {
  if (error.empty()) return true;
  if (errors_.empty()) errors_.push_back({"", "", error});
  log_error(logger_, error);
  return false;
}

static std::string dir_of(const std::string& path) {
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

bool OnnxParser::parseFromFile(const std::string& path) {
  auto bytes = read_file(path);
  if (!bytes) return finish(bytes.status().message());
  return parse(bytes->data(), bytes->size(), dir_of(path));
}

bool OnnxParser::parse(const void* data, size_t size, const std::string& base_dir) {
  ScopedLogger route(logger_);
  errors_.clear();
  std::vector<onnx_import::UnsupportedOp> unsupported;
  onnx_import::ImportOptions opts;
  opts.unsupported_out = &unsupported;
  auto g = onnx_import::import_bytes(std::string(static_cast<const char*>(data), size), base_dir, opts);
  for (const auto& u : unsupported)
    errors_.push_back({u.first_node, u.op_type,
                       "unsupported operator " + u.op_type + " (domain '" + (u.domain.empty() ? "ai.onnx" : u.domain) +
                           "', opset " + std::to_string(u.opset) + ")"});
  if (!g) return finish(g.status().message());
  network_.graph_ = std::move(g).value();
  return true;
}

}  // namespace kiln
