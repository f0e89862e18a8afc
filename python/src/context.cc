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
  } else if (ptr && is_device_memory(ptr)) {  // a CPU engine would touch device memory from the host
    log_error(c, "set_tensor_address('" + name + "'): the address is CUDA device memory but the engine runs on the "
                 "CPU: pass host memory (array.ctypes.data), or build a CUDA engine");
    return false;
  }
  if (!c.ctx->setTensorAddress(name, reinterpret_cast<void*>(ptr))) return false;
  c.addresses[name] = ptr;
  c.bound.erase(name);
  return true;
}

// kiln's extension of set_tensor_address: an array or tensor instead of an address, checked
// (dtype, layout, device, writable for outputs) and kept alive while bound; its size is checked
// against the tensor's shape before each run.
bool set_array(PyContext& c, const std::string& name, nb::handle obj) {
  const Engine& e = *c.engine->engine;
  TensorIOMode mode = e.getTensorIOMode(name);
  if (mode == TensorIOMode::kNONE) return c.ctx->setTensorAddress(name, nullptr);  // logs the error
  bool cuda = c.engine->backend == "cuda";
  std::string what = "set_tensor_address('" + name + "')";
  TensorArg t = import_tensor(obj, what, mode == TensorIOMode::kOUTPUT, nullptr);
  check_tensor(t, what, e.getTensorDataType(name), cuda, mode == TensorIOMode::kOUTPUT, nullptr);
  if (cuda && t.where == Where::kHost)
    raise(PyExc_ValueError, what + ": the array is in host memory but the engine runs on CUDA: pass a CUDA tensor "
                                   "(or use context.infer(), which copies numpy arrays)");
  if (cuda && t.where == Where::kDevice) {
    int dev = t.device_id;
    std::string why = dev < 0 && t.nbytes() ? check_device_pointer(reinterpret_cast<uintptr_t>(t.data), &dev) : "";
    if (!why.empty()) raise(PyExc_ValueError, what + ": " + why);
    if (dev >= 0 && dev != c.device)
      raise(PyExc_ValueError, what + ": the tensor is on cuda:" + std::to_string(dev) + " but the context runs on cuda:" +
                                  std::to_string(c.device));
  }
  if (!c.ctx->setTensorAddress(name, t.data)) return false;
  c.addresses[name] = reinterpret_cast<uintptr_t>(t.data);
  c.bound[name] = PyContext::Bound{t.owner, t.nbytes()};
  return true;
}

// Arrays bound by set_tensor_address must hold their tensor at the current shapes.
void check_bound_sizes(PyContext& c) {
  if (c.bound.empty()) return;
  const Engine& e = *c.engine->engine;
  for (int i = 0; i < e.getNbIOTensors(); ++i) {  // in index order: inputs first
    std::string name = e.getIOTensorName(i);
    auto it = c.bound.find(name);
    if (it == c.bound.end()) continue;
    const PyContext::Bound& b = it->second;
    Dims d = c.ctx->getTensorShape(name);
    bool known = true;
    size_t need = tensorTypeSize(c.engine->engine->getTensorDataType(name));
    for (int64_t x : d) {
      known = known && x >= 0;
      need *= static_cast<size_t>(std::max<int64_t>(x, 0));
    }
    if (known && b.bytes < need)
      raise(PyExc_ValueError, "'" + name + "': the array given to set_tensor_address holds " + std::to_string(b.bytes) +
                                  " bytes but the tensor needs " + std::to_string(need) + " at shape " + dimsToString(d));
  }
}

