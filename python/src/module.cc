// The extension module kiln._kiln; `import kiln` (python/kiln/__init__.py) re-exports it with
// the parts written in Python (nptype, volume, the calibrator classes, build()).
#include <cstdlib>

#include "bindings.h"

NB_MODULE(_kiln, m) {
  m.doc() = "kiln: a TensorRT-shaped inference optimizer (nanobind bindings over include/kiln)";
  m.attr("__version__") = "0.1.0";
  // A logger subclass defined at module level, kept alive by a Builder/Runtime global, forms a
  // cycle through keep_alive that Python does not collect at exit; nanobind would then print
  // "leaked instances" on every such script's exit. KILN_PY_LEAK_WARNINGS=1 shows them (debugging).
  nb::set_leak_warnings(std::getenv("KILN_PY_LEAK_WARNINGS") != nullptr);
  kiln::python::bind_logger(m);
  kiln::python::bind_callbacks(m);
  kiln::python::bind_network(m);
  kiln::python::bind_calibrator(m);
  kiln::python::bind_builtin_calibrators(m);
  kiln::python::bind_engine(m);
  kiln::python::bind_context(m);
  m.def("_cuda_device_available", &kiln::python::cuda_device_available);
  m.def("_cuda_device_count", &kiln::python::cuda_device_count,
        "The CUDA devices present (0 without one, or in a build without CUDA); for kiln serve's placement.");
  m.def("_cuda_set_device", &kiln::python::cuda_set_device, nb::arg("device"),
        "Makes `device` the calling thread's current CUDA device (engines load, contexts run there); "
        "ValueError if there is no such device.");
}
