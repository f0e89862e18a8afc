// context.infer({name: array}) -> {name: numpy array}: checks every array against the engine
// (name, dtype, layout, shape within the profile), then runs. CPU engines read the arrays in place
// and write into the new output arrays. CUDA engines copy the inputs into device buffers that the
// context keeps (grown when needed), run on the context's stream (or the caller's), and copy the
// outputs back before returning. Outputs whose size only the run tells (NonZero...) get their
// memory from an OutputAllocator. The GIL is released while the engine runs.
#include <nanobind/ndarray.h>
#include <nanobind/stl/string.h>

#include <cstdlib>
#include <cstring>

#include "bindings.h"
#ifdef KILN_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace kiln::python {

namespace {

#ifdef KILN_WITH_CUDA
void cuda_check(cudaError_t e, const std::string& what) {
  if (e != cudaSuccess) {
    cudaGetLastError();
    throw std::runtime_error(what + ": " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")");
  }
}
#endif

// Host (CPU engines) or device (CUDA engines) memory that grows to the largest size asked for.
struct Memory {
  Memory() = default;
  Memory(const Memory&) = delete;
  Memory& operator=(const Memory&) = delete;
  bool device = false;
  void* ptr = nullptr;
  size_t capacity = 0;
  ~Memory() { release(); }
  void release() {
#ifdef KILN_WITH_CUDA
    if (device && ptr) cudaFree(ptr);
#endif
    if (!device) std::free(ptr);
    ptr = nullptr;
    capacity = 0;
  }
  bool reserve(size_t bytes) {  // false when the allocation fails
    bytes = std::max<size_t>(bytes, 256);
    if (bytes <= capacity) return true;
    release();
#ifdef KILN_WITH_CUDA
    if (device) {
      if (cudaMalloc(&ptr, bytes) != cudaSuccess) { cudaGetLastError(); ptr = nullptr; return false; }
      capacity = bytes;
      return true;
    }
#endif
    ptr = std::aligned_alloc(256, (bytes + 255) / 256 * 256);
    capacity = ptr ? bytes : 0;
    return ptr != nullptr;
  }
  void* take() {  // hands host memory over (to a numpy array); the next run allocates anew
    void* p = ptr;
    ptr = nullptr;
    capacity = 0;
    return p;
  }
};

class GrowingAllocator : public OutputAllocator {
 public:
  explicit GrowingAllocator(bool device) { memory.device = device; }
  void* reallocateOutput(const char*, void*, uint64_t size, uint64_t) noexcept override {
    return memory.reserve(size) ? memory.ptr : nullptr;
  }
  void notifyShape(const char*, const Dims& d) noexcept override { dims = d; }
  Memory memory;
  Dims dims;
};

}  // namespace

struct InferState {
  struct Io {
    std::string name;
    nb::object key;  // the name as a Python str, for dict lookups
    TensorIOMode mode;
  };
  std::vector<Io> io;  // the engine's I/O tensors in index order
  bool cuda = false;
  void* stream = nullptr;  // the context's own cudaStream_t, made on first use
  void* event = nullptr;   // to order a __cuda_array_interface__ producer's stream before ours
  std::map<std::string, Memory> device;  // CUDA engines: one buffer per I/O tensor
  std::map<std::string, std::unique_ptr<GrowingAllocator>> allocators;
  ~InferState() {
#ifdef KILN_WITH_CUDA
    if (stream) cudaStreamDestroy(static_cast<cudaStream_t>(stream));
    if (event) cudaEventDestroy(static_cast<cudaEvent_t>(event));
#endif
  }
};

void destroy_infer_state(InferState* s) { delete s; }

bool cuda_device_available() {
#ifdef KILN_WITH_CUDA
  static const bool available = [] {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) { cudaGetLastError(); return false; }
    return n > 0;
  }();
  return available;
#else
  return false;
#endif
}

int cuda_device_count() {
#ifdef KILN_WITH_CUDA
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) { cudaGetLastError(); return 0; }
  return n;
#else
  return 0;
#endif
}

