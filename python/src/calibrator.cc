// trt.IInt8Calibrator: Python subclasses implement kiln::Int8Calibrator (get_batch_size,
// get_batch(names), read_calibration_cache, write_calibration_cache). The algorithm-specific
// classes (IInt8EntropyCalibrator2, IInt8MinMaxCalibrator, ...) are Python subclasses in
// kiln/__init__.py. An exception raised by a Python method is kept and re-raised when the call
// into the library returns (the library itself sees a failed call, never an exception).
// The builder calls them when it calibrates (BuilderFlag.INT8 with int8_calibrator set);
// `_drive_calibrator` (the tests' hook) makes the same calls.
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>
#include <nanobind/trampoline.h>

#include "bindings.h"

namespace kiln::python {

namespace {

class PyCalibrator : public Int8Calibrator {
 public:
  NB_TRAMPOLINE(Int8Calibrator, 5);

  int getBatchSize() const noexcept override {
    nb::gil_scoped_acquire gil;
    try {
      return nb::cast<int>(nb_trampoline.base().attr("get_batch_size")());
    } catch (...) {
      keep_error("get_batch_size");
      return 0;
    }
  }

  bool getBatch(void* bindings[], const char* names[], int n) noexcept override {
    nb::gil_scoped_acquire gil;
    try {
      batch_refs_.clear();
      batch_objs_.clear();
      nb::list py_names;
      for (int i = 0; i < n; ++i) py_names.append(nb::str(names[i]));
      nb::object r = nb_trampoline.base().attr("get_batch")(py_names);
      if (r.is_none() || nb::len(r) == 0) return false;  // no more batches
      if (nb::len(r) != static_cast<size_t>(n))
        raise(PyExc_ValueError, "get_batch returned " + std::to_string(nb::len(r)) + " items for " +
                                    std::to_string(n) + " inputs (one pointer or array per name)");
      for (int i = 0; i < n; ++i) bindings[i] = pointer_of(r[i], names[i]);
      return true;
    } catch (...) {
      keep_error("get_batch");
      return false;
    }
  }

  // get_algorithm() of the Python class (IInt8MinMaxCalibrator, ...); entropy 2 without one.
  CalibrationAlgoType getAlgorithm() noexcept override {
    nb::gil_scoped_acquire gil;
    try {
      nb::handle self = nb_trampoline.base();
      if (nb::hasattr(self, "get_algorithm"))
        return static_cast<CalibrationAlgoType>(nb::cast<int>(self.attr("get_algorithm")()));
    } catch (...) {
      keep_error("get_algorithm");
    }
    return CalibrationAlgoType::kENTROPY_CALIBRATION_2;
  }

  const void* readCalibrationCache(size_t& length) noexcept override {
    nb::gil_scoped_acquire gil;
    length = 0;
    try {
      nb::object r = nb_trampoline.base().attr("read_calibration_cache")();
      if (r.is_none()) return nullptr;
      BufferView view(r, "read_calibration_cache");
      cache_ = nb::bytes(view.data(), view.size());
      length = view.size();
      return length ? cache_.c_str() : nullptr;
    } catch (...) {
      keep_error("read_calibration_cache");
      return nullptr;
    }
  }

  void writeCalibrationCache(const void* cache, size_t length) noexcept override {
    nb::gil_scoped_acquire gil;
    try {
      nb_trampoline.base().attr("write_calibration_cache")(nb::bytes(cache, length));
    } catch (...) {
      keep_error("write_calibration_cache");
    }
  }

  // Raises the first exception a Python method raised since the last call.
  void rethrow_error() { pending_.rethrow(); }

