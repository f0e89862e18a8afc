// Array and tensor arguments from Python, zero-copy: numpy arrays and anything with the buffer
// protocol, objects with __dlpack__/__dlpack_device__ (PyTorch, CuPy, JAX, numpy >= 1.22) and with
// __cuda_array_interface__ (Numba, CuPy, PyTorch; a v3 interface names the producer's stream).
// For a CUDA tensor the caller says which stream it will run on, so the producer can order its
// pending work before it (DLPack's `stream` argument); check_tensor() compares a tensor with an
// engine's I/O tensor and raises naming it.
#include <nanobind/ndarray.h>
#include <nanobind/stl/string.h>

#include "bindings.h"

namespace kiln::python {

namespace {

using dlcode = nb::dlpack::dtype_code;
constexpr int kDLCPU = 1, kDLCUDA = 2, kDLCUDAHost = 3, kDLCUDAManaged = 13;

nb::dlpack::dtype make_dtype(dlcode c, int bits) {
  return nb::dlpack::dtype{static_cast<uint8_t>(c), static_cast<uint8_t>(bits), 1};
}

std::string type_of(nb::handle obj) { return str_of(nb::handle(reinterpret_cast<PyObject*>(Py_TYPE(obj.ptr())))); }

// The top-level module of the object's type: "torch", "cupy", "numpy", "jax"...
std::string framework_of(nb::handle obj) {
  static PyTypeObject* last_type = nullptr;  // the answer for the last type asked (one framework per loop)
  static std::string last;
  if (Py_TYPE(obj.ptr()) == last_type) return last;
  PyObject* mod = PyObject_GetAttrString(reinterpret_cast<PyObject*>(Py_TYPE(obj.ptr())), "__module__");
  if (!mod) {
    PyErr_Clear();
    return "";
  }
  nb::object m = nb::steal(mod);
  std::string s = PyUnicode_Check(mod) ? nb::cast<std::string>(m) : "";
  Py_XDECREF(reinterpret_cast<PyObject*>(last_type));  // the cached type is held, so never freed and reused
  last_type = Py_TYPE(obj.ptr());
  Py_INCREF(reinterpret_cast<PyObject*>(last_type));
  last = s.substr(0, s.find('.'));
  return last;
}

Where where_of(int device_type) {
  switch (device_type) {
    case kDLCPU: return Where::kHost;
    case kDLCUDA: return Where::kDevice;
    case kDLCUDAHost: case kDLCUDAManaged: return Where::kBoth;
    default: return Where::kOther;
  }
}

template <typename Array>
void from_ndarray(TensorArg& t, const Array& a) {
  t.data = const_cast<void*>(static_cast<const void*>(a.data()));
  t.dtype = a.dtype();
  t.where = where_of(a.device_type());
  t.device_type = a.device_type();
  t.device_id = a.device_id();
  for (size_t k = 0; k < a.ndim(); ++k) {
    t.shape.push_back(static_cast<int64_t>(a.shape(k)));
    t.strides.push_back(a.stride(k));
  }
  t.array = nb::ndarray<nb::ro>(a);
}

// Reads `src` (an array, or a DLPack capsule) through nanobind; a writable view first when the
// caller will write (a read-only array is then marked so). False when it is no array.
bool read_ndarray(nb::handle src, bool writable, TensorArg& t) {
  nb::ndarray<> rw;
  if (writable && nb::try_cast(src, rw, false)) {
    from_ndarray(t, rw);
    return true;
  }
  nb::ndarray<nb::ro> ro;
  if (!nb::try_cast(src, ro, false)) return false;
  from_ndarray(t, ro);
  t.readonly = writable;
  return true;
}

// numpy's typestr ("<f4", "|b1") -> a DLPack dtype; false for what kiln has no type for.
bool dtype_from_typestr(const std::string& s, nb::dlpack::dtype& d) {
  if (s.size() < 3 || s[0] == '>') return false;
  int bytes = std::atoi(s.c_str() + 2);
  if (bytes <= 0 || bytes > 8) return false;
  switch (s[1]) {
    case 'f': d = make_dtype(dlcode::Float, 8 * bytes); return true;
    case 'i': d = make_dtype(dlcode::Int, 8 * bytes); return true;
    case 'u': d = make_dtype(dlcode::UInt, 8 * bytes); return true;
    case 'b': d = make_dtype(dlcode::Bool, 8 * bytes); return true;
    default: return false;
  }
}

void from_cuda_array_interface(TensorArg& t, nb::handle obj, const std::string& what) {
  nb::object cai = obj.attr("__cuda_array_interface__");
  auto bad = [&](const std::string& why) {
    raise(PyExc_TypeError, what + ": its __cuda_array_interface__ " + why);
  };
  if (!PyDict_Check(cai.ptr())) bad("is not a dict");
  nb::dict d = nb::borrow<nb::dict>(cai);
  if (!d.contains("shape") || !d.contains("typestr") || !d.contains("data")) bad("lacks shape, typestr or data");
  if (d.contains("mask") && !d["mask"].is_none()) bad("has a mask (masked arrays are not supported)");
  std::string typestr = str_of(d["typestr"]);
  if (!dtype_from_typestr(typestr, t.dtype)) bad("has typestr '" + typestr + "', which kiln has no type for");
  t.dtype_text = typestr;
  nb::handle data = d["data"];
  try {
    t.data = reinterpret_cast<void*>(nb::cast<uintptr_t>(data[0]));
    t.readonly = nb::cast<bool>(data[1]);
    for (nb::handle x : d["shape"]) t.shape.push_back(nb::cast<int64_t>(x));
    if (d.contains("strides") && !d["strides"].is_none()) {
      int64_t item = t.dtype.bits / 8;
      for (nb::handle x : d["strides"]) {
        int64_t bytes = nb::cast<int64_t>(x);
        if (bytes % item) bad("has strides that are not a multiple of the element size");
        t.strides.push_back(bytes / item);
      }
      if (t.strides.size() != t.shape.size()) bad("has strides of another rank than its shape");
    }
    if (d.contains("stream") && !d["stream"].is_none()) {
      t.producer_stream = nb::cast<uintptr_t>(d["stream"]);
      t.has_producer_stream = true;
    }
  } catch (const nb::cast_error&) {
    bad("has malformed data, shape, strides or stream entries");
  }
  t.where = Where::kDevice;
  t.device_type = kDLCUDA;
  t.device_id = -1;  // the interface does not say; the pointer's device is checked when run
}

}  // namespace

std::string dtype_text(nb::dlpack::dtype d) {
  const char* kind = "?";
  switch (static_cast<dlcode>(d.code)) {
    case dlcode::Int: kind = "int"; break;
    case dlcode::UInt: kind = "uint"; break;
    case dlcode::Float: kind = "float"; break;
    case dlcode::Bfloat: kind = "bfloat"; break;
    case dlcode::Complex: kind = "complex"; break;
    case dlcode::Bool: return "bool";
    default: break;
  }
  return std::string(kind) + std::to_string(d.bits);
}

nb::dlpack::dtype dlpack_dtype(TensorType t) {
  switch (t) {
    case TensorType::kFLOAT: return make_dtype(dlcode::Float, 32);
    case TensorType::kHALF: return make_dtype(dlcode::Float, 16);
    case TensorType::kDOUBLE: return make_dtype(dlcode::Float, 64);
    case TensorType::kBF16: return make_dtype(dlcode::Bfloat, 16);
    case TensorType::kINT8: return make_dtype(dlcode::Int, 8);
    case TensorType::kINT16: return make_dtype(dlcode::Int, 16);
    case TensorType::kINT32: return make_dtype(dlcode::Int, 32);
    case TensorType::kINT64: return make_dtype(dlcode::Int, 64);
    case TensorType::kUINT8: return make_dtype(dlcode::UInt, 8);
    case TensorType::kUINT16: return make_dtype(dlcode::UInt, 16);
    case TensorType::kUINT32: return make_dtype(dlcode::UInt, 32);
    case TensorType::kUINT64: return make_dtype(dlcode::UInt, 64);
    case TensorType::kBOOL: return make_dtype(dlcode::Bool, 8);
  }
  return make_dtype(dlcode::UInt, 8);
}

size_t TensorArg::nbytes() const {
  size_t n = (dtype.bits + 7) / 8;
  for (int64_t x : shape) n *= static_cast<size_t>(x);
  return n;
}

bool TensorArg::contiguous() const {
  if (strides.empty()) return true;
  int64_t expect = 1;
  for (size_t k = shape.size(); k-- > 0;) {
    if (shape[k] == 0) return true;
    if (shape[k] != 1 && strides[k] != expect) return false;
    expect *= shape[k];
  }
  return true;
}

std::string TensorArg::device_text() const {
  switch (where) {
    case Where::kHost: return "the host (cpu)";
    case Where::kDevice: return device_id >= 0 ? "cuda:" + std::to_string(device_id) : "a CUDA device";
    case Where::kBoth: return "CUDA pinned/managed memory";
    default: return "device type " + std::to_string(device_type);
  }
}

// PyTorch tensors read through their C-level accessors (data_ptr, shape, stride, dtype,
// get_device): ~1 us, where DLPack costs 5-15 us a tensor in Python code (__dlpack_device__,
// __dlpack__). False (nothing read) for what this does not cover (sparse, quantized, other
// dtypes, non-CUDA devices): the DLPack path then reads it or says why not.
bool from_torch(TensorArg& t, nb::handle obj) {
  struct TorchType {
    PyObject* dtype;
    nb::dlpack::dtype dl;
  };
  static std::vector<TorchType>* types = [] {
    auto* v = new std::vector<TorchType>();  // never freed: module lifetime
    nb::module_ torch = nb::module_::import_("torch");
    const std::pair<const char*, nb::dlpack::dtype> names[] = {
        {"float32", make_dtype(dlcode::Float, 32)}, {"float16", make_dtype(dlcode::Float, 16)},
        {"bfloat16", make_dtype(dlcode::Bfloat, 16)}, {"float64", make_dtype(dlcode::Float, 64)},
        {"int8", make_dtype(dlcode::Int, 8)}, {"int16", make_dtype(dlcode::Int, 16)},
        {"int32", make_dtype(dlcode::Int, 32)}, {"int64", make_dtype(dlcode::Int, 64)},
        {"uint8", make_dtype(dlcode::UInt, 8)}, {"bool", make_dtype(dlcode::Bool, 8)},
        {"uint16", make_dtype(dlcode::UInt, 16)}, {"uint32", make_dtype(dlcode::UInt, 32)},
        {"uint64", make_dtype(dlcode::UInt, 64)}};
    for (const auto& [name, dl] : names)
      if (nb::hasattr(torch, name)) v->push_back({torch.attr(name).inc_ref().ptr(), dl});
    return v;
  }();
  try {  // sparse tensors have no data_ptr (raises); quantized ones no dtype of the table
    nb::object dtype = obj.attr("dtype");
    const TorchType* found = nullptr;
    for (const auto& ty : *types) if (ty.dtype == dtype.ptr()) found = &ty;
    if (!found) return false;
    int device = nb::cast<int>(obj.attr("get_device")());  // -1: CPU
    if (device < 0 && !nb::cast<bool>(obj.attr("is_cpu"))) return false;  // meta, mps, xpu...
    for (nb::handle d : obj.attr("shape")) t.shape.push_back(nb::cast<int64_t>(d));
    for (nb::handle d : obj.attr("stride")()) t.strides.push_back(nb::cast<int64_t>(d));
    t.data = reinterpret_cast<void*>(nb::cast<uintptr_t>(obj.attr("data_ptr")()));
    t.dtype = found->dl;
    t.where = device < 0 ? Where::kHost : Where::kDevice;
    t.device_type = device < 0 ? kDLCPU : kDLCUDA;
    t.device_id = std::max(device, 0);
    return true;
  } catch (nb::python_error&) {
  } catch (const nb::cast_error&) {
  }
  t.shape.clear();
  t.strides.clear();
  return false;
}

uintptr_t producer_stream(const std::string& framework, int device_id) {
  // The frameworks' current-stream getters, looked up once (never released: module lifetime).
  static PyObject* torch_raw = nullptr;  // torch._C._cuda_getCurrentRawStream(device) -> int
  static PyObject* cupy_current = nullptr;  // cupy.cuda.get_current_stream() -> Stream (.ptr)
  try {
    if (framework == "torch") {
      if (!torch_raw) {
        nb::module_ c = nb::module_::import_("torch._C");
        torch_raw = nb::hasattr(c, "_cuda_getCurrentRawStream")
                        ? c.attr("_cuda_getCurrentRawStream").inc_ref().ptr()
                        : nb::module_::import_("torch.cuda").attr("current_stream").inc_ref().ptr();
      }
      nb::object s = nb::handle(torch_raw)(device_id);
      return nb::cast<uintptr_t>(PyLong_Check(s.ptr()) ? s : s.attr("cuda_stream"));  // raw int, or a Stream
    }
    if (framework == "cupy") {
      if (!cupy_current) cupy_current = nb::module_::import_("cupy.cuda").attr("get_current_stream").inc_ref().ptr();
      return nb::cast<uintptr_t>(nb::handle(cupy_current)().attr("ptr"));
    }
  } catch (nb::python_error&) {
  } catch (const nb::cast_error&) {
  }
  return 0;  // the legacy default stream
}

bool is_tensor_like(nb::handle obj) {
  return nb::hasattr(obj, "__dlpack__") || nb::hasattr(obj, "__cuda_array_interface__") || PyObject_CheckBuffer(obj.ptr());
}

TensorArg import_tensor(nb::handle obj, const std::string& what, bool writable, StreamChoice* stream) {
  TensorArg t;
  t.owner = nb::borrow(obj);
  t.framework = framework_of(obj);
  if (t.framework == "torch" && from_torch(t, obj)) {
    if (t.where == Where::kDevice && stream) {
      if (!stream->set) {  // the run goes on PyTorch's current stream
        stream->set = true;
        stream->handle = producer_stream(t.framework, t.device_id);
        stream->framework = t.framework;
      } else if (stream->user || stream->framework != t.framework) {
        t.has_producer_stream = true;  // the run waits for PyTorch's current stream, as DLPack asks
        t.producer_stream = producer_stream(t.framework, t.device_id);
      }
    }
  } else if (nb::hasattr(obj, "__dlpack__")) {
    int device_type = kDLCPU, device_id = 0;
    if (nb::hasattr(obj, "__dlpack_device__")) {
      nb::object dev = obj.attr("__dlpack_device__")();
      try {
        device_type = nb::cast<int>(dev[0]);
        device_id = nb::cast<int>(dev[1]);
      } catch (const nb::cast_error&) {
        raise(PyExc_TypeError, what + ": __dlpack_device__() returned " + str_of(dev) + ", not (device_type, device_id)");
      }
    }
    nb::object source = nb::borrow(obj);
    if (device_type != kDLCPU) {
      // Ask the producer to order its pending work before the stream kiln will run on; -1 (no
      // synchronization) when that stream is the producer's own current stream.
      nb::object s = nb::int_(-1);
      if (stream) {
        if (!stream->set) {
          stream->set = true;
          stream->handle = producer_stream(t.framework, device_id);
          stream->framework = t.framework;
        } else if (stream->user || stream->framework != t.framework) {
          s = nb::int_(stream->handle ? static_cast<intptr_t>(stream->handle) : 1);  // 1: the legacy default stream
        }
      }
      try {
        source = obj.attr("__dlpack__")(nb::arg("stream") = s);
      } catch (nb::python_error& e) {
        raise(PyExc_TypeError, what + ": its __dlpack__() failed: " + e.what());
      }
    }
    if (!read_ndarray(source, writable, t))
      raise(PyExc_TypeError, what + ": its DLPack export (__dlpack__) could not be read (" + type_of(obj) + ")");
  } else if (nb::hasattr(obj, "__cuda_array_interface__")) {
    from_cuda_array_interface(t, obj, what);
    if (stream && !stream->set) {
      stream->set = true;
      stream->handle = t.has_producer_stream ? t.producer_stream : 0;
      stream->framework = t.framework;
    }
  } else if (PyObject_CheckBuffer(obj.ptr())) {
    if (!read_ndarray(obj, writable, t))
      raise(PyExc_TypeError, what + ": its buffer (" + type_of(obj) + ") is not an array kiln can read");
  } else {
    raise(PyExc_TypeError, what + " must be an array: a numpy array, or a tensor with __dlpack__ or "
                           "__cuda_array_interface__ (PyTorch, CuPy...), got " + type_of(obj));
  }
  return t;
}

void check_tensor(const TensorArg& t, const std::string& what, TensorType want, bool cuda_engine, bool writable,
                  const Dims* shape) {
  nb::dlpack::dtype need = dlpack_dtype(want);
  bool bool_as_u8 = want == TensorType::kBOOL && t.dtype.bits == 8 && t.dtype.code == uint8_t(dlcode::UInt);
  if (!(t.dtype == need) && !bool_as_u8)
    raise(PyExc_TypeError, what + " has dtype " +
                               (!t.dtype_text.empty() ? t.dtype_text
                                : nb::hasattr(t.owner, "dtype") ? str_of(t.owner.attr("dtype")) : dtype_text(t.dtype)) +
                               " but the engine expects " + tensorTypeName(want) +
                               " (convert it, e.g. array.astype(kiln.nptype(engine.get_tensor_dtype(name))))");
  if (!t.contiguous())
    raise(PyExc_ValueError, what + " is not C-contiguous: pass a contiguous copy (numpy.ascontiguousarray(a), "
                            "tensor.contiguous())");
  if (shape && *shape != t.shape)
    raise(PyExc_ValueError, what + " has shape " + dimsToString(t.shape) + " but the context's shape of it is " +
                                dimsToString(*shape));
  if (writable && t.readonly) raise(PyExc_ValueError, what + " is read-only but kiln writes an output into it");
  if (t.where == Where::kOther)
    raise(PyExc_ValueError, what + " is in memory of " + t.device_text() + ", which kiln cannot use (host or CUDA only)");
  if (!cuda_engine && t.where == Where::kDevice)
    raise(PyExc_ValueError, what + " is on " + t.device_text() + " but the engine runs on the CPU: pass a host "
                            "array (tensor.cpu(), a numpy array) or build a CUDA engine");
}

}  // namespace kiln::python
