// convert_layout: runs 2-D convolutions channels-last (NHWC), as TensorRT and ONNX Runtime's
// NHWC transformer do, so that tensor-core convolutions read and write their native layout
// instead of transforming NCHW <-> NHWC around every convolution.
//
//   before:  %y = kiln.ConvAct(%x, %w, %b, %z) {activation="Relu"}      (or a plain Conv)
//            %r = Relu(%y) ...
//   after:   %x/nhwc = Transpose(%x) {perm=[0,2,3,1]}     (one per value, shared by its readers)
//            %y/nhwc = kiln.ConvAct(%x/nhwc, %w/khwc, %b, %z/nhwc) {layout="NHWC", ...}
//            %r/nhwc = Relu(%y/nhwc)                      (layout-agnostic ops follow along)
//            %r = Transpose(%r/nhwc) {perm=[0,3,1,2]}     (only if something still reads %r)
//
// Walking in order, every value that has a channels-last twin is remembered; a convolution, an
// elementwise op all of whose rank-4 inputs have twins (other inputs: all-ones broadcasts such
// as Clip's bounds), MaxPool (as kiln.MaxPool {layout="NHWC"}) and GlobalAveragePool (as
// ReduceMean over H, W) then read the twins and
// produce twins. Each converted node's original output is re-made by a Transpose back, which
// eliminate_dead_nodes removes when nothing reads it; so a chain of convertible nodes keeps one
// Transpose at each end. Weights are re-laid out once at build time ([M,C,kH,kW] -> [M,kH,kW,C]).
//
// A channels-last depthwise convolution (group == C == M) without an activation whose output
// only a Clip with constant bounds reads, or only Sigmoid(y) and Mul(y, Sigmoid(y)) (SiLU)
// read, takes that activation in (activation="Clip" / "Silu"): the direct depthwise kernels
// apply it for free (MobileNet's ReLU6, EfficientNet's SiLU). Dense convolutions keep theirs
// separate: their fused bias epilogue (cuDNN's) takes only Relu, and a second epilogue pass
// measured slower than cuDNN's fused bias plus a standalone Clip (MobileNetV2 b128 on H100:
// 0.90 ms vs 0.42 ms for its largest expansion layer).
//
// A channels-last depthwise convolution also takes in the activation *before* it when the
// activated value has no other reader: a Clip with constant bounds or a SiLU (Sigmoid(a) and
// Mul(a, Sigmoid(a)), the Sigmoid read by the Mul only) becomes input_activation="Clip" / "Silu"
// and the convolution reads a's twin (MobileNetV2: expand 1x1 -> ReLU6 -> depthwise;
// EfficientNet: expand 1x1 or stem -> SiLU -> depthwise): the activation costs no pass over
// memory of its own. An activation a bare depthwise convolution makes is folded into that one
// (above) first. Depthwise weights are laid out tap-major (weight_layout="HWCM",
// [kH,kW,1,C]): the kernel loads one tap of adjacent channels as one vector.
//
// The activations the folds take are patterns of the rewrite layer (passes/rewrite): Clip with
// constant bounds, and x * Sigmoid(x) in either order; the folds themselves stay in the walk,
// since whether they fire depends on the channels-last twins the walk has made so far.
//
// Runs after convert_precision (the Transposes move half as many bytes, and convert_precision
// need not know the channels-last forms). Pre: types and shapes inferred; ctx.channels_last set
// by the builder (the CUDA backend in float16); without it the pass does nothing. Converts only
// float16/float32 convolutions with a constant rank-4 weight and symmetric explicit pads.
// Post: the graph computes the same values (the CPU kernel of the NHWC form is the NCHW one
// between copies), verifies, and every new value carries its type and shape.
#include <limits>
#include <set>

#include "ir/activation.h"
#include "ir/layout.h"
#include "ir/op_registry.h"
#include "passes/pipeline.h"
#include "passes/rewrite/pattern.h"