 private:
  // An int is a pointer as it is; an array gives its data (the buffer protocol, or
  // __cuda_array_interface__ / data_ptr() for device tensors), kept alive until the next batch.
  void* pointer_of(nb::handle item, const char* name) {
    if (PyLong_Check(item.ptr())) return reinterpret_cast<void*>(nb::cast<uintptr_t>(item));
    if (nb::hasattr(item, "__cuda_array_interface__")) {
      batch_objs_.push_back(nb::borrow(item));
      return reinterpret_cast<void*>(nb::cast<uintptr_t>(item.attr("__cuda_array_interface__")["data"][0]));
    }
    if (PyObject_CheckBuffer(item.ptr())) {
      batch_refs_.push_back(std::make_unique<BufferView>(item, "get_batch"));
      return const_cast<void*>(batch_refs_.back()->data());
    }
    if (nb::hasattr(item, "data_ptr")) {
      batch_objs_.push_back(nb::borrow(item));
      return reinterpret_cast<void*>(nb::cast<uintptr_t>(item.attr("data_ptr")()));
    }
    raise(PyExc_TypeError, std::string("get_batch: the item for '") + name +
                               "' is neither a pointer (int) nor an array");
  }

  void keep_error(const char* method) const noexcept { pending_.keep((std::string("calibrator ") + method).c_str()); }

  mutable PendingError pending_;
  std::vector<std::unique_ptr<BufferView>> batch_refs_;
  std::vector<nb::object> batch_objs_;
  nb::bytes cache_;
};

}  // namespace

Int8Calibrator* calibrator_from(nb::handle obj) {
  Int8Calibrator* c = nullptr;
  if (!nb::try_cast<Int8Calibrator*>(obj, c) || !c)
    raise(PyExc_TypeError, "int8_calibrator: expected an instance of a subclass of kiln.IInt8Calibrator (e.g. "
                           "IInt8EntropyCalibrator2), got " + str_of(nb::handle(reinterpret_cast<PyObject*>(Py_TYPE(obj.ptr())))));
  return c;
}

void rethrow_calibrator_error(Int8Calibrator* c) {
  auto* py = dynamic_cast<PyCalibrator*>(c);
  if (!py) return;
  py->rethrow_error();
}

void bind_calibrator(nb::module_& m) {
  nb::class_<Int8Calibrator, PyCalibrator>(m, "IInt8Calibrator",
      "Base of INT8 calibrators: subclass one of IInt8EntropyCalibrator2, IInt8MinMaxCalibrator, "
      "IInt8EntropyCalibrator, IInt8LegacyCalibrator and define get_batch_size(), get_batch(names) "
      "(a pointer or an array per name, or None when done), read_calibration_cache() (bytes or None) "
      "and write_calibration_cache(cache). The builder calibrates on the CPU (get_batch gives host "
      "arrays) and records the scales; kiln has no INT8 kernels yet.")
      .def(nb::init<>());

  // The calls the builder makes, for the tests: batch size, every batch's pointers, cache read
  // and write; re-raises what the Python methods raised.
  m.def("_drive_calibrator", [](nb::handle obj, std::vector<std::string> names, nb::bytes to_write) {
    Int8Calibrator* c = calibrator_from(obj);
    nb::dict out;
    out["batch_size"] = c->getBatchSize();
    out["algorithm"] = static_cast<int>(c->getAlgorithm());
    nb::list batches;
    std::vector<const char*> cnames;
    for (auto& s : names) cnames.push_back(s.c_str());
    std::vector<void*> ptrs(names.size());
    for (int k = 0; k < 10000 && c->getBatch(ptrs.data(), cnames.data(), static_cast<int>(names.size())); ++k) {
      nb::list l;
      for (void* p : ptrs) l.append(reinterpret_cast<uintptr_t>(p));
      batches.append(l);
    }
    out["batches"] = batches;
    size_t n = 0;
    const void* cache = c->readCalibrationCache(n);
    out["cache"] = cache ? nb::object(nb::bytes(cache, n)) : nb::none();
    c->writeCalibrationCache(to_write.c_str(), to_write.size());
    rethrow_calibrator_error(c);
    return out;
  });
}

}  // namespace kiln::python
