#include "ir/ops/shape_params.h"

#include <algorithm>
#include <map>
#include <set>
#include <string>

namespace kiln {

std::vector<const Tensor*> known_values(const InferContext& ctx) {
  std::vector<const Tensor*> v;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) v.push_back(ctx.input_value(i));
  return v;
}

Expected<IntList> infer_ints(const InferContext& ctx, size_t input, const char* attr) {
  auto v = read_ints(ctx.node(), known_values(ctx), input, attr);
  if (!v) return ctx.fail(v.status().message());
  if (v->present && !v->known && !(attr && ctx.node().has_attr(attr)))
    if (auto dv = ctx.input_dims_value(input)) {
      std::vector<int64_t> ints;
      for (const Dim& d : *dv) if (d.is_static()) ints.push_back(d.value());
      if (ints.size() == dv->size()) v->known = true, v->values = std::move(ints);
    }
  return v;
}

Dim dim_product(const std::vector<Dim>& dims, size_t begin, size_t end) {
  Dim p(1);
  for (size_t i = begin; i < end; ++i) p = p * dims[i];
  return p;
}

Expected<IntList> read_ints(const Node& node, const std::vector<const Tensor*>& values, size_t input,
                            const char* attr) {
  IntList out;
  if (attr && node.has_attr(attr)) {
    out.present = out.known = true;
    out.values = node.attr_ints(attr);
    return out;
  }
  if (!node.has_input(input)) return out;
  out.present = true;
  const Tensor* t = input < values.size() ? values[input] : nullptr;
  if (!t) return out;
  auto v = t->to_int64_vector();
  if (!v) return err("input ", input, ": ", v.status().message());
  out.known = true;
  out.values = std::move(v).value();
  return out;
}

namespace {

// A product of dims as a static factor times symbolic names; `unknown` if any dim is unknown or it overflows.
struct DimProduct {
  int64_t factor = 1;
  std::multiset<std::string> symbols;
  bool unknown = false;
  void multiply(const Dim& d) {
    if (!d.is_known() || __builtin_mul_overflow(factor, d.is_static() ? d.value() : d.coef(), &factor)) {
      unknown = true;
      return;
    }
    if (d.is_symbolic()) symbols.insert(d.symbol_name());
  }
};

// The dim that -1 stands for: in / (out without the -1), when it can be told.
Expected<Dim> infer_minus_one(const Shape& in, const std::vector<Dim>& out, size_t hole) {
  if (!in.rank_known()) return Dim::unknown();
  DimProduct pin, pout;
  for (const Dim& d : in.dims()) pin.multiply(d);
  for (size_t i = 0; i < out.size(); ++i)
    if (i != hole) pout.multiply(out[i]);
  if (pin.unknown || pout.unknown) return Dim::unknown();
  for (const std::string& s : pout.symbols) {
    auto it = pin.symbols.find(s);
    if (it == pin.symbols.end()) return Dim::unknown();
    pin.symbols.erase(it);
  }
  const bool all_static = pin.symbols.empty();
  if (pout.factor == 0 || pin.factor % pout.factor != 0) {
    if (!all_static) return Dim::unknown();
    return err("cannot reshape ", in.to_string(), " with a -1 dim: the other dims multiply to ", pout.factor);
  }
  int64_t q = pin.factor / pout.factor;
  if (all_static) return Dim(q);
  if (pin.symbols.size() == 1 && q > 0) return Dim::symbol(*pin.symbols.begin(), q);
  return Dim::unknown();
}

}  // namespace

Expected<Shape> reshape_shape(const Shape& in, const std::vector<int64_t>& target, bool allowzero) {
  std::vector<Dim> t;
  for (int64_t x : target) t.push_back(Dim::integer(x));
  return reshape_shape(in, t, allowzero);
}

