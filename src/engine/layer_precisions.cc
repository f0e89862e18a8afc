#include "engine/layer_precisions.h"

#include <algorithm>

namespace kiln::engine {

namespace {

int rank(DataType t) {
  switch (t) {
    case DataType::kFloat32: return 3;
    case DataType::kFloat16: return 2;
    case DataType::kInt8: return 1;
    default: return 0;
  }
}

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.size() > prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

}  // namespace

const char* precision_flag_name(DataType t) {
  switch (t) {
    case DataType::kFloat32: return "fp32";
    case DataType::kFloat16: return "fp16";
    case DataType::kInt8: return "int8";
    default: return "?";
  }
}

Expected<LayerPrecisions> LayerPrecisions::resolve(const Graph& network,
                                                   const std::map<std::string, TensorType>& precisions,
                                                   const std::map<std::string, TensorType>& output_types,
                                                   ConstraintMode mode, bool fp16, bool int8) {
  LayerPrecisions r;
  r.mode_ = mode;
  if (precisions.empty() && output_types.empty()) return r;
  if (mode == ConstraintMode::kNone)
    return err("layer precisions or output types are set but precision constraints are off (none): set "
               "--precisionConstraints=prefer|obey (BuilderFlag kPREFER_PRECISION_CONSTRAINTS or "
               "kOBEY_PRECISION_CONSTRAINTS), or drop them");
  for (const auto& n : network.nodes()) {
    if (r.network_layers_.size() < 3 && !n->name.empty()) r.network_layers_.push_back(n->name);
    r.network_names_.insert(n->name);
  }
  auto add = [&](const std::string& name, TensorType type, bool output) -> Status {
    const char* what = output ? "layer output type" : "layer precision";
    DataType t = DataType::kUndefined;
    switch (type) {
      case TensorType::kFLOAT: t = DataType::kFloat32; break;
      case TensorType::kHALF: t = DataType::kFloat16; break;
      case TensorType::kINT8: t = DataType::kInt8; break;
      default: break;
    }
    if (t == DataType::kUndefined || (output && t == DataType::kInt8))
      return err(what, " '", name, "': ", tensorTypeName(type), " is not supported (kiln takes fp32, fp16",
                 output ? "" : ", int8", output ? "; INT8 layers output float" : "", ")");
    if (t == DataType::kFloat16 && !fp16)
      return err(what, " '", name, "': fp16 needs the FP16 builder flag (--fp16 or --best)");
    if (t == DataType::kInt8 && !int8) return err(what, " '", name, "': int8 needs the INT8 builder flag (--int8 or --best)");
    if (output && t == DataType::kFloat16) return Status::ok();  // --fp16's default: nothing to do
    Entry e;
    e.name = name;
    e.precision = t;
    e.reason = std::string(what) + " " + name + ":" + precision_flag_name(t);
    if (name == "*") e.in_network = true;
    for (const auto& n : network.nodes()) {
      if (name == "*" || n->name != name) continue;
      e.in_network = true;
      for (const Value* o : n->outputs) if (o) e.outputs.insert(o->name);
    }
    r.entries_.push_back(std::move(e));
    return Status::ok();
  };
  for (const auto& [name, t] : precisions) KILN_RETURN_IF_ERROR(add(name, t, false));
  for (const auto& [name, t] : output_types) KILN_RETURN_IF_ERROR(add(name, t, true));
  return r;
}

bool LayerPrecisions::matches(const Entry& e, const Node& n) const {
  if (e.name == "*") return true;
  if (n.name == e.name) return true;
  // A layer made from e's node ("conv1+Add+Relu", "conv1/nhwc"), not another node of the network
  // whose name happens to extend e's ("a" and "a/b").
  if (!network_names_.count(n.name) && (starts_with(n.name, e.name + "+") || starts_with(n.name, e.name + "/")))
    return true;
  for (const Value* o : n.outputs) {
    if (!o) continue;
    for (const std::string& x : e.outputs)
      if (o->name == x || starts_with(o->name, x + "/")) return true;
  }
  return false;
}

LayerConstraint LayerPrecisions::of(const Node& n) const {
  LayerConstraint best, star;
  for (const Entry& e : entries_) {
    if (!matches(e, n)) continue;
    LayerConstraint& into = e.name == "*" ? star : best;
    if (rank(e.precision) > rank(into.precision)) into = {e.precision, e.reason, e.name != "*"};
  }
  return best.precision != DataType::kUndefined ? best : star;
}

Status LayerPrecisions::check_names(const Graph& optimized) const {
  for (const Entry& e : entries_) {
    if (e.in_network) continue;
    const bool found = std::any_of(optimized.nodes().begin(), optimized.nodes().end(),
                                   [&](const auto& n) { return n->name == e.name; });
    if (found) continue;
    std::string some;
    for (const std::string& s : network_layers_) some += (some.empty() ? "'" : ", '") + s + "'";
    return err(e.reason, ": no layer named '", e.name, "' (layer names are the model's node names, e.g. ", some,
               ", or the engine's layer names as --exportLayerInfo prints them)");
  }
  return Status::ok();
}

}  // namespace kiln::engine
