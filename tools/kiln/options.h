// The kiln command line's options: trtexec's flag names and --flag=value syntax. Every flag is
// either handled, mapped (old TensorRT 7/8 spellings, with a one-line notice), or refused by
// name; see parse_options.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "tools/kiln/cli.h"

namespace kiln::cli {

using ShapeMap = std::map<std::string, Dims>;  // input name -> dims

struct Options {
  // Model and engine.
  std::string onnx, load_engine, save_engine;
  // Build.
  bool fp16 = false, bf16 = false, int8 = false, best = false, no_tf32 = false;
  size_t workspace_bytes = 0;  // 0: the builder's default
  std::vector<ShapeMap> min_shapes, opt_shapes, max_shapes;  // the i-th of each is profile i
  ShapeMap shapes;                                            // --shapes: run-time (or static) shapes
  int max_batch = 0;                                          // --maxBatch (deprecated)
  std::string timing_cache, calib;
  // Tuning (issue 15): -1 / 0 where the flag was not given (the builder's defaults).
  int builder_opt_level = -1;      // --builderOptimizationLevel=0..5
  int avg_timing = 0;              // --avgTiming=N
  bool no_builder_cache = false;   // --noBuilderCache
  bool tactic_sources_given = false;
  uint32_t tactic_sources = 0;     // --tacticSources: the mask after applying the +/- list to the default
  // INT8 calibration (issue 13): data sources, batches, algorithm, shapes, image preprocessing.
  std::string calib_images, calib_data;
  int calib_batches = 0;                   // 0: all
  std::string calib_algo = "entropy";      // entropy|minmax|percentile|mse
  double calib_percentile = 99.99;
  std::vector<ShapeMap> min_shapes_calib, opt_shapes_calib, max_shapes_calib;
  std::string calib_resize = "crop";       // none|crop|letterbox
  std::string calib_layout = "nchw";       // nchw|nhwc
  bool calib_bgr = false;
  std::vector<double> calib_mean = {0, 0, 0}, calib_std = {1, 1, 1};
  int calib_max_images = 0;
  // Per-layer precision (trtexec's flags): layer name (or "*") -> fp32|fp16|int8.
  std::map<std::string, std::string> layer_precisions, layer_output_types;
  std::string precision_constraints;  // none|prefer|obey; empty: not given
  double int8_tolerance = 0;          // --int8Tolerance: the INT8 accuracy guard's bound (0: off)
  std::string backend = "auto";  // auto: CUDA when a GPU is usable, else CPU
  int device = 0;                 // --device: the CUDA device (made current before anything else)
  // Inference.
  int iterations = 10;
  double duration_s = 3.0;
  int warmup_ms = 200;
  int avg_runs = 10;
  std::vector<double> percentiles = {90, 95, 99};
  int streams = 1;
  int profile = 0;                               // --profile: the profile contexts use
  std::map<std::string, std::string> load_inputs;  // name -> file
  bool skip_inference = false, separate_profile_run = false, validate = false;
  // CUDA engines only (on a CPU engine they are ignored with a warning).
  bool use_cuda_graph = false, no_data_transfers = false, use_spin_wait = false;
  // Reporting.
  bool dump_profile = false, dump_output = false, verbose = false, help = false;
  bool dump_tactics = false;  // --dumpTactics (kiln)
  bool list_kernels = false;  // kiln's own: print every backend's kernel table and exit
  std::string export_output, export_times, export_profile, export_layer_info;
  std::vector<std::string> notices;  // deprecation notices, printed once parsing is done
};

// Throws CliError naming the flag for an unknown flag, a malformed value, or a combination
// kiln cannot run.
Options parse_options(const std::vector<std::string>& args);
std::string usage();

// "a:1x3,b:2x2" -> {a: 1x3, b: 2x2}. Names may be quoted ('in:0':1x3).
ShapeMap parse_shape_list(const std::string& value, const std::string& flag);

}  // namespace kiln::cli