namespace kiln::passes {

namespace {

bool is_conv(const Node& n) {
  if (n.domain.empty() && n.op_type == "Conv") return true;
  return n.domain == "kiln" && n.op_type == "ConvAct" && n.attr_string("layout", "NCHW") == "NCHW";
}

bool convertible_conv(const Node& n) {
  if (!is_conv(n) || n.inputs.size() < 2 || !n.has_input(0) || !n.has_input(1) || !n.has_output(0)) return false;
  const Value *x = n.inputs[0], *w = n.inputs[1], *y = n.outputs[0];
  if (y->dtype != DataType::kFloat16 && y->dtype != DataType::kFloat32) return false;
  if (!x->shape.rank_known() || x->shape.rank() != 4 || !w->initializer || w->initializer->rank() != 4) return false;
  const std::string ap = n.attr_string("auto_pad", "NOTSET");
  if (ap != "NOTSET" && ap != "VALID") return false;
  const std::vector<int64_t> p = n.attr_ints("pads", {0, 0, 0, 0});
  return p.size() == 4 && p[0] == p[2] && p[1] == p[3] && p[0] >= 0 && p[1] >= 0;
}

// Elementwise ops, whose result does not depend on the layout of same-shaped operands: the op
// schemas' pointwise and broadcasting ops (ir/op_registry.h's FusionKind). Blocked quantization
// (block_size) reads its scale along an axis: not elementwise.
bool elementwise(const Node& n) {
  if (!n.domain.empty() || n.outputs.size() != 1 || !n.has_output(0) || n.has_attr("block_size")) return false;
  const OpSchema* s = OpRegistry::global().find(n.domain, n.op_type);
  return s && (s->fusion_kind == FusionKind::kPointwise || s->fusion_kind == FusionKind::kBroadcast);
}

bool all_ones(const Shape& s) {
  if (!s.is_static()) return false;
  for (const Dim& d : s.dims()) if (d.value() != 1) return false;
  return true;
}

// A convertible (NCHW) convolution with one input channel per group and one output per input
// channel.
bool depthwise(const Node& n) {
  const int64_t g = n.attr_int("group", 1);
  const Tensor* w = n.inputs[1]->initializer;  // [M, C/group, kH, kW]
  return g > 1 && w && w->rank() == 4 && w->dim(1) == 1 && w->dim(0) == g;
}

// The input activation a depthwise convolution takes in (fold_prologue).
struct Prologue {
  Activation kind = Activation::kNone;  // kClip or kSilu
  float lo = 0.f, hi = 0.f;
  Value* src = nullptr;  // the value the activation reads
};

// [N, C, 1, 1] with a static C: one pixel per image, so NCHW and NHWC are the same bytes and a
// change of layout is a Reshape (a view), not a Transpose.
bool one_pixel(const Shape& s) {
  return s.rank_known() && s.rank() == 4 && s[1].is_static() && s[2].is_static() && s[3].is_static() &&
         s[2].value() == 1 && s[3].value() == 1;
}

Shape to_nhwc(const Shape& s) {
  const auto& d = s.dims();
  return Shape({d[0], d[2], d[3], d[1]});
}

// Clip(%x [, min] [, max]) with constant bounds (inputs, opset 11+; attributes before).
const rewrite::Pattern& clip() {
  using namespace rewrite;
  static const Pattern p = op("Clip", {any().as("x"), scalar().optional().as("min"), scalar().optional().as("max")});
  return p;
}

// SiLU: Mul(%x, Sigmoid(%x)), either order, the Sigmoid read by the Mul only.
const rewrite::Pattern& silu() {
  using namespace rewrite;
  static const Pattern p = op("Mul", {any().as("x"), op("Sigmoid", {any().as("x")}).as("sigmoid")}).commutative();
  return p;
}

// The bounds of a matched clip(): a captured constant, else the attribute, else none (infinite).
void clip_bounds(const rewrite::Match& m, float* lo, float* hi) {
  const float inf = std::numeric_limits<float>::infinity();
  auto bound = [&](const char* key, float none) {
    if (const Value* v = m[key]) return float(v->initializer->get_as_double(0));
    return m.root->has_attr(key) ? m.root->attr_float(key, none) : none;
  };
  *lo = bound("min", -inf);
  *hi = bound("max", inf);
}

class Converter {
 public:
  explicit Converter(Graph& g) : g_(g), opset_(default_opset(g)), uses_(g) {}
  Status run(PassContext& ctx);

