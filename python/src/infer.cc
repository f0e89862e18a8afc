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

using dlcode = nb::dlpack::dtype_code;

nb::dlpack::dtype dl_dtype(TensorType t) {
  auto d = [](dlcode c, int bits) { return nb::dlpack::dtype{static_cast<uint8_t>(c), static_cast<uint8_t>(bits), 1}; };
  switch (t) {
    case TensorType::kFLOAT: return d(dlcode::Float, 32);
    case TensorType::kHALF: return d(dlcode::Float, 16);
    case TensorType::kDOUBLE: return d(dlcode::Float, 64);
    case TensorType::kBF16: return d(dlcode::Bfloat, 16);
    case TensorType::kINT8: return d(dlcode::Int, 8);
    case TensorType::kINT16: return d(dlcode::Int, 16);
    case TensorType::kINT32: return d(dlcode::Int, 32);
    case TensorType::kINT64: return d(dlcode::Int, 64);
    case TensorType::kUINT8: return d(dlcode::UInt, 8);
    case TensorType::kUINT16: return d(dlcode::UInt, 16);
    case TensorType::kUINT32: return d(dlcode::UInt, 32);
    case TensorType::kUINT64: return d(dlcode::UInt, 64);
    case TensorType::kBOOL: return d(dlcode::Bool, 8);
  }
  return d(dlcode::UInt, 8);
}

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
  bool cuda = false;
  void* stream = nullptr;  // the context's own cudaStream_t, made on first use
  std::map<std::string, Memory> device;  // CUDA engines: one buffer per I/O tensor
  std::map<std::string, std::unique_ptr<GrowingAllocator>> allocators;
  ~InferState() {
#ifdef KILN_WITH_CUDA
    if (stream) cudaStreamDestroy(static_cast<cudaStream_t>(stream));
#endif
  }
};

void destroy_infer_state(InferState* s) { delete s; }

bool cuda_device_available() {
#ifdef KILN_WITH_CUDA
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) { cudaGetLastError(); return false; }
  return n > 0;
#else
  return false;
#endif
}

std::string check_device_pointer(uintptr_t ptr) {
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
#else
  (void)ptr;
#endif
  return "";
}

