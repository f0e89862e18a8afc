// CPU kernels of the control-flow family: If, Loop, Scan. Each runs its body with a nested
// Executor (run_subgraph), binding the body's inputs and, for each of the body's captures, the
// enclosing-scope tensor the executor handed over as an implicit input (see graph.h). Outputs
// are allocated here: their sizes depend on the branch taken, the trip count or the sequence
// length. Loop and Scan stack per-iteration slices with byte copies, so they work for every
// fixed-size element type.
#include <algorithm>
#include <cstring>

#include "backends/cpu/executor.h"
#include "backends/cpu/kernel_table.h"
#include "backends/cpu/kernels/subgraph_body.h"

namespace kiln::cpu {

namespace {

int64_t product(const std::vector<int64_t>& d, size_t first, size_t last) {
  int64_t p = 1;
  for (size_t k = first; k < last; ++k) p *= d[k];
  return p;
}

Expected<bool> read_condition(const KernelContext& ctx, const Tensor& t, const char* what) {
  if (t.numel() != 1) return ctx.fail(what, " must hold one element, got ", t.describe());
  return t.get_as_double(0) != 0;
}

// t with `axis` removed, at position `index` along it.
Tensor slice_at(const Tensor& t, size_t axis, int64_t index) {
  std::vector<int64_t> dims = t.dims();
  const int64_t outer = product(dims, 0, axis), n = dims[axis];
  const size_t inner = static_cast<size_t>(product(dims, axis + 1, dims.size())) * dtype_size(t.dtype());
  dims.erase(dims.begin() + static_cast<std::ptrdiff_t>(axis));
  Tensor out = Tensor::zeros(t.dtype(), dims).value();
  for (int64_t o = 0; o < outer; ++o)
    std::memcpy(out.mutable_raw() + o * inner, t.raw() + (o * n + index) * inner, inner);
  return out;
}

// Stacks equally shaped parts along a new axis `axis` (in [0, rank of a part]).
Expected<Tensor> stack(const KernelContext& ctx, const std::vector<Tensor>& parts, int64_t axis, const char* what) {
  const Tensor& first = parts.front();
  for (const Tensor& p : parts)
    if (p.dtype() != first.dtype() || p.dims() != first.dims())
      return ctx.fail(what, ": iterations produced ", first.describe(), " and ", p.describe(), "; they must agree");
  const int64_t r = static_cast<int64_t>(first.rank()) + 1;
  if (axis < -r || axis >= r) return ctx.fail(what, ": axis ", axis, " is out of range for rank ", r);
  const size_t a = static_cast<size_t>(axis < 0 ? axis + r : axis);
  std::vector<int64_t> dims = first.dims();
  dims.insert(dims.begin() + static_cast<std::ptrdiff_t>(a), static_cast<int64_t>(parts.size()));
  KILN_ASSIGN_OR_RETURN(Tensor out, Tensor::zeros(first.dtype(), dims));
  const int64_t outer = product(first.dims(), 0, a);
  const size_t inner = static_cast<size_t>(product(first.dims(), a, first.rank())) * dtype_size(first.dtype());
  const int64_t n = static_cast<int64_t>(parts.size());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < n; ++i)
      std::memcpy(out.mutable_raw() + (o * n + i) * inner, parts[i].raw() + o * inner, inner);
  return out;
}

// A stacked output of zero iterations: the body output's declared shape with a 0 at `axis`.
Expected<Tensor> empty_stack(const KernelContext& ctx, const Value& body_out, int64_t axis) {
  if (body_out.dtype == DataType::kUndefined || !body_out.shape.is_static())
    return ctx.fail("ran zero iterations, and the type or shape of body output '", body_out.name,
                    "' is not known, so its empty stacked output cannot be built");
  std::vector<int64_t> dims = body_out.shape.static_dims();
  const int64_t r = static_cast<int64_t>(dims.size()) + 1;
  if (axis < -r || axis >= r) return ctx.fail("axis ", axis, " is out of range for rank ", r);
  dims.insert(dims.begin() + (axis < 0 ? axis + r : axis), 0);
  return Tensor::zeros(body_out.dtype, dims);
}

Status if_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(bool cond, read_condition(ctx, ctx.input(0), "the condition"));
  const char* branch = cond ? "then_branch" : "else_branch";
  KILN_ASSIGN_OR_RETURN(Body body, prepare_body(ctx, branch));
  KILN_ASSIGN_OR_RETURN(std::vector<Tensor> outs, run_body(ctx, body, {}, std::string(branch) + ": "));
  for (size_t i = 0; i < outs.size() && i < ctx.num_outputs(); ++i) ctx.set_output(i, std::move(outs[i]));
  return Status::ok();
}