 private:
  Expected<Value*> twin_of(Value* v);  // the NHWC twin, adding a Transpose if there is none yet
  Expected<Value*> new_twin(Value* v);  // a fresh NHWC value for v, and the Transpose back to v
  Status push(std::unique_ptr<Node> n) { out_.push_back(std::move(n)); return Status::ok(); }
  Expected<std::unique_ptr<Node>> relayout(const std::string& name, Value* in, Value* out, const Value* nchw,
                                           const std::array<int, 4>& perm);
  Expected<Value*> weight(Value* w, bool tap_major);
  bool fold_activation(Node& n);  // true: n's work went into the convolution before it
  bool fold_prologue(Node& n);  // true: n's work goes into the depthwise convolution after it
  // The SiLU whose Sigmoid is n, matched at the Mul that alone reads n.
  bool silu_at(Node& n, rewrite::Match& m) const {
    Node* mul = uses_.only(n.outputs[0]);
    return mul && rewrite::match(mul, silu(), uses_, m) && m.node("sigmoid") == &n;
  }
  const Node* lone_depthwise_reader(const Value* v);  // the convertible depthwise conv that alone reads v as X
  Node* bare_conv(const Value* v) const;  // the NHWC ConvAct without activation making v's twin

  std::set<const Node*> skip_;  // nodes folded away (SiLU's Mul)
  std::map<const Value*, Node*> bare_;  // twin -> the ConvAct without activation that makes it
  std::map<const Node*, Prologue> prologue_;  // depthwise conv -> the activation it takes in
  int folded_ = 0;

