// Which axes a Reduce* node reduces: one reading for the schema and every backend's kernel.
#pragma once
#include <vector>

#include "ir/graph.h"

namespace kiln {

// The opset from which the node takes its axes as input 1 instead of an attribute.
int reduce_axes_input_since(const Node& n);

// The reduced-axes mask for an input of `rank`. `axes_input` is input 1's value when the node
// takes axes as an input (null when that input is absent). *noop is set when
// noop_with_empty_axes applies (the output is the input). Errors name the node.
Expected<std::vector<bool>> reduce_axes_mask(const Node& n, const Tensor* axes_input, size_t rank, bool* noop);

}  // namespace kiln
