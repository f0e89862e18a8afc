// Building an engine from an ONNX model with the public Builder, and saving it atomically.
#pragma once
#include "tools/kiln/options.h"

namespace kiln::cli {

// Parses the model and builds an engine. `reference`: an unoptimized CPU engine of the model
// as imported, with the same profiles (the --validate reference). Throws CliError.
std::vector<uint8_t> build_engine(const Options& o, CliLogger& logger, bool reference = false);

// Writes `bytes` to a temporary file next to `path` and renames it over `path`: a failed or
// interrupted write never leaves a partial file.
void write_file_atomic(const std::string& path, const void* data, size_t size, const std::string& what);
// Throws unless a file can be created next to `path` (checked before any long work).
void check_writable(const std::string& path, const std::string& what);

}  // namespace kiln::cli
