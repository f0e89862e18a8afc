#include "tools/kiln/options.h"

#include <sstream>

namespace kiln::cli {

namespace {

// "1x3x224x224" -> {1,3,224,224}
Expected<std::vector<int64_t>> parse_dims(const std::string& s, const std::string& flag) {
  std::vector<int64_t> dims;
  std::stringstream ss(s);
  std::string part;
  while (std::getline(ss, part, 'x')) {
    try {
      size_t used = 0;
      long long v = std::stoll(part, &used);
      if (used != part.size() || v < 0) throw std::invalid_argument(part);
      dims.push_back(v);
    } catch (const std::exception&) {
      return err(flag, ": malformed shape '", s, "' (expected dims like 1x3x224x224)");
    }
  }
  if (dims.empty() && !s.empty()) return err(flag, ": malformed shape '", s, "'");
  return dims;
}

// "a:1x3,b:2x2" -> {a: [1,3], b: [2,2]}; names may contain ':' only before the last one.
Status parse_shape_list(const std::string& value, const std::string& flag,
                        std::map<std::string, std::vector<int64_t>>& out) {
  std::stringstream ss(value);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t colon = item.rfind(':');
    if (colon == std::string::npos || colon == 0)
      return err(flag, ": expected <input name>:<dims>, got '", item, "'");
    KILN_ASSIGN_OR_RETURN(auto dims, parse_dims(item.substr(colon + 1), flag));
    out[item.substr(0, colon)] = std::move(dims);
  }
  return Status::ok();
}

Expected<int> parse_int(const std::string& v, const std::string& flag) {
  try {
    size_t used = 0;
    int x = std::stoi(v, &used);
    if (used == v.size() && x >= 0) return x;
  } catch (const std::exception&) {
  }
  return err(flag, ": expected a non-negative integer, got '", v, "'");
}

}  // namespace

std::string usage() {
  return "Usage: kiln --onnx=<model.onnx> [options]\n"
         "  --onnx=<file>              ONNX model to run\n"
         "  --backend=auto|cpu         where to run (auto: CUDA when usable, else CPU)\n"
         "  --shapes=<name>:<dims>,... input shapes for dynamic inputs (dims like 1x3x224x224)\n"
         "  --loadInputs=<name>:<file>,...  raw little-endian input data (else random in [-1,1])\n"
         "  --iterations=<N>           timed runs (default 10)\n"
         "  --warmUp=<ms>              warm-up time before timing (default 200)\n"
         "  --dumpOutput               print the outputs\n"
         "  --exportOutput=<file>      write outputs as JSON: [{name, dimensions, values}]\n"
         "  --verbose                  print the imported graph and every decision\n"
         "  --help                     this text\n";
}

Expected<Options> parse_options(const std::vector<std::string>& args) {
  Options o;
  for (const std::string& a : args) {
    if (a.rfind("--", 0) != 0) return err("unexpected argument '", a, "' (flags look like --name=value)");
    size_t eq = a.find('=');
    std::string flag = a.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
    std::string value = eq == std::string::npos ? "" : a.substr(eq + 1);
    bool has_value = eq != std::string::npos;
    auto need_value = [&]() -> Status {
      if (!has_value || value.empty()) return err("--", flag, " needs a value (--", flag, "=...)");
      return Status::ok();
    };
    if (flag == "onnx") { KILN_RETURN_IF_ERROR(need_value()); o.onnx = value; }
    else if (flag == "backend") {
      KILN_RETURN_IF_ERROR(need_value());
      if (value != "auto" && value != "cpu" && value != "cuda")
        return err("--backend: expected auto, cpu or cuda, got '", value, "'");
      o.backend = value;
    } else if (flag == "shapes") {
      KILN_RETURN_IF_ERROR(need_value());
      KILN_RETURN_IF_ERROR(parse_shape_list(value, "--shapes", o.shapes));
    } else if (flag == "loadInputs") {
      KILN_RETURN_IF_ERROR(need_value());
      std::stringstream ss(value);
      std::string item;
      while (std::getline(ss, item, ',')) {
        size_t colon = item.rfind(':');
        if (colon == std::string::npos || colon == 0 || colon + 1 == item.size())
          return err("--loadInputs: expected <input name>:<file>, got '", item, "'");
        o.load_inputs[item.substr(0, colon)] = item.substr(colon + 1);
      }
    } else if (flag == "iterations") { KILN_RETURN_IF_ERROR(need_value()); KILN_ASSIGN_OR_RETURN(o.iterations, parse_int(value, "--iterations")); }
    else if (flag == "warmUp") { KILN_RETURN_IF_ERROR(need_value()); KILN_ASSIGN_OR_RETURN(o.warmup_ms, parse_int(value, "--warmUp")); }
    else if (flag == "exportOutput") { KILN_RETURN_IF_ERROR(need_value()); o.export_output = value; }
    else if (flag == "dumpOutput" && !has_value) o.dump_output = true;
    else if (flag == "verbose" && !has_value) o.verbose = true;
    else if (flag == "help" && !has_value) o.help = true;
    else return err("unsupported flag --", flag, " (kiln --help lists the flags it supports)");
  }
  if (!o.help && o.onnx.empty()) return err("no model given: use --onnx=<model.onnx>");
  return o;
}

}  // namespace kiln::cli
