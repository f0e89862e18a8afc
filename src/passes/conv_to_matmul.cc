// conv_to_matmul: runs a "patchify" convolution (kernel == stride, no padding, no dilation, one
// group: ViT's patch embedding, 16x16 stride 16), and a 1x1 convolution of a single pixel
// (squeeze-and-excitation: EfficientNet's convolutions after the global average pool), as the
// GEMMs they are.
//
//   before:  %y = Conv(%x, %w, %b) {kernel_shape=[p,q], strides=[p,q]}   x [B,C,H,W], w [M,C,p,q]
//   after:   %r = Reshape(%x, [0, C, H/p, p, W/q, q])
//            %t = Transpose(%r, [0, 2, 4, 1, 3, 5])                      [B, H/p, W/q, C, p, q]
//            %u = Reshape(%t, [0, H/p, W/q, C*p*q])                      one patch per row
//            %m = MatMul(%u, %w2)        w2 = w as [M, C*p*q], transposed (a new constant)
//            %a = Add(%m, %b)            (if there is a bias; fuse_epilogue folds it in)
//            %y = Transpose(%a, [0, 3, 1, 2])                            [B, M, H/p, W/q]
//
// A 1x1 convolution of [B, C, 1, 1] (a single pixel: NCHW and NHWC are the same bytes) becomes
//   %u = Reshape(%x, [0, C])   %m = MatMul(%u, %w2)   %a = Add(%m, %b)   %y = Reshape(%a, [0, M, 1, 1])
// where cuDNN spent 0.175 ms per layer on H100 (EfficientNet-B0 FP16 b128, [128, 1152] x [1152, 48]).
//
// Why: the patches do not overlap, so the convolution is exactly one [B*H/p*W/q, C*p*q] x
// [C*p*q, M] product; cuDNN's kernels for this shape run far from the GEMM's speed (H100,
// ViT-B/16 FP16: 0.28 ms at batch 1 and 0.75 ms at batch 64, for a 0.2 / 15 GFLOP layer).
// Fires only when the weight (and bias) are constants, C, H and W are static with H % p == 0
// and W % q == 0, p and q are at least 2 (a 1x1 convolution stays a convolution), pads are
// all 0 (or auto_pad VALID) and dilations all 1. Pre: types and shapes inferred, topological
// order. Post: %y keeps its name, type and shape; the new nodes stand where the Conv stood.
// One rule of the rewrite driver (passes/rewrite) for both forms.
#include "ir/layout.h"
#include "passes/pipeline.h"
#include "passes/rewrite/rewriter.h"

namespace kiln::passes {

namespace {

bool all_equal(const std::vector<int64_t>& v, int64_t x) {
  for (int64_t e : v) if (e != x) return false;
  return true;
}

// The patch size [p, q] when n is a patchify convolution, [1, 1] for a 1x1 convolution of one
// pixel, else empty.
std::vector<int64_t> patch_of(const Node& n) {
  if (!n.domain.empty() || n.op_type != "Conv" || n.inputs.size() < 2 || !n.has_input(0) || !n.has_input(1) ||
      !n.has_output(0))
    return {};
  const Value *x = n.inputs[0], *w = n.inputs[1];
  if (x->dtype != DataType::kFloat32 && x->dtype != DataType::kFloat16) return {};
  if (!w->initializer || w->initializer->rank() != 4 || w->dtype != x->dtype) return {};
  if (n.has_input(2) && (!n.inputs[2]->initializer || n.inputs[2]->initializer->rank() != 1 ||
                         n.inputs[2]->dtype != x->dtype))
    return {};
  const Shape& xs = x->shape;
  if (!xs.rank_known() || xs.rank() != 4 || !xs[1].is_static() || !xs[2].is_static() || !xs[3].is_static()) return {};
  const auto& wd = w->initializer->dims();
  const std::vector<int64_t> k = {wd[2], wd[3]};
  if (n.attr_int("group", 1) != 1 || xs[1].value() != wd[1]) return {};
  const bool pixel = k[0] == 1 && k[1] == 1 && xs[2].value() == 1 && xs[3].value() == 1;
  if (n.attr_ints("kernel_shape", k) != k || (!pixel && n.attr_ints("strides", {1, 1}) != k)) return {};
  if (!all_equal(n.attr_ints("dilations", {1, 1}), 1) || !all_equal(n.attr_ints("pads", {0, 0, 0, 0}), 0)) return {};
  const std::string ap = n.attr_string("auto_pad", "NOTSET");
  if (ap != "NOTSET" && ap != "VALID") return {};
  if (pixel) return k;  // one pixel: any stride gives the same single output
  if (k[0] < 2 || k[1] < 2 || xs[2].value() % k[0] || xs[3].value() % k[1]) return {};
  return k;
}

// The GEMM form of one convolution, built through the rewrite driver's Rewriter.
class Gemm {
 public:
  Gemm(rewrite::Rewriter& rw, const Node& conv) : rw_(rw), conv_(conv) {}

