// Parsing and validation of kiln's flags (trtexec's names). Each flag has one handler in the
// table below; anything else is refused by name.
#include "tools/kiln/options.h"

#include "kiln/builder.h"

#include <cctype>
#include <climits>
#include <cmath>
#include <functional>
#include <set>

namespace kiln::cli {
namespace {

Dims parse_dims(const std::string& s, const std::string& flag, const std::string& item) {
  Dims dims;
  std::stringstream ss(s);
  std::string part;
  while (std::getline(ss, part, 'x')) {
    size_t used = 0;
    long long v = -1;
    try { v = std::stoll(part, &used); } catch (const std::exception&) { used = 0; }
    if (part.empty() || used != part.size() || v < 0)
      fail(flag, ": malformed shape '", item, "' (expected <input name>:<dims> with dims like 1x3x224x224)");
    dims.push_back(v);
  }
  if (dims.empty() || s.back() == 'x')
    fail(flag, ": malformed shape '", item, "' (expected <input name>:<dims> with dims like 1x3x224x224)");
  return dims;
}

std::string unquote(std::string s) {
  if (s.size() >= 2 && s.front() == '\'' && s.back() == '\'') s = s.substr(1, s.size() - 2);
  return s;
}

long long parse_int(const std::string& v, const std::string& flag, long long min_value) {
  size_t used = 0;
  long long x = 0;
  try { x = std::stoll(v, &used); } catch (const std::exception&) { used = 0; }
  if (v.empty() || used != v.size() || x < min_value)
    fail("--", flag, ": expected an integer >= ", min_value, ", got '", v, "'");
  // Every integer flag is stored in an int: larger values would wrap (2147483648 -> negative).
  if (x > INT_MAX) fail("--", flag, ": ", v, " is too large (at most ", INT_MAX, ")");
  return x;
}

double parse_double(const std::string& v, const std::string& flag, double min_value, double max_value) {
  size_t used = 0;
  double x = 0;
  try { x = std::stod(v, &used); } catch (const std::exception&) { used = 0; }
  if (v.empty() || used != v.size() || !std::isfinite(x) || x < min_value || x > max_value)
    fail("--", flag, ": expected a number in [", min_value, ", ", max_value, "], got '", v, "'");
  return x;
}

// "1024" (MiB), or with a unit: "512K", "1024M", "2G" -> bytes.
size_t parse_mib(const std::string& v, const std::string& flag) {
  std::string num = v;
  double scale = 1 << 20;
  if (!v.empty() && std::string("KkMmGg").find(v.back()) != std::string::npos) {
    char u = static_cast<char>(std::toupper(v.back()));
    scale = u == 'K' ? 1 << 10 : u == 'M' ? 1 << 20 : double(1 << 30);
    num = v.substr(0, v.size() - 1);
  }
  return static_cast<size_t>(parse_double(num, flag, 0, 1e9) * scale);
}

void parse_mem_pool(const std::string& value, Options& o) {
  std::stringstream ss(value);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t colon = item.find(':');
    if (colon == std::string::npos) fail("--memPoolSize: expected <pool>:<size in MiB>, got '", item, "'");
    std::string pool = item.substr(0, colon);
    if (pool != "workspace")
      fail("--memPoolSize: pool '", pool, "' is not supported by kiln (only workspace:<MiB>)");
    o.workspace_bytes = parse_mib(item.substr(colon + 1), "memPoolSize");
  }
}

void parse_load_inputs(const std::string& value, Options& o) {
  std::stringstream ss(value);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t colon = item.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == item.size())
      fail("--loadInputs: expected <input name>:<file>, got '", item, "'");
    o.load_inputs[unquote(item.substr(0, colon))] = item.substr(colon + 1);
  }
}

// "conv1:fp32,*:fp16" (names may be quoted: 'a,b':fp16) for --layerPrecisions/--layerOutputTypes.
void parse_layer_types(const std::string& value, std::map<std::string, std::string>& into, const std::string& flag) {
  std::stringstream ss(value);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t colon = item.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == item.size())
      fail("--", flag, ": expected <layer name>:<type> (or *:<type>), got '", item, "'");
    const std::string name = unquote(item.substr(0, colon)), type = item.substr(colon + 1);
    if (type != "fp32" && type != "fp16" && type != "int8")
      fail("--", flag, ": layer '", name, "': type '", type, "' is not supported by kiln (fp32, fp16, int8",
           type.find('+') != std::string::npos ? "; one type per layer, not one per output" : "", ")");
    if (into.count(name)) fail("--", flag, ": layer '", name, "' is given twice");
    into[name] = type;
  }
}

