// A read-only memory-mapped file. Tensors loaded from external data alias its bytes (through a
// shared_ptr to the mapping), so multi-GiB weights are never copied into the heap.
#pragma once
#include <cstddef>
#include <memory>
#include <string>

#include "core/status.h"

namespace kiln {

class MappedFile {
 public:
  static Expected<std::shared_ptr<MappedFile>> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  const std::byte* data() const { return static_cast<const std::byte*>(data_); }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile() = default;
  void* data_ = nullptr;
  size_t size_ = 0;
  std::string path_;
};

// Reads a whole file into a string; the error names the file.
Expected<std::string> read_file(const std::string& path);

}  // namespace kiln
