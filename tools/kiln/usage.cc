// kiln --help.
#include "tools/kiln/options.h"

namespace kiln::cli {

std::string usage() {
  return R"(Usage: kiln (--onnx=<model.onnx> | --loadEngine=<file>) [options]
       kiln serve <model.engine|model.onnx>... [--http-port=...] (Triton server: kiln serve --help)
Flags follow trtexec's names and --flag=value syntax.

Model and engine:
  --onnx=<file>               ONNX model to build an engine from
  --saveEngine=<file>         save the built engine (written to a temp file, then renamed)
  --loadEngine=<file>         load a saved engine instead of building one
Build:
  --fp16 --bf16 --int8 --best enable reduced precisions (fp16/bf16: the convert_precision pass;
                              int8: see --calib below)
  --noTF32                    disable TF32 (recorded)
  --minShapes=<spec> --optShapes=<spec> --maxShapes=<spec>
                              optimization profile ranges, spec = name:1x3x224x224[,name2:...];
                              repeat the three flags for several profiles (the i-th of each is profile i)
  --shapes=<spec>             run-time shapes (alone: also the build shapes, min = opt = max)
  --memPoolSize=workspace:<MiB>  workspace limit (units K/M/G accepted)
  --timingCacheFile=<file>    timing cache: read before timing (a warm cache times nothing), merged
                              and written back atomically after the build; a corrupted or stale
                              cache warns and re-times; an unwritable path warns (engine still built)
  --noBuilderCache            neither read nor write a timing cache
  --builderOptimizationLevel=0..5  0: no graph passes, no tactic timing (heuristic picks); 1..5: passes
                              and tactic timing (default 3; 5 lists every valid candidate). The CUDA
                              backend's timing awaits its GPU check: it times only with this flag given
  --tacticSources=<list>      +/-NAME,...: tactic sources (CUBLAS_LT, CUDNN, KILN; CPU: OPENBLAS,
                              CPU_LOOPS); a layer with every candidate left out keeps its default
  --avgTiming=<N>             timed runs per tactic, the median kept (default 8)
  --calib=<file>              INT8 calibration cache in TensorRT's text format (with --int8): read
                              when present and valid (no calibration), else written after calibrating
  --calibImages=<dir>         INT8: calibrate on the PNG/JPEG images of dir (one image input)
  --calibData=<dir>           INT8: calibrate on .bin (--loadInputs format) / .npy files of dir
                              (several inputs: dir/<input name>/); each file a batch or a sample
  --calibBatches=<N>          INT8: calibrate on at most N batches (default: all the data)
  --calibAlgo=entropy|minmax|percentile|mse  INT8 calibration algorithm (default entropy:
                              TensorRT's EntropyCalibration2); --calibPercentile=<P> (default 99.99)
  --minShapesCalib --optShapesCalib --maxShapesCalib  the calibration shapes (opt is the batch shape;
                              default: profile 0's opt shapes)
  --calibResize=none|crop|letterbox  images: resize + center crop (default), letterbox, or none
                              (every image must be the input's size)
  --calibLayout=nchw|nhwc  --calibChannels=rgb|bgr  --calibMean=r,g,b  --calibStd=r,g,b
                              images: layout, channel order, (pixel/255 - mean)/std (default 0 and 1)
  --calibMaxImages=<N>        images: use the first N (by name)
                              no INT8 kernels yet: the scales are recorded in the engine; CPU engines
                              simulate INT8 (quantize-dequantize of Conv/MatMul/Gemm inputs and weights),
                              CUDA engines compute in floating point (the build log says which)
  --int8Tolerance=<E>         kiln: INT8 accuracy guard: keep the layers whose INT8 costs most in float
                              until the outputs' relative L2 error against float is <= E (measured on
                              the CPU's INT8 simulation, on 4 calibration batches or seeded random
                              inputs; the build log lists the layers kept and their errors)
  --layerPrecisions=<layer>:fp32|fp16|int8[,...]  per-layer precision (layer: an ONNX node name, an
                              engine layer name, or * for all; a named layer overrides *)
  --layerOutputTypes=<layer>:fp32|fp16[,...]  per-layer output type (fp32 keeps the layer in fp32)
  --precisionConstraints=none|prefer|obey  obey: an unmet constraint fails the build; prefer: a
                              warning (the default when --layerPrecisions/--layerOutputTypes are given)
  --backend=auto|cpu|cuda     kiln: where to run (auto: CUDA when usable, else CPU with a notice;
                              cuda: fails without a GPU)
  --device=<N>                CUDA device to run on (default 0)
Deprecated (mapped, with a notice):
  --workspace=<MiB>           -> --memPoolSize=workspace:<MiB>
  --maxBatch=<N>              -> batch dim of the max (and opt) shape of dynamic-batch inputs
  --explicitBatch             (always on)
Inference:
  --iterations=<N>            run at least N queries (default 10)
  --duration=<s>              run at least s seconds (default 3)
  --warmUp=<ms>               warm up for ms before timing (default 200)
  --avgRuns=<N>               report trace averages over N consecutive queries (default 10)
  --percentile=<P1,P2,...>    latency percentiles to report (default 90,95,99)
  --streams=<N>               N execution contexts on N threads; total throughput (default 1)
  --profile=<N>               optimization profile the contexts use (default 0)
  --loadInputs=<name>:<file>[,...]  raw little-endian input data of the input's type and shape
                              (otherwise random: floats in [-1, 1], integers in [0, 3])
  --skipInference             build (and save) only
  --separateProfileRun        profile layers in a separate run, not during timing
  --useCudaGraph              CUDA: capture the enqueue into a CUDA graph after warm-up and replay it
                              (falls back to plain enqueue, with a warning, if capture fails)
  --noDataTransfers           CUDA: no H2D/D2H copies in the timed queries
  --useSpinWait               CUDA: spin on the end event instead of a blocking wait
  --validate                  kiln: compare outputs with an unoptimized CPU reference built from --onnx
                              (with --loadEngine, --onnx names the reference model)
Reporting:
  --dumpOutput                print the outputs
  --dumpProfile               print per-layer times
  --dumpTactics               kiln: per tuned layer the tactic chosen and the backend's own pick (what
                              --builderOptimizationLevel=0 runs), their times, and where tuning gained
  --exportOutput=<file>       JSON: [{name, dimensions, values}]
  --exportTimes=<file>        JSON: one record per query (startEnqMs .. endD2HMs, h2dMs, computeMs,
                              d2hMs, latencyMs, enqMs)
  --exportProfile=<file>      JSON: [{count}, {name, timeMs, averageMs, medianMs, percentage}, ...]
  --exportLayerInfo=<file>    JSON: {Layers: [{Name, LayerType, Inputs, Outputs, Precision, TacticName,
                              and for tuned layers TacticCandidates, TacticTimeMs, RunnerUp, RunnerUpTimeMs,
                              HeuristicTactic, HeuristicTimeMs}], Bindings}
  --profilingVerbosity=<v>    accepted (layer information is always detailed)
  --verbose                   every pass and layer decision
  --list-kernels              kiln: every backend's kernel table (op -> tactic), then exit
  --help, -h                  this text
Refused by name: --threads, --useDLACore, --plugins, --sparsity, --safe, --fp8, --int4 and other trtexec flags kiln
does not implement yet.
)";
}

}  // namespace kiln::cli
