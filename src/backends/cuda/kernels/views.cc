// CUDA "kernels" of ops whose output is input 0's bytes under another shape: no launch; the
// memory planner makes the output alias the input (a copy only when the output is a
// caller's buffer).
#include "backends/cuda/launch.h"

namespace kiln::cuda {

namespace {
Status no_launch(LaunchContext&) { return Status::ok(); }

// The output's shape must be known before the run: a shape or axes input has to be a constant.
Support constant_params(const Node& n) {
  for (size_t i = 1; i < n.inputs.size(); ++i)
    if (n.inputs[i] && !n.inputs[i]->initializer)
      return Support::no("input " + std::to_string(i) + " ('" + n.inputs[i]->name + "') is not a constant");
  return Support::yes();
}

Support dropout_inference_only(const Node& n) {
  if (n.inputs.size() > 2 && n.inputs[2]) return Support::no("Dropout with a training_mode input");
  if (n.outputs.size() > 1 && n.outputs[1]) return Support::no("Dropout with a mask output");
  return Support::yes();
}
}  // namespace

void register_cuda_view_kernels(CudaKernelTable& t) {
  for (const char* op : {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity"})
    t.add({"", op, "cuda.view", no_launch, constant_params, true});
  t.add({"", "Dropout", "cuda.view", no_launch, dropout_inference_only, true});
}

}  // namespace kiln::cuda
