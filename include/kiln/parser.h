// kiln public API: fills a Network from an ONNX model (file or bytes).
#pragma once
#include <string>
#include <vector>

#include "kiln/builder.h"

namespace kiln {

struct ParserError {
  std::string node;     // node name, or empty when the error is not about one node
  std::string op_type;  // the node's operator, if any
  std::string message;
};

class OnnxParser {
 public:
  OnnxParser(Network& network, Logger& logger) : network_(network), logger_(logger) {}
  bool parseFromFile(const std::string& path);
  // `base_dir` resolves external-data files; may be empty when there are none.
  bool parse(const void* data, size_t size, const std::string& base_dir = "");
  int getNbErrors() const { return static_cast<int>(errors_.size()); }
  const ParserError& getError(int i) const { return errors_[i]; }
  void clearErrors() { errors_.clear(); }

 private:
  bool finish(const std::string& error_or_empty);
  Network& network_;
  Logger& logger_;
  std::vector<ParserError> errors_;
};

}  // namespace kiln