namespace {

struct Input {
  std::string name;
  nb::ndarray<nb::ro> array;
  size_t bytes = 0;
};

struct Output {
  std::string name;
  TensorType type;
  Dims dims;        // -1s until the run if data-dependent
  bool dynamic = false;
  void* host = nullptr;  // owned until handed to numpy
  size_t bytes = 0;
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

Input check_input(PyContext& c, const std::string& name, nb::handle obj) {
  const Engine& e = *c.engine->engine;
  Input in{name, {}, 0};
  if (!nb::try_cast(obj, in.array, false))
    raise(PyExc_TypeError, "infer: input '" + name + "' must be a numpy array (or another array with the buffer "
                           "protocol or DLPack), got " + str_of(nb::handle(reinterpret_cast<PyObject*>(Py_TYPE(obj.ptr())))));
  const auto& a = in.array;
  if (a.device_type() != nb::device::cpu::value) {
    if (c.engine->backend != "cuda")
      raise(PyExc_ValueError, "infer: input '" + name + "' is in device memory but the engine runs on the CPU");
    raise(PyExc_NotImplementedError, "infer: device arrays (DLPack / __cuda_array_interface__) are not supported "
                                     "yet: pass numpy arrays, or use set_tensor_address + execute_async_v3 with the "
                                     "tensor's data_ptr()");
  }
  TensorType want = e.getTensorDataType(name);
  if (want == TensorType::kBF16)
    raise(PyExc_NotImplementedError, "infer: bfloat16 inputs are not supported from Python yet (input '" + name + "')");
  nb::dlpack::dtype got = a.dtype(), need = dl_dtype(want);
  bool bool_as_u8 = want == TensorType::kBOOL && got.bits == 8 && got.code == uint8_t(dlcode::UInt);
  if (!(got == need) && !bool_as_u8) {
    std::string got_name = nb::hasattr(obj, "dtype") ? str_of(obj.attr("dtype"))
                                                     : "code " + std::to_string(got.code) + "/" + std::to_string(got.bits) + " bits";
    raise(PyExc_TypeError, "infer: input '" + name + "' has dtype " + got_name + " but the engine expects " +
                               tensorTypeName(want) + " (convert it, e.g. array.astype(kiln.nptype(engine.get_tensor_dtype('" +
                               name + "'))))");
  }
  int64_t expect = 1;
  for (size_t k = a.ndim(); k-- > 0;) {
    if (a.shape(k) != 1 && a.stride(k) != expect)
      raise(PyExc_ValueError, "infer: input '" + name + "' is not C-contiguous: pass numpy.ascontiguousarray(array)");
    expect *= static_cast<int64_t>(a.shape(k));
  }
  Dims dims;
  for (size_t k = 0; k < a.ndim(); ++k) dims.push_back(static_cast<int64_t>(a.shape(k)));
  {
    ErrorCapture capture;
    if (!c.set_input_shape(name, dims))
      raise(PyExc_ValueError, "infer: input '" + name + "' of shape " + dimsToString(dims) + ": " + capture.text());
  }
  in.bytes = a.nbytes();
  return in;
}

uintptr_t stream_of(nb::handle s) {
  if (s.is_none()) return 0;
  if (PyLong_Check(s.ptr())) return nb::cast<uintptr_t>(s);
  for (const char* attr : {"cuda_stream", "handle", "ptr"})  // torch.cuda.Stream, pycuda, cupy
    if (nb::hasattr(s, attr)) return nb::cast<uintptr_t>(s.attr(attr));
  raise(PyExc_TypeError, "infer: stream must be an int (cudaStream_t) or a stream object with cuda_stream/handle/ptr");
}

// Runs with the GIL released; a non-empty return is the error.
std::string run(PyContext& c, std::vector<Input>& ins, std::vector<Output>& outs, uintptr_t user_stream) {
  InferState& st = *c.infer;
  ExecutionContext& ctx = *c.ctx;
  ErrorCapture capture;
  try {
    if (!st.cuda) {
      for (auto& in : ins) ctx.setTensorAddress(in.name, const_cast<void*>(static_cast<const void*>(in.array.data())));
      for (auto& o : outs) if (!o.dynamic) ctx.setTensorAddress(o.name, o.host);
      if (!ctx.execute()) return capture.text();
      return "";
    }
#ifdef KILN_WITH_CUDA
    cudaStream_t stream = reinterpret_cast<cudaStream_t>(user_stream);
    if (!user_stream) {
      if (!st.stream) cuda_check(cudaStreamCreateWithFlags(reinterpret_cast<cudaStream_t*>(&st.stream), cudaStreamNonBlocking), "cudaStreamCreate");
      stream = static_cast<cudaStream_t>(st.stream);
    }
    for (auto& in : ins) {
      Memory& m = st.device[in.name];
      m.device = true;
      if (!m.reserve(in.bytes)) return "cudaMalloc of " + std::to_string(in.bytes) + " bytes for input '" + in.name + "' failed";
      if (in.bytes) cuda_check(cudaMemcpyAsync(m.ptr, in.array.data(), in.bytes, cudaMemcpyHostToDevice, stream), "copying input '" + in.name + "' to the device");
      ctx.setTensorAddress(in.name, m.ptr);
    }
    for (auto& o : outs) {
      if (o.dynamic) continue;
      Memory& m = st.device[o.name];
      m.device = true;
      if (!m.reserve(o.bytes)) return "cudaMalloc of " + std::to_string(o.bytes) + " bytes for output '" + o.name + "' failed";
      ctx.setTensorAddress(o.name, m.ptr);
    }
    if (!ctx.enqueue(stream)) {
      cudaStreamSynchronize(stream);
      return capture.text();
    }
    for (auto& o : outs) {
      const void* src = o.dynamic ? st.allocators[o.name]->memory.ptr : st.device[o.name].ptr;
      if (o.dynamic) {
        o.dims = st.allocators[o.name]->dims;
        o.bytes = nbytes_of(o.dims, o.type);
        o.host = std::malloc(std::max<size_t>(o.bytes, 1));
        if (!o.host) return "out of host memory for output '" + o.name + "'";
      }
      if (o.bytes) cuda_check(cudaMemcpyAsync(o.host, src, o.bytes, cudaMemcpyDeviceToHost, stream), "copying output '" + o.name + "' to the host");
    }
    cuda_check(cudaStreamSynchronize(stream), "running the engine");
    return "";
#else
    (void)user_stream;
    return "this build of kiln has no CUDA support";
#endif
  } catch (const std::exception& e) {
    return e.what();
  }
}

}  // namespace

nb::dict infer(PyContext& c, nb::handle feed, nb::handle stream) {
  const Engine& e = *c.engine->engine;
  if (!PyDict_Check(feed.ptr())) raise(PyExc_TypeError, "infer: inputs must be a dict {input name: array}");
  if (!c.infer) {
    c.infer.reset(new InferState());
    c.infer->cuda = c.engine->backend == "cuda";
  }
  InferState& st = *c.infer;
  nb::dict d = nb::borrow<nb::dict>(feed);
  for (auto [k, v] : d) {
    std::string name = str_of(k);
    if (e.getTensorIOMode(name) != TensorIOMode::kINPUT)
      raise(PyExc_ValueError, "infer: '" + name + "' is not an input of the engine (inputs: " + names_of(e, TensorIOMode::kINPUT) + ")");
  }
  std::vector<Input> ins;
  std::vector<Output> outs;
  struct FreeOutputs {  // host memory not yet handed to numpy
    std::vector<Output>& outs;
    ~FreeOutputs() { for (auto& o : outs) std::free(o.host); }
  } free_outputs{outs};
  for (int i = 0; i < e.getNbIOTensors(); ++i) {
    std::string name = e.getIOTensorName(i);
    if (e.getTensorIOMode(name) != TensorIOMode::kINPUT) continue;
    if (!d.contains(name.c_str()))
      raise(PyExc_ValueError, "infer: missing input '" + name + "' (inputs: " + names_of(e, TensorIOMode::kINPUT) + ")");
    ins.push_back(check_input(c, name, d[name.c_str()]));
  }
  for (int i = 0; i < e.getNbIOTensors(); ++i) {
    std::string name = e.getIOTensorName(i);
    if (e.getTensorIOMode(name) != TensorIOMode::kOUTPUT) continue;
    Output o{name, e.getTensorDataType(name), c.ctx->getTensorShape(name)};
    if (o.type == TensorType::kBF16)
      raise(PyExc_NotImplementedError, "infer: bfloat16 outputs are not supported from Python yet (output '" + name + "')");
    for (int64_t x : o.dims) o.dynamic = o.dynamic || x < 0;
    if (o.dynamic) {
      auto& a = st.allocators[name];
      if (!a) {
        a = std::make_unique<GrowingAllocator>(st.cuda);
        c.ctx->setOutputAllocator(name, a.get());
      }
    } else {
      o.bytes = nbytes_of(o.dims, o.type);
      if (!(o.host = std::aligned_alloc(256, std::max<size_t>((o.bytes + 255) / 256 * 256, 256))))
        raise(PyExc_MemoryError, "infer: no memory for output '" + name + "'");
    }
    outs.push_back(std::move(o));
  }
  uintptr_t user_stream = stream_of(stream);
  std::string error;
  {
    nb::gil_scoped_release release;
    error = run(c, ins, outs, user_stream);
  }
  if (!error.empty()) raise(PyExc_RuntimeError, "infer: " + error);
  nb::dict result;
  for (auto& o : outs) {
    if (o.dynamic && !st.cuda) {  // the allocator's memory becomes the array's
      o.dims = st.allocators[o.name]->dims;
      o.host = st.allocators[o.name]->memory.take();
      if (!o.host) o.host = std::malloc(1);
    }
    std::vector<size_t> shape(o.dims.begin(), o.dims.end());
    nb::capsule owner(o.host, [](void* p) noexcept { std::free(p); });
    o.host = nullptr;
    nb::ndarray<nb::numpy> array(owner.data(), shape.size(), shape.data(), owner, nullptr, dl_dtype(o.type));
    result[o.name.c_str()] = array.cast();
  }
  return result;
}

}  // namespace kiln::python