// Loop: `for (i = 0; (M absent or i < M) && cond; ++i) (cond, v..., scans...) = body(i, cond, v...)`.
// With M given and cond absent the body's condition is ignored, as ONNX specifies.
Status loop_kernel(KernelContext& ctx) {
  const bool has_m = ctx.has_input(0), has_cond = ctx.has_input(1);
  if (!has_m && !has_cond) return ctx.fail("has neither a trip count M nor a condition: it would never end");
  int64_t trip = 0;
  if (has_m) {
    if (ctx.input(0).numel() != 1) return ctx.fail("trip count M must hold one element, got ", ctx.input(0).describe());
    trip = ctx.input(0).get_as_int64(0);
  }
  bool cond = true;
  if (has_cond) { KILN_ASSIGN_OR_RETURN(cond, read_condition(ctx, ctx.input(1), "the condition")); }
  KILN_ASSIGN_OR_RETURN(Body body, prepare_body(ctx, "body"));
  const size_t carried = ctx.num_inputs() - 2;
  const size_t scans = body.graph->outputs.size() - 1 - carried;
  std::vector<Tensor> state;
  for (size_t i = 0; i < carried; ++i) state.push_back(ctx.input(i + 2));
  std::vector<std::vector<Tensor>> slices(scans);
  for (int64_t it = 0; (!has_m || it < trip) && cond; ++it) {
    std::vector<Tensor> ins{Tensor::scalar<int64_t>(it), Tensor::scalar<bool>(cond)};
    ins.insert(ins.end(), state.begin(), state.end());
    KILN_ASSIGN_OR_RETURN(std::vector<Tensor> outs, run_body(ctx, body, ins, "iteration " + std::to_string(it) + ": "));
    if (has_cond) { KILN_ASSIGN_OR_RETURN(cond, read_condition(ctx, outs[0], "the body's condition")); }
    for (size_t i = 0; i < carried; ++i) state[i] = std::move(outs[1 + i]);
    for (size_t k = 0; k < scans; ++k) slices[k].push_back(std::move(outs[1 + carried + k]));
  }
  for (size_t i = 0; i < carried && i < ctx.num_outputs(); ++i) ctx.set_output(i, std::move(state[i]));
  for (size_t k = 0; k < scans && carried + k < ctx.num_outputs(); ++k) {
    const Value& decl = *body.graph->outputs[1 + carried + k];
    KILN_ASSIGN_OR_RETURN(Tensor t, slices[k].empty() ? empty_stack(ctx, decl, 0)
                                                      : stack(ctx, slices[k], 0, "scan output"));
    ctx.set_output(carried + k, std::move(t));
  }
  return Status::ok();
}

// Scan's per-input and per-output axes and directions, read once.
struct ScanLayout {
  size_t states = 0, scans = 0, scan_outs = 0;
  std::vector<int64_t> in_axes, in_dirs, out_axes, out_dirs;
};

// One scan over unbatched tensors: returns (final states..., stacked scan outputs...).
Expected<std::vector<Tensor>> scan_once(const KernelContext& ctx, const Body& body, const ScanLayout& l,
                                        std::vector<Tensor> state, const std::vector<const Tensor*>& seqs) {
  std::vector<size_t> axes;
  int64_t len = -1;
  for (size_t j = 0; j < l.scans; ++j) {
    const int64_t r = static_cast<int64_t>(seqs[j]->rank()), a = l.in_axes[j];
    if (a < -r || a >= r) return ctx.fail("scan input ", j, ": axis ", a, " is out of range for ", seqs[j]->describe());
    axes.push_back(static_cast<size_t>(a < 0 ? a + r : a));
    const int64_t n = seqs[j]->dim(axes[j]);
    if (len >= 0 && n != len) return ctx.fail("scan inputs have different sequence lengths (", len, " and ", n, ")");
    len = n;
  }
  std::vector<std::vector<Tensor>> slices(l.scan_outs);
  for (int64_t t = 0; t < len; ++t) {
    std::vector<Tensor> ins = state;
    for (size_t j = 0; j < l.scans; ++j) ins.push_back(slice_at(*seqs[j], axes[j], l.in_dirs[j] ? len - 1 - t : t));
    KILN_ASSIGN_OR_RETURN(std::vector<Tensor> outs, run_body(ctx, body, ins, "iteration " + std::to_string(t) + ": "));
    for (size_t i = 0; i < l.states; ++i) state[i] = std::move(outs[i]);
    for (size_t k = 0; k < l.scan_outs; ++k) slices[k].push_back(std::move(outs[l.states + k]));
  }
  std::vector<Tensor> result = std::move(state);
  for (size_t k = 0; k < l.scan_outs; ++k) {
    if (l.out_dirs[k]) std::reverse(slices[k].begin(), slices[k].end());
    KILN_ASSIGN_OR_RETURN(Tensor t, slices[k].empty()
                                        ? empty_stack(ctx, *body.graph->outputs[l.states + k], l.out_axes[k])
                                        : stack(ctx, slices[k], l.out_axes[k], "scan output"));
    result.push_back(std::move(t));
  }
  return result;
}

