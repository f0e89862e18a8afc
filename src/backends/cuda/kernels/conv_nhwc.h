// kiln.ConvAct {layout="NHWC"} on CUDA (conv_nhwc.cu); conv.cu's table line dispatches here.
#pragma once
#include "backends/cuda/launch.h"

namespace kiln::cuda {

Status conv_nhwc(LaunchContext& ctx);
Support check_conv_nhwc(const Node& n);

}  // namespace kiln::cuda
