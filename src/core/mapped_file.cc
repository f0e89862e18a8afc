#include "core/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace kiln {

Expected<std::shared_ptr<MappedFile>> MappedFile::open(const std::string& path, bool keep_open) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return err("cannot open '", path, "': ", std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return err("'", path, "' is not a regular file");
  }
  std::shared_ptr<MappedFile> f(new MappedFile());
  f->path_ = path;
  f->size_ = static_cast<size_t>(st.st_size);
  f->device_ = static_cast<uint64_t>(st.st_dev);
  f->inode_ = static_cast<uint64_t>(st.st_ino);
  f->mtime_sec_ = static_cast<int64_t>(st.st_mtim.tv_sec);
  f->mtime_nsec_ = static_cast<int64_t>(st.st_mtim.tv_nsec);
  if (f->size_ > 0) {
    void* p = mmap(nullptr, f->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      ::close(fd);
      return err("cannot map '", path, "': ", std::strerror(errno));
    }
    f->data_ = p;
  }
  if (keep_open) f->fd_ = fd;
  else ::close(fd);
  return f;
}

Status MappedFile::check_unchanged() const {
  struct stat st {};
  if (fd_ >= 0 ? fstat(fd_, &st) != 0 : ::stat(path_.c_str(), &st) != 0) return Status::ok();  // removed
  if (static_cast<uint64_t>(st.st_dev) != device_ || static_cast<uint64_t>(st.st_ino) != inode_) return Status::ok();
  if (static_cast<size_t>(st.st_size) != size_)
    return err("'", path_, "' changed size since it was read (", size_, " bytes then, ", st.st_size, " bytes now)");
  if (st.st_mtim.tv_sec != mtime_sec_ || st.st_mtim.tv_nsec != mtime_nsec_)
    return err("'", path_, "' was modified since it was read (same size, other bytes)");
  return Status::ok();
}

MappedFile::~MappedFile() {
  if (data_) munmap(data_, size_);
  if (fd_ >= 0) ::close(fd_);
}

Expected<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return err("cannot open '", path, "': ", std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return err("error reading '", path, "'");
  return ss.str();
}

}  // namespace kiln
