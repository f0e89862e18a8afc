// The built-in calibration sources on files made here: .npy / .bin tensor files (samples grouped
// into batches, a wrong size named), and the image directory's errors (the CLI test decodes real
// PNG and JPEG files).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

#include "kiln/calibrator.h"

namespace kiln {
namespace {

struct TempDir {
  std::string path;
  TempDir() {
    char t[] = "/tmp/kiln_calib_XXXXXX";
    path = mkdtemp(t);
  }
  ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
  void write(const std::string& name, const std::string& bytes) const {
    std::ofstream(path + "/" + name, std::ios::binary) << bytes;
  }
};

std::string floats(const std::vector<float>& v) { return std::string(reinterpret_cast<const char*>(v.data()), v.size() * 4); }

// A version-1 .npy of float32 values with `shape` ("(3,)", "(2, 3)").
std::string npy(const std::string& shape, const std::vector<float>& v) {
  std::string h = "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }";
  while ((10 + h.size() + 1) % 64) h += ' ';
  h += '\n';
  std::string out = "\x93NUMPY\x01";
  out += '\0';
  out += static_cast<char>(h.size() & 0xff);
  out += static_cast<char>(h.size() >> 8);
  return out + h + floats(v);
}

std::vector<float> next_batch(Int8Calibrator& c, const char* name, size_t n, bool* ok) {
  void* b[1] = {nullptr};
  const char* names[1] = {name};
  *ok = c.getBatch(b, names, 1);
  if (!*ok || !b[0]) return {};
  const float* f = static_cast<const float*>(b[0]);
  return std::vector<float>(f, f + n);
}

TEST(TensorFileCalibrator, GroupsSamplesIntoBatches) {
  TempDir d;
  d.write("a.npy", npy("(3,)", {1, 2, 3}));
  d.write("b.npy", npy("(1, 3)", {4, 5, 6}));
  d.write("c.bin", floats({7, 8, 9, 10, 11, 12}));  // a whole batch
  d.write("d.npy", npy("(3,)", {13, 14, 15}));      // half a batch: dropped
  d.write("notes.txt", "ignored");
  TensorFileCalibratorOptions o;
  o.directory = d.path;
  o.inputs = {{"x", TensorType::kFLOAT, {2, 3}}};
  std::string error;
  auto c = createTensorFileCalibrator(o, &error);
  ASSERT_TRUE(c) << error;
  bool ok = false;
  EXPECT_EQ(next_batch(*c, "x", 6, &ok), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(next_batch(*c, "x", 6, &ok), (std::vector<float>{7, 8, 9, 10, 11, 12}));
  next_batch(*c, "x", 6, &ok);
  EXPECT_FALSE(ok);
  EXPECT_EQ(c->getLastError(), nullptr);
}

TEST(TensorFileCalibrator, BadFilesAreNamed) {
  TempDir d;
  d.write("a.bin", floats({1, 2}));
  TensorFileCalibratorOptions o;
  o.directory = d.path;
  o.inputs = {{"x", TensorType::kFLOAT, {1, 3}}};
  std::string error;
  auto c = createTensorFileCalibrator(o, &error);
  ASSERT_TRUE(c) << error;
  bool ok = true;
  next_batch(*c, "x", 3, &ok);
  EXPECT_FALSE(ok);
  ASSERT_NE(c->getLastError(), nullptr);
  EXPECT_NE(std::string(c->getLastError()).find("a.bin' has 8 bytes but input 'x' (float 1x3) takes 12"), std::string::npos)
      << c->getLastError();

  TempDir e;
  e.write("a.npy", npy("(4,)", {1, 2, 3, 4}));
  o.directory = e.path;
  c = createTensorFileCalibrator(o, &error);
  ASSERT_TRUE(c) << error;
  next_batch(*c, "x", 3, &ok);
  EXPECT_FALSE(ok);
  EXPECT_NE(std::string(c->getLastError()).find("a.npy' has shape 4 but input 'x' takes float 1x3"), std::string::npos)
      << c->getLastError();
}

TEST(TensorFileCalibrator, EmptyOrMissingFoldersAreErrors) {
  TempDir d;
  TensorFileCalibratorOptions o;
  o.directory = d.path;
  o.inputs = {{"x", TensorType::kFLOAT, {1, 3}}};
  std::string error;
  EXPECT_FALSE(createTensorFileCalibrator(o, &error));
  EXPECT_NE(error.find("no .bin or .npy file in"), std::string::npos) << error;
  o.inputs.push_back({"y", TensorType::kFLOAT, {1, 3}});
  EXPECT_FALSE(createTensorFileCalibrator(o, &error));
  EXPECT_NE(error.find("no directory '" + d.path + "/x' for input 'x' (a network of 2 inputs"), std::string::npos) << error;
}

TEST(ImageCalibrator, EmptyFolderAndUnreadableImages) {
  TempDir d;
  ImageCalibratorOptions o;
  o.directory = d.path;
  o.input = {"x", TensorType::kFLOAT, {1, 3, 8, 8}};
  std::string error;
  EXPECT_FALSE(createImageCalibrator(o, &error));
  EXPECT_NE(error.find("no image (png/jpg/jpeg) in directory"), std::string::npos) << error;
  d.write("a.png", "this is not a png");
  auto c = createImageCalibrator(o, &error);
  ASSERT_TRUE(c) << error;
  bool ok = true;
  next_batch(*c, "x", 1, &ok);
  EXPECT_FALSE(ok);
  ASSERT_NE(c->getLastError(), nullptr);
  EXPECT_NE(std::string(c->getLastError()).find("a.png': not a PNG or JPEG file"), std::string::npos);
  d.write("b.png", std::string("\x89PNG\r\n\x1A\n", 8) + "truncated");
  o.max_images = 0;
  c = createImageCalibrator(o, &error);
  ASSERT_TRUE(c);
  o.input.shape = {1, 4, 8, 8};
  EXPECT_FALSE(createImageCalibrator(o, &error));
  EXPECT_NE(error.find("has 4 channels in NCHW"), std::string::npos) << error;
}


// Every truncation of a good 3x2 PNG is one error from the batch that reads it (or, with only
// the IEND chunk cut, the image), never a crash; the whole file decodes.
TEST(ImageCalibrator, TruncatedImagesAreOneError) {
  const std::string png("\x89\x50\x4e\x47\x0d\x0a\x1a\x0a\x00\x00\x00\x0d\x49\x48\x44\x52\x00\x00\x00\x03\x00\x00\x00\x02\x08\x02\x00\x00\x00\x12\x16\xf1\x4d\x00\x00\x00\x1c\x49\x44\x41\x54\x78\x9c\x63\xe4\x3a\x21\xc7\xc0\xc0\xc0\xc0\xc0\xc0\xc4\xc0\xc0\xf0\xd5\xe2\x11\x03\x03\x03\x00\x1b\x66\x03\x03\x1d\xf6\x0a\x30\x00\x00\x00\x00\x49\x45\x4e\x44\xae\x42\x60\x82", 85);
  ImageCalibratorOptions o;
  o.input = {"x", TensorType::kFLOAT, {1, 3, 2, 3}};
  o.resize = ImageCalibratorOptions::Resize::kNONE;
  for (size_t n = 8; n <= png.size(); ++n) {
    TempDir d;
    d.write("a.png", png.substr(0, n));
    o.directory = d.path;
    std::string error;
    auto c = createImageCalibrator(o, &error);
    ASSERT_TRUE(c) << error;
    bool ok = false;
    next_batch(*c, "x", 18, &ok);
    if (n == png.size()) EXPECT_TRUE(ok) << (c->getLastError() ? c->getLastError() : "");
    if (ok) {
      EXPECT_GE(n, png.size() - 12) << "decoded without its image data";  // only the IEND chunk may go
      continue;
    }
    ASSERT_NE(c->getLastError(), nullptr) << n << " bytes";
    EXPECT_NE(std::string(c->getLastError()).find("a.png'"), std::string::npos) << c->getLastError();
  }
}

}  // namespace
}  // namespace kiln