  Status run(int64_t p, int64_t q) {
    Value *x = conv_.inputs[0], *w = conv_.inputs[1], *y = conv_.outputs[0];
    const Dim b = x->shape[0];
    const int64_t c = x->shape[1].value(), hp = x->shape[2].value() / p, wq = x->shape[3].value() / q;
    const int64_t m = w->initializer->dim(0), k = c * p * q;
    const DataType t = x->dtype;
    if (p == 1 && q == 1) return pixel(b, c, m);
    KILN_ASSIGN_OR_RETURN(Value * r, reshape(x, {0, c, hp, p, wq, q}, Shape({b, c, hp, p, wq, q})));
    KILN_ASSIGN_OR_RETURN(Value * tr, value("patches", t, Shape({b, hp, wq, c, p, q})));
    add("Transpose", {r}, tr)->attrs["perm"] = std::vector<int64_t>{0, 2, 4, 1, 3, 5};
    KILN_ASSIGN_OR_RETURN(Value * u, reshape(tr, {0, hp, wq, k}, Shape({b, hp, wq, k})));
    KILN_ASSIGN_OR_RETURN(Value * pre, gemm(u, {b, hp, wq}, k, m));
    add("Transpose", {pre}, y)->attrs["perm"] = std::vector<int64_t>{0, 3, 1, 2};
    return Status::ok();
  }

 private:
  // [B, C, 1, 1] -> [B, C] x [C, M] (+ bias) -> [B, M, 1, 1].
  Status pixel(const Dim& b, int64_t c, int64_t m) {
    KILN_ASSIGN_OR_RETURN(Value * u, reshape(conv_.inputs[0], {0, c}, Shape({b, c})));
    KILN_ASSIGN_OR_RETURN(Value * pre, gemm(u, {b}, c, m));
    return reshape_to(pre, {0, m, 1, 1}, conv_.outputs[0]);
  }
  // u [lead..., K] x the weight as [K, M] (+ the bias): [lead..., M]. The weight [M, C, p, q] is
  // permuted to [C, p, q, M] and read as [C*p*q, M]: row c*p*q + i*q + j matches u's columns.
  Expected<Value*> gemm(Value* u, std::vector<Dim> lead, int64_t k, int64_t m) {
    Value* w = conv_.inputs[1];
    KILN_ASSIGN_OR_RETURN(Tensor wt, permute4(*w->initializer, {1, 2, 3, 0}));
    KILN_ASSIGN_OR_RETURN(Tensor w2, wt.reshaped({k, m}));
    KILN_ASSIGN_OR_RETURN(Value * wv, rw_.constant(w->name + "/gemm", std::move(w2)));
    lead.push_back(m);
    KILN_ASSIGN_OR_RETURN(Value * mm, value("gemm", u->dtype, Shape(lead)));
    add("MatMul", {u, wv}, mm);
    if (!conv_.has_input(2)) return mm;
    KILN_ASSIGN_OR_RETURN(Value * biased, value("bias", u->dtype, Shape(lead)));
    add("Add", {mm, conv_.inputs[2]}, biased);
    return biased;
  }
  Expected<Value*> value(const std::string& what, DataType t, Shape s) {
    return rw_.value(conv_.outputs[0]->name + "/" + what, t, std::move(s));
  }
  // The last node made stands in the Conv's place (it produces %y).
  Node* add(const char* op, std::vector<Value*> in, Value* out) {
    const std::string name = conv_.name + "/" + op + std::to_string(made_++);
    if (out == conv_.outputs[0]) return rw_.replace_root(op, "", std::move(in), {}, {}, name);
    return rw_.add(op, "", std::move(in), {out}, name);
  }
  // Reshape(in, target) into out; target becomes a constant.
  Status reshape_to(Value* in, const std::vector<int64_t>& target, Value* out) {
    KILN_ASSIGN_OR_RETURN(Value * tv, rw_.constant(conv_.outputs[0]->name + "/shape" + std::to_string(made_),
                                                    Tensor::from_vector<int64_t>({int64_t(target.size())}, target)));
    add("Reshape", {in, tv}, out);
    return Status::ok();
  }
  Expected<Value*> reshape(Value* in, const std::vector<int64_t>& target, Shape s) {
    KILN_ASSIGN_OR_RETURN(Value * o, value("reshape" + std::to_string(made_), in->dtype, std::move(s)));
    KILN_RETURN_IF_ERROR(reshape_to(in, target, o));
    return o;
  }

  rewrite::Rewriter& rw_;
  const Node& conv_;
  int made_ = 0;
};

}  // namespace

Status conv_to_matmul(Graph& graph, PassContext& ctx) {
  static const rewrite::Rule kRules[] = {
      {"gemm", rewrite::op("Conv").where_node([](const Node& n) { return !patch_of(n).empty(); }),
       [](const rewrite::Match& m, rewrite::Rewriter& rw) {
         const std::vector<int64_t> k = patch_of(*m.root);
         // A name already taken (a weight shared by two convolutions) leaves this one a Conv.
         return bool(Gemm(rw, *m.root).run(k[0], k[1]));
       }},
  };
  KILN_ASSIGN_OR_RETURN(int converted, rewrite::apply(graph, ctx, "conv_to_matmul", kRules, rewrite::Order::kFirstFirst));
  ctx.counters["conv_to_matmul.converted"] += converted;
  return Status::ok();
}

}  // namespace kiln::passes