void cuda_set_device(int device) {
  const int n = cuda_device_count();
  if (device < 0 || device >= n)
    throw nb::value_error(("no CUDA device " + std::to_string(device) + " (" + std::to_string(n) + " found)").c_str());
#ifdef KILN_WITH_CUDA
  cuda_check(cudaSetDevice(device), "cudaSetDevice(" + std::to_string(device) + ")");
#endif
}

bool is_device_memory(uintptr_t ptr) {
#ifdef KILN_WITH_CUDA
  if (!cuda_device_available()) return false;
  cudaPointerAttributes a{};
  if (cudaPointerGetAttributes(&a, reinterpret_cast<void*>(ptr)) != cudaSuccess) { cudaGetLastError(); return false; }
  return a.type == cudaMemoryTypeDevice;
#else
  (void)ptr;
  return false;
#endif
}

int current_cuda_device() {
  int d = 0;
#ifdef KILN_WITH_CUDA
  if (cudaGetDevice(&d) != cudaSuccess) { cudaGetLastError(); d = 0; }
#endif
  return d;
}

std::string check_device_pointer(uintptr_t ptr, int* device) {
#ifdef KILN_WITH_CUDA
  cudaPointerAttributes a{};
  cudaError_t e = cudaPointerGetAttributes(&a, reinterpret_cast<void*>(ptr));
  if (e != cudaSuccess) {
    cudaGetLastError();
    return std::string("cannot check the pointer: ") + cudaGetErrorString(e);
  }
  if (a.type == cudaMemoryTypeUnregistered)
    return "the address is not device memory (host memory such as a numpy array's data, or freed device "
           "memory): a CUDA engine reads and writes device memory (cudaMalloc, a CUDA tensor's data_ptr()); "
           "context.infer() copies numpy arrays for you";
  if (a.type == cudaMemoryTypeHost && !a.devicePointer) return "pinned host memory that is not mapped to the device";
  if (device) *device = a.device;
#else
  (void)ptr;
  (void)device;
#endif
  return "";
}