std::vector<double> parse_percentiles(const std::string& value) {
  std::vector<double> out;
  std::stringstream ss(value);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(parse_double(item, "percentile", 0, 100));
  if (out.empty()) fail("--percentile: expected P or P1,P2,... in [0, 100]");
  return out;
}

// "a,b,c" (or one value for all three channels) of finite numbers.
std::vector<double> parse_triple(const std::string& value, const std::string& flag) {
  std::vector<double> out;
  std::stringstream ss(value);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(parse_double(item, flag, -1e6, 1e6));
  if (out.size() == 1) out.assign(3, out[0]);
  if (out.size() != 3) fail("--", flag, ": expected one value or three (r,g,b in the input's channel order), got '", value, "'");
  return out;
}

// --tacticSources=-CUDNN,+CUBLAS_LT (trtexec's form): each name enables (+) or disables (-) a
// source of the default set; names are case-insensitive.
void parse_tactic_sources(const std::string& value, Options& o) {
  static const std::map<std::string, kiln::TacticSource> names = {
      {"CUBLAS", kiln::TacticSource::kCUBLAS},   {"CUBLAS_LT", kiln::TacticSource::kCUBLAS_LT},
      {"CUDNN", kiln::TacticSource::kCUDNN},     {"KILN", kiln::TacticSource::kKILN},
      {"OPENBLAS", kiln::TacticSource::kOPENBLAS}, {"CPU_LOOPS", kiln::TacticSource::kCPU_LOOPS}};
  uint32_t mask = o.tactic_sources_given ? o.tactic_sources : kiln::kAllTacticSources;
  std::stringstream ss(value);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.size() < 2 || (item[0] != '+' && item[0] != '-'))
      fail("--tacticSources: expected a list of +NAME / -NAME, got '", item, "'");
    std::string name = item.substr(1);
    for (char& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    auto it = names.find(name);
    if (it == names.end())
      fail("--tacticSources: unknown source '", item.substr(1), "' (kiln has CUBLAS_LT, CUDNN, KILN, OPENBLAS, CPU_LOOPS)");
    if (it->second == kiln::TacticSource::kCUBLAS) {
      o.notices.push_back("--tacticSources: kiln has no cuBLAS (non-Lt) tactics: " + item + " changes nothing");
      continue;
    }
    const uint32_t bit = 1u << static_cast<int>(it->second);
    mask = item[0] == '+' ? (mask | bit) : (mask & ~bit);
  }
  o.tactic_sources = mask;
  o.tactic_sources_given = true;
}

// trtexec flags kiln does not implement: refused by name with the reason.
const std::map<std::string, std::string>& refused_flags() {
  static const std::map<std::string, std::string> m = {
      {"threads", "not supported by kiln yet"},
      {"useDLACore", "kiln has no DLA backend"},
      {"allowGPUFallback", "kiln has no DLA backend"},
      {"plugins", "kiln has no plugin loading yet"},
      {"sparsity", "not supported by kiln yet"},
      {"infStreams", "not supported by kiln yet; use --streams"},
      {"dumpLayerInfo", "not supported by kiln yet; use --exportLayerInfo"},
      {"safe", "kiln has no safety runtime"},
      {"fp8", "no FP8 layers yet (explicit FP8 Q/DQ nodes run on the CPU); use --fp16 or --int8"},
      {"int4", "no INT4 layers yet (explicit INT4 Q/DQ nodes run on the CPU); use --fp16 or --int8"},
  };
  return m;
}

using Handler = std::function<void(const std::string& value, Options& o)>;
struct Flag {
  bool takes_value;
  Handler handle;
};

