// --validate: compares outputs with an unoptimized CPU reference engine of the same model.
#pragma once
#include "tools/kiln/inference.h"

namespace kiln::cli {

void validate_outputs(const Options& o, const std::vector<HostTensor>& inputs, const std::vector<HostTensor>& outputs,
                      CliLogger& logger);

}  // namespace kiln::cli
