#include "engine/engine_file.h"

#include <xxhash.h>

#include <algorithm>
#include <cstring>
#include <set>

#include "engine/engine.pb.h"
#include "engine/engine_layers.h"

namespace kiln::engine {

using kilnpb::EngineHeader;

const char* const kKilnVersion = "0.1.0";

namespace {

constexpr char kMagic[8] = {'K', 'I', 'L', 'N', 'E', 'N', 'G', '\0'};
constexpr size_t kPreamble = 48;
const char* const kRebuild = "; rebuild the engine from the ONNX model with this version of kiln";

size_t align_up(size_t n) { return (n + kWeightAlignment - 1) / kWeightAlignment * kWeightAlignment; }

void put_u64(std::string& s, size_t at, uint64_t v) { std::memcpy(&s[at], &v, 8); }
uint64_t get_u64(const std::byte* p) { uint64_t v; std::memcpy(&v, p, 8); return v; }

}  // namespace

Expected<std::string> serialize(const EngineModel& m) {
  const Graph& g = *m.graph;
  EngineHeader h;
  h.set_kiln_version(kKilnVersion);
  h.set_backend(m.backend);
  h.mutable_device()->set_name(m.device_name);
  h.mutable_device()->set_cc_major(m.cc_major);
  h.mutable_device()->set_cc_minor(m.cc_minor);
  h.mutable_device()->set_libraries(m.device_libraries);
  auto* o = h.mutable_options();
  o->set_fp16(m.options.fp16);
  o->set_bf16(m.options.bf16);
  o->set_int8(m.options.int8);
  o->set_tf32(m.options.tf32);
  o->set_strict_types(m.options.strict_types);
  o->set_workspace_bytes(m.options.workspace_bytes);
  h.set_activation_bytes(m.activation_bytes);
  auto put_scales = [](const std::vector<TensorScaleRecord>& from, auto* to) {
    for (const auto& r : from) {
      auto* t = to->Add();
      t->set_name(r.name);
      for (float f : r.scales) t->add_scales(f);
      t->set_axis(r.axis);
      t->set_layer(r.layer);
    }
  };
  put_scales(m.int8_activation_scales, h.mutable_int8_activation_scales());
  put_scales(m.int8_weight_scales, h.mutable_int8_weight_scales());
  h.set_int8_calibration(m.int8_calibration);
  for (const auto& [d, v] : g.opsets) {
    auto* os = h.add_opsets();
    os->set_domain(d);
    os->set_version(v);
  }

  // Weights nothing reads any more (replaced by folding or precision conversion) are dropped.
  std::set<const Value*> used(g.outputs.begin(), g.outputs.end());
  for (const auto& n : g.nodes()) {
    for (const Value* in : n->inputs) used.insert(in);
    for (const Value* in : n->implicit_inputs()) used.insert(in);
  }
  std::vector<const Tensor*> blobs;
  size_t weights_size = 0;
  for (const auto& v : g.values()) {
    if (v->initializer && !used.count(v.get())) continue;
    if (v->initializer) {
      auto* w = h.add_weights();
      w->set_name(v->name);
      w->set_dtype(static_cast<int32_t>(v->initializer->dtype()));
      for (int64_t d : v->initializer->dims()) w->add_dims(d);
      w->set_offset(weights_size);
      w->set_nbytes(v->initializer->nbytes());
      blobs.push_back(v->initializer);
      weights_size = align_up(weights_size + v->initializer->nbytes());
    } else {
      value_to_proto(*v, h.add_values());
    }
  }
  for (const Value* v : g.inputs) h.add_inputs(v->name);
  for (const Value* v : g.outputs) h.add_outputs(v->name);
  const auto& nodes = g.nodes();
  for (size_t i = 0; i < nodes.size(); ++i) {
    auto* l = h.add_layers();
    KILN_RETURN_IF_ERROR(layer_to_proto(*nodes[i], l));
    l->set_tactic(i < m.tactics.size() ? m.tactics[i] : "");
    l->set_precision(i < m.precisions.size() ? m.precisions[i] : "");
    if (i < m.timings.size() && m.timings[i].candidates) {
      const TacticTimingRecord& t = m.timings[i];
      l->set_tactic_candidates(t.candidates);
      if (t.ms >= 0) l->set_tactic_ms(t.ms);
      l->set_runner_up(t.runner_up);
      if (t.runner_up_ms >= 0) l->set_runner_up_ms(t.runner_up_ms);
      l->set_heuristic_tactic(t.heuristic);
      if (t.heuristic_ms >= 0) l->set_heuristic_ms(t.heuristic_ms);
    }
  }
  for (const auto& prof : m.profiles) {
    auto* p = h.add_profiles();
    for (const auto& in : prof) {
      auto* pi = p->add_inputs();
      pi->set_name(in.input);
      for (int64_t d : in.min) pi->add_min(d);
      for (int64_t d : in.opt) pi->add_opt(d);
      for (int64_t d : in.max) pi->add_max(d);
    }
  }
  std::string header;
  if (!h.SerializeToString(&header)) return err("engine header could not be serialized");
  size_t weights_offset = align_up(kPreamble + header.size());
  std::string file(weights_offset + weights_size, '\0');
  std::memcpy(&file[0], kMagic, 8);
  uint32_t version = kFormatVersion;
  std::memcpy(&file[8], &version, 4);
  put_u64(file, 16, header.size());
  put_u64(file, 24, weights_offset);
  put_u64(file, 32, weights_size);
  std::memcpy(&file[kPreamble], header.data(), header.size());
  for (size_t i = 0, off = 0; i < blobs.size(); ++i) {
    if (blobs[i]->nbytes()) std::memcpy(&file[weights_offset + off], blobs[i]->raw(), blobs[i]->nbytes());
    off = align_up(off + blobs[i]->nbytes());
  }
  put_u64(file, 40, XXH64(file.data() + kPreamble, file.size() - kPreamble, 0));
  return file;
}

namespace {

Status check_preamble(const std::byte* p, size_t size, EngineHeader& h, uint64_t& w_off, uint64_t& w_size) {
  if (size == 0) return err("engine file is empty", kRebuild);
  if (std::memcmp(p, kMagic, std::min(size, sizeof kMagic)) != 0) return err("not a kiln engine file (bad magic)", kRebuild);
  if (size < kPreamble) return err("engine file is truncated (", size, " bytes)", kRebuild);
  uint32_t version, reserved;
  std::memcpy(&version, p + 8, 4);
  std::memcpy(&reserved, p + 12, 4);
  if (version != kFormatVersion)
    return err("engine format version ", version, " is ", version < kFormatVersion ? "older" : "newer",
               " than the version this kiln reads (", kFormatVersion, ")", kRebuild);
  uint64_t h_size = get_u64(p + 16);
  w_off = get_u64(p + 24);
  w_size = get_u64(p + 32);
  if (reserved != 0 || h_size > size - kPreamble || w_off < kPreamble + h_size || w_off % kWeightAlignment != 0 || w_off > size ||
      w_size != size - w_off)
    return err("engine file is truncated or its layout is corrupted (", size, " bytes)", kRebuild);
  if (XXH64(p + kPreamble, size - kPreamble, 0) != get_u64(p + 40)) return err("engine file is corrupted (checksum mismatch)", kRebuild);
  if (!h.ParseFromArray(p + kPreamble, static_cast<int>(h_size)))
    return err("engine header cannot be parsed", kRebuild);
  if (h.kiln_version() != kKilnVersion)
    return err("engine was built by kiln ", h.kiln_version(), ", this is kiln ", kKilnVersion, kRebuild);
  return Status::ok();
}

Status add_weights(const EngineHeader& h, const std::shared_ptr<const std::byte>& data, uint64_t w_off,
                   uint64_t w_size, Graph& g) {
  for (const auto& w : h.weights()) {
    std::string where = "engine weight '" + w.name() + "'";
    if (!dtype_code_known(w.dtype()) || dtype_bits(static_cast<DataType>(w.dtype())) == 0)
      return err(where, ": unknown element type ", w.dtype(), kRebuild);
    if (w.offset() % kWeightAlignment != 0 || w.offset() > w_size || w.nbytes() > w_size - w.offset())
      return err(where, ": lies outside the weights blob", kRebuild);
    std::shared_ptr<const std::byte> bytes(data, data.get() + w_off + w.offset());
    auto t = Tensor::view(static_cast<DataType>(w.dtype()), {w.dims().begin(), w.dims().end()}, bytes, w.nbytes());
    if (!t) return err(where, ": ", t.status().message(), kRebuild);
    auto v = g.add_initializer(w.name(), std::move(t).value());
    if (!v) return err("engine: ", v.status().message(), kRebuild);
  }
  return Status::ok();
}

Status add_layers(const EngineHeader& h, EngineModel& m) {
  for (const auto& l : h.layers()) {
    KILN_RETURN_IF_ERROR(layer_from_proto(l, *m.graph).status());
    m.tactics.push_back(l.tactic());
    m.precisions.push_back(l.precision());
    m.timings.push_back({l.tactic_candidates(), l.has_tactic_ms() ? l.tactic_ms() : -1.0, l.runner_up(),
                         l.has_runner_up_ms() ? l.runner_up_ms() : -1.0, l.heuristic_tactic(),
                         l.has_heuristic_ms() ? l.heuristic_ms() : -1.0});
  }
  return Status::ok();
}

// The runtime trusts the profiles (setInputShape compares each dim with min and max): every
// entry names an input, has its rank in min, opt and max alike, and 0 <= min <= opt <= max.
Status check_profile(const std::vector<ProfileShapes>& prof, const Graph& g, size_t pi) {
  for (const auto& p : prof) {
    std::string where = "engine profile " + std::to_string(pi) + " input '" + p.input + "'";
    auto in = std::find_if(g.inputs.begin(), g.inputs.end(), [&](const Value* v) { return v->name == p.input; });
    if (in == g.inputs.end()) return err(where, ": not an input of the engine", kRebuild);
    const Shape& s = (*in)->shape;
    if (p.opt.size() != p.min.size() || p.max.size() != p.min.size() || (s.rank_known() && s.rank() != p.min.size()))
      return err(where, ": min, opt and max shapes of different ranks", kRebuild);
    for (size_t k = 0; k < p.min.size(); ++k)
      if (p.min[k] < 0 || p.min[k] > p.opt[k] || p.opt[k] > p.max[k])
        return err(where, ": dim ", k, " is not 0 <= min <= opt <= max", kRebuild);
  }
  return Status::ok();
}

}  // namespace

Expected<EngineModel> deserialize(std::shared_ptr<const std::byte> data, size_t size) {
  EngineHeader h;
  uint64_t w_off = 0, w_size = 0;
  KILN_RETURN_IF_ERROR(check_preamble(data.get(), size, h, w_off, w_size));
  EngineModel m;
  m.graph = std::make_unique<Graph>();
  Graph& g = *m.graph;
  m.backend = h.backend();
  m.device_name = h.device().name();
  m.cc_major = h.device().cc_major();
  m.cc_minor = h.device().cc_minor();
  m.device_libraries = h.device().libraries();
  const auto& o = h.options();
  m.options = {o.fp16(), o.bf16(), o.int8(), o.tf32(), o.strict_types(), o.workspace_bytes()};
  m.activation_bytes = h.activation_bytes();
  for (const auto* from : {&h.int8_activation_scales(), &h.int8_weight_scales()}) {
    auto& to = from == &h.int8_activation_scales() ? m.int8_activation_scales : m.int8_weight_scales;
    for (const auto& t : *from) to.push_back({t.name(), {t.scales().begin(), t.scales().end()}, t.axis(), t.layer()});
  }
  m.int8_calibration = h.int8_calibration();
  for (const auto& os : h.opsets()) g.opsets[os.domain()] = os.version();
  KILN_RETURN_IF_ERROR(add_weights(h, data, w_off, w_size, g));
  for (const auto& vi : h.values()) {
    if (!dtype_code_known(vi.dtype())) return err("engine value '", vi.name(), "' has an unknown type", kRebuild);
    auto v = g.add_value(vi.name(), static_cast<DataType>(vi.dtype()), shape_from_proto(vi));
    if (!v) return err("engine: ", v.status().message(), kRebuild);
  }
  for (const auto& name : h.inputs()) {
    Value* v = g.find_value(name);
    if (!v || v->initializer) return err("engine input '", name, "' is not a declared value", kRebuild);
    v->is_graph_input = true;
    g.inputs.push_back(v);
  }
  KILN_RETURN_IF_ERROR(add_layers(h, m));
  for (const auto& name : h.outputs()) {
    Value* v = g.find_value(name);
    if (!v) return err("engine output '", name, "' is not a declared value", kRebuild);
    g.outputs.push_back(v);
  }
  Status s = g.verify();
  if (!s) return err("engine graph is inconsistent: ", s.message(), kRebuild);
  for (const auto& p : h.profiles()) {
    std::vector<ProfileShapes> prof;
    for (const auto& in : p.inputs())
      prof.push_back({in.name(), {in.min().begin(), in.min().end()}, {in.opt().begin(), in.opt().end()},
                      {in.max().begin(), in.max().end()}});
    KILN_RETURN_IF_ERROR(check_profile(prof, g, m.profiles.size()));
    m.profiles.push_back(std::move(prof));
  }
  return m;
}

}  // namespace kiln::engine
