#include "quant/calibration_files.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>

namespace kiln::quant {

namespace {
std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}
}  // namespace

Expected<std::vector<std::string>> list_files(const std::string& dir, const std::vector<std::string>& extensions) {
  DIR* d = opendir(dir.c_str());
  if (!d) return err("cannot read directory '", dir, "': ", std::strerror(errno));
  std::vector<std::string> out;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    size_t dot = name.rfind('.');
    if (name.empty() || name[0] == '.' || dot == std::string::npos) continue;
    const std::string ext = lower(name.substr(dot + 1));
    if (std::none_of(extensions.begin(), extensions.end(), [&](const std::string& x) { return lower(x) == ext; }))
      continue;
    const std::string path = dir + "/" + name;
    struct stat st;
    if (stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode)) out.push_back(path);
  }
  closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

Expected<std::vector<uint8_t>> read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return err("cannot read '", path, "': ", std::strerror(errno));
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (f.bad()) return err("error reading '", path, "'");
  return bytes;
}

namespace {

// The value after 'key': in the header dict, up to the next ',' at depth 0 (or the closing '}').
std::string dict_value(const std::string& h, const std::string& key) {
  size_t k = h.find("'" + key + "'");
  if (k == std::string::npos) return "";
  size_t colon = h.find(':', k);
  if (colon == std::string::npos) return "";
  size_t i = colon + 1, depth = 0;
  std::string v;
  for (; i < h.size(); ++i) {
    char c = h[i];
    if (c == '(') ++depth;
    if (c == ')') { if (depth == 0) break; --depth; }
    if ((c == ',' || c == '}') && depth == 0) break;
    v += c;
  }
  size_t a = v.find_first_not_of(" \t"), b = v.find_last_not_of(" \t");
  return a == std::string::npos ? "" : v.substr(a, b - a + 1);
}

bool npy_type(const std::string& descr, TensorType& t) {
  static const std::pair<const char*, TensorType> kTypes[] = {
      {"f4", TensorType::kFLOAT}, {"f2", TensorType::kHALF},   {"f8", TensorType::kDOUBLE}, {"i1", TensorType::kINT8},
      {"u1", TensorType::kUINT8}, {"i2", TensorType::kINT16},  {"u2", TensorType::kUINT16}, {"i4", TensorType::kINT32},
      {"u4", TensorType::kUINT32}, {"i8", TensorType::kINT64}, {"u8", TensorType::kUINT64}, {"b1", TensorType::kBOOL}};
  if (descr.size() != 5 || descr.front() != '\'' || descr.back() != '\'') return false;
  const char order = descr[1];
  const std::string code = descr.substr(2, 2);
  for (const auto& [c, type] : kTypes) {
    if (code != c) continue;
    const bool single = tensorTypeSize(type) == 1;
    if (order != '<' && order != '|' && !(single && order == '>')) return false;
    t = type;
    return true;
  }
  return false;
}

}  // namespace

Expected<NpyArray> parse_npy(const std::vector<uint8_t>& b, const std::string& path) {
  if (b.size() < 10 || std::memcmp(b.data(), "\x93NUMPY", 6) != 0) return err("'", path, "' is not a .npy file");
  const int major = b[6];
  size_t header_len = 0, start = 0;
  if (major == 1) {
    header_len = b[8] | (size_t(b[9]) << 8);
    start = 10;
  } else if (major == 2 || major == 3) {
    if (b.size() < 12) return err("'", path, "': truncated .npy header");
    header_len = b[8] | (size_t(b[9]) << 8) | (size_t(b[10]) << 16) | (size_t(b[11]) << 24);
    start = 12;
  } else {
    return err("'", path, "': .npy version ", major, " is not supported");
  }
  if (start + header_len > b.size()) return err("'", path, "': truncated .npy header");
  const std::string h(reinterpret_cast<const char*>(b.data() + start), header_len);
  NpyArray a;
  const std::string descr = dict_value(h, "descr");
  if (!npy_type(descr, a.type))
    return err("'", path, "': .npy dtype ", descr, " is not supported (little-endian numbers or bool)");
  if (dict_value(h, "fortran_order") != "False") return err("'", path, "': a Fortran-order .npy array is not supported");
  std::string shape = dict_value(h, "shape");
  if (shape.size() < 2 || shape.front() != '(' || shape.back() != ')') return err("'", path, "': bad .npy shape ", shape);
  shape = shape.substr(1, shape.size() - 2);
  size_t count = 1;
  for (size_t i = 0; i < shape.size();) {
    size_t comma = shape.find(',', i);
    std::string item = shape.substr(i, comma == std::string::npos ? std::string::npos : comma - i);
    item.erase(std::remove(item.begin(), item.end(), ' '), item.end());
    if (!item.empty()) {
      if (item.find_first_not_of("0123456789") != std::string::npos || item.size() > 12)
        return err("'", path, "': bad .npy shape (", shape, ")");
      a.shape.push_back(std::stoll(item));
      if (a.shape.back() > 0 && count > (size_t(1) << 40) / static_cast<size_t>(a.shape.back()))
        return err("'", path, "': .npy shape (", shape, ") is too large");
      count *= static_cast<size_t>(a.shape.back());
    }
    if (comma == std::string::npos) break;
    i = comma + 1;
  }
  const size_t need = count * tensorTypeSize(a.type), have = b.size() - start - header_len;
  if (have != need)
    return err("'", path, "': .npy data of ", have, " bytes for shape ", dimsToString(a.shape), " (", need, " expected)");
  a.data.assign(b.begin() + static_cast<std::ptrdiff_t>(start + header_len), b.end());
  return a;
}

}  // namespace kiln::quant
