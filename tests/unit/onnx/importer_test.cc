// The importer on hand-built ONNX models: every encoding it must read, and every kind of bad
// input it must refuse with one clear error (never a crash).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "backends/cpu/executor.h"
#include "onnx/importer.h"
#include "onnx/onnx_pb.h"
#include "onnx/tensor_decode.h"

namespace kiln {
namespace {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/kiln_importer_XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { std::system(("rm -rf " + path_).c_str()); }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

void add_io(onnx::GraphProto* g, bool input, const std::string& name, std::vector<int64_t> dims) {
  auto* vi = input ? g->add_input() : g->add_output();
  vi->set_name(name);
  auto* tt = vi->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(onnx::TensorProto_DataType_FLOAT);
  for (int64_t d : dims) tt->mutable_shape()->add_dim()->set_dim_value(d);
}

// y = x + w, w a float[2,2] initializer encoded as raw data.
onnx::ModelProto add_model() {
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.add_opset_import()->set_version(17);
  auto* g = m.mutable_graph();
  g->set_name("add");
  add_io(g, true, "x", {2, 2});
  add_io(g, false, "y", {2, 2});
  auto* w = g->add_initializer();
  w->set_name("w");
  w->set_data_type(onnx::TensorProto_DataType_FLOAT);
  w->add_dims(2);
  w->add_dims(2);
  float vals[4] = {1, 2, 3, 4};
  w->set_raw_data(std::string(reinterpret_cast<char*>(vals), sizeof vals));
  auto* n = g->add_node();
  n->set_op_type("Add");
  n->set_name("add0");
  n->add_input("x");
  n->add_input("w");
  n->add_output("y");
  return m;
}

std::string write_model(const TempDir& dir, const onnx::ModelProto& m, const std::string& name = "m.onnx") {
  std::string path = dir.file(name);
  std::ofstream(path, std::ios::binary) << m.SerializeAsString();
  return path;
}

std::string import_error(const std::string& path) {
  auto g = onnx_import::import_file(path);
  return g.is_ok() ? std::string() : g.status().message();
}

std::vector<float> run_add(const Graph& g) {
  auto ex = cpu::Executor::create(g);
  EXPECT_TRUE(ex.is_ok()) << ex.status().message();
  auto out = (*ex)->run({{"x", Tensor::from_vector<float>({2, 2}, {10, 20, 30, 40})}});
  EXPECT_TRUE(out.is_ok()) << out.status().message();
  const float* p = (*out)[0].data<float>();
  return {p[0], p[1], p[2], p[3]};
}

TEST(Importer, ReadsRawDataModelAndRuns) {
  TempDir dir;
  auto g = onnx_import::import_file(write_model(dir, add_model()));
  ASSERT_TRUE(g.is_ok()) << g.status().message();
  EXPECT_EQ((*g)->find_value("y")->shape.to_string(), "[2,2]");
  EXPECT_EQ(run_add(**g), (std::vector<float>{11, 22, 33, 44}));
}

TEST(Importer, ReadsTypedFieldsAndFloat16InInt32Data) {
  TempDir dir;
  auto m = add_model();
  auto* w = m.mutable_graph()->mutable_initializer(0);
  w->clear_raw_data();
  for (float v : {1.f, 2.f, 3.f, 4.f}) w->add_float_data(v);
  auto g = onnx_import::import_file(write_model(dir, m));
  ASSERT_TRUE(g.is_ok()) << g.status().message();
  EXPECT_EQ(run_add(**g), (std::vector<float>{11, 22, 33, 44}));

  onnx::TensorProto h;
  h.set_name("h");
  h.set_data_type(onnx::TensorProto_DataType_FLOAT16);
  h.add_dims(2);
  h.add_int32_data(0x3c00);  // 1.0
  h.add_int32_data(0xc000);  // -2.0
  auto t = onnx_import::decode_tensor(h, nullptr);
  ASSERT_TRUE(t.is_ok()) << t.status().message();
  EXPECT_EQ(t->get_as_double(0), 1.0);
  EXPECT_EQ(t->get_as_double(1), -2.0);
}

// int4 in raw_data and int32_data is packed two per byte (low nibble first), float8 one
// element per int32 entry; a packed byte count that does not fit the shape is refused.
TEST(Importer, DecodesPackedAndFloat8Tensors) {
  onnx::TensorProto p;
  p.set_name("w4");
  p.set_data_type(22);  // INT4 (the bundled onnx.proto predates it; the field is an int32)
  p.add_dims(3);
  p.set_raw_data(std::string("\x9F\x07", 2));  // -1, -7, 7
  auto t = onnx_import::decode_tensor(p, nullptr);
  ASSERT_TRUE(t.is_ok()) << t.status().message();
  EXPECT_EQ(t->get_as_double(0), -1);
  EXPECT_EQ(t->get_as_double(1), -7);
  EXPECT_EQ(t->get_as_double(2), 7);
  p.set_raw_data(std::string("\x9F\x07\x00", 3));
  auto bad = onnx_import::decode_tensor(p, nullptr);
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("w4"), std::string::npos) << bad.status().message();
  p.clear_raw_data();
  p.add_int32_data(0x9F);
  p.add_int32_data(0x07);
  auto fields = onnx_import::decode_tensor(p, nullptr);
  ASSERT_TRUE(fields.is_ok()) << fields.status().message();
  EXPECT_EQ(fields->get_as_double(1), -7);

