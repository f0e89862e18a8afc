// The kiln command line: trtexec's flag names and --flag=value syntax. Every flag is either
// handled, mapped (old TensorRT 7/8 spellings, with a notice), or refused by name.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "core/status.h"

namespace kiln::cli {

struct Options {
  std::string onnx;
  std::string backend = "auto";
  std::map<std::string, std::vector<int64_t>> shapes;   // --shapes
  std::map<std::string, std::string> load_inputs;       // --loadInputs name:file
  std::string export_output;
  int iterations = 10;
  int warmup_ms = 200;
  bool dump_output = false;
  bool verbose = false;
  bool help = false;
};

Expected<Options> parse_options(const std::vector<std::string>& args);
std::string usage();

}  // namespace kiln::cli