// The table of accepted flags: name -> (takes a value?, handler).
const std::map<std::string, Flag>& flag_table() {
  auto str = [](std::string Options::*m) { return Flag{true, [m](const std::string& v, Options& o) { o.*m = v; }}; };
  auto on = [](bool Options::*m) { return Flag{false, [m](const std::string&, Options& o) { o.*m = true; }}; };
  auto shapes = [](std::vector<ShapeMap> Options::*m, const char* name) {
    return Flag{true, [m, name](const std::string& v, Options& o) { (o.*m).push_back(parse_shape_list(v, name)); }};
  };
  static const std::map<std::string, Flag> t = {
      {"onnx", str(&Options::onnx)},
      {"saveEngine", str(&Options::save_engine)},
      {"loadEngine", str(&Options::load_engine)},
      {"fp16", on(&Options::fp16)},
      {"bf16", on(&Options::bf16)},
      {"int8", on(&Options::int8)},
      {"best", on(&Options::best)},
      {"noTF32", on(&Options::no_tf32)},
      {"shapes", {true, [](const std::string& v, Options& o) {
         for (auto& [k, d] : parse_shape_list(v, "--shapes")) o.shapes[k] = d; }}},
      {"minShapes", shapes(&Options::min_shapes, "--minShapes")},
      {"optShapes", shapes(&Options::opt_shapes, "--optShapes")},
      {"maxShapes", shapes(&Options::max_shapes, "--maxShapes")},
      {"profile", {true, [](const std::string& v, Options& o) { o.profile = int(parse_int(v, "profile", 0)); }}},
      {"memPoolSize", {true, parse_mem_pool}},
      {"workspace", {true, [](const std::string& v, Options& o) {
         o.workspace_bytes = parse_mib(v, "workspace");
         o.notices.push_back("--workspace is deprecated: use --memPoolSize=workspace:" + v); }}},
      {"maxBatch", {true, [](const std::string& v, Options& o) {
         o.max_batch = int(parse_int(v, "maxBatch", 1));
         o.notices.push_back("--maxBatch is deprecated: mapped to the batch dim of the max shape (use --minShapes/"
                             "--optShapes/--maxShapes)"); }}},
      {"explicitBatch", {false, [](const std::string&, Options& o) {
         o.notices.push_back("--explicitBatch is deprecated: every kiln network has an explicit batch"); }}},
      {"iterations", {true, [](const std::string& v, Options& o) { o.iterations = int(parse_int(v, "iterations", 1)); }}},
      {"duration", {true, [](const std::string& v, Options& o) { o.duration_s = parse_double(v, "duration", 0, 1e6); }}},
      {"warmUp", {true, [](const std::string& v, Options& o) { o.warmup_ms = int(parse_int(v, "warmUp", 0)); }}},
      {"avgRuns", {true, [](const std::string& v, Options& o) { o.avg_runs = int(parse_int(v, "avgRuns", 1)); }}},
      {"percentile", {true, [](const std::string& v, Options& o) { o.percentiles = parse_percentiles(v); }}},
      {"streams", {true, [](const std::string& v, Options& o) { o.streams = int(parse_int(v, "streams", 1)); }}},
      {"loadInputs", {true, parse_load_inputs}},
      {"exportOutput", str(&Options::export_output)},
      {"exportTimes", str(&Options::export_times)},
      {"exportProfile", str(&Options::export_profile)},
      {"exportLayerInfo", str(&Options::export_layer_info)},
      {"dumpProfile", on(&Options::dump_profile)},
      {"dumpTactics", on(&Options::dump_tactics)},
      {"dumpOutput", on(&Options::dump_output)},
      {"separateProfileRun", on(&Options::separate_profile_run)},
      {"useCudaGraph", on(&Options::use_cuda_graph)},
      {"noDataTransfers", on(&Options::no_data_transfers)},
      {"useSpinWait", on(&Options::use_spin_wait)},
      {"skipInference", on(&Options::skip_inference)},
      {"timingCacheFile", str(&Options::timing_cache)},
      {"noBuilderCache", on(&Options::no_builder_cache)},
      {"builderOptimizationLevel", {true, [](const std::string& v, Options& o) {
         o.builder_opt_level = int(parse_int(v, "builderOptimizationLevel", 0));
         if (o.builder_opt_level > 5) fail("--builderOptimizationLevel: expected 0..5, got '", v, "'"); }}},
      {"avgTiming", {true, [](const std::string& v, Options& o) { o.avg_timing = int(parse_int(v, "avgTiming", 1)); }}},
      {"tacticSources", {true, parse_tactic_sources}},
      {"calib", str(&Options::calib)},
      {"calibImages", str(&Options::calib_images)},
      {"calibData", str(&Options::calib_data)},
      {"calibBatches", {true, [](const std::string& v, Options& o) { o.calib_batches = int(parse_int(v, "calibBatches", 1)); }}},
      {"calibAlgo", {true, [](const std::string& v, Options& o) {
         if (v != "entropy" && v != "minmax" && v != "percentile" && v != "mse")
           fail("--calibAlgo: expected entropy, minmax, percentile or mse, got '", v, "'");
         o.calib_algo = v; }}},
      {"calibPercentile", {true, [](const std::string& v, Options& o) {
         o.calib_percentile = parse_double(v, "calibPercentile", 50, 100); }}},
      {"minShapesCalib", shapes(&Options::min_shapes_calib, "--minShapesCalib")},
      {"optShapesCalib", shapes(&Options::opt_shapes_calib, "--optShapesCalib")},
      {"maxShapesCalib", shapes(&Options::max_shapes_calib, "--maxShapesCalib")},
      {"calibResize", {true, [](const std::string& v, Options& o) {
         if (v != "none" && v != "crop" && v != "letterbox")
           fail("--calibResize: expected none, crop or letterbox, got '", v, "'");
         o.calib_resize = v; }}},
      {"calibLayout", {true, [](const std::string& v, Options& o) {
         if (v != "nchw" && v != "nhwc") fail("--calibLayout: expected nchw or nhwc, got '", v, "'");
         o.calib_layout = v; }}},
      {"calibChannels", {true, [](const std::string& v, Options& o) {
         if (v != "rgb" && v != "bgr") fail("--calibChannels: expected rgb or bgr, got '", v, "'");
         o.calib_bgr = v == "bgr"; }}},
      {"calibMean", {true, [](const std::string& v, Options& o) { o.calib_mean = parse_triple(v, "calibMean"); }}},
      {"calibStd", {true, [](const std::string& v, Options& o) {
         o.calib_std = parse_triple(v, "calibStd");
         for (double x : o.calib_std) if (x == 0) fail("--calibStd: a standard deviation of 0"); }}},
      {"calibMaxImages", {true, [](const std::string& v, Options& o) {
         o.calib_max_images = int(parse_int(v, "calibMaxImages", 1)); }}},
      {"layerPrecisions", {true, [](const std::string& v, Options& o) {
         parse_layer_types(v, o.layer_precisions, "layerPrecisions"); }}},
      {"layerOutputTypes", {true, [](const std::string& v, Options& o) {
         parse_layer_types(v, o.layer_output_types, "layerOutputTypes"); }}},
      {"precisionConstraints", {true, [](const std::string& v, Options& o) {
         if (v != "none" && v != "prefer" && v != "obey")
           fail("--precisionConstraints: expected none, prefer or obey, got '", v, "'");
         o.precision_constraints = v; }}},
      {"int8Tolerance", {true, [](const std::string& v, Options& o) {
         o.int8_tolerance = parse_double(v, "int8Tolerance", 0, 1e6);
         if (o.int8_tolerance <= 0) fail("--int8Tolerance: expected a relative L2 error > 0, got '", v, "'"); }}},
      {"device", {true, [](const std::string& v, Options& o) { o.device = int(parse_int(v, "device", 0)); }}},
      {"profilingVerbosity", {true, [](const std::string& v, Options&) {
         if (v != "layer_names_only" && v != "detailed" && v != "none")
           fail("--profilingVerbosity: expected layer_names_only, detailed or none, got '", v, "'"); }}},
      {"backend", {true, [](const std::string& v, Options& o) {
         if (v != "auto" && v != "cpu" && v != "cuda") fail("--backend: expected auto, cpu or cuda, got '", v, "'");
         o.backend = v; }}},
      {"validate", on(&Options::validate)},
      {"verbose", on(&Options::verbose)},
      {"help", on(&Options::help)},
      {"list-kernels", on(&Options::list_kernels)},
  };
  return t;
}

