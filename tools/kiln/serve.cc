// `kiln serve ...`: forwards to the Python server (python -m kiln.serve, python/kiln/serve.py),
// which runs kiln engines in Triton Inference Server through PyTriton. The interpreter is
// $KILN_SERVE_PYTHON, else the build's serve environment (build/serve-env, scripts/setup.sh).
#include "tools/kiln/serve.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#ifndef KILN_SERVE_PYTHON_DEFAULT
#define KILN_SERVE_PYTHON_DEFAULT "python3"
#endif

namespace kiln::cli {

int exec_serve(int argc, char** argv) {
  const char* env = std::getenv("KILN_SERVE_PYTHON");
  const std::string python = env && *env ? env : KILN_SERVE_PYTHON_DEFAULT;
  std::vector<char*> args;
  std::string m = "-m", mod = "kiln.serve";
  args.push_back(const_cast<char*>(python.c_str()));
  args.push_back(m.data());
  args.push_back(mod.data());
  for (int i = 2; i < argc; ++i) args.push_back(argv[i]);
  args.push_back(nullptr);
  std::fflush(stdout);
  execvp(python.c_str(), args.data());
  std::fprintf(stderr, "[E] kiln serve: cannot run %s (%s): the server needs the Python environment of "
               "scripts/setup.sh (build/serve-env; set KILN_SERVE_PYTHON to another interpreter with "
               "kiln, nvidia-pytriton and tritonclient)\n", python.c_str(), std::strerror(errno));
  return 127;
}

}  // namespace kiln::cli