namespace {

struct Input {
  std::string name;
  TensorArg t;
  bool copy = false;  // a host array for a CUDA engine: copied into a device buffer first
};

struct Output {
  std::string name;
  TensorType type;
  Dims dims;              // -1s until the run if data-dependent
  bool dynamic = false;
  bool device = false;    // a CUDA tensor, written in place (or, if dynamic, filled after the run)
  void* ptr = nullptr;    // where the engine writes a static output (CPU: host memory; CUDA: device)
  void* copy_to = nullptr;  // CUDA engines: host memory the output is copied back into
  void* host = nullptr;   // host memory owned until handed to numpy
  size_t bytes = 0;
  TensorArg user;         // the caller's array (outputs=), if any
  nb::object object;      // what infer() returns for it
  nb::handle key;         // its name as a Python str
};

std::string names_of(const Engine& e, TensorIOMode mode) {
  std::string s;
  for (int i = 0; i < e.getNbIOTensors(); ++i)
    if (e.getTensorIOMode(e.getIOTensorName(i)) == mode) s += (s.empty() ? "'" : ", '") + e.getIOTensorName(i) + "'";
  return s;
}

size_t nbytes_of(const Dims& d, TensorType t) {
  size_t n = tensorTypeSize(t);
  for (int64_t x : d) n *= static_cast<size_t>(x);
  return n;
}

const char* framework_dtype(TensorType t) {
  switch (t) {
    case TensorType::kFLOAT: return "float32";
    case TensorType::kHALF: return "float16";
    case TensorType::kDOUBLE: return "float64";
    case TensorType::kBF16: return "bfloat16";
    case TensorType::kINT8: return "int8";
    case TensorType::kINT16: return "int16";
    case TensorType::kINT32: return "int32";
    case TensorType::kINT64: return "int64";
    case TensorType::kUINT8: return "uint8";
    case TensorType::kUINT16: return "uint16";
    case TensorType::kUINT32: return "uint32";
    case TensorType::kUINT64: return "uint64";
    case TensorType::kBOOL: return "bool";
  }
  return "uint8";
}

// A new CUDA tensor of the inputs' framework for an output: torch.empty / cupy.empty (their
// caching allocators), else device memory of kiln's own with DLPack (__dlpack__).
nb::object new_device_tensor(const std::string& framework, const std::string& name, const Dims& dims, TensorType type,
                             int device, void** ptr) {
  nb::list shape;
  for (int64_t x : dims) shape.append(x);
  if (framework == "torch") {
    static PyObject* torch = nb::module_::import_("torch").release().ptr();
    nb::handle t(torch);
    nb::object out = t.attr("empty")(nb::tuple(shape), nb::arg("dtype") = t.attr(framework_dtype(type)),
                                     nb::arg("device") = t.attr("device")("cuda", device));
    *ptr = reinterpret_cast<void*>(nb::cast<uintptr_t>(out.attr("data_ptr")()));
    return out;
  }
  if (framework == "cupy") {
    if (type == TensorType::kBF16) raise(PyExc_NotImplementedError, "infer: CuPy has no bfloat16 for output '" + name + "'");
    nb::object out = nb::module_::import_("cupy").attr("empty")(nb::tuple(shape), nb::arg("dtype") = framework_dtype(type));
    *ptr = reinterpret_cast<void*>(nb::cast<uintptr_t>(out.attr("data").attr("ptr")));
    return out;
  }
#ifdef KILN_WITH_CUDA
  size_t bytes = std::max<size_t>(nbytes_of(dims, type), 1);
  void* p = nullptr;
  if (cudaMalloc(&p, bytes) != cudaSuccess) {
    cudaGetLastError();
    raise(PyExc_MemoryError, "infer: cudaMalloc of " + std::to_string(bytes) + " bytes for output '" + name + "' failed");
  }
  nb::capsule owner(p, [](void* q) noexcept { cudaFree(q); });
  std::vector<size_t> sh(dims.begin(), dims.end());
  nb::ndarray<nb::array_api> array(p, sh.size(), sh.data(), owner, nullptr, dlpack_dtype(type), nb::device::cuda::value, device);
  *ptr = p;
  return array.cast();
#else
  (void)device;
  raise(PyExc_RuntimeError, "infer: this build of kiln has no CUDA support (output '" + name + "')");
#endif
}

nb::object new_host_array(Output& o) {
  std::vector<size_t> shape(o.dims.begin(), o.dims.end());
  nb::capsule owner(o.host, [](void* p) noexcept { std::free(p); });
  o.host = nullptr;
  nb::ndarray<nb::numpy> array(owner.data(), shape.size(), shape.data(), owner, nullptr, dlpack_dtype(o.type));
  return array.cast();
}

#ifdef KILN_WITH_CUDA
// Orders the work of a __cuda_array_interface__ producer's stream before `stream`.
void wait_for_producer(InferState& st, const TensorArg& t, cudaStream_t stream) {
  if (!t.has_producer_stream || reinterpret_cast<cudaStream_t>(t.producer_stream) == stream) return;
  if (!st.event) cuda_check(cudaEventCreateWithFlags(reinterpret_cast<cudaEvent_t*>(&st.event), cudaEventDisableTiming), "cudaEventCreate");
  auto ev = static_cast<cudaEvent_t>(st.event);
  cuda_check(cudaEventRecord(ev, reinterpret_cast<cudaStream_t>(t.producer_stream)), "waiting for the stream of the array's producer");
  cuda_check(cudaStreamWaitEvent(stream, ev, 0), "waiting for the stream of the array's producer");
}
#endif

// Runs with the GIL released; a non-empty return is the error.
std::string run(PyContext& c, std::vector<Input>& ins, std::vector<Output>& outs, uintptr_t stream_handle, bool sync) {
  InferState& st = *c.infer;
  ExecutionContext& ctx = *c.ctx;
  ErrorCapture capture;
  auto set = [&](const std::string& name, void* p) {
    if (!ctx.setTensorAddress(name, p)) throw std::runtime_error(capture.text());
  };
  try {
    if (!st.cuda) {
      for (auto& in : ins) set(in.name, in.t.data);
      for (auto& o : outs) if (!o.dynamic) set(o.name, o.ptr);
      if (!ctx.execute()) return capture.text();
      return "";
    }
#ifdef KILN_WITH_CUDA
    auto stream = reinterpret_cast<cudaStream_t>(stream_handle);
    auto buffer = [&](const std::string& name, size_t bytes) {
      Memory& m = st.device[name];
      m.device = true;
      if (!m.reserve(bytes)) throw std::runtime_error("cudaMalloc of " + std::to_string(bytes) + " bytes for '" + name + "' failed");
      return m.ptr;
    };
    for (auto& in : ins) {
      void* p = in.t.data;
      size_t bytes = in.t.nbytes();
      if (in.copy) {
        p = buffer(in.name, bytes);
        if (bytes) cuda_check(cudaMemcpyAsync(p, in.t.data, bytes, cudaMemcpyHostToDevice, stream), "copying input '" + in.name + "' to the device");
      }
      wait_for_producer(st, in.t, stream);
      set(in.name, p);
    }
    for (auto& o : outs) {
      if (o.dynamic) continue;
      if (o.copy_to) o.ptr = buffer(o.name, o.bytes);
      wait_for_producer(st, o.user, stream);
      set(o.name, o.ptr);
    }
    if (!ctx.enqueue(stream)) {
      cudaStreamSynchronize(stream);
      return capture.text();
    }
    for (auto& o : outs) {
      if (o.dynamic) {
        o.dims = st.allocators[o.name]->dims;
        o.bytes = nbytes_of(o.dims, o.type);
        if (o.device) continue;  // copied into a new tensor once the GIL is back
        o.host = std::malloc(std::max<size_t>(o.bytes, 1));
        if (!o.host) return "out of host memory for output '" + o.name + "'";
        o.copy_to = o.host;
        if (o.bytes) cuda_check(cudaMemcpyAsync(o.host, st.allocators[o.name]->memory.ptr, o.bytes, cudaMemcpyDeviceToHost, stream), "copying output '" + o.name + "' to the host");
      } else if (o.copy_to && o.bytes) {
        cuda_check(cudaMemcpyAsync(o.copy_to, o.ptr, o.bytes, cudaMemcpyDeviceToHost, stream), "copying output '" + o.name + "' to the host");
      }
    }
    if (sync) cuda_check(cudaStreamSynchronize(stream), "running the engine");
    return "";
#else
    (void)stream_handle;
    (void)sync;
    return "this build of kiln has no CUDA support";
#endif
  } catch (const std::exception& e) {
    return e.what();
  }
}

// An input's array, checked against the engine; sets the context's input shape.
Input take_input(PyContext& c, const std::string& name, nb::handle obj, StreamChoice& sc) {
  const Engine& e = *c.engine->engine;
  bool cuda = c.engine->backend == "cuda";
  std::string what = "infer: input '" + name + "'";
  Input in{name, import_tensor(obj, what, false, &sc)};
  check_tensor(in.t, what, e.getTensorDataType(name), cuda, false, nullptr);
  if (cuda && in.t.where == Where::kDevice) {
    int dev = in.t.device_id;
    if (dev < 0) {  // __cuda_array_interface__ does not say: ask the driver (also finds freed memory)
      std::string why = check_device_pointer(reinterpret_cast<uintptr_t>(in.t.data), &dev);
      if (!why.empty() && in.t.nbytes()) raise(PyExc_ValueError, what + ": " + why);
    }
    if (dev >= 0 && dev != c.device)
      raise(PyExc_ValueError, what + " is on cuda:" + std::to_string(dev) + " but the engine's context runs on cuda:" +
                                  std::to_string(c.device) + " (move it, or create the context under that device)");
  }
  in.copy = cuda && in.t.where == Where::kHost;
  ErrorCapture capture;
  if (!c.set_input_shape(name, in.t.shape))
    raise(PyExc_ValueError, what + " of shape " + dimsToString(in.t.shape) + ": " + capture.text());
  return in;
}

}  // namespace

