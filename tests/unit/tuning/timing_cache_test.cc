// The timing cache file (src/tuning/timing_cache.h): round trip, merge, and each way a file can
// be bad (truncated, edited, another version, duplicate or invalid entries) refused with its line.
#include "tuning/timing_cache.h"

#include <gtest/gtest.h>

#include <cmath>

namespace kiln::tuning {
namespace {

const std::string kH100 = "NVIDIA H100 80GB HBM3|sm_90|cudnn 91400|cublasLt 130100";

TimingCache sample() {
  TimingCache c;
  EXPECT_TRUE(c.record(kH100, "Conv|f16|NHWC|8x64x56x56|k3s1p1", {"cuda.conv.cudnn.1", 0.0421, 20}));
  EXPECT_TRUE(c.record(kH100, "Conv|f16|NHWC|8x64x56x56|k3s1p1", {"cuda.conv.cudnn.0", 0.0518, 20}));
  EXPECT_TRUE(c.record(kH100, "a\tsignature\nwith \\ escapes", {"cuda.gemm.cublaslt.7", 1.0 / 3.0, 1}));
  EXPECT_TRUE(c.record("other GPU|sm_80", "Conv|f16|NHWC|8x64x56x56|k3s1p1", {"cuda.conv.cudnn.1", 0.09, 5}));
  return c;
}

TEST(TimingCache, RoundTripsExactlyAndDeterministically) {
  TimingCache c = sample();
  std::string text = c.serialize();
  EXPECT_EQ(text.rfind("kiln-timing-cache 1\n", 0), 0u);
  auto back = TimingCache::parse(text, "cache");
  ASSERT_TRUE(back) << back.status().message();
  EXPECT_TRUE(*back == c);
  EXPECT_EQ(back->serialize(), text);
  EXPECT_EQ(back->size(), 4u);
  const auto* conv = back->lookup(kH100, "Conv|f16|NHWC|8x64x56x56|k3s1p1");
  ASSERT_NE(conv, nullptr);
  ASSERT_EQ(conv->size(), 2u);
  EXPECT_EQ((*conv)[0].tactic, "cuda.conv.cudnn.0");  // sorted by id
  EXPECT_EQ(back->lookup(kH100, "a\tsignature\nwith \\ escapes")->at(0).median_ms, 1.0 / 3.0);
  EXPECT_EQ(back->lookup("no such GPU", "Conv|f16|NHWC|8x64x56x56|k3s1p1"), nullptr);
}

TEST(TimingCache, RecordReplacesAndRefusesBadTimings) {
  TimingCache c = sample();
  ASSERT_TRUE(c.record(kH100, "Conv|f16|NHWC|8x64x56x56|k3s1p1", {"cuda.conv.cudnn.1", 0.04, 50}));
  EXPECT_EQ(c.size(), 4u);
  EXPECT_EQ(c.lookup(kH100, "Conv|f16|NHWC|8x64x56x56|k3s1p1")->at(1).median_ms, 0.04);
  EXPECT_FALSE(c.record(kH100, "L", {"t", -1, 1}));
  EXPECT_FALSE(c.record(kH100, "L", {"t", std::nan(""), 1}));
  EXPECT_FALSE(c.record(kH100, "L", {"t", 1, 0}));
  EXPECT_FALSE(c.record(kH100, "L", {"", 1, 1}));
  EXPECT_FALSE(c.record("", "L", {"t", 1, 1}));
  EXPECT_EQ(c.size(), 4u);
}

TEST(TimingCache, MergeAddsWhatIsMissingAndKeepsOwnTimings) {
  TimingCache a = sample(), b;
  ASSERT_TRUE(b.record(kH100, "Conv|f16|NHWC|8x64x56x56|k3s1p1", {"cuda.conv.cudnn.1", 9.0, 3}));  // both have it
  ASSERT_TRUE(b.record(kH100, "MatMul|f16|8x128x768x768", {"cuda.gemm.cublaslt.3", 0.01, 20}));     // only b
  EXPECT_EQ(a.merge(b), 1);
  EXPECT_EQ(a.size(), 5u);
  EXPECT_EQ(a.lookup(kH100, "Conv|f16|NHWC|8x64x56x56|k3s1p1")->at(1).median_ms, 0.0421);
  EXPECT_EQ(a.merge(b), 0);
}

std::string error_of(const std::string& text) {
  auto c = TimingCache::parse(text, "t.cache");
  return c ? "parsed" : c.status().message();
}

TEST(TimingCache, BadFilesAreRefusedNamingTheLine) {
  const std::string good = sample().serialize();
  EXPECT_EQ(error_of(""), "t.cache:0: empty file");
  EXPECT_NE(error_of(good.substr(0, good.size() - 1)).find("t.cache:6: the file ends inside a line"), std::string::npos);
  // Cut after a whole entry line: no end line.
  EXPECT_NE(error_of(good.substr(0, good.find('\n', good.find('\n') + 1) + 1)).find("no end line"), std::string::npos);
  // One digit of a time changed: the checksum says so (and the file still parses without it).
  std::string edited = good;
  size_t at = edited.find("0.0421");
  ASSERT_NE(at, std::string::npos);
  edited[at + 5] = '2';
  EXPECT_NE(error_of(edited).find(":6: checksum mismatch"), std::string::npos) << error_of(edited);
  EXPECT_TRUE(TimingCache::parse(edited, "t.cache", /*check_sum=*/false));
  EXPECT_NE(error_of("kiln-timing-cache 2\nend 0 0000000000000000\n").find("t.cache:1: format version 2, this kiln reads 1"),
            std::string::npos);
  EXPECT_NE(error_of("TRT-8601-EntropyCalibration2\n").find("not a kiln timing cache"), std::string::npos);
  auto entry = [](const std::string& line) {
    return "kiln-timing-cache 1\n" + line + "\nend 1 0000000000000000\n";
  };
  EXPECT_NE(error_of(entry("d\ts\tt\t1.5")).find(":2: an entry has 4 tab-separated fields"), std::string::npos);
  EXPECT_NE(error_of(entry("d\ts\tt\tfast\t3")).find(":2: bad time 'fast'"), std::string::npos);
  EXPECT_NE(error_of(entry("d\ts\tt\t-1\t3")).find(":2: bad timing"), std::string::npos);
  EXPECT_NE(error_of(entry("d\ts\tt\t1\t0")).find(":2: bad timing"), std::string::npos);
  EXPECT_NE(error_of(entry("d\ts\\x\tt\t1\t1")).find(":2: bad escape"), std::string::npos);
  EXPECT_NE(error_of("kiln-timing-cache 1\nd\ts\tt\t1\t1\nd\ts\tt\t2\t1\nend 2 0000000000000000\n").find(":3: tactic 't' timed twice"),
            std::string::npos);
  EXPECT_NE(error_of("kiln-timing-cache 1\nd\ts\tt\t1\t1\nend 5 0000000000000000\n").find("counts 5 entries, the file has 1"),
            std::string::npos);
  EXPECT_NE(error_of(good + "x\n").find("text after the end line"), std::string::npos);
}

}  // namespace
}  // namespace kiln::tuning
