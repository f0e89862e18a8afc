// The .npy reader of --calibData (quant/calibration_files.h) on malformed files: each is one
// error naming the file and what is wrong, never a crash or a read past the end. The fuzz
// target tests/fuzz/fuzz_calibration_npy.cc runs the same parser on mutated inputs.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "quant/calibration_files.h"

namespace kiln::quant {
namespace {

std::vector<uint8_t> bytes(const std::string& s) { return std::vector<uint8_t>(s.begin(), s.end()); }

// A version-`major` .npy with header dict `dict` (padded as numpy pads) and `data` bytes.
std::string npy(const std::string& dict, const std::string& data, int major = 1) {
  std::string h = dict;
  const size_t pre = major == 1 ? 10 : 12;
  while ((pre + h.size() + 1) % 64) h += ' ';
  h += '\n';
  std::string out = "\x93NUMPY";
  out += static_cast<char>(major);
  out += '\0';
  out += static_cast<char>(h.size() & 0xff);
  out += static_cast<char>((h.size() >> 8) & 0xff);
  if (major != 1) out += std::string(2, '\0');
  return out + h + data;
}

std::string f4(const std::string& shape) { return "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }"; }

std::string error_of(const std::string& file) {
  auto r = parse_npy(bytes(file), "a.npy");
  return r ? "" : r.status().message();
}

TEST(NpyParser, WellFormedFilesParse) {
  auto a = parse_npy(bytes(npy(f4("(2, 3)"), std::string(24, '\1'))), "a.npy");
  ASSERT_TRUE(a) << a.status().message();
  EXPECT_EQ(a->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(a->data.size(), 24u);
  auto v2 = parse_npy(bytes(npy(f4("(3,)"), std::string(12, '\0'), 2)), "a.npy");
  ASSERT_TRUE(v2) << v2.status().message();
  auto scalar = parse_npy(bytes(npy(f4("()"), std::string(4, '\0'))), "a.npy");
  ASSERT_TRUE(scalar) << scalar.status().message();
  EXPECT_TRUE(scalar->shape.empty());
}

TEST(NpyParser, MalformedFilesAreOneClearError) {
  const std::string ok = npy(f4("(2,)"), std::string(8, '\0'));
  const struct {
    std::string file, error;
  } cases[] = {
      {"", "'a.npy' is not a .npy file"},
      {"\x93NUMP", "'a.npy' is not a .npy file"},
      {"PK\x03\x04 not numpy at all", "'a.npy' is not a .npy file"},
      {std::string("\x93NUMPY\x09\x00\x10\x00", 10) + std::string(16, ' '), ".npy version 9 is not supported"},
      {std::string("\x93NUMPY\x02\x00\x10\x00", 10), "'a.npy': truncated .npy header"},
      {ok.substr(0, 40), "'a.npy': truncated .npy header"},  // header length past the end
      {std::string("\x93NUMPY\x01\x00\xff\xff", 10) + "{}", "'a.npy': truncated .npy header"},
      {npy("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", std::string(8, '\0')),
       ".npy dtype '>f4' is not supported (little-endian numbers or bool)"},
      {npy("{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", std::string(16, '\0')),
       ".npy dtype '<c8' is not supported"},
      {npy("{'fortran_order': False, 'shape': (2,), }", std::string(8, '\0')), ".npy dtype  is not supported"},
      {npy("{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", std::string(8, '\0')),
       "a Fortran-order .npy array is not supported"},
      {npy("{'descr': '<f4', 'fortran_order': False, }", ""), "'a.npy': bad .npy shape "},
      {npy(f4("[2, 3]"), std::string(24, '\0')), "'a.npy': bad .npy shape [2"},
      {npy(f4("(2, -3)"), ""), "'a.npy': bad .npy shape (2, -3)"},
      {npy(f4("(2, x)"), ""), "'a.npy': bad .npy shape (2, x)"},
      {npy(f4("(1234567890123,)"), ""), "'a.npy': bad .npy shape (1234567890123,)"},
      {npy(f4("(100000, 100000, 1000)"), ""), ".npy shape (100000, 100000, 1000) is too large"},
      {ok.substr(0, ok.size() - 3), "'a.npy': .npy data of 5 bytes for shape 2 (8 expected)"},  // truncated data
      {ok + "extra", "'a.npy': .npy data of 13 bytes for shape 2 (8 expected)"},
  };
  for (const auto& c : cases) {
    const std::string e = error_of(c.file);
    EXPECT_NE(e.find(c.error), std::string::npos) << "want '" << c.error << "', got '" << e << "'";
  }
}

TEST(NpyParser, EveryTruncationOfAGoodFileIsAnError) {
  const std::string ok = npy(f4("(2, 2)"), std::string(16, '\2'));
  for (size_t n = 0; n < ok.size(); ++n) EXPECT_FALSE(error_of(ok.substr(0, n)).empty()) << n << " bytes";
}

}  // namespace
}  // namespace kiln::quant
