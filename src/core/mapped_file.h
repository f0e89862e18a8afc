// A read-only memory-mapped file. Tensors loaded from external data alias its bytes (through a
// shared_ptr to the mapping), so multi-GiB weights are never copied into the heap.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "core/status.h"

namespace kiln {

class MappedFile {
 public:
  // keep_open: hold the file open while mapped, so check_unchanged() is one fstat (for files
  // checked often, such as a loaded engine's), instead of a stat of the path.
  static Expected<std::shared_ptr<MappedFile>> open(const std::string& path, bool keep_open = false);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  const std::byte* data() const { return static_cast<const std::byte*>(data_); }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  // Fails, naming the file, when the file was truncated, grown or rewritten in place since it was
  // mapped: reading the mapping past a new end raises SIGBUS, and a rewrite changes the bytes
  // under the mapping. A file replaced by a new one (rename) or removed is fine: the mapping
  // keeps the old one alive. Callers check before they read the mapping (a change during the
  // read is not caught).
  Status check_unchanged() const;

 private:
  MappedFile() = default;
  void* data_ = nullptr;
  size_t size_ = 0;
  std::string path_;
  int fd_ = -1;                                  // held open with keep_open
  uint64_t device_ = 0, inode_ = 0;              // the file mapped, to tell it from a replacement
  int64_t mtime_sec_ = 0, mtime_nsec_ = 0;       // its last modification when mapped
};

// Reads a whole file into a string; the error names the file.
Expected<std::string> read_file(const std::string& path);

}  // namespace kiln
