// Layers (nodes) and attributes to and from the engine header, subgraphs included: shared by
// the top-level graph (engine_file.cc) and the bodies of If/Loop/Scan, stored inline.
#pragma once
#include "engine/engine.pb.h"
#include "ir/graph.h"

namespace kiln::engine {

void tensor_to_proto(const Tensor& t, kilnpb::TensorData* out);
Expected<Tensor> tensor_from_proto(const kilnpb::TensorData& p, const std::string& where);
void value_to_proto(const Value& v, kilnpb::ValueInfo* out);
Shape shape_from_proto(const kilnpb::ValueInfo& v);

// Writes the node's name, op, opset, inputs, outputs and attributes (subgraphs recursively).
Status layer_to_proto(const Node& n, kilnpb::Layer* l);
// Builds the node in `g` from the layer; its values must already exist in `g`.
Expected<Node*> layer_from_proto(const kilnpb::Layer& l, Graph& g);

}  // namespace kiln::engine
