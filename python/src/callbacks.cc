// TensorRT's Python callback interfaces over kiln's C++ ones: IProgressMonitor (build phases;
// config.progress_monitor), IProfiler and Profiler (per-layer times; context.profiler) and
// IOutputAllocator (memory for outputs whose size only the run tells; context.set_output_allocator).
// The library calls them with the GIL released, so each call takes the GIL. An exception from a
// monitor or allocator is kept and raised when the library call returns (the library sees a
// cancelled build or a failed run); one from a profiler is reported as unraisable, as a logger's.
// Without a monitor of the user's, builds still report their phases through the logger.
#include <nanobind/stl/string.h>
#include <nanobind/trampoline.h>

#include <cstdio>

#include "bindings.h"

namespace kiln::python {

void PendingError::keep(const char* where) noexcept {
  try {
    throw;
  } catch (nb::python_error& e) {
    if (!error_) error_ = std::make_unique<nb::python_error>(std::move(e));
  } catch (const std::exception& e) {
    if (!error_) {
      PyErr_SetString(PyExc_RuntimeError, (std::string(where) + ": " + e.what()).c_str());
      error_ = std::make_unique<nb::python_error>();
    }
  } catch (...) {
  }
}

void PendingError::rethrow() {
  if (auto e = std::move(error_)) throw nb::python_error(std::move(*e));
}

namespace {

class PyProgressMonitor : public ProgressMonitor, public PendingError {
 public:
  NB_TRAMPOLINE(ProgressMonitor, 3);
  void phaseStart(const char* phase, const char* parent, int steps) noexcept override {
    nb::gil_scoped_acquire gil;
    try {
      nb_trampoline.base().attr("phase_start")(phase, parent ? nb::object(nb::str(parent)) : nb::none(), steps);
    } catch (...) {
      keep("IProgressMonitor.phase_start");
    }
  }
  bool stepComplete(const char* phase, int step) noexcept override {
    nb::gil_scoped_acquire gil;
    try {
      nb::object r = nb_trampoline.base().attr("step_complete")(phase, step);
      return r.is_none() || nb::cast<bool>(r);  // None (no return statement) continues
    } catch (...) {
      keep("IProgressMonitor.step_complete");
      return false;  // cancels the build; the exception is raised when it returns
    }
  }
  void phaseFinish(const char* phase) noexcept override {
    nb::gil_scoped_acquire gil;
    try {
      nb_trampoline.base().attr("phase_finish")(phase);
    } catch (...) {
      keep("IProgressMonitor.phase_finish");
    }
  }
};

// Calls a Python profiler's report_layer_time; an exception is reported as unraisable.
void report_layer_time(nb::handle self, const char* layer, float ms) noexcept {
  nb::gil_scoped_acquire gil;
  try {
    self.attr("report_layer_time")(layer, ms);
  } catch (nb::python_error& e) {
    e.discard_as_unraisable("kiln: the Python profiler's report_layer_time()");
  } catch (...) {
  }
}

class PyProfiler : public Profiler {
 public:
  NB_TRAMPOLINE(Profiler, 1);
  void reportLayerTime(const char* layer, float ms) noexcept override { report_layer_time(nb_trampoline.base(), layer, ms); }
};

// trt.Profiler: prints each layer's time to stdout.
class PrintingProfiler : public Profiler {
 public:
  void reportLayerTime(const char* layer, float ms) noexcept override {
    nb::gil_scoped_acquire gil;
    std::printf("%s: %.6f ms\n", layer, static_cast<double>(ms));
    std::fflush(stdout);
  }
};

class PyPrintingProfiler : public PrintingProfiler {
 public:
  NB_TRAMPOLINE(PrintingProfiler, 1);
  void reportLayerTime(const char* layer, float ms) noexcept override { report_layer_time(nb_trampoline.base(), layer, ms); }
};

class PyOutputAllocator : public OutputAllocator, public PendingError {
 public:
  NB_TRAMPOLINE(OutputAllocator, 2);
  void* reallocateOutput(const char* name, void* current, uint64_t size, uint64_t alignment) noexcept override {
    nb::gil_scoped_acquire gil;
    try {
      nb::handle self = nb_trampoline.base();
      auto cur = reinterpret_cast<uintptr_t>(current);
      nb::object r = nb::hasattr(self, "reallocate_output_async")
                         ? self.attr("reallocate_output_async")(name, cur, size, alignment, 0)
                         : self.attr("reallocate_output")(name, cur, size, alignment);
      if (r.is_none()) return nullptr;
      if (!PyLong_Check(r.ptr()))
        raise(PyExc_TypeError, std::string("IOutputAllocator.reallocate_output for '") + name +
                                   "' must return an address (int), got " + str_of(r));
      return reinterpret_cast<void*>(nb::cast<uintptr_t>(r));
    } catch (...) {
      keep("IOutputAllocator.reallocate_output");
      return nullptr;
    }
  }
  void notifyShape(const char* name, const Dims& dims) noexcept override {
    nb::gil_scoped_acquire gil;
    try {
      nb_trampoline.base().attr("notify_shape")(name, to_tuple(dims));
    } catch (...) {
      keep("IOutputAllocator.notify_shape");
    }
  }
};

}  // namespace

void LoggerProgress::phaseStart(const char* phase, const char* parent, int steps) noexcept {
  steps_ = steps;
  decile_ = 0;
  logger_.log(Logger::Severity::kINFO,
              ("Build phase: " + std::string(phase) + " (" + std::to_string(steps) + (steps == 1 ? " step)" : " steps)")).c_str());
  if (next_) next_->phaseStart(phase, parent, steps);
}

bool LoggerProgress::stepComplete(const char* phase, int step) noexcept {
  int done = step + 1;
  if (steps_ >= 20 && done * 10 / steps_ > decile_) {
    decile_ = done * 10 / steps_;
    logger_.log(Logger::Severity::kVERBOSE,
                (std::string(phase) + ": " + std::to_string(done) + "/" + std::to_string(steps_)).c_str());
  }
  return next_ ? next_->stepComplete(phase, step) : true;
}

void LoggerProgress::phaseFinish(const char* phase) noexcept {
  logger_.log(Logger::Severity::kINFO, ("Build phase done: " + std::string(phase)).c_str());
  if (next_) next_->phaseFinish(phase);
}

ProgressMonitor* progress_monitor_from(nb::handle obj) {
  ProgressMonitor* m = nullptr;
  if (!nb::try_cast<ProgressMonitor*>(obj, m) || !m)
    raise(PyExc_TypeError, "progress_monitor: expected an instance of a subclass of kiln.IProgressMonitor, got " +
                               str_of(nb::handle(reinterpret_cast<PyObject*>(Py_TYPE(obj.ptr())))));
  return m;
}

void rethrow_monitor_error(ProgressMonitor* m) {
  if (auto* p = dynamic_cast<PyProgressMonitor*>(m)) p->rethrow();
}

void rethrow_allocator_errors(PyContext& c) {
  for (auto& [name, obj] : c.output_allocators) {
    OutputAllocator* a = nullptr;
    if (nb::try_cast<OutputAllocator*>(obj, a) && a)
      if (auto* p = dynamic_cast<PyOutputAllocator*>(a)) p->rethrow();
  }
}

void bind_callbacks(nb::module_& m) {
  nb::class_<ProgressMonitor, PyProgressMonitor>(m, "IProgressMonitor",
      "Build progress, as TensorRT's IProgressMonitor: subclass it, define phase_start(phase_name, "
      "parent_phase, num_steps), step_complete(phase_name, step) -> bool (False cancels the build) and "
      "phase_finish(phase_name), and set it as config.progress_monitor. kiln's phases: 'Graph "
      "optimization' (1 step) and 'Tactic selection' (one step per layer). An exception in a method "
      "cancels the build and is raised from build_serialized_network. Without one, the phases go to "
      "the builder's logger (INFO; steps at VERBOSE).")
      .def(nb::init<>());

  nb::class_<Profiler, PyProfiler>(m, "IProfiler",
      "Per-layer times, as TensorRT's IProfiler: subclass it, define report_layer_time(layer_name, ms) "
      "and set it as context.profiler; it is called for every layer after each run (CUDA engines: "
      "times from CUDA events around each layer).")
      .def(nb::init<>());

  nb::class_<PrintingProfiler, Profiler, PyPrintingProfiler>(m, "Profiler",
      "TensorRT's trt.Profiler: prints 'layer: ms' to stdout for each layer after each run.")
      .def(nb::init<>())
      .def("report_layer_time", [](PrintingProfiler& p, const std::string& layer, float ms) {
            p.PrintingProfiler::reportLayerTime(layer.c_str(), ms);
          }, nb::arg("layer_name"), nb::arg("ms"), "Prints the layer's time.");

  nb::class_<OutputAllocator, PyOutputAllocator>(m, "IOutputAllocator",
      "Memory for an output whose size only the run tells (e.g. NonZero's), as TensorRT's "
      "IOutputAllocator: subclass it, define reallocate_output(tensor_name, memory, size, alignment) -> "
      "address (int; host memory for a CPU engine, device memory for a CUDA one; `memory` if it is large "
      "enough; reallocate_output_async(..., stream) is called instead when defined) and "
      "notify_shape(tensor_name, shape), and give it with context.set_output_allocator(name, allocator). "
      "An exception, or None, fails the run; the exception is raised from the execute call.")
      .def(nb::init<>());
}

}  // namespace kiln::python
