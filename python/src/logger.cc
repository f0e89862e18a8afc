// trt.ILogger (subclassable from Python), trt.Logger, and the error capture and warning helpers
// every other file uses.
#include <nanobind/stl/string.h>
#include <nanobind/trampoline.h>

#include <cstdio>

#include "bindings.h"

namespace kiln::python {

namespace {
thread_local ErrorCapture* t_capture = nullptr;
}

ErrorCapture::ErrorCapture() : prev_(t_capture) { t_capture = this; }
ErrorCapture::~ErrorCapture() { t_capture = prev_; }

void ErrorCapture::record(Logger::Severity severity, const char* message) {
  if (t_capture && severity <= Logger::Severity::kERROR) t_capture->errors_.emplace_back(message ? message : "");
}

std::string ErrorCapture::text() const {
  if (errors_.empty()) return "no reason was logged";
  std::string s;
  for (const auto& e : errors_) s += (s.empty() ? "" : "; ") + e;
  return s;
}

void ILogger::log(Severity severity, const char* message) noexcept {
  ErrorCapture::record(severity, message);
  if (!Py_IsInitialized()) return;
  nb::gil_scoped_acquire gil;
  try {
    emit(severity, message ? message : "");
  } catch (nb::python_error& e) {
    e.discard_as_unraisable("kiln: the Python logger's log()");
  } catch (const std::exception& e) {
    PyErr_WarnFormat(PyExc_RuntimeWarning, 1, "kiln: logger failed: %s", e.what());
    PyErr_Clear();
  }
}

void DefaultLogger::emit(Severity severity, const char* message) {
  if (severity > min_severity) return;
  static const char* tags[] = {"F", "E", "W", "I", "V"};
  std::fprintf(stderr, "[%s] %s\n", tags[static_cast<int>(severity)], message);
}

void raise(PyObject* type, const std::string& message) {
  PyErr_SetString(type, message.c_str());
  throw nb::python_error();
}

void warn_deprecated(const std::string& message) {
  if (PyErr_WarnEx(PyExc_DeprecationWarning, message.c_str(), 1) < 0) throw nb::python_error();
}

nb::tuple to_tuple(const Dims& d) {
  nb::list l;
  for (int64_t x : d) l.append(x);
  return nb::tuple(l);
}

std::string str_of(nb::handle h) {
  nb::object s = nb::steal(PyObject_Str(h.ptr()));
  if (!s.is_valid()) throw nb::python_error();
  return nb::cast<std::string>(s);
}

Dims to_dims(nb::handle seq, const char* what) {
  Dims d;
  try {
    for (nb::handle x : seq) d.push_back(nb::cast<int64_t>(x));
  } catch (const std::exception&) {
    raise(PyExc_TypeError, std::string(what) + ": expected a sequence of ints (e.g. (1, 3, 224, 224)), got " +
                               nb::cast<std::string>(nb::repr(seq)));
  }
  return d;
}

BufferView::BufferView(nb::handle obj, const char* what) {
  if (PyObject_GetBuffer(obj.ptr(), &view_, PyBUF_SIMPLE) != 0) {
    PyErr_Clear();
    raise(PyExc_TypeError, std::string(what) + ": expected bytes or another object with the buffer protocol, got " +
                               str_of(nb::handle(reinterpret_cast<PyObject*>(Py_TYPE(obj.ptr())))));
  }
}

namespace {

class PyILogger : public ILogger {
 public:
  NB_TRAMPOLINE(ILogger, 1);
  void emit(Severity severity, const char* message) override { NB_OVERRIDE_PURE_NAME("log", emit, severity, message); }
};

class PyDefaultLogger : public DefaultLogger {
 public:
  NB_TRAMPOLINE(DefaultLogger, 1);
  void emit(Severity severity, const char* message) override { NB_OVERRIDE_NAME("log", emit, severity, message); }
};

}  // namespace

void bind_logger(nb::module_& m) {
  using S = Logger::Severity;
  auto ilogger = nb::class_<ILogger, PyILogger>(m, "ILogger",
      "Base class of loggers: subclass it and define log(severity, msg); kiln calls it for every "
      "message of the objects it is given to (Builder, OnnxParser, Runtime and their engines).");
  ilogger.def(nb::init<>());
  nb::enum_<S>(ilogger, "Severity", nb::is_arithmetic(), "Message severity; lower values are more severe.")
      .value("INTERNAL_ERROR", S::kINTERNAL_ERROR)
      .value("ERROR", S::kERROR)
      .value("WARNING", S::kWARNING)
      .value("INFO", S::kINFO)
      .value("VERBOSE", S::kVERBOSE);
  for (const char* name : {"INTERNAL_ERROR", "ERROR", "WARNING", "INFO", "VERBOSE"})
    ilogger.attr(name) = ilogger.attr("Severity").attr(name);

  nb::class_<DefaultLogger, ILogger, PyDefaultLogger>(m, "Logger",
      "The default logger: prints messages up to min_severity to stderr as '[E] message'.")
      .def(nb::init<S>(), nb::arg("min_severity") = S::kWARNING)
      .def_rw("min_severity", &DefaultLogger::min_severity, "The least severe level that is printed.")
      .def("log", &DefaultLogger::emit, nb::arg("severity"), nb::arg("msg"), "Prints msg if severity is at or above min_severity.")
      .def("__enter__", [](nb::handle self) { return nb::borrow(self); })
      .def("__exit__", [](nb::handle, nb::args) {});
}

}  // namespace kiln::python
