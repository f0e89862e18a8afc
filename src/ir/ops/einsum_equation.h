// Einsum equation parsing shared by the schema (output shape) and the CPU kernel (loops).
// Every axis of every operand gets a label: letters keep their character code; the dims an
// ellipsis stands for get labels 256+j, right-aligned across operands so they broadcast.
#pragma once
#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "core/status.h"

namespace kiln {

struct EinsumSpec {
  std::vector<std::vector<int>> inputs;  // labels per operand axis
  std::vector<int> output;               // labels per output axis
  std::map<int, int64_t> sizes;          // label -> extent (-1 unknown)
};

namespace einsum_detail {
// Splits one term into letters and an ellipsis position (-1 if none).
inline Status parse_term(const std::string& t, std::vector<int>& letters, int& ell) {
  ell = -1;
  letters.clear();
  for (size_t i = 0; i < t.size(); ++i) {
    char c = t[i];
    if (c == '.') {
      if (ell >= 0 || t.compare(i, 3, "...") != 0) return err("bad ellipsis in einsum term '", t, "'");
      ell = static_cast<int>(letters.size());
      i += 2;
    } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
      letters.push_back(c);
    } else {
      return err("bad character '", c, "' in einsum equation");
    }
  }
  return Status::ok();
}

inline std::vector<int> expand(const std::vector<int>& letters, int ell, int n_ell, int max_ell) {
  if (ell < 0) return letters;
  std::vector<int> out(letters.begin(), letters.begin() + ell);
  for (int j = 0; j < n_ell; ++j) out.push_back(256 + (max_ell - n_ell) + j);
  out.insert(out.end(), letters.begin() + ell, letters.end());
  return out;
}
}  // namespace einsum_detail

// ranks[i] = rank of operand i; dims[i] its dims (-1 unknown), same length as ranks[i].
inline Expected<EinsumSpec> parse_einsum(std::string eq, const std::vector<std::vector<int64_t>>& dims) {
  using namespace einsum_detail;
  eq.erase(std::remove(eq.begin(), eq.end(), ' '), eq.end());
  size_t arrow = eq.find("->");
  std::string lhs = eq.substr(0, arrow);
  std::vector<std::string> terms;
  for (size_t start = 0;;) {
    size_t comma = lhs.find(',', start);
    terms.push_back(lhs.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (terms.size() != dims.size())
    return err("einsum equation has ", terms.size(), " operands but the node has ", dims.size(), " inputs");
  EinsumSpec spec;
  std::vector<std::vector<int>> letters(terms.size());
  std::vector<int> ells(terms.size()), n_ell(terms.size());
  int max_ell = 0;
  for (size_t i = 0; i < terms.size(); ++i) {
    KILN_RETURN_IF_ERROR(parse_term(terms[i], letters[i], ells[i]));
    int rank = static_cast<int>(dims[i].size()), nl = static_cast<int>(letters[i].size());
    n_ell[i] = ells[i] >= 0 ? rank - nl : 0;
    if (n_ell[i] < 0 || (ells[i] < 0 && rank != nl))
      return err("einsum term '", terms[i], "' does not match operand rank ", rank);
    max_ell = std::max(max_ell, n_ell[i]);
  }
  std::map<int, int> count;
  for (size_t i = 0; i < terms.size(); ++i) {
    spec.inputs.push_back(expand(letters[i], ells[i], n_ell[i], max_ell));
    for (size_t k = 0; k < spec.inputs[i].size(); ++k) {
      int l = spec.inputs[i][k];
      int64_t d = dims[i][k];
      ++count[l];
      auto it = spec.sizes.find(l);
      if (it == spec.sizes.end() || it->second == 1 || it->second < 0) {
        if (it == spec.sizes.end() || d != 1) spec.sizes[l] = d;
      } else if (d >= 0 && d != 1 && d != it->second) {
        return err("einsum label extents differ: ", it->second, " vs ", d);
      }
    }
  }
  if (arrow != std::string::npos) {
    std::vector<int> out_letters;
    int out_ell;
    KILN_RETURN_IF_ERROR(parse_term(eq.substr(arrow + 2), out_letters, out_ell));
    if (out_ell >= 0 || max_ell == 0) spec.output = expand(out_letters, out_ell, max_ell, max_ell);
    else spec.output = out_letters;
    for (size_t i = 0; i < spec.output.size(); ++i) {
      int l = spec.output[i];
      if (!spec.sizes.count(l)) return err("einsum output label '", char(l), "' is not in any input");
      if (std::count(spec.output.begin(), spec.output.end(), l) > 1)
        return err("einsum output label '", char(l), "' appears twice");
    }
  } else {
    for (int j = 0; j < max_ell; ++j) spec.output.push_back(256 + j);
    for (const auto& [l, c] : count)
      if (l < 256 && c == 1) spec.output.push_back(l);
  }
  return spec;
}

}  // namespace kiln
