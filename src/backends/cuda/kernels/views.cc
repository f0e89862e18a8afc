// CUDA "kernels" of ops whose output is input 0's bytes under another shape: no launch; the
// memory planner makes the output alias the input (a copy only when the output is a
// caller's buffer).
#include "backends/cuda/launch.h"

namespace kiln::cuda {

namespace {
Status no_launch(LaunchContext&) { return Status::ok(); }

// Any shape/axes input will do: at run time the host evaluates every output shape it can (shape
// arithmetic of Shape -> Gather -> Concat included, as transformer exports compute their head
// reshapes), and a layer whose output shape it cannot fix runs on the CPU fallback for those
// shapes (CudaContext::prepare's dynamic_ layers). Refusing non-constant inputs here sent every
// such Reshape through the CPU (a device sync and two copies each) and broke CUDA graph capture.
Support any_params(const Node&) { return Support::yes(); }

Support dropout_inference_only(const Node& n) {
  if (n.inputs.size() > 2 && n.inputs[2]) return Support::no("Dropout with a training_mode input");
  if (n.outputs.size() > 1 && n.outputs[1]) return Support::no("Dropout with a mask output");
  return Support::yes();
}
}  // namespace

void register_cuda_view_kernels(CudaKernelTable& t) {
  for (const char* op : {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity"})
    t.add({"", op, "cuda.view", no_launch, any_params, true});
  t.add({"", "Dropout", "cuda.view", no_launch, dropout_inference_only, true});
}

}  // namespace kiln::cuda
