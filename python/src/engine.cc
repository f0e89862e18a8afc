// trt.IHostMemory (engine bytes with the buffer protocol), trt.Runtime and trt.ICudaEngine over
// kiln::Runtime and kiln::Engine, with TensorRT 8's binding-index names kept, deprecated.
#include <nanobind/stl/shared_ptr.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/unique_ptr.h>

#include "bindings.h"

namespace kiln::python {

namespace {

int host_memory_getbuffer(PyObject* self, Py_buffer* view, int flags) {
  HostMemory* m = nb::inst_ptr<HostMemory>(self);
  return PyBuffer_FillInfo(view, self, m->bytes.data(), static_cast<Py_ssize_t>(m->bytes.size()), 1, flags);
}
PyType_Slot host_memory_slots[] = {{Py_bf_getbuffer, reinterpret_cast<void*>(host_memory_getbuffer)}, {0, nullptr}};

struct PyRuntime {
  explicit PyRuntime(ILogger& l) : logger(l), runtime(l) {}
  ILogger& logger;
  Runtime runtime;
};

std::string tensor_name(const PyEngine& e, nb::handle name_or_index, const char* what) {
  std::string name;
  if (PyLong_Check(name_or_index.ptr())) {
    int i = nb::cast<int>(name_or_index);
    if (i < 0 || i >= e.engine->getNbIOTensors())
      raise(PyExc_IndexError, std::string(what) + ": tensor index " + std::to_string(i) + " does not exist (the engine has " +
                                  std::to_string(e.engine->getNbIOTensors()) + " I/O tensors)");
    name = e.engine->getIOTensorName(i);
  } else {
    name = nb::cast<std::string>(name_or_index);
  }
  if (e.engine->getTensorIOMode(name) == TensorIOMode::kNONE) {
    std::string names;
    for (int i = 0; i < e.engine->getNbIOTensors(); ++i) names += (i ? ", " : "") + e.engine->getIOTensorName(i);
    raise(PyExc_ValueError, std::string(what) + ": '" + name + "' is not an I/O tensor of the engine (" + names + ")");
  }
  return name;
}

void binding_deprecated(const char* old_name, const char* new_name) {
  warn_deprecated(std::string("ICudaEngine.") + old_name + " is deprecated (removed in TensorRT 10): use " + new_name);
}

std::unique_ptr<PyContext> create_context(PyEngine& e) {
  ErrorCapture capture;
  auto ctx = e.engine->createExecutionContext();
  if (!ctx) return nullptr;
  auto c = std::make_unique<PyContext>();
  c->ctx = std::move(ctx);
  c->engine = &e;
  if (e.backend == "cuda") c->device = current_cuda_device();
  return c;
}

}  // namespace

void bind_engine(nb::module_& m) {
  nb::class_<HostMemory>(m, "IHostMemory", nb::type_slots(host_memory_slots),
                         "Serialized engine bytes; supports the buffer protocol (write it to a file, bytes(it)).")
      .def_prop_ro("nbytes", [](const HostMemory& h) { return h.bytes.size(); })
      .def_prop_ro("dtype", [](const HostMemory&) { return TensorType::kUINT8; })
      .def("__len__", [](const HostMemory& h) { return h.bytes.size(); });

  nb::enum_<TensorIOMode>(m, "TensorIOMode", nb::is_arithmetic())
      .value("NONE", TensorIOMode::kNONE).value("INPUT", TensorIOMode::kINPUT).value("OUTPUT", TensorIOMode::kOUTPUT);

  nb::class_<PyRuntime>(m, "Runtime", "Loads engines.")
      .def(nb::init<ILogger&>(), nb::arg("logger"), nb::keep_alive<1, 2>())
      .def("deserialize_cuda_engine", [](PyRuntime& r, nb::handle serialized) -> std::unique_ptr<PyEngine> {
            std::shared_ptr<HostMemory> bytes;
            if (!nb::try_cast<std::shared_ptr<HostMemory>>(serialized, bytes) || !bytes) {
              BufferView view(serialized, "deserialize_cuda_engine");
              bytes = std::make_shared<HostMemory>();
              auto* p = static_cast<const uint8_t*>(view.data());
              bytes->bytes.assign(p, p + view.size());
            }
            std::unique_ptr<Engine> engine;
            {
              nb::gil_scoped_release release;
              engine = r.runtime.deserialize(bytes->bytes.data(), bytes->bytes.size());
            }
            if (!engine) return nullptr;
            auto e = std::make_unique<PyEngine>();
            e->backend = engine->getBackend();
            e->engine = std::move(engine);
            e->bytes = std::move(bytes);
            e->logger = &r.logger;
            return e;
          }, nb::arg("serialized_engine"), nb::keep_alive<0, 1>(),
          "Loads an engine from its bytes (IHostMemory, bytes, ...); None if they are no valid engine (the "
          "reason goes to the logger).")
      .def("__enter__", [](nb::handle self) { return nb::borrow(self); })
      .def("__exit__", [](nb::handle, nb::args) {});

  nb::class_<PyEngine>(m, "ICudaEngine", "An optimized network; create_execution_context() runs it.")
      .def_prop_ro("num_io_tensors", [](const PyEngine& e) { return e.engine->getNbIOTensors(); })
      .def("get_tensor_name", [](const PyEngine& e, int i) {
            if (i < 0 || i >= e.engine->getNbIOTensors())
              raise(PyExc_IndexError, "get_tensor_name: index " + std::to_string(i) + " does not exist (the engine has " +
                                          std::to_string(e.engine->getNbIOTensors()) + " I/O tensors)");
            return e.engine->getIOTensorName(i);
          }, nb::arg("index"), "Name of I/O tensor i (inputs first, in the model's order).")
      .def("get_tensor_mode", [](const PyEngine& e, const std::string& name) { return e.engine->getTensorIOMode(name); }, nb::arg("name"),
           "TensorIOMode.INPUT, OUTPUT, or NONE for a name that is no I/O tensor.")
      .def("get_tensor_dtype", [](const PyEngine& e, nb::handle n) { return e.engine->getTensorDataType(tensor_name(e, n, "get_tensor_dtype")); }, nb::arg("name"),
           "DataType of an I/O tensor (by name or index); kiln.nptype gives numpy's.")
      .def("get_tensor_shape", [](const PyEngine& e, nb::handle n) { return to_tuple(e.engine->getTensorShape(tensor_name(e, n, "get_tensor_shape"))); },
           nb::arg("name"), "Dims as built (-1 where dynamic); the context's get_tensor_shape gives run-time shapes.")
      .def("get_tensor_profile_shape", [](const PyEngine& e, const std::string& name, int profile) {
            if (profile < 0 || profile >= e.engine->getNbOptimizationProfiles())
              raise(PyExc_IndexError, "optimization profile " + std::to_string(profile) + " does not exist (the engine has " +
                                          std::to_string(e.engine->getNbOptimizationProfiles()) + ")");
            if (e.engine->getTensorIOMode(name) != TensorIOMode::kINPUT)
              raise(PyExc_ValueError, "get_tensor_profile_shape: '" + name + "' is not an input of the engine");
            nb::list l;
            for (int k = 0; k < 3; ++k) l.append(to_tuple(e.engine->getProfileShape(name, profile, static_cast<OptProfileSelector>(k))));
            return l;
          }, nb::arg("name"), nb::arg("profile_index"), "[min, opt, max] of an input in a profile.")
      .def_prop_ro("num_optimization_profiles", [](const PyEngine& e) { return e.engine->getNbOptimizationProfiles(); })
      .def_prop_ro("device_memory_size", [](const PyEngine& e) { return e.engine->getDeviceMemorySize(); })
      .def_prop_ro("num_layers", [](const PyEngine& e) { return e.engine->getNbLayers(); })
      .def_prop_ro("backend", [](const PyEngine& e) { return e.backend; }, "kiln's own: 'cpu' or 'cuda'.")
      .def("get_layer_info", [](const PyEngine& e, int i) {
            if (i < 0 || i >= e.engine->getNbLayers()) raise(PyExc_IndexError, "layer " + std::to_string(i) + " does not exist");
            LayerInfo l = e.engine->getLayerInformation(i);
            nb::dict d;
            d["name"] = l.name; d["op_type"] = l.op_type; d["tactic"] = l.tactic; d["precision"] = l.precision;
            nb::list ins, outs;
            for (auto& s : l.inputs) ins.append(s);
            for (auto& s : l.outputs) outs.append(s);
            d["inputs"] = ins; d["outputs"] = outs;
            return d;
          }, nb::arg("index"), "kiln's own: a layer's name, op_type, tactic (kernel), precision, inputs, outputs.")
      .def("serialize", [](const PyEngine& e) { return e.bytes; }, "The engine's bytes (IHostMemory).")
      .def("create_execution_context", &create_context, nb::keep_alive<0, 1>(),
           "A context with its own activation memory and input shapes; any number may run at once.")
      // TensorRT 8's binding names (removed in 10): bindings are the I/O tensors in index order.
      .def_prop_ro("num_bindings", [](const PyEngine& e) { binding_deprecated("num_bindings", "num_io_tensors"); return e.engine->getNbIOTensors(); })
      .def("__len__", [](const PyEngine& e) { binding_deprecated("__len__", "num_io_tensors"); return e.engine->getNbIOTensors(); })
      .def("__getitem__", [](const PyEngine& e, int i) {
            binding_deprecated("__getitem__", "get_tensor_name");
            return tensor_name(e, nb::int_(i), "__getitem__");
          })
      .def("get_binding_name", [](const PyEngine& e, int i) { binding_deprecated("get_binding_name", "get_tensor_name"); return tensor_name(e, nb::int_(i), "get_binding_name"); }, "Deprecated (TensorRT 10): get_tensor_name.")
      .def("get_binding_index", [](const PyEngine& e, const std::string& name) {
            binding_deprecated("get_binding_index", "tensor names");
            for (int i = 0; i < e.engine->getNbIOTensors(); ++i) if (e.engine->getIOTensorName(i) == name) return i;
            return -1;
          })
      .def("binding_is_input", [](const PyEngine& e, nb::handle b) {
            binding_deprecated("binding_is_input", "get_tensor_mode");
            return e.engine->getTensorIOMode(tensor_name(e, b, "binding_is_input")) == TensorIOMode::kINPUT;
          })
      .def("get_binding_shape", [](const PyEngine& e, nb::handle b) {
            binding_deprecated("get_binding_shape", "get_tensor_shape");
            return to_tuple(e.engine->getTensorShape(tensor_name(e, b, "get_binding_shape")));
          })
      .def("get_binding_dtype", [](const PyEngine& e, nb::handle b) {
            binding_deprecated("get_binding_dtype", "get_tensor_dtype");
            return e.engine->getTensorDataType(tensor_name(e, b, "get_binding_dtype"));
          })
      .def_prop_ro("max_batch_size", [](const PyEngine&) { binding_deprecated("max_batch_size", "optimization profiles"); return 1; })
      .def("__enter__", [](nb::handle self) { return nb::borrow(self); })
      .def("__exit__", [](nb::handle, nb::args) {});
}

}  // namespace kiln::python
