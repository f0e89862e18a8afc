// kiln's Python module (`kiln._kiln`, re-exported by `kiln`): nanobind bindings over the public
// C++ API in include/kiln, with TensorRT's Python names. Nothing internal is included here.
// One file per group: logger.cc, network.cc (Builder, Network, OnnxParser, BuilderConfig,
// OptimizationProfile), calibrator.cc, engine.cc (HostMemory, Runtime, Engine),
// context.cc (ExecutionContext), infer.cc (context.infer and its device memory).
#pragma once
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>

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

// ---- callbacks (callbacks.cc) ----

// An exception raised by a Python callback the library called: kept (the first one) until the
// library call returns, then raised.
class PendingError {
 public:
  virtual ~PendingError() = default;
  void keep(const char* where) noexcept;  // inside a catch block
  void rethrow();

 private:
  std::unique_ptr<nb::python_error> error_;
};

// Build progress through a logger (INFO per phase, VERBOSE every 10% of a long phase), forwarding
// every call to the user's monitor, if any.
class LoggerProgress : public ProgressMonitor {
 public:
  LoggerProgress(Logger& logger, ProgressMonitor* next) : logger_(logger), next_(next) {}
  void phaseStart(const char* phase, const char* parent, int steps) noexcept override;
  bool stepComplete(const char* phase, int step) noexcept override;
  void phaseFinish(const char* phase) noexcept override;

 private:
  Logger& logger_;
  ProgressMonitor* next_;
  int steps_ = 0, decile_ = 0;
};

ProgressMonitor* progress_monitor_from(nb::handle obj);  // TypeError unless an IProgressMonitor
void rethrow_monitor_error(ProgressMonitor* m);

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

// ---- array and tensor arguments (tensor.cc) ----

enum class Where { kHost, kDevice, kBoth, kOther };  // kBoth: CUDA pinned or managed memory

// An array or tensor passed from Python, read zero-copy.
struct TensorArg {
  void* data = nullptr;
  Dims shape;
  std::vector<int64_t> strides;  // in elements; empty when C-contiguous by definition
  nb::dlpack::dtype dtype{};
  std::string dtype_text;        // for messages: the object's own dtype name if it has one
  Where where = Where::kHost;
  int device_type = 1;           // DLPack's
  int device_id = 0;             // -1: not told (__cuda_array_interface__)
  bool readonly = false;
  std::string framework;         // top-level module of the object's type: "torch", "cupy", "numpy"...
  bool has_producer_stream = false;  // a __cuda_array_interface__ v3 stream to wait for
  uintptr_t producer_stream = 0;
  nb::object owner;              // the object itself
  nb::ndarray<nb::ro> array;     // nanobind's view (DLPack or buffer protocol), when read so
  size_t nbytes() const;
  bool contiguous() const;
  std::string device_text() const;  // "cuda:0", "the host (cpu)"...
};

// The CUDA stream a run uses: the caller's (user), else the producer's current stream of the
// first CUDA tensor (PyTorch's, CuPy's, a __cuda_array_interface__'s), else the context's own.
struct StreamChoice {
  bool set = false;
  bool user = false;
  uintptr_t handle = 0;
  std::string framework;  // whose current stream `handle` is
};

// Reads an array/tensor argument zero-copy; `what` names it in errors ("infer: input 'x'").
// For a CUDA tensor through DLPack the producer is told the stream (`stream`, which the first
// CUDA tensor sets when unset). `writable`: the caller writes into it. TypeError for non-arrays.
TensorArg import_tensor(nb::handle obj, const std::string& what, bool writable, StreamChoice* stream);
bool is_tensor_like(nb::handle obj);
// A framework's current CUDA stream on a device ("torch", "cupy"), else 0 (legacy default).
uintptr_t producer_stream(const std::string& framework, int device_id);
// Raises (TypeError/ValueError naming `what`) unless the tensor has the engine tensor's dtype, is
// C-contiguous, has `shape` (when given), is writable (when asked), and is memory the engine's
// backend can use.
void check_tensor(const TensorArg& t, const std::string& what, TensorType want, bool cuda_engine, bool writable,
                  const Dims* shape);
nb::dlpack::dtype dlpack_dtype(TensorType t);
std::string dtype_text(nb::dlpack::dtype d);

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
  // Arrays given to set_tensor_address: kept alive while bound, and their size checked before a run.
  struct Bound {
    nb::object owner;
    size_t bytes = 0;
  };
  std::map<std::string, Bound> bound;
  int device = 0;                             // CUDA engines: the device current at creation
  nb::object profiler;                        // context.profiler, kept alive
  std::map<std::string, nb::object> output_allocators;  // set_output_allocator's, kept alive
  std::unique_ptr<InferState, InferStateDeleter> infer;
  bool set_input_shape(const std::string& name, const Dims& dims);  // through the cache
};

// The C++ side of a Python IInt8Calibrator subclass (TypeError for anything else), and the
// exception its Python methods raised while the library called them, re-raised (calibrator.cc).
Int8Calibrator* calibrator_from(nb::handle obj);
void rethrow_calibrator_error(Int8Calibrator* c);

// True where the CUDA runtime reports a usable device (false in a CPU-only build).
bool cuda_device_available();
// The CUDA devices present (0 in a CPU-only build); the calling thread's current device (kiln serve's
// placement: engines, contexts and runs of an instance on its device). Raises ValueError for a bad index.
int cuda_device_count();
void cuda_set_device(int device);
// For set_tensor_address on a CUDA engine: empty if `ptr` is device-accessible, else why not (host
// or freed memory); `device` (if given) receives the CUDA device of device memory.
std::string check_device_pointer(uintptr_t ptr, int* device = nullptr);

int current_cuda_device();  // 0 in a CPU-only build
bool is_device_memory(uintptr_t ptr);  // CUDA device memory (not pinned/managed); false without a GPU

nb::dict infer(PyContext& c, nb::handle feed, nb::handle stream, nb::handle outputs);
uintptr_t stream_of(nb::handle s, const char* what);

void rethrow_allocator_errors(PyContext& c);  // what a Python IOutputAllocator raised in the last run

void bind_logger(nb::module_& m);
void bind_callbacks(nb::module_& m);
void bind_network(nb::module_& m);
void bind_calibrator(nb::module_& m);
void bind_builtin_calibrators(nb::module_& m);  // builtin_calibrators.cc
void bind_engine(nb::module_& m);
void bind_context(nb::module_& m);

}  // namespace kiln::python
