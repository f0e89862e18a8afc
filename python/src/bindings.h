// kiln's Python module (`kiln._kiln`, re-exported by `kiln`): nanobind bindings over the public
// C++ API in include/kiln, with TensorRT's Python names. Nothing internal is included here.
// One file per group: logger.cc, network.cc (Builder, Network, OnnxParser, BuilderConfig,
// OptimizationProfile), calibrator.cc, engine.cc (HostMemory, Runtime, Engine),
// context.cc (ExecutionContext), infer.cc (context.infer and its device memory).
#pragma once
#include <nanobind/nanobind.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kiln/kiln.h"

namespace nb = nanobind;

namespace kiln::python {

// ---- logging (logger.cc) ----

// Every logger the library is given. log() records errors for the calling thread's ErrorCapture,
// then hands the message to emit() (Python's `log(severity, msg)`) with the GIL held; an
// exception from a Python logger is reported as unraisable, never thrown into the library.
class ILogger : public Logger {
 public:
  void log(Severity severity, const char* message) noexcept final;
  virtual void emit(Severity severity, const char* message) = 0;
};

// TensorRT's trt.Logger: prints messages up to min_severity to stderr as "[E] ...".
class DefaultLogger : public ILogger {
 public:
  explicit DefaultLogger(Severity min = Severity::kWARNING) : min_severity(min) {}
  void emit(Severity severity, const char* message) override;
  Severity min_severity;
};

// Collects the errors logged on this thread while it lives, so a failing call can raise a
// Python exception that says why (the logger still receives them).
class ErrorCapture {
 public:
  ErrorCapture();
  ~ErrorCapture();
  ErrorCapture(const ErrorCapture&) = delete;
  ErrorCapture& operator=(const ErrorCapture&) = delete;
  static void record(Logger::Severity severity, const char* message);
  std::string text() const;  // the errors joined by "; ", or "no reason was logged"

 private:
  std::vector<std::string> errors_;
  ErrorCapture* prev_;
};

// Raises a Python exception of `type` (PyExc_ValueError, ...) with `message`.
[[noreturn]] void raise(PyObject* type, const std::string& message);
// A DeprecationWarning at the Python caller's line (TensorRT names that 10/11 removed).
void warn_deprecated(const std::string& message);

// ---- shared helpers ----

nb::tuple to_tuple(const Dims& d);
std::string str_of(nb::handle h);  // str(h)
Dims to_dims(nb::handle seq, const char* what);  // any sequence of ints (tuple, list, Dims-like)

// A read-only view of any object with the buffer protocol (bytes, bytearray, memoryview, numpy).
class BufferView {
 public:
  explicit BufferView(nb::handle obj, const char* what);
  ~BufferView() { PyBuffer_Release(&view_); }
  BufferView(const BufferView&) = delete;
  BufferView& operator=(const BufferView&) = delete;
  const void* data() const { return view_.buf; }
  size_t size() const { return static_cast<size_t>(view_.len); }

 private:
  Py_buffer view_{};
};

// Serialized engine bytes with the buffer protocol (TensorRT's IHostMemory).
struct HostMemory {
  std::vector<uint8_t> bytes;
};

// Engine with what the Python side adds: the bytes it was loaded from (for serialize()) and
// its backend ("cpu" or "cuda").
struct PyEngine {
  std::unique_ptr<Engine> engine;
  ILogger* logger = nullptr;  // the runtime's, kept alive through it (keep_alive)
  std::shared_ptr<HostMemory> bytes;
  std::string backend;
};

// Device buffers, stream and per-output allocators of one context for infer() (infer.cc).
struct InferState;
void destroy_infer_state(InferState* s);
struct InferStateDeleter {
  void operator()(InferState* s) const { destroy_infer_state(s); }
};

struct PyContext {
  std::unique_ptr<ExecutionContext> ctx;
  PyEngine* engine = nullptr;                 // kept alive by the Python object (keep_alive)
  std::map<std::string, Dims> input_shapes;   // as last set, so infer() skips unchanged ones
  std::map<std::string, uintptr_t> addresses; // as set by set_tensor_address
  std::unique_ptr<InferState, InferStateDeleter> infer;
  bool set_input_shape(const std::string& name, const Dims& dims);  // through the cache
};

// The C++ side of a Python IInt8Calibrator subclass (TypeError for anything else), and the
// exception its Python methods raised while the library called them, re-raised (calibrator.cc).
Int8Calibrator* calibrator_from(nb::handle obj);
void rethrow_calibrator_error(Int8Calibrator* c);

// True where the CUDA runtime reports a usable device (false in a CPU-only build).
bool cuda_device_available();
// For set_tensor_address on a CUDA engine: empty if `ptr` is device-accessible, else why not.
std::string check_device_pointer(uintptr_t ptr);

nb::dict infer(PyContext& c, nb::handle feed, nb::handle stream);

void bind_logger(nb::module_& m);
void bind_network(nb::module_& m);
void bind_calibrator(nb::module_& m);
void bind_engine(nb::module_& m);
void bind_context(nb::module_& m);

}  // namespace kiln::python
