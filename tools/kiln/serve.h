// `kiln serve ...`: replaces the process with `python -m kiln.serve ...` (see serve.cc).
#pragma once

namespace kiln::cli {

// argv[1] is "serve"; the rest go to kiln.serve. Returns only if the interpreter cannot start (127).
int exec_serve(int argc, char** argv);

}  // namespace kiln::cli