bool enqueue(PyContext& c, uintptr_t stream, bool wait) {
  check_bound_sizes(c);
  bool ok;
  {
    nb::gil_scoped_release release;
    ok = wait ? c.ctx->execute() : c.ctx->enqueue(reinterpret_cast<void*>(stream));
  }
  if (!c.output_allocators.empty()) rethrow_allocator_errors(c);
  return ok;
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
      .def("set_tensor_address", [](PyContext& c, const std::string& name, nb::handle memory) {
            if (PyLong_Check(memory.ptr())) return set_address(c, name, nb::cast<uintptr_t>(memory));
            return set_array(c, name, memory);
          }, nb::arg("name"), nb::arg("memory"),
           "Where a tensor's data is: an address (int) of host memory for a CPU engine (e.g. array.ctypes.data) or "
           "of device memory for a CUDA one (a host pointer is refused there), as TensorRT; or, kiln's own, the "
           "array itself: a CUDA tensor (PyTorch, CuPy, __dlpack__ or __cuda_array_interface__) for a CUDA "
           "engine, a numpy array for a CPU engine. An array is checked (dtype, C-contiguous, device; writable "
           "for outputs; TypeError/ValueError naming the tensor), kept alive while bound, and its size checked "
           "against the tensor's shape before each run. False (error logged) for a name that is no I/O tensor.")
      .def("get_tensor_address", [](PyContext& c, const std::string& name) {
            auto it = c.addresses.find(name);
            return it == c.addresses.end() ? uintptr_t(0) : it->second;
          }, nb::arg("name"), "The address last given by set_tensor_address (0 if none).")
      .def("execute_async_v3", [](PyContext& c, nb::handle stream) { return enqueue(c, stream_of(stream, "execute_async_v3"), false); },
           nb::arg("stream_handle"),
           "Runs on the stream: a cudaStream_t as int (0 is the legacy default stream) or a stream object "
           "(torch.cuda.Stream, cupy.cuda.Stream); CPU engines run synchronously. False (error logged) when an "
           "input shape or address is missing.")
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
      .def_prop_rw("profiler", [](PyContext& c) { return c.profiler.is_valid() ? c.profiler : nb::none(); },
          [](PyContext& c, nb::handle p) {
            Profiler* prof = nullptr;
            if (!p.is_none() && (!nb::try_cast<Profiler*>(p, prof) || !prof))
              raise(PyExc_TypeError, "profiler: expected an instance of kiln.Profiler or a subclass of kiln.IProfiler, got " + str_of(p.type()));
            c.ctx->setProfiler(prof);
            c.profiler = nb::borrow(p);
          }, nb::for_setter(nb::arg("profiler").none()),
          "An IProfiler (or trt.Profiler) told each layer's time after every run; None turns profiling off.")
      .def("set_output_allocator", [](PyContext& c, const std::string& name, nb::handle a) {
            OutputAllocator* alloc = nullptr;
            if (!a.is_none() && (!nb::try_cast<OutputAllocator*>(a, alloc) || !alloc))
              raise(PyExc_TypeError, "set_output_allocator('" + name + "'): expected a subclass of kiln.IOutputAllocator, got " + str_of(a.type()));
            if (!c.ctx->setOutputAllocator(name, alloc)) return false;
            if (a.is_none()) c.output_allocators.erase(name);
            else c.output_allocators[name] = nb::borrow(a);
            return true;
          }, nb::arg("tensor_name"), nb::arg("output_allocator").none(),
          "Gives an output's memory from an IOutputAllocator at each run instead of a fixed address (for "
          "outputs whose shape only the run tells). False (error logged) for a name that is no output. "
          "infer() uses allocators of its own for such outputs and replaces this one.")
      .def("get_output_allocator", [](PyContext& c, const std::string& name) {
            auto it = c.output_allocators.find(name);
            return it == c.output_allocators.end() ? nb::none() : it->second;
          }, nb::arg("tensor_name"), "The IOutputAllocator given by set_output_allocator, or None.")
      .def("infer", &infer, nb::arg("inputs"), nb::arg("stream") = nb::none(), nb::arg("outputs") = nb::none(),
           "kiln's own: runs on {input name: array} and returns {output name: array}.\n\n"
           "Arrays are numpy arrays or tensors with __dlpack__ / __cuda_array_interface__ (PyTorch, CuPy...), "
           "read in place (no copy). Each is checked (dtype, shape against the profile, C-contiguous, device) "
           "and a bad one raises TypeError/ValueError naming the tensor; the context stays usable.\n"
           "CPU engine: host arrays; outputs are new numpy arrays.\n"
           "CUDA engine, CUDA tensors: run in place on the tensors' stream (the framework's current stream, "
           "e.g. torch.cuda.current_stream(), or `stream`), outputs are new tensors of the same framework "
           "(torch.empty, cupy.empty; kiln memory with __dlpack__ otherwise), and infer() returns without "
           "waiting, as a PyTorch operation does.\n"
           "CUDA engine, numpy arrays: copied to device buffers the context keeps, run on the context's own "
           "stream (or `stream`), outputs copied back into new numpy arrays before returning.\n"
           "stream: an int cudaStream_t or a stream object (torch.cuda.Stream, cupy.cuda.Stream).\n"
           "outputs: {output name: array} to write into instead of new ones (checked as inputs are; a host "
           "array for a CUDA engine is filled by a copy). Outputs whose shape only the run tells (NonZero) "
           "always get new arrays. infer() sets every tensor address; earlier set_tensor_address calls are "
           "forgotten.")
      .def("__enter__", [](nb::handle self) { return nb::borrow(self); })
      .def("__exit__", [](nb::handle, nb::args) {});
}

}  // namespace kiln::python
