#include "engine/engine_file.h"

#include <xxhash.h>

#include <cstring>
#include <set>

#include "engine/engine.pb.h"

namespace kiln::engine {

using kilnpb::Attribute;
using kilnpb::EngineHeader;
using kilnpb::TensorData;
using kilnpb::ValueInfo;

const char* const kKilnVersion = "0.1.0";

namespace {

constexpr char kMagic[8] = {'K', 'I', 'L', 'N', 'E', 'N', 'G', '\0'};
constexpr size_t kPreamble = 48;
const char* const kRebuild = "; rebuild the engine from the ONNX model with this version of kiln";

size_t align_up(size_t n) { return (n + kWeightAlignment - 1) / kWeightAlignment * kWeightAlignment; }

void put_u64(std::string& s, size_t at, uint64_t v) { std::memcpy(&s[at], &v, 8); }
uint64_t get_u64(const std::byte* p) { uint64_t v; std::memcpy(&v, p, 8); return v; }

void to_proto(const Tensor& t, TensorData* out) {
  out->set_dtype(static_cast<int32_t>(t.dtype()));
  for (int64_t d : t.dims()) out->add_dims(d);
  out->set_data(reinterpret_cast<const char*>(t.raw()), t.nbytes());
}

Expected<Tensor> from_proto(const TensorData& p, const std::string& where) {
  if (!dtype_code_known(p.dtype()) || dtype_size(static_cast<DataType>(p.dtype())) == 0)
    return err(where, ": unknown element type ", p.dtype());
  auto t = Tensor::zeros(static_cast<DataType>(p.dtype()), {p.dims().begin(), p.dims().end()});
  if (!t) return err(where, ": ", t.status().message());
  if (t->nbytes() != p.data().size()) return err(where, ": tensor data has the wrong size");
  if (!p.data().empty()) std::memcpy(t->mutable_raw(), p.data().data(), p.data().size());
  return t;
}

Status attr_to_proto(const std::string& name, const AttrValue& v, Attribute* a, const std::string& where) {
  a->set_name(name);
  if (auto* i = std::get_if<int64_t>(&v)) a->set_i(*i);
  else if (auto* f = std::get_if<float>(&v)) a->set_f(*f);
  else if (auto* s = std::get_if<std::string>(&v)) a->set_s(*s);
  else if (auto* t = std::get_if<Tensor>(&v)) to_proto(*t, a->mutable_t());
  else if (auto* is = std::get_if<std::vector<int64_t>>(&v)) for (int64_t x : *is) a->mutable_ints()->add_v(x);
  else if (auto* fs = std::get_if<std::vector<float>>(&v)) for (float x : *fs) a->mutable_floats()->add_v(x);
  else if (auto* ss = std::get_if<std::vector<std::string>>(&v)) for (const auto& x : *ss) a->mutable_strings()->add_v(x);
  else if (auto* ts = std::get_if<std::vector<Tensor>>(&v)) for (const auto& x : *ts) to_proto(x, a->mutable_tensors()->add_v());
  else return err(where, ": attribute '", name, "' (a subgraph) cannot be stored in an engine yet");
  return Status::ok();
}

Expected<AttrValue> attr_from_proto(const Attribute& a, const std::string& where) {
  switch (a.value_case()) {
    case Attribute::kI: return AttrValue(static_cast<int64_t>(a.i()));
    case Attribute::kF: return AttrValue(a.f());
    case Attribute::kS: return AttrValue(a.s());
    case Attribute::kT: {
      KILN_ASSIGN_OR_RETURN(Tensor t, from_proto(a.t(), where + " attribute '" + a.name() + "'"));
      return AttrValue(std::move(t));
    }
    case Attribute::kInts: return AttrValue(std::vector<int64_t>(a.ints().v().begin(), a.ints().v().end()));
    case Attribute::kFloats: return AttrValue(std::vector<float>(a.floats().v().begin(), a.floats().v().end()));
    case Attribute::kStrings: return AttrValue(std::vector<std::string>(a.strings().v().begin(), a.strings().v().end()));
    case Attribute::kTensors: {
      std::vector<Tensor> ts;
      for (const auto& t : a.tensors().v()) {
        KILN_ASSIGN_OR_RETURN(Tensor x, from_proto(t, where + " attribute '" + a.name() + "'"));
        ts.push_back(std::move(x));
      }
      return AttrValue(std::move(ts));
    }
    default: return err(where, ": attribute '", a.name(), "' has no value");
  }
}

void value_to_proto(const Value& v, ValueInfo* out) {
  out->set_name(v.name);
  out->set_dtype(static_cast<int32_t>(v.dtype));
  out->set_rank_known(v.shape.rank_known());
  for (const Dim& d : v.shape.dims()) {
    auto* pd = out->add_dims();
    if (d.is_static()) pd->set_value(d.value());
    else if (d.is_symbolic()) pd->set_symbol(d.symbol_name());
  }
}

Shape shape_from_proto(const ValueInfo& v) {
  if (!v.rank_known()) return Shape::unknown_rank();
  std::vector<Dim> dims;
  for (const auto& d : v.dims()) {
    if (d.kind_case() == kilnpb::Dim::kValue && d.value() >= 0) dims.push_back(Dim(d.value()));
    else if (d.kind_case() == kilnpb::Dim::kSymbol) dims.push_back(Dim::symbol(d.symbol()));
    else dims.push_back(Dim::unknown());
  }
  return Shape(std::move(dims));
}

}  // namespace

Expected<std::string> serialize(const EngineModel& m) {
  const Graph& g = *m.graph;
  EngineHeader h;
  h.set_kiln_version(kKilnVersion);
  h.set_backend(m.backend);
  h.mutable_device()->set_name(m.device_name);
  h.mutable_device()->set_cc_major(m.cc_major);
  h.mutable_device()->set_cc_minor(m.cc_minor);
  auto* o = h.mutable_options();
  o->set_fp16(m.options.fp16);
  o->set_bf16(m.options.bf16);
  o->set_int8(m.options.int8);
  o->set_tf32(m.options.tf32);
  o->set_strict_types(m.options.strict_types);
  o->set_workspace_bytes(m.options.workspace_bytes);
  h.set_activation_bytes(m.activation_bytes);
  for (const auto& [d, v] : g.opsets) (*h.mutable_opsets())[d] = v;

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
    const Node& n = *nodes[i];
    auto* l = h.add_layers();
    l->set_name(n.name);
    l->set_op_type(n.op_type);
    l->set_domain(n.domain);
    l->set_opset(n.opset);
    for (const Value* in : n.inputs) l->add_inputs(in ? in->name : "");
    for (const Value* out : n.outputs) l->add_outputs(out ? out->name : "");
    for (const auto& [k, v] : n.attrs) KILN_RETURN_IF_ERROR(attr_to_proto(k, v, l->add_attrs(), n.label()));
    l->set_tactic(i < m.tactics.size() ? m.tactics[i] : "");
    l->set_precision(i < m.precisions.size() ? m.precisions[i] : "");
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
  if (size < kPreamble || std::memcmp(p, kMagic, 8) != 0)
    return err("not a kiln engine file (bad magic or too short)");
  uint32_t version, reserved;
  std::memcpy(&version, p + 8, 4);
  std::memcpy(&reserved, p + 12, 4);
  if (version != kFormatVersion)
    return err("engine format version ", version, " is not the version this kiln reads (", kFormatVersion, ")", kRebuild);
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
    if (!dtype_code_known(w.dtype()) || dtype_size(static_cast<DataType>(w.dtype())) == 0)
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
  Graph& g = *m.graph;
  for (const auto& l : h.layers()) {
    auto n = std::make_unique<Node>();
    n->name = l.name();
    n->op_type = l.op_type();
    n->domain = l.domain();
    n->opset = l.opset();
    for (const auto& in : l.inputs()) {
      if (in.empty()) { n->inputs.push_back(nullptr); continue; }
      Value* v = g.find_value(in);
      if (!v) return err("engine layer '", l.name(), "' reads unknown value '", in, "'", kRebuild);
      n->inputs.push_back(v);
    }
    for (const auto& out : l.outputs()) {
      if (out.empty()) { n->outputs.push_back(nullptr); continue; }
      Value* v = g.find_value(out);
      if (!v || v->producer || v->initializer || v->is_graph_input)
        return err("engine layer '", l.name(), "' writes an unknown or already written value '", out, "'", kRebuild);
      n->outputs.push_back(v);
    }
    for (const auto& a : l.attrs()) {
      KILN_ASSIGN_OR_RETURN(AttrValue v, attr_from_proto(a, "engine layer '" + l.name() + "'"));
      n->attrs[a.name()] = std::move(v);
    }
    m.tactics.push_back(l.tactic());
    m.precisions.push_back(l.precision());
    g.add_node(std::move(n));
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
  const auto& o = h.options();
  m.options = {o.fp16(), o.bf16(), o.int8(), o.tf32(), o.strict_types(), o.workspace_bytes()};
  m.activation_bytes = h.activation_bytes();
  for (const auto& [d, v] : h.opsets()) g.opsets[d] = v;
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
    m.profiles.push_back(std::move(prof));
  }
  return m;
}

}  // namespace kiln::engine