Expected<Shape> reshape_shape(const Shape& in, const std::vector<Dim>& target, bool allowzero) {
  std::vector<Dim> out(target.size());
  size_t hole = SIZE_MAX;
  bool has_zero = false;
  for (size_t i = 0; i < target.size(); ++i) {
    if (!target[i].is_static()) {  // "batch" stays itself; an unknown element might be 0 or -1
      if (target[i].coef() > 0) out[i] = target[i];
      continue;
    }
    int64_t t = target[i].value();
    if (t < -1) return err("invalid reshape target dim ", t);
    if (t == -1) {
      if (hole != SIZE_MAX) return err("reshape target has more than one -1");
      hole = i;
    } else if (t == 0 && !allowzero) {
      if (!in.rank_known()) out[i] = Dim::unknown();
      else if (i >= in.rank()) return err("reshape target dim ", i, " is 0 but the input has rank ", in.rank());
      else out[i] = in[i];
    } else {
      has_zero |= t == 0;
      out[i] = Dim(t);
    }
  }
  if (allowzero && has_zero && hole != SIZE_MAX) return err("reshape with allowzero=1 cannot mix 0 and -1");
  if (hole != SIZE_MAX) {
    KILN_ASSIGN_OR_RETURN(out[hole], infer_minus_one(in, out, hole));
  }
  Shape result(std::move(out));
  if (in.is_static() && result.is_static()) {
    KILN_ASSIGN_OR_RETURN(int64_t a, checked_numel(in.static_dims(), "reshape input"));
    KILN_ASSIGN_OR_RETURN(int64_t b, checked_numel(result.static_dims(), "reshape output"));
    if (a != b) return err("cannot reshape ", in.to_string(), " to ", result.to_string(), ": element counts differ");
  }
  return result;
}

Expected<std::vector<int64_t>> normalize_axes(const std::vector<int64_t>& axes, int64_t rank) {
  std::vector<int64_t> out;
  for (int64_t a : axes) {
    if (a < -rank || a >= rank) return err("axis ", a, " is out of range for rank ", rank);
    int64_t n = a < 0 ? a + rank : a;
    if (std::find(out.begin(), out.end(), n) != out.end()) return err("axis ", a, " is repeated");
    out.push_back(n);
  }
  return out;
}

namespace {

// Clamps one axis' start/end per the spec and counts the elements taken.
SliceAxis slice_one(int64_t dim, int64_t start, int64_t end, int64_t step) {
  SliceAxis s;
  s.step = step;
  s.whole = false;
  if (dim < 0) return s;  // unknown dim: extent unknown
  if (dim == 0) { s.count = 0; return s; }
  if (start < 0) start += dim;
  if (end < 0) end += dim;
  if (step > 0) {
    start = std::clamp<int64_t>(start, 0, dim);
    end = std::clamp<int64_t>(end, 0, dim);
    s.count = end > start ? (end - start + step - 1) / step : 0;
  } else {
    start = std::clamp<int64_t>(start, 0, dim - 1);
    end = std::clamp<int64_t>(end, -1, dim - 1);
    s.count = start > end ? (start - end + (-step) - 1) / (-step) : 0;
  }
  s.start = start;
  return s;
}

}  // namespace

Expected<std::vector<SliceAxis>> resolve_slice(const std::vector<int64_t>& dims, const std::vector<int64_t>& starts,
                                               const std::vector<int64_t>& ends, const IntList& axes,
                                               const IntList& steps) {
  const int64_t rank = static_cast<int64_t>(dims.size());
  if (starts.size() != ends.size()) return err("starts has ", starts.size(), " values but ends has ", ends.size());
  std::vector<int64_t> ax;
  if (axes.present) ax = axes.values;
  else for (size_t i = 0; i < starts.size(); ++i) ax.push_back(static_cast<int64_t>(i));
  if (ax.size() != starts.size()) return err("axes has ", ax.size(), " values but starts has ", starts.size());
  if (steps.present && steps.values.size() != starts.size())
    return err("steps has ", steps.values.size(), " values but starts has ", starts.size());
  KILN_ASSIGN_OR_RETURN(ax, normalize_axes(ax, rank));
  std::vector<SliceAxis> out(dims.size());
  for (size_t d = 0; d < dims.size(); ++d) out[d].count = dims[d];
  for (size_t i = 0; i < ax.size(); ++i) {
    int64_t step = steps.present ? steps.values[i] : 1;
    if (step == 0) return err("slice step must not be 0");
    out[ax[i]] = slice_one(dims[ax[i]], starts[i], ends[i], step);
  }
  return out;
}

Expected<std::vector<int64_t>> full_pads(int64_t rank, const std::vector<int64_t>& pads, const IntList& axes) {
  std::vector<int64_t> ax;
  if (axes.present) {
    KILN_ASSIGN_OR_RETURN(ax, normalize_axes(axes.values, rank));
  } else {
    for (int64_t i = 0; i < rank; ++i) ax.push_back(i);
  }
  const size_t n = ax.size();
  if (pads.size() != 2 * n) return err("pads has ", pads.size(), " values; expected ", 2 * n);
  std::vector<int64_t> out(2 * static_cast<size_t>(rank), 0);
  for (size_t i = 0; i < n; ++i) {
    out[ax[i]] = pads[i];
    out[ax[i] + rank] = pads[i + n];
  }
  return out;
}

}  // namespace kiln