  onnx::TensorProto f;
  f.set_name("f8");
  f.set_data_type(17);  // FLOAT8E4M3FN
  f.add_dims(2);
  f.add_int32_data(0x38);  // 1.0
  f.add_int32_data(0xFE);  // -448
  auto g = onnx_import::decode_tensor(f, nullptr);
  ASSERT_TRUE(g.is_ok()) << g.status().message();
  EXPECT_EQ(g->get_as_double(0), 1.0);
  EXPECT_EQ(g->get_as_double(1), -448.0);
}

TEST(Importer, ReadsExternalDataAndInitializersListedAsInputs) {
  TempDir dir;
  auto m = add_model();
  auto* w = m.mutable_graph()->mutable_initializer(0);
  std::string raw = w->raw_data();
  { std::ofstream(dir.file("weights.bin"), std::ios::binary) << std::string(8, '\0') << raw; }
  w->clear_raw_data();
  w->set_data_location(onnx::TensorProto_DataLocation_EXTERNAL);
  auto* kv = w->add_external_data();
  kv->set_key("location");
  kv->set_value("weights.bin");
  kv = w->add_external_data();
  kv->set_key("offset");
  kv->set_value("8");
  add_io(m.mutable_graph(), true, "w", {2, 2});  // old exporters list weights as inputs too
  auto g = onnx_import::import_file(write_model(dir, m));
  ASSERT_TRUE(g.is_ok()) << g.status().message();
  EXPECT_EQ((*g)->inputs.size(), 1u);
  EXPECT_EQ(run_add(**g), (std::vector<float>{11, 22, 33, 44}));
}

TEST(ImporterBadInput, MissingFile) {
  EXPECT_NE(import_error("/nonexistent/model.onnx").find("cannot open '/nonexistent/model.onnx'"), std::string::npos);
}

TEST(ImporterBadInput, TruncatedAndCorruptedFilesNeverCrash) {
  TempDir dir;
  std::string bytes = add_model().SerializeAsString();
  for (size_t cut = 1; cut < bytes.size(); cut += 3) {
    std::string path = dir.file("cut.onnx");
    std::ofstream(path, std::ios::binary) << bytes.substr(0, cut);
    EXPECT_FALSE(import_error(path).empty()) << "truncated at " << cut << " was accepted";
  }
  for (size_t pos = 0; pos < bytes.size(); ++pos) {  // flipped bytes: an error or a valid model
    std::string b = bytes;
    b[pos] = static_cast<char>(b[pos] ^ 0x5a);
    std::string path = dir.file("flip.onnx");
    std::ofstream(path, std::ios::binary) << b;
    (void)onnx_import::import_file(path);
  }
  EXPECT_NE(import_error(dir.file("cut.onnx")).find("cut.onnx"), std::string::npos);
}

TEST(ImporterBadInput, MissingExternalDataFile) {
  TempDir dir;
  auto m = add_model();
  auto* w = m.mutable_graph()->mutable_initializer(0);
  w->clear_raw_data();
  w->set_data_location(onnx::TensorProto_DataLocation_EXTERNAL);
  auto* kv = w->add_external_data();
  kv->set_key("location");
  kv->set_value("missing.bin");
  std::string e = import_error(write_model(dir, m));
  EXPECT_NE(e.find("tensor 'w'"), std::string::npos) << e;
  EXPECT_NE(e.find("missing.bin"), std::string::npos) << e;
}

TEST(ImporterBadInput, InitializerSizeDisagreesWithShape) {
  TempDir dir;
  auto m = add_model();
  m.mutable_graph()->mutable_initializer(0)->add_dims(3);  // now [2,2,3]: 48 bytes needed, 16 given
  std::string e = import_error(write_model(dir, m));
  EXPECT_NE(e.find("tensor 'w' has 16 bytes of raw data"), std::string::npos) << e;
}

TEST(ImporterBadInput, UndefinedInput) {
  TempDir dir;
  auto m = add_model();
  m.mutable_graph()->mutable_node(0)->set_input(1, "nope");
  std::string e = import_error(write_model(dir, m));
  EXPECT_NE(e.find("node 'add0' (Add): input 'nope' is not defined"), std::string::npos) << e;
}

TEST(ImporterBadInput, Cycle) {
  TempDir dir;
  auto m = add_model();
  auto* g = m.mutable_graph();
  g->mutable_node(0)->set_input(1, "z");  // add0 reads z, which add1 makes from y
  auto* n = g->add_node();
  n->set_op_type("Add");
  n->set_name("add1");
  n->add_input("y");
  n->add_input("y");
  n->add_output("z");
  std::string e = import_error(write_model(dir, m));
  EXPECT_NE(e.find("cycle"), std::string::npos) << e;
  EXPECT_NE(e.find("add0"), std::string::npos) << e;
}

TEST(ImporterBadInput, ShapeOverflowsInt64) {
  TempDir dir;
  auto m = add_model();
  auto* w = m.mutable_graph()->mutable_initializer(0);
  w->clear_dims();
  w->add_dims(int64_t(1) << 40);
  w->add_dims(int64_t(1) << 40);
  std::string e = import_error(write_model(dir, m));
  EXPECT_NE(e.find("tensor 'w'"), std::string::npos) << e;
  EXPECT_NE(e.find("overflows int64"), std::string::npos) << e;
}

TEST(ImporterBadInput, ListsEveryUnsupportedOp) {
  TempDir dir;
  auto m = add_model();
  auto* g = m.mutable_graph();
  for (const char* op : {"FancyOpA", "FancyOpB", "FancyOpA"}) {
    auto* n = g->add_node();
    n->set_op_type(op);
    n->set_name(std::string("n_") + op + std::to_string(g->node_size()));
    n->add_input("y");
    n->add_output("o" + std::to_string(g->node_size()));
  }
  std::string e = import_error(write_model(dir, m));
  EXPECT_NE(e.find("unsupported operators (2)"), std::string::npos) << e;
  EXPECT_NE(e.find("FancyOpA (domain 'ai.onnx', opset 17) first at node 'n_FancyOpA2'"), std::string::npos) << e;
  EXPECT_NE(e.find("FancyOpB"), std::string::npos) << e;
}

TEST(ImporterBadInput, UnsupportedIrVersion) {
  TempDir dir;
  auto m = add_model();
  m.set_ir_version(99);
  EXPECT_NE(import_error(write_model(dir, m)).find("IR version 99 is not supported"), std::string::npos);
}

TEST(ImporterBadInput, WrongInputShapeAtRunTime) {
  TempDir dir;
  auto g = onnx_import::import_file(write_model(dir, add_model()));
  ASSERT_TRUE(g.is_ok());
  auto ex = cpu::Executor::create(**g);
  ASSERT_TRUE(ex.is_ok());
  auto out = (*ex)->run({{"x", Tensor::from_vector<float>({3, 2}, {})}});
  ASSERT_FALSE(out.is_ok());
  EXPECT_NE(out.status().message().find("input 'x' expects shape [2,2]"), std::string::npos) << out.status().message();
}

}  // namespace
}  // namespace kiln
