// Building an engine from an ONNX model with the public Builder, and saving it atomically.
#pragma once
#include "tools/kiln/options.h"

namespace kiln::cli {

// Parses the model and builds an engine. `reference`: an unoptimized CPU engine of the model
// as imported, with the same profiles (the --validate reference). Throws CliError.
std::vector<uint8_t> build_engine(const Options& o, CliLogger& logger, bool reference = false);

// Writes `bytes` to an unnamed file in `path`'s folder (O_TMPFILE) and links it in as `path` once
// complete, so a failed, full or SIGKILLed write leaves neither a partial file nor a temporary
// one; where O_TMPFILE is missing, a temporary file next to `path` renamed over it (never a
// partial file; a SIGKILL can leave the temporary one).
void write_file_atomic(const std::string& path, const void* data, size_t size, const std::string& what);
// Throws unless a file can be created next to `path` (checked before any long work).
void check_writable(const std::string& path, const std::string& what);

}  // namespace kiln::cli
