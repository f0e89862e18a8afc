// --exportOutput / --exportTimes / --exportProfile / --exportLayerInfo: JSON in trtexec's
// layouts, each written to a temporary file and renamed.
#pragma once
#include "tools/kiln/inference.h"

namespace kiln::cli {

void export_output(const std::string& path, const std::vector<HostTensor>& outputs);
void export_times(const std::string& path, const InferenceResult& r);
void export_profile(const std::string& path, const LayerProfile& p);
void export_layer_info(const std::string& path, const Engine& e);

}  // namespace kiln::cli
