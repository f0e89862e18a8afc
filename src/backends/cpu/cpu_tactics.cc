#include "backends/cpu/cpu_tactics.h"

#include <cblas.h>

#include <chrono>
#include <fstream>
#include <map>
#include <random>

#include "backends/cpu/executor.h"
#include "kiln/builder.h"

namespace kiln::cpu {

namespace {

constexpr const char* kLoopsSuffix = ".loops";
// Products (multiply-adds of the layer at the opt shapes) up to which the loops are a candidate
// below level 5: about a millisecond of naive loops, where a BLAS call's set-up per GEMM matters.
constexpr int64_t kLoopsMaxMacs = int64_t(1) << 21;

bool is_gemm_layer(const Node& n) {
  if (n.domain.empty()) return n.op_type == "Conv" || n.op_type == "MatMul" || n.op_type == "Gemm";
  return n.domain == "kiln" && (n.op_type == "ConvAct" || n.op_type == "MatMulBias");
}

bool is_float(DataType t) {
  return t == DataType::kFloat32 || t == DataType::kFloat64 || t == DataType::kFloat16 || t == DataType::kBFloat16;
}

int64_t numel(const std::vector<int64_t>& d) {
  int64_t n = 1;
  for (int64_t x : d) n *= x;
  return n;
}

// Multiply-adds of the layer: output elements times the reduction length; -1 if unknown.
int64_t layer_macs(const Node& n, const ValueShapes& shapes) {
  auto dims = [&](size_t i) -> const std::vector<int64_t>* {
    const Value* v = i < n.inputs.size() ? n.inputs[i] : nullptr;
    if (!v) return nullptr;
    if (v->initializer) return &v->initializer->dims();
    auto it = shapes.dims.find(v);
    return it == shapes.dims.end() ? nullptr : &it->second;
  };
  const Value* y = n.outputs.empty() ? nullptr : n.outputs[0];
  auto yd = y ? shapes.dims.find(y) : shapes.dims.end();
  const auto *a = dims(0), *w = dims(1);
  if (yd == shapes.dims.end() || !a || !w || w->size() < 2) return -1;
  int64_t k = 0;
  if (n.op_type == "Conv" || n.op_type == "ConvAct") k = numel(*w) / (*w)[0];  // C/group * kernel
  else if (n.op_type == "Gemm") k = n.attr_int("transA", 0) ? (*a)[0] : a->back();
  else k = a->back();
  return numel(yd->second) * k;
}

class CpuTacticTimer : public TacticTimer {
 public:
  CpuTacticTimer(const Graph& g, const ValueShapes& shapes, int level) : g_(g), shapes_(shapes), level_(level) {}

  std::vector<TacticCandidate> candidates(size_t i) override { return cpu_candidates(*g_.nodes()[i], shapes_, level_); }

  Expected<double> time_once(size_t i, const std::string& tactic) override {
    const Node& n = *g_.nodes()[i];
    KILN_ASSIGN_OR_RETURN(GemmEngine e, gemm_engine_of(n, tactic));
    KILN_ASSIGN_OR_RETURN(const std::vector<const Tensor*>* args, inputs(n));
    auto t0 = std::chrono::steady_clock::now();
    KILN_RETURN_IF_ERROR(run_node_in_scope(n, *args, {}, e).status());
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  }

 private:
  // The node's operands at the opt shapes: weights and host-known values as they are, the rest
  // random in [-1, 1] (made once per node).
  Expected<const std::vector<const Tensor*>*> inputs(const Node& n) {
    auto it = args_.find(&n);
    if (it != args_.end()) return &it->second;
    std::vector<const Tensor*> args;
    for (const Value* v : n.inputs) {
      if (!v) { args.push_back(nullptr); continue; }
      if (v->initializer) { args.push_back(v->initializer); continue; }
      if (auto h = shapes_.values.find(v); h != shapes_.values.end()) { args.push_back(&h->second); continue; }
      auto d = shapes_.dims.find(v);
      if (d == shapes_.dims.end()) return err(n.label(), ": input '", v->name, "' has no shape at the opt shapes");
      KILN_ASSIGN_OR_RETURN(Tensor t, Tensor::zeros(v->dtype, d->second));
      std::uniform_real_distribution<double> u(-1, 1);
      Status s = visit_dtype(t.dtype(), FloatTypes{}, [&](auto tag) {
        using T = decltype(tag);
        T* p = t.mutable_data<T>();
        for (int64_t k = 0; k < t.numel(); ++k) p[k] = static_cast<T>(static_cast<compute_t<T>>(u(rng_)));
      });
      if (!s) return err(n.label(), ": ", s.message());
      owned_.push_back(std::make_unique<Tensor>(std::move(t)));
      args.push_back(owned_.back().get());
    }
    return &(args_[&n] = std::move(args));
  }

  const Graph& g_;
  const ValueShapes& shapes_;
  int level_;
  std::mt19937_64 rng_{15};
  std::map<const Node*, std::vector<const Tensor*>> args_;
  std::vector<std::unique_ptr<Tensor>> owned_;
};

}  // namespace

std::string reference_tactic(const Node& n) { return "cpu.reference." + n.op_type; }

Expected<GemmEngine> gemm_engine_of(const Node& n, const std::string& tactic) {
  const std::string ref = reference_tactic(n);
  if (tactic == ref || tactic.empty()) return GemmEngine::kBlas;
  if (is_gemm_layer(n) && tactic == ref + kLoopsSuffix) return GemmEngine::kLoops;
  return err(n.label(), ": tactic '", tactic, "' is unknown to this build of kiln; rebuild the engine");
}

std::vector<TacticCandidate> cpu_candidates(const Node& n, const ValueShapes& shapes, int level) {
  if (!is_gemm_layer(n) || n.attr_string("layout", "NCHW") != "NCHW") return {};
  const Value* y = n.outputs.empty() ? nullptr : n.outputs[0];
  if (!y || !is_float(y->dtype)) return {};
  const int64_t macs = layer_macs(n, shapes);
  if (macs < 0 || (level < 5 && macs > kLoopsMaxMacs)) return {};
  constexpr uint32_t blas = 1u << int(TacticSource::kOPENBLAS), loops = 1u << int(TacticSource::kCPU_LOOPS);
  return {{reference_tactic(n), blas}, {reference_tactic(n) + kLoopsSuffix, loops}};
}

std::unique_ptr<TacticTimer> make_cpu_tactic_timer(const Graph& g, const ValueShapes& shapes, int level) {
  return std::make_unique<CpuTacticTimer>(g, shapes, level);
}

std::string cpu_tuning_key() {
  static const std::string key = [] {
    std::string model = "unknown CPU";
    std::ifstream f("/proc/cpuinfo");
    for (std::string line; std::getline(f, line);)
      if (line.rfind("model name", 0) == 0 && line.find(':') != std::string::npos) {
        model = line.substr(line.find(':') + 2);
        break;
      }
    return "cpu: " + model + "; OpenBLAS " + openblas_get_config() + "; kiln cpu tactics 1";
  }();
  return key;
}

}  // namespace kiln::cpu