uintptr_t stream_of(nb::handle s, const char* what) {
  if (PyLong_Check(s.ptr())) return nb::cast<uintptr_t>(s);
  for (const char* attr : {"cuda_stream", "handle", "ptr"})  // torch.cuda.Stream, pycuda, cupy
    if (nb::hasattr(s, attr)) return nb::cast<uintptr_t>(s.attr(attr));
  raise(PyExc_TypeError, std::string(what) + ": stream must be an int (cudaStream_t) or a stream object with "
                                             "cuda_stream/handle/ptr (torch.cuda.Stream, cupy.cuda.Stream)");
}

nb::dict infer(PyContext& c, nb::handle feed, nb::handle stream, nb::handle outputs) {
  const Engine& e = *c.engine->engine;
  if (!PyDict_Check(feed.ptr())) raise(PyExc_TypeError, "infer: inputs must be a dict {input name: array}");
  if (!outputs.is_none() && !PyDict_Check(outputs.ptr()))
    raise(PyExc_TypeError, "infer: outputs must be None or a dict {output name: array to write into}");
  if (!c.infer) {
    c.infer.reset(new InferState());
    c.infer->cuda = c.engine->backend == "cuda";
  }
  InferState& st = *c.infer;
  bool cuda = st.cuda;
  if (st.io.empty())
    for (int i = 0; i < e.getNbIOTensors(); ++i) {
      std::string name = e.getIOTensorName(i);
      st.io.push_back({name, nb::str(name.c_str(), name.size()), e.getTensorIOMode(name)});
    }
  PyObject* given = outputs.is_none() ? nullptr : outputs.ptr();
  // Keys that name no input (or output): checked one by one only when the counts say there are some.
  auto check_keys = [&](PyObject* dict, TensorIOMode mode) {
    for (auto [k, v] : nb::borrow<nb::dict>(dict)) {
      std::string name = str_of(k);
      if (e.getTensorIOMode(name) != mode) {
        const char* kind = mode == TensorIOMode::kINPUT ? "input" : "output";
        raise(PyExc_ValueError, "infer: '" + name + "' is not an " + kind + " of the engine (" + kind + "s: " + names_of(e, mode) + ")");
      }
    }
  };
  Py_ssize_t nb_inputs = 0, nb_given = 0;
  for (const auto& io : st.io) {
    if (io.mode == TensorIOMode::kINPUT) nb_inputs += PyDict_GetItem(feed.ptr(), io.key.ptr()) != nullptr;
    else if (given) nb_given += PyDict_GetItem(given, io.key.ptr()) != nullptr;
  }
  if (nb_inputs != PyDict_Size(feed.ptr())) check_keys(feed.ptr(), TensorIOMode::kINPUT);
  if (given && nb_given != PyDict_Size(given)) check_keys(given, TensorIOMode::kOUTPUT);
  StreamChoice sc;
  if (!stream.is_none()) {
    sc.set = sc.user = true;
    sc.handle = stream_of(stream, "infer");
  }
  std::vector<Input> ins;
  std::vector<Output> outs;
  struct FreeOutputs {  // host memory not yet handed to numpy
    std::vector<Output>& outs;
    ~FreeOutputs() { for (auto& o : outs) std::free(o.host); }
  } free_outputs{outs};
  bool device_mode = false;      // a CUDA engine given a CUDA tensor: outputs stay on the device
  std::string device_framework;  // of the first CUDA input: outputs become its tensors
  int device = c.device;
  for (const auto& io : st.io) {
    if (io.mode != TensorIOMode::kINPUT) continue;
    const std::string& name = io.name;
    PyObject* obj = PyDict_GetItem(feed.ptr(), io.key.ptr());
    if (!obj)
      raise(PyExc_ValueError, "infer: missing input '" + name + "' (inputs: " + names_of(e, TensorIOMode::kINPUT) + ")");
    ins.push_back(take_input(c, name, obj, sc));
    if (cuda && ins.back().t.where == Where::kDevice && !device_mode) {
      device_mode = true;
      device_framework = ins.back().t.framework;
    }
  }
  bool sync = !device_mode;
  for (const auto& io : st.io) {
    if (io.mode != TensorIOMode::kOUTPUT) continue;
    const std::string& name = io.name;
    Output o{name, e.getTensorDataType(name), c.ctx->getTensorShape(name)};
    o.key = io.key;
    for (int64_t x : o.dims) o.dynamic = o.dynamic || x < 0;
    PyObject* user = given ? PyDict_GetItem(given, io.key.ptr()) : nullptr;
    if (user) {
      std::string what = "infer: output '" + name + "'";
      if (o.dynamic)
        raise(PyExc_ValueError, what + " has a shape only the run tells (data-dependent): leave it out of outputs=");
      nb::handle obj(user);
      o.user = import_tensor(obj, what, true, &sc);
      check_tensor(o.user, what, o.type, cuda, true, &o.dims);
      o.object = nb::borrow(obj);
      o.bytes = o.user.nbytes();
      if (cuda && o.user.where == Where::kHost) {
        o.copy_to = o.user.data;
        sync = true;
      } else {
        o.ptr = o.user.data;
      }
      outs.push_back(std::move(o));
      continue;
    }
    if (o.dynamic) {
      auto& a = st.allocators[name];
      if (!a) a = std::make_unique<GrowingAllocator>(cuda);
      c.ctx->setOutputAllocator(name, a.get());  // replaces set_output_allocator's
      c.output_allocators.erase(name);
      o.device = device_mode;
      if (device_mode) sync = true;  // its size is known after the run; kiln's buffer is reused by the next
    } else if (device_mode) {
      o.device = true;
      o.bytes = nbytes_of(o.dims, o.type);
      o.object = new_device_tensor(device_framework, name, o.dims, o.type, device, &o.ptr);
    } else {
      if (o.type == TensorType::kBF16)
        raise(PyExc_NotImplementedError, "infer: numpy has no bfloat16 for output '" + name + "': pass CUDA tensors, "
                                         "or your own array in outputs=");
      o.bytes = nbytes_of(o.dims, o.type);
      if (!(o.host = std::aligned_alloc(256, std::max<size_t>((o.bytes + 255) / 256 * 256, 256))))
        raise(PyExc_MemoryError, "infer: no memory for output '" + name + "'");
      if (cuda) o.copy_to = o.host;
      else o.ptr = o.host;
    }
    outs.push_back(std::move(o));
  }
  uintptr_t run_stream = sc.handle;
#ifdef KILN_WITH_CUDA
  if (cuda && !sc.set) {
    if (!st.stream) cuda_check(cudaStreamCreateWithFlags(reinterpret_cast<cudaStream_t*>(&st.stream), cudaStreamNonBlocking), "cudaStreamCreate");
    run_stream = reinterpret_cast<uintptr_t>(st.stream);
  }
#endif
  std::string error;
  {
    nb::gil_scoped_release release;
    error = run(c, ins, outs, run_stream, sync);
  }
  c.addresses.clear();  // infer() set every address: bindings of set_tensor_address are gone
  c.bound.clear();
  if (!error.empty()) raise(PyExc_RuntimeError, "infer: " + error);
  nb::dict result;
  for (auto& o : outs) {
    if (o.dynamic && o.device) {
#ifdef KILN_WITH_CUDA
      void* dst = nullptr;
      o.object = new_device_tensor(device_framework, o.name, o.dims, o.type, device, &dst);
      auto s = reinterpret_cast<cudaStream_t>(run_stream);
      if (o.bytes) cuda_check(cudaMemcpyAsync(dst, st.allocators[o.name]->memory.ptr, o.bytes, cudaMemcpyDeviceToDevice, s), "copying output '" + o.name + "'");
      cuda_check(cudaStreamSynchronize(s), "running the engine");
#endif
    } else if (o.dynamic && !cuda) {  // the allocator's memory becomes the array's
      o.dims = st.allocators[o.name]->dims;
      o.host = st.allocators[o.name]->memory.take();
      if (!o.host) o.host = std::malloc(1);
      o.object = new_host_array(o);
    } else if (!o.object.is_valid()) {
      o.object = new_host_array(o);
    }
    if (PyDict_SetItem(result.ptr(), o.key.ptr(), o.object.ptr()) != 0) throw nb::python_error();
  }
  return result;
}

}  // namespace kiln::python
