// trt.IExecutionContext over kiln::ExecutionContext: TensorRT 10's tensor-address API, the
// binding-list execute_v2, TensorRT 8's binding names (deprecated), and infer() (infer.cc).
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "bindings.h"

namespace kiln::python {

bool PyContext::set_input_shape(const std::string& name, const Dims& dims) {
  auto it = input_shapes.find(name);
  if (it != input_shapes.end() && it->second == dims) return true;
  if (!ctx->setInputShape(name, dims)) {
    input_shapes.erase(name);
    return false;
  }
  input_shapes[name] = dims;
  return true;
}

namespace {

void log_error(PyContext& c, const std::string& message) {
  if (c.engine->logger) c.engine->logger->log(Logger::Severity::kERROR, message.c_str());
}

bool set_address(PyContext& c, const std::string& name, uintptr_t ptr) {
  if (c.engine->backend == "cuda" && ptr) {
    std::string why = check_device_pointer(ptr);
    if (!why.empty()) {
      log_error(c, "set_tensor_address('" + name + "'): " + why);
      return false;
    }
  }
  if (!c.ctx->setTensorAddress(name, reinterpret_cast<void*>(ptr))) return false;
  c.addresses[name] = ptr;
  return true;
}

bool enqueue(PyContext& c, uintptr_t stream, bool wait) {
  nb::gil_scoped_release release;
  return wait ? c.ctx->execute() : c.ctx->enqueue(reinterpret_cast<void*>(stream));
}

bool set_bindings(PyContext& c, const std::vector<uintptr_t>& bindings) {
  const Engine& e = *c.engine->engine;
  if (bindings.size() != static_cast<size_t>(e.getNbIOTensors())) {
    log_error(c, "execute: " + std::to_string(bindings.size()) + " bindings for an engine with " +
                     std::to_string(e.getNbIOTensors()) + " I/O tensors (one address per tensor, in index order)");
    return false;
  }
  for (size_t i = 0; i < bindings.size(); ++i)
    if (!set_address(c, e.getIOTensorName(static_cast<int>(i)), bindings[i])) return false;
  return true;
}

std::string binding_name(PyContext& c, int i) {
  if (i < 0 || i >= c.engine->engine->getNbIOTensors())
    raise(PyExc_IndexError, "binding " + std::to_string(i) + " does not exist");
  return c.engine->engine->getIOTensorName(i);
}

void deprecated(const char* old_name, const char* new_name) {
  warn_deprecated(std::string("IExecutionContext.") + old_name + " is deprecated (removed in TensorRT 10): use " + new_name);
}

bool set_profile(PyContext& c, int index) {
  c.input_shapes.clear();
  return c.ctx->setOptimizationProfile(index);
}

}  // namespace

void bind_context(nb::module_& m) {
  nb::class_<PyContext>(m, "IExecutionContext",
      "Runs an engine: set_input_shape, set_tensor_address, execute_async_v3 (TensorRT's way), or "
      "infer({name: array}) -> {name: array} (kiln's).")
      .def_prop_ro("engine", [](PyContext& c) { return nb::find(c.engine); })
      .def("set_input_shape", [](PyContext& c, const std::string& name, nb::handle shape) {
            return c.set_input_shape(name, to_dims(shape, "set_input_shape"));
          }, nb::arg("name"), nb::arg("shape"), "False (and an error logged) outside the optimization profile.")
      .def("get_tensor_shape", [](PyContext& c, const std::string& name) { return to_tuple(c.ctx->getTensorShape(name)); }, nb::arg("name"),
           "Shape under the current input shapes (-1 where known only after a run).")
      .def("set_tensor_address", [](PyContext& c, const std::string& name, uintptr_t ptr) { return set_address(c, name, ptr); },
           nb::arg("name"), nb::arg("memory"),
           "Address of a tensor's data: host memory for a CPU engine (e.g. array.ctypes.data), device memory "
           "for a CUDA one (a host pointer is refused there).")
      .def("get_tensor_address", [](PyContext& c, const std::string& name) {
            auto it = c.addresses.find(name);
            return it == c.addresses.end() ? uintptr_t(0) : it->second;
          }, nb::arg("name"))
      .def("execute_async_v3", [](PyContext& c, uintptr_t stream) { return enqueue(c, stream, false); }, nb::arg("stream_handle"),
           "Runs on the stream (a cudaStream_t as int; 0 is the default stream; ignored on CPU engines).")
      .def("execute_v2", [](PyContext& c, const std::vector<uintptr_t>& bindings) {
            return set_bindings(c, bindings) && enqueue(c, 0, true);
          }, nb::arg("bindings"), "Runs and waits; bindings: one address per I/O tensor, in index order.")
      .def("execute_async_v2", [](PyContext& c, const std::vector<uintptr_t>& bindings, uintptr_t stream) {
            deprecated("execute_async_v2", "set_tensor_address and execute_async_v3");
            return set_bindings(c, bindings) && enqueue(c, stream, false);
          }, nb::arg("bindings"), nb::arg("stream_handle"))
      .def("set_binding_shape", [](PyContext& c, int i, nb::handle shape) {
            deprecated("set_binding_shape", "set_input_shape");
            return c.set_input_shape(binding_name(c, i), to_dims(shape, "set_binding_shape"));
          }, nb::arg("binding"), nb::arg("shape"))
      .def("get_binding_shape", [](PyContext& c, int i) {
            deprecated("get_binding_shape", "get_tensor_shape");
            return to_tuple(c.ctx->getTensorShape(binding_name(c, i)));
          }, nb::arg("binding"))
      .def("set_optimization_profile_async", [](PyContext& c, int index, uintptr_t) { return set_profile(c, index); },
           nb::arg("profile_index"), nb::arg("stream_handle"), "Selects the profile whose shape ranges apply; input shapes are reset.")
      .def_prop_rw("active_optimization_profile", [](PyContext& c) { return c.ctx->getOptimizationProfile(); },
          [](PyContext& c, int index) {
            deprecated("active_optimization_profile = i", "set_optimization_profile_async(i, stream)");
            if (!set_profile(c, index)) raise(PyExc_ValueError, "optimization profile " + std::to_string(index) + " does not exist");
          })
      .def("infer", &infer, nb::arg("inputs"), nb::arg("stream") = nb::none(),
           "Runs on {input name: numpy array} and returns {output name: numpy array}. Checks each array's "
           "dtype, shape (against the profile) and layout (C-contiguous) and raises TypeError/ValueError with "
           "the reason. On a CUDA engine the arrays are copied to device buffers the context keeps, and the "
           "outputs back, on `stream` (int cudaStream_t; default: the context's own stream).")
      .def("__enter__", [](nb::handle self) { return nb::borrow(self); })
      .def("__exit__", [](nb::handle, nb::args) {});
}

}  // namespace kiln::python