std::vector<int64_t> ints_or(const Node& n, const char* key, size_t len) {
  std::vector<int64_t> v = n.attr_ints(key);
  if (v.size() != len) v.assign(len, 0);  // the schema rejected other lengths; absent means 0s
  return v;
}

// Scan, opset 9+: states and sequences as given. Opset 8: every input has a batch axis 0 and
// the sequence axis 1; each batch entry is scanned on its own and the results restacked.
Status scan_kernel(KernelContext& ctx) {
  const Node& n = ctx.node();
  const bool batched = ctx.opset() < 9;
  if (batched && ctx.has_input(0)) return ctx.fail("the opset-8 sequence_lens input is not supported");
  const size_t first = batched ? 1 : 0;
  ScanLayout l;
  l.scans = static_cast<size_t>(n.attr_int("num_scan_inputs", 1));
  l.states = ctx.num_inputs() - first - l.scans;
  l.scan_outs = ctx.num_outputs() - l.states;
  l.in_axes = ints_or(n, "scan_input_axes", l.scans);
  l.in_dirs = ints_or(n, batched ? "directions" : "scan_input_directions", l.scans);
  l.out_axes = ints_or(n, "scan_output_axes", l.scan_outs);
  l.out_dirs = ints_or(n, "scan_output_directions", l.scan_outs);
  KILN_ASSIGN_OR_RETURN(Body body, prepare_body(ctx, "body"));
  std::vector<Tensor> outs;
  if (!batched) {
    std::vector<Tensor> state;
    std::vector<const Tensor*> seqs;
    for (size_t i = 0; i < l.states; ++i) state.push_back(ctx.input(i));
    for (size_t j = 0; j < l.scans; ++j) seqs.push_back(&ctx.input(l.states + j));
    KILN_ASSIGN_OR_RETURN(outs, scan_once(ctx, body, l, std::move(state), seqs));
  } else {
    std::vector<const Tensor*> ins;
    for (size_t i = first; i < ctx.num_inputs(); ++i) ins.push_back(&ctx.input(i));
    const int64_t batch = ins[0]->rank() > 0 ? ins[0]->dim(0) : -1;
    for (const Tensor* t : ins)
      if (t->rank() == 0 || t->dim(0) != batch) return ctx.fail("opset-8 Scan inputs must share batch axis 0");
    std::vector<std::vector<Tensor>> per_batch(ctx.num_outputs());
    for (int64_t b = 0; b < batch; ++b) {
      std::vector<Tensor> state, seq_store;
      for (size_t i = 0; i < l.states; ++i) state.push_back(slice_at(*ins[i], 0, b));
      for (size_t j = 0; j < l.scans; ++j) seq_store.push_back(slice_at(*ins[l.states + j], 0, b));
      std::vector<const Tensor*> seqs;
      for (const Tensor& s : seq_store) seqs.push_back(&s);
      KILN_ASSIGN_OR_RETURN(std::vector<Tensor> r, scan_once(ctx, body, l, std::move(state), seqs));
      for (size_t k = 0; k < r.size(); ++k) per_batch[k].push_back(std::move(r[k]));
    }
    if (batch == 0) return ctx.fail("opset-8 Scan with an empty batch is not supported");
    for (auto& parts : per_batch) { KILN_ASSIGN_OR_RETURN(Tensor t, stack(ctx, parts, 0, "batch")); outs.push_back(std::move(t)); }
  }
  for (size_t i = 0; i < outs.size() && i < ctx.num_outputs(); ++i) ctx.set_output(i, std::move(outs[i]));
  return Status::ok();
}

}  // namespace

void register_control_flow_kernels(KernelTable& t) {
  t.add("", "If", if_kernel);
  t.add("", "Loop", loop_kernel);
  t.add("", "Scan", scan_kernel);
}

}  // namespace kiln::cpu
