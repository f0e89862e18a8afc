#include "passes/shape_prover.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <set>

namespace kiln::passes {

namespace {

int64_t to_int(double x) { return x > 4e18 ? (int64_t(1) << 62) : x < -4e18 ? -(int64_t(1) << 62) : int64_t(x); }

}  // namespace

std::optional<Term> mul(const Term& a, const Term& b) {
  if (!a.root.empty() && !b.root.empty()) return std::nullopt;
  return Term{a.coef * b.coef, a.root.empty() ? b.root : a.root};
}
std::optional<Term> divide(const Term& a, const Term& b) {
  if (b.coef == 0 || a.coef % b.coef) return std::nullopt;
  if (!b.root.empty()) {
    if (a.root != b.root) return std::nullopt;
    return Term{a.coef / b.coef, ""};
  }
  return Term{a.coef / b.coef, a.root};
}
std::optional<Term> product(const Dims& d) {
  Term p{1, ""};
  for (const Term& t : d) {
    auto m = mul(p, t);
    if (!m) return std::nullopt;
    p = *m;
  }
  return p;
}

std::vector<int64_t> ints_of(const Value* v) {
  std::vector<int64_t> out;
  if (v && v->initializer)
    for (int64_t i = 0; i < v->initializer->numel(); ++i) out.push_back(to_int(v->initializer->get_as_double(i)));
  return out;
}

std::optional<Dims> ShapeProver::dims_of(const Value* v, int depth) {
  if (!v || depth > 200) return std::nullopt;
  if (auto it = memo_.find(v); it != memo_.end()) return it->second;
  std::optional<Dims> d = derive(v, depth);
  const Shape& s = v->shape;
  if (!d && s.rank_known()) {
    d = Dims();
    for (size_t j = 0; j < s.rank(); ++j)
      d->push_back(s[j].is_symbolic() ? Term{1, "s:" + s[j].symbol_name()}
                                      : Term{1, "v" + std::to_string(uintptr_t(v)) + ":" + std::to_string(j)});
  }
  if (d && s.rank_known() && s.rank() == d->size())
    for (size_t j = 0; j < s.rank(); ++j)
      if (s[j].is_static()) (*d)[j] = Term{s[j].value(), ""};
  memo_[v] = d;
  return d;
}

std::optional<Dims> ShapeProver::eval(const Value* v, int depth) {
  if (!v || depth > 200) return std::nullopt;
  if (v->initializer) {
    Dims d;
    for (int64_t x : ints_of(v)) d.push_back(Term{x, ""});
    return d;
  }
  const Node* p = v->producer;
  if (!p || !p->domain.empty() || p->inputs.empty()) return std::nullopt;
  const std::string& op = p->op_type;
  if (op == "Shape") {
    auto d = dims_of(p->inputs[0], depth + 1);
    if (!d) return std::nullopt;
    const int64_t r = int64_t(d->size());
    auto norm = [r](int64_t x) { return std::max<int64_t>(0, std::min(r, x < 0 ? x + r : x)); };
    const int64_t a = norm(p->attr_int("start", 0)), b = p->has_attr("end") ? norm(p->attr_int("end", r)) : r;
    return Dims(d->begin() + a, d->begin() + std::max(a, b));
  }
  if (op == "Unsqueeze" || op == "Squeeze" || op == "Cast" || op == "Identity") return eval(p->inputs[0], depth + 1);
  if (op == "Gather" && p->inputs.size() == 2 && p->attr_int("axis", 0) == 0 && p->inputs[1]->initializer) {
    auto d = eval(p->inputs[0], depth + 1);
    if (!d) return std::nullopt;
    Dims out;
    for (int64_t i : ints_of(p->inputs[1])) {
      if (i < 0) i += int64_t(d->size());
      if (i < 0 || i >= int64_t(d->size())) return std::nullopt;
      out.push_back((*d)[size_t(i)]);
    }
    return out;
  }
  if (op == "Slice" && p->inputs.size() >= 3) {
    auto d = eval(p->inputs[0], depth + 1);
    auto st = ints_of(p->inputs[1]), en = ints_of(p->inputs[2]);
    if (!d || st.size() != 1 || en.size() != 1) return std::nullopt;
    if (p->inputs.size() > 3 && p->inputs[3] && ints_of(p->inputs[3]) != std::vector<int64_t>{0}) return std::nullopt;
    if (p->inputs.size() > 4 && p->inputs[4] && ints_of(p->inputs[4]) != std::vector<int64_t>{1}) return std::nullopt;
    const int64_t r = int64_t(d->size());
    auto norm = [r](int64_t x) { return std::max<int64_t>(0, std::min(r, x < 0 ? x + r : x)); };
    const int64_t a = norm(st[0]), b = norm(en[0]);
    return Dims(d->begin() + a, d->begin() + std::max(a, b));
  }
  if (op == "Concat" && p->attr_int("axis", 0) == 0) {
    Dims out;
    for (const Value* in : p->inputs) {
      auto d = eval(in, depth + 1);
      if (!d) return std::nullopt;
      out.insert(out.end(), d->begin(), d->end());
    }
    return out;
  }
  if ((op == "Mul" || op == "Div") && p->inputs.size() == 2) {
    auto a = eval(p->inputs[0], depth + 1), b = eval(p->inputs[1], depth + 1);
    if (!a || !b || (a->size() != b->size() && a->size() != 1 && b->size() != 1)) return std::nullopt;
    Dims out;
    for (size_t i = 0; i < std::max(a->size(), b->size()); ++i) {
      const Term &x = (*a)[a->size() == 1 ? 0 : i], &y = (*b)[b->size() == 1 ? 0 : i];
      auto t = op == "Mul" ? mul(x, y) : divide(x, y);
      if (!t) return std::nullopt;
      out.push_back(*t);
    }
    return out;
  }
  return std::nullopt;
}

std::optional<double> ShapeProver::number(const Value* v, int depth) {
  if (!v || depth > 200) return std::nullopt;
  if (v->initializer) {
    if (v->initializer->numel() != 1) return std::nullopt;
    return v->initializer->get_as_double(0);
  }
  const Node* p = v->producer;
  if (p && p->domain.empty() && !p->inputs.empty()) {
    const std::string& op = p->op_type;
    if (op == "Cast" || op == "Identity" || op == "Squeeze" || op == "Unsqueeze") return number(p->inputs[0], depth + 1);
    if (op == "Sqrt" || op == "Reciprocal") {
      auto x = number(p->inputs[0], depth + 1);
      if (!x || *x <= 0) return std::nullopt;
      return op == "Sqrt" ? std::sqrt(*x) : 1.0 / *x;
    }
    if ((op == "Mul" || op == "Div") && p->inputs.size() == 2) {
      auto a = number(p->inputs[0], depth + 1), b = number(p->inputs[1], depth + 1);
      if (!a || !b || (op == "Div" && (*b == 0 || !dtype_is_float(v->dtype)))) return std::nullopt;  // no integer division
      return op == "Mul" ? *a * *b : *a / *b;
    }
  }
  auto d = eval(v, depth + 1);
  if (d && d->size() == 1 && (*d)[0].root.empty()) return double((*d)[0].coef);
  return std::nullopt;
}

std::optional<Dims> ShapeProver::derive(const Value* v, int depth) {
  const Node* p = v->producer;
  if (!p || !p->domain.empty() || p->inputs.empty() || !p->inputs[0]) return std::nullopt;
  const std::string& op = p->op_type;
  const Value* in = p->inputs[0];
  if (op == "Transpose") {
    auto d = dims_of(in, depth + 1);
    if (!d) return std::nullopt;
    std::vector<int64_t> perm = p->attr_ints("perm");
    if (perm.empty())
      for (size_t i = d->size(); i-- > 0;) perm.push_back(int64_t(i));
    if (perm.size() != d->size()) return std::nullopt;
    Dims out;
    for (int64_t i : perm) {
      if (i < 0 || i >= int64_t(d->size())) return std::nullopt;
      out.push_back((*d)[size_t(i)]);
    }
    return out;
  }
  if (op == "Reshape" && p->inputs.size() == 2) {
    auto t = eval(p->inputs[1], depth + 1);
    if (!t) return std::nullopt;
    auto d = dims_of(in, depth + 1);
    const bool allowzero = p->attr_int("allowzero", 0) != 0;
    int infer = -1;
    Dims out = *t;
    for (size_t j = 0; j < out.size(); ++j) {
      if (out[j].root.empty() && out[j].coef == 0 && !allowzero) {
        if (!d || j >= d->size()) return std::nullopt;
        out[j] = (*d)[j];
      } else if (out[j].root.empty() && out[j].coef == -1) {
        if (infer >= 0) return std::nullopt;
        infer = int(j);
      } else if (out[j].coef <= 0) {
        return std::nullopt;
      }
    }
    if (infer >= 0) {
      Dims rest = out;
      rest.erase(rest.begin() + infer);
      auto all = d ? product(*d) : std::nullopt;
      auto known = product(rest);
      auto q = all && known ? divide(*all, *known) : std::nullopt;
      if (!q) return std::nullopt;
      out[size_t(infer)] = *q;
    }
    return out;
  }
  if ((op == "Unsqueeze" || op == "Squeeze") && p->inputs.size() == 2) {
    auto d = dims_of(in, depth + 1);
    std::vector<int64_t> axes = ints_of(p->inputs[1]);
    if (!d || axes.empty()) return std::nullopt;
    const int64_t r = int64_t(d->size()) + (op == "Unsqueeze" ? int64_t(axes.size()) : 0);
    std::set<int64_t> ax;
    for (int64_t a : axes) ax.insert(a < 0 ? a + r : a);
    Dims out;
    for (int64_t j = 0, k = 0; j < r; ++j) {
      if (op == "Unsqueeze") out.push_back(ax.count(j) ? Term{1, ""} : (*d)[size_t(k++)]);
      else if (!ax.count(j)) out.push_back((*d)[size_t(j)]);
    }
    return out;
  }
  if (op == "Gather" && p->inputs.size() == 2 && p->inputs[1]->initializer && p->inputs[1]->initializer->dims().empty()) {
    auto d = dims_of(in, depth + 1);
    int64_t axis = p->attr_int("axis", 0);
    if (!d) return std::nullopt;
    if (axis < 0) axis += int64_t(d->size());
    if (axis < 0 || axis >= int64_t(d->size())) return std::nullopt;
    d->erase(d->begin() + axis);
    return d;
  }
  if (op == "MatMul" && p->inputs.size() == 2 && p->inputs[1]->shape.rank_known() && p->inputs[1]->shape.rank() == 2 &&
      p->inputs[1]->shape[1].is_static()) {
    auto d = dims_of(in, depth + 1);
    if (!d || d->size() < 2) return std::nullopt;
    d->back() = Term{p->inputs[1]->shape[1].value(), ""};
    return d;
  }
  if (op == "MatMul" && p->inputs.size() == 2) {  // batched: the leading dims proven equal on both sides
    auto a = dims_of(in, depth + 1), b = dims_of(p->inputs[1], depth + 1);
    if (!a || !b || a->size() != b->size() || a->size() < 3) return std::nullopt;
    for (size_t j = 0; j + 2 < a->size(); ++j)
      if (!((*a)[j] == (*b)[j])) return std::nullopt;
    a->back() = b->back();
    return a;
  }
  if (op == "Gemm" && p->attr_int("transA", 0) == 0 && p->inputs.size() >= 2 && p->inputs[1]->shape.rank_known() &&
      p->inputs[1]->shape.rank() == 2) {
    const Dim n = p->inputs[1]->shape[p->attr_int("transB", 0) ? 0 : 1];
    auto d = dims_of(in, depth + 1);
    if (!d || d->size() != 2 || !n.is_static()) return std::nullopt;
    return Dims{(*d)[0], Term{n.value(), ""}};
  }
  if ((op == "Add" || op == "Sub" || op == "Mul" || op == "Div") && p->inputs.size() == 2) {
    // A constant that only broadcasts (dims 1, or no more dims than the other side's known
    // trailing dims equal to its own) keeps the other operand's shape.
    for (int c = 0; c < 2; ++c) {
      const Value *k = p->inputs[size_t(c)], *o = p->inputs[size_t(1 - c)];
      if (!k->initializer || o->initializer) continue;
      auto d = dims_of(o, depth + 1);
      const auto& kd = k->initializer->dims();
      if (!d || kd.size() > d->size()) return std::nullopt;
      for (size_t j = 0; j < kd.size(); ++j) {
        const Term& t = (*d)[d->size() - kd.size() + j];
        if (kd[j] != 1 && !(t.root.empty() && t.coef == kd[j])) return std::nullopt;
      }
      return d;
    }
    return std::nullopt;
  }
  for (const char* same : {"LayerNormalization", "Softmax", "Cast", "Identity", "Relu", "Gelu", "Erf", "Sqrt"})
    if (op == same) return dims_of(in, depth + 1);
  return std::nullopt;
}

}  // namespace kiln::passes