void apply(const std::string& arg, Options& o) {
  if (arg == "-h") { o.help = true; return; }
  if (arg.rfind("--", 0) != 0 || arg.size() == 2) fail("unexpected argument '", arg, "' (flags look like --name=value)");
  size_t eq = arg.find('=');
  std::string name = arg.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
  if (auto r = refused_flags().find(name); r != refused_flags().end()) fail("--", name, " is refused: ", r->second);
  auto it = flag_table().find(name);
  if (it == flag_table().end()) fail("unknown flag --", name, " (kiln --help lists the flags it supports)");
  if (it->second.takes_value && (eq == std::string::npos || eq + 1 == arg.size()))
    fail("--", name, " needs a value (--", name, "=...)");
  if (!it->second.takes_value && eq != std::string::npos) fail("--", name, " takes no value");
  it->second.handle(eq == std::string::npos ? "" : arg.substr(eq + 1), o);
}

// Combinations: what to run, and what this build's backend can do.
void validate(Options& o) {
  if (o.help || o.list_kernels) return;
  if (o.onnx.empty() && o.load_engine.empty()) fail("no model given: use --onnx=<model.onnx> or --loadEngine=<file>");
  if (!o.onnx.empty() && !o.load_engine.empty() && !o.validate)
    fail("--onnx and --loadEngine are exclusive (--onnx with --loadEngine is only the --validate reference)");
  if (!o.load_engine.empty() && !o.save_engine.empty()) fail("--saveEngine needs --onnx (the engine is built from it)");
  if (o.validate && o.onnx.empty()) fail("--validate needs --onnx=<model.onnx> as the reference");
  bool build = o.load_engine.empty();
  if (!build && (!o.min_shapes.empty() || !o.opt_shapes.empty() || !o.max_shapes.empty() || o.max_batch))
    fail("--minShapes/--optShapes/--maxShapes/--maxBatch are build flags; the engine from --loadEngine has its "
         "profiles already");
  if (!o.calib.empty() && !o.int8 && !o.best) fail("--calib needs --int8 (or --best)");
  const bool calib_flags = !o.calib_images.empty() || !o.calib_data.empty() || o.calib_batches ||
                           !o.min_shapes_calib.empty() || !o.opt_shapes_calib.empty() || !o.max_shapes_calib.empty();
  if (calib_flags && !o.int8 && !o.best)
    fail("--calibImages/--calibData/--calibBatches/--*ShapesCalib need --int8 (or --best)");
  if (!o.calib_images.empty() && !o.calib_data.empty()) fail("--calibImages and --calibData are exclusive");
  const bool layer_types = !o.layer_precisions.empty() || !o.layer_output_types.empty();
  if ((layer_types || !o.precision_constraints.empty() || o.int8_tolerance > 0) && !build)
    fail("--layerPrecisions/--layerOutputTypes/--precisionConstraints/--int8Tolerance are build flags; the engine "
         "from --loadEngine is built already");
  if (layer_types && o.precision_constraints == "none")
    fail("--layerPrecisions/--layerOutputTypes with --precisionConstraints=none would be ignored: use prefer or obey");
  if (layer_types && o.precision_constraints.empty()) {
    o.precision_constraints = "prefer";
    o.notices.push_back("--layerPrecisions/--layerOutputTypes without --precisionConstraints: using prefer "
                        "(--precisionConstraints=obey makes an unmet constraint an error)");
  }
  if (o.int8_tolerance > 0 && !o.int8 && !o.best) fail("--int8Tolerance needs --int8 (or --best)");
  if (calib_flags && !build) fail("calibration flags are build flags; the engine from --loadEngine is built already");
  if (o.min_shapes_calib.size() > 1 || o.opt_shapes_calib.size() > 1 || o.max_shapes_calib.size() > 1)
    fail("--minShapesCalib/--optShapesCalib/--maxShapesCalib: one calibration profile only");
  if (o.skip_inference && (o.validate || !o.export_output.empty() || !o.export_times.empty() ||
                           !o.export_profile.empty() || o.dump_profile || o.dump_output))
    fail("--skipInference cannot be combined with flags that need an inference run");
}

}  // namespace

ShapeMap parse_shape_list(const std::string& value, const std::string& flag) {
  ShapeMap out;
  std::stringstream ss(value);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t colon = item.rfind(':');
    if (colon == std::string::npos || colon == 0)
      fail(flag, ": malformed shape '", item, "' (expected <input name>:<dims> with dims like 1x3x224x224)");
    std::string name = unquote(item.substr(0, colon));
    if (out.count(name)) fail(flag, ": input '", name, "' is given twice");
    out[name] = parse_dims(item.substr(colon + 1), flag, item);
  }
  if (out.empty()) fail(flag, ": expected <input name>:<dims>[,...]");
  return out;
}

Options parse_options(const std::vector<std::string>& args) {
  Options o;
  for (const std::string& a : args) apply(a, o);
  validate(o);
  return o;
}

}  // namespace kiln::cli