  Graph& g_;
  int opset_;
  rewrite::Uses uses_;  // of the graph as it came in
  std::vector<std::unique_ptr<Node>> out_;
  std::map<const Value*, Value*> twin_, weights_, tap_major_;
  std::vector<std::pair<Value*, Node*>> back_;  // original value -> the Transpose that re-makes it
  int convs_ = 0, followed_ = 0, relayouts_ = 0, prologues_ = 0;  // relayouts: into NHWC, by Transpose or Reshape
};

std::unique_ptr<Node> transpose_node(const std::string& name, int opset, Value* in, Value* out, const std::array<int, 4>& perm) {
  auto t = std::make_unique<Node>();
  t->name = name;
  t->op_type = "Transpose";
  t->opset = opset;
  t->inputs = {in};
  t->outputs = {out};
  t->attrs["perm"] = std::vector<int64_t>(perm.begin(), perm.end());
  out->producer = t.get();
  return t;
}

// The node that re-lays `in` out as `out` (perm kToNHWC or kToNCHW; `nchw` is the NCHW one of
// the two): a Transpose, or for one pixel per image a Reshape (no copy, no launch).
Expected<std::unique_ptr<Node>> Converter::relayout(const std::string& name, Value* in, Value* out, const Value* nchw,
                                                    const std::array<int, 4>& perm) {
  if (!one_pixel(nchw->shape)) return transpose_node(name, opset_, in, out, perm);
  const int64_t c = nchw->shape[1].value();
  const std::vector<int64_t> target = perm == kToNHWC ? std::vector<int64_t>{0, 1, 1, c} : std::vector<int64_t>{0, c, 1, 1};
  KILN_ASSIGN_OR_RETURN(Value * tv, g_.add_initializer(out->name + "/shape", Tensor::from_vector<int64_t>({4}, target)));
  auto r = std::make_unique<Node>();
  r->name = name;
  r->op_type = "Reshape";
  r->opset = opset_;
  r->inputs = {in, tv};
  r->outputs = {out};
  out->producer = r.get();
  return r;
}

Expected<Value*> Converter::twin_of(Value* v) {
  if (auto it = twin_.find(v); it != twin_.end()) return it->second;
  KILN_ASSIGN_OR_RETURN(Value * t, g_.add_value(v->name + "/nhwc", v->dtype, to_nhwc(v->shape)));
  KILN_ASSIGN_OR_RETURN(auto r, relayout(v->name + "/to_nhwc", v, t, v, kToNHWC));
  out_.push_back(std::move(r));
  twin_[v] = t;
  ++relayouts_;
  return t;
}

Expected<Value*> Converter::new_twin(Value* v) {
  KILN_ASSIGN_OR_RETURN(Value * t, g_.add_value(v->name + "/nhwc", v->dtype, to_nhwc(v->shape)));
  twin_[v] = t;
  return t;
}

// [M,C/g,kH,kW] -> [M,kH,kW,C/g], or tap-major [kH,kW,C/g,M] (depthwise).
Expected<Value*> Converter::weight(Value* w, bool tap_major) {
  auto& cache = tap_major ? tap_major_ : weights_;
  if (auto it = cache.find(w); it != cache.end()) return it->second;
  static constexpr std::array<int, 4> kToHwcm = {2, 3, 1, 0};
  KILN_ASSIGN_OR_RETURN(Tensor t, permute4(*w->initializer, tap_major ? kToHwcm : kToNHWC));
  KILN_ASSIGN_OR_RETURN(Value * v, g_.add_initializer(w->name + (tap_major ? "/hwcm" : "/khwc"), std::move(t)));
  cache[w] = v;
  return v;
}

const Node* Converter::lone_depthwise_reader(const Value* v) {
  const Node* r = uses_.only(v);
  if (!r) return nullptr;
  const Node& c = *r;
  if (!convertible_conv(c) || !depthwise(c) || c.inputs[0] != v || !c.attr_string("input_activation", "").empty())
    return nullptr;
  for (size_t i = 1; i < c.inputs.size(); ++i) if (c.inputs[i] == v) return nullptr;
  return &c;
}

Node* Converter::bare_conv(const Value* v) const {
  auto t = twin_.find(v);
  if (t == twin_.end()) return nullptr;
  auto it = bare_.find(t->second);
  return it == bare_.end() ? nullptr : it->second;
}

bool Converter::fold_activation(Node& n) {
  if (!n.domain.empty() || !n.has_input(0) || !n.has_output(0)) return false;
  const Value* x = n.inputs[0];
  Node* conv = bare_conv(x);
  if (!conv) return false;
  rewrite::Match m;
  Value* out = nullptr;
  if (uses_.only(x) == &n && rewrite::match(&n, clip(), uses_, m)) {
    float lo, hi;
    clip_bounds(m, &lo, &hi);
    conv->attrs["activation"] = std::string(activation_name(Activation::kClip));
    conv->attrs["act_min"] = lo;
    conv->attrs["act_max"] = hi;
    out = n.outputs[0];
  } else if (n.op_type == "Sigmoid" && uses_.of(x).size() == 2 && !uses_.graph_outputs.count(x) && silu_at(n, m) &&
             m["x"] == x) {
    conv->attrs["activation"] = std::string(activation_name(Activation::kSilu));
    skip_.insert(m.root);
    out = m.root->outputs[0];
  } else {
    return false;
  }
  bare_.erase(twin_.at(x));
  twin_[out] = twin_.at(x);  // x's twin now holds the activated values; x has no other reader
  out_.push_back(transpose_node(n.name + "/to_nchw", opset_, twin_.at(out), out, kToNCHW));
  ++folded_;
  return true;
}

bool Converter::fold_prologue(Node& n) {
  if (!n.domain.empty() || !n.has_input(0) || !n.has_output(0)) return false;
  Value* a = n.inputs[0];
  if (!a->shape.rank_known() || a->shape.rank() != 4) return false;
  Prologue p;
  p.src = a;
  const Node* conv = nullptr;
  rewrite::Match m;
  if (rewrite::match(&n, clip(), uses_, m)) {
    clip_bounds(m, &p.lo, &p.hi);
    conv = lone_depthwise_reader(n.outputs[0]);
    p.kind = Activation::kClip;
  } else if (n.op_type == "Sigmoid" && silu_at(n, m) && m["x"] == a) {
    conv = lone_depthwise_reader(m.root->outputs[0]);
    if (conv) skip_.insert(m.root);
    p.kind = Activation::kSilu;
  }
  if (!conv) return false;
  prologue_[conv] = p;
  ++prologues_;
  return true;
}

Status Converter::run(PassContext& ctx) {
  auto& nodes = g_.mutable_nodes();
  for (auto& np : nodes) {
    Node& n = *np;
    if (skip_.count(&n) || fold_activation(n) || fold_prologue(n)) continue;
    std::unique_ptr<Node> made;
    bool dw = false;
    if (convertible_conv(n)) {
      dw = depthwise(n);
      made = std::make_unique<Node>(n);
      made->op_type = "ConvAct";
      made->domain = "kiln";
      made->opset = 1;
      if (!made->has_attr("activation")) made->attrs["activation"] = std::string("");
      made->attrs["layout"] = std::string("NHWC");
      if (dw) made->attrs["weight_layout"] = std::string("HWCM");
      Value* x = n.inputs[0];
      if (auto p = prologue_.find(&n); p != prologue_.end()) {
        x = p->second.src;
        made->attrs["input_activation"] = std::string(activation_name(p->second.kind));
        if (p->second.kind == Activation::kClip) {
          made->attrs["in_act_min"] = p->second.lo;
          made->attrs["in_act_max"] = p->second.hi;
        }
      }
      KILN_ASSIGN_OR_RETURN(made->inputs[0], twin_of(x));
      KILN_ASSIGN_OR_RETURN(made->inputs[1], weight(n.inputs[1], dw));
      if (n.has_input(3)) {
        KILN_ASSIGN_OR_RETURN(made->inputs[3], twin_of(n.inputs[3]));
      }
      ++convs_;
    } else if (n.domain.empty() && n.op_type == "GlobalAveragePool" && n.has_input(0) && twin_.count(n.inputs[0]) &&
               n.has_output(0) && n.outputs[0]->shape.rank() == 4) {
      made = std::make_unique<Node>();
      made->name = n.name + "/nhwc";
      made->op_type = "ReduceMean";
      made->opset = 13;  // axes as an attribute
      made->attrs["axes"] = std::vector<int64_t>{1, 2};
      made->attrs["keepdims"] = int64_t(1);
      made->inputs = {twin_.at(n.inputs[0])};
      made->outputs = {n.outputs[0]};
      ++followed_;
    } else if (n.domain.empty() && n.op_type == "MaxPool" && n.has_input(0) && twin_.count(n.inputs[0]) &&
               !n.has_output(1) && n.has_output(0) && n.outputs[0]->shape.rank() == 4 && n.has_attr("kernel_shape")) {
      made = std::make_unique<Node>(n);  // kiln.MaxPool {layout="NHWC"}: MaxPool's attributes
      made->domain = "kiln";
      made->opset = 1;
      made->attrs["layout"] = std::string("NHWC");
      made->inputs = {twin_.at(n.inputs[0])};
      made->outputs.resize(1);
      ++followed_;
    } else if (elementwise(n) && n.outputs[0]->shape.rank_known() && n.outputs[0]->shape.rank() == 4) {
      bool any = false, ok = true;
      for (const Value* v : n.inputs) {
        if (!v) continue;
        if (twin_.count(v)) any = true;
        else if (!all_ones(v->shape) && !one_pixel(v->shape)) ok = false;
      }
      if (any && ok) {
        made = std::make_unique<Node>(n);
        // A [N, C, 1, 1] operand (a squeeze-and-excitation gate) gets its twin by a Reshape.
        for (Value*& v : made->inputs)
          if (v && (twin_.count(v) || (one_pixel(v->shape) && !all_ones(v->shape)))) {
            KILN_ASSIGN_OR_RETURN(v, twin_of(v));
          }
        ++followed_;
      }
    }
    if (!made) { out_.push_back(std::move(np)); continue; }
    Value* y = n.outputs[0];
    KILN_ASSIGN_OR_RETURN(made->outputs[0], new_twin(y));
    made->outputs[0]->producer = made.get();
    made->name = n.name + "/nhwc";
    if (made->op_type == "ConvAct" && made->attr_string("activation", "").empty() && dw)
      bare_[made->outputs[0]] = made.get();
    out_.push_back(std::move(made));
    KILN_ASSIGN_OR_RETURN(auto back, relayout(n.name + "/to_nchw", twin_.at(y), y, y, kToNCHW));
    out_.push_back(std::move(back));
  }
  nodes = std::move(out_);
  ctx.counters["convert_layout.convolutions"] += convs_;
  ctx.counters["convert_layout.followed"] += followed_;
  ctx.counters["convert_layout.relayouts_in"] += relayouts_;
  ctx.counters["convert_layout.activations_folded"] += folded_;
  ctx.counters["convert_layout.input_activations_folded"] += prologues_;
  return eliminate_dead_nodes(g_, ctx);
}

}  // namespace

Status convert_layout(Graph& graph, PassContext& ctx) {
  if (!ctx.channels_last) return Status::ok();
  Converter c(graph);
  return c.run(ctx);
}

}  // namespace kiln::passes
