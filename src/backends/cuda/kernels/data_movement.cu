// CUDA kernels of the data_movement family, part 1: the strided copy every "output element i
// reads input offset base + sum idx_d * stride_d" op shares (Transpose, Slice, Expand, Tile,
// DepthToSpace, SpaceToDepth), with a shared-memory tiled transpose for batched 2-D swaps
// (last-two-dims swap, NCHW->NHWC and back). Other ops of the family live in
// data_movement_{concat,gather,pad,resize}.cu.
#include <algorithm>
#include <cstdlib>

#include "backends/cuda/kernels/data_movement_common.h"
#include "ir/ops/shape_params.h"

namespace kiln::cuda {
namespace dm {

namespace {

struct StridedArgs {
  int rank;
  int64_t base;
  int64_t dims[kMaxRank];
  int64_t strides[kMaxRank];
};

// 32-bit index math when everything fits (integer division is much cheaper), else 64-bit.
template <class U, class I>
__global__ void strided_copy_kernel(const U* __restrict__ src, U* __restrict__ dst, I n, StridedArgs a) {
  for (I i = blockIdx.x * I(blockDim.x) + threadIdx.x; i < n; i += I(gridDim.x) * blockDim.x) {
    I rem = i;
    I off = I(a.base);
    for (int d = a.rank - 1; d > 0; --d) {
      I dim = I(a.dims[d]);
      I q = rem / dim;
      off += (rem - q * dim) * I(a.strides[d]);
      rem = q;
    }
    off += rem * I(a.strides[0]);
    dst[i] = src[off];
  }
}

// Batched 2-D swap: out[b, r, c] = src[boff(b) + r + c * sc], read along r (contiguous in the
// source) and written along c (contiguous in the output) through a padded 32x33 tile.
constexpr int kTile = 32, kRows = 8;
template <class U>
__global__ void tile_transpose_kernel(const U* __restrict__ src, U* __restrict__ dst, int64_t R, int64_t C, int64_t sc,
                                      int64_t batch, StridedArgs bt) {
  __shared__ U tile[kTile][kTile + 1];
  const int64_t r0 = int64_t(blockIdx.y) * kTile, c0 = int64_t(blockIdx.x) * kTile;
  for (int64_t b = blockIdx.z; b < batch; b += gridDim.z) {
    int64_t rem = b, boff = bt.base;
    for (int d = bt.rank - 1; d >= 0; --d) {
      boff += (rem % bt.dims[d]) * bt.strides[d];
      rem /= bt.dims[d];
    }
    for (int k = threadIdx.y; k < kTile; k += kRows) {  // k: column within the tile
      int64_t r = r0 + threadIdx.x, c = c0 + k;
      if (r < R && c < C) tile[k][threadIdx.x] = src[boff + r + c * sc];
    }
    __syncthreads();
    U* out = dst + b * R * C;
    for (int k = threadIdx.y; k < kTile; k += kRows) {  // k: row within the tile
      int64_t r = r0 + k, c = c0 + threadIdx.x;
      if (r < R && c < C) out[r * C + c] = tile[threadIdx.x][k];
    }
    __syncthreads();
  }
}

// Batched 2-D swap with a short output row (C < 8: an image's 3 channels going channels-last):
// one thread per output row gathers its C elements, each read coalesced along r. (A
// [128,3,224,224] float16 image on H100: 0.092 ms with the element-per-thread strided copy,
// 0.074 ms with this; its memory time is 0.023 ms.)
template <class U>
__global__ void narrow_transpose_kernel(const U* __restrict__ src, U* __restrict__ dst, int64_t R, int C, int64_t sc,
                                        int64_t rows, StridedArgs bt) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < rows; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t rem = i / R, boff = bt.base;
    const int64_t r = i - rem * R;
    for (int d = bt.rank - 1; d >= 0; --d) {
      boff += (rem % bt.dims[d]) * bt.strides[d];
      rem /= bt.dims[d];
    }
    for (int k = 0; k < C; ++k) dst[i * C + k] = src[boff + r + k * sc];
  }
}

template <class U>
Status launch(LaunchContext& c, const void* src, void* dst, const StridedArgs& a, int64_t n, int64_t max_off) {
  const int64_t grid = cuda_grid_for(n, kThreads);
  const int rank = a.rank;
  // Tiled transpose: the output's innermost dim is strided, the one before it contiguous.
  if (rank >= 2 && a.strides[rank - 2] == 1 && a.strides[rank - 1] > 1 && a.dims[rank - 1] >= 8 &&
      a.dims[rank - 2] >= 8 && sizeof(U) <= 8) {
    StridedArgs bt{rank - 2, a.base, {}, {}};
    int64_t batch = 1;
    for (int d = 0; d < rank - 2; ++d) {
      bt.dims[d] = a.dims[d];
      bt.strides[d] = a.strides[d];
      batch *= a.dims[d];
    }
    const int64_t R = a.dims[rank - 2], C = a.dims[rank - 1];
    dim3 grid3(unsigned((C + kTile - 1) / kTile), unsigned((R + kTile - 1) / kTile), unsigned(std::min<int64_t>(batch, 65535)));
    if (grid3.y <= 65535) {
      tile_transpose_kernel<U><<<grid3, dim3(kTile, kRows), 0, c.stream>>>(static_cast<const U*>(src), static_cast<U*>(dst),
                                                                          R, C, a.strides[rank - 1], batch, bt);
      return Status::ok();
    }
  }
  if (rank >= 2 && a.strides[rank - 2] == 1 && a.strides[rank - 1] > 1 && a.dims[rank - 1] < 8 && a.dims[rank - 2] >= 32) {
    StridedArgs bt{rank - 2, a.base, {}, {}};
    for (int d = 0; d < rank - 2; ++d) {
      bt.dims[d] = a.dims[d];
      bt.strides[d] = a.strides[d];
    }
    const int64_t C = a.dims[rank - 1], rows = n / C;
    narrow_transpose_kernel<U><<<cuda_grid_for(rows, kThreads), kThreads, 0, c.stream>>>(
        static_cast<const U*>(src), static_cast<U*>(dst), a.dims[rank - 2], int(C), a.strides[rank - 1], rows, bt);
    return Status::ok();
  }
  if (n < (int64_t(1) << 31) && max_off < (int64_t(1) << 31))
    strided_copy_kernel<U, int32_t><<<grid, kThreads, 0, c.stream>>>(static_cast<const U*>(src), static_cast<U*>(dst), int32_t(n), a);
  else
    strided_copy_kernel<U, int64_t><<<grid, kThreads, 0, c.stream>>>(static_cast<const U*>(src), static_cast<U*>(dst), n, a);
  return Status::ok();
}

}  // namespace

Status strided_copy(LaunchContext& c, const void* src, int64_t base, std::vector<int64_t> strides, void* dst,
                    std::vector<int64_t> dims, size_t esize) {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  if (n == 0) return Status::ok();
  // Drop size-1 dims, then merge each dim into the one after it when they are contiguous.
  std::vector<int64_t> md, ms;
  for (size_t d = 0; d < dims.size(); ++d)
    if (dims[d] != 1) { md.push_back(dims[d]); ms.push_back(strides[d]); }
  std::vector<int64_t> cd, cs;
  for (size_t d = 0; d < md.size(); ++d) {
    if (!cd.empty() && cs.back() == ms[d] * md[d]) {
      cd.back() *= md[d];
      cs.back() = ms[d];
    } else {
      cd.push_back(md[d]);
      cs.push_back(ms[d]);
    }
  }
  if (cd.empty()) { cd.push_back(1); cs.push_back(0); }
  // Widen the innermost contiguous run into units of up to 16 bytes.
  if (cs.back() == 1) {
    size_t w = widest_unit(size_t(cd.back()) * esize, {src, dst});
    if (w > esize) {
      const int64_t f = int64_t(w / esize);
      bool ok = (base % f) == 0;
      for (size_t d = 0; d + 1 < cs.size(); ++d) ok = ok && (cs[d] % f) == 0;
      if (ok) {
        cd.back() /= f;
        for (size_t d = 0; d + 1 < cs.size(); ++d) cs[d] /= f;
        base /= f;
        n /= f;
        esize = w;
      }
    }
  }
  if (cd.size() > size_t(kMaxRank)) return c.fail("copy of rank ", cd.size(), " is above the CUDA kernel's limit of ", kMaxRank);
  StridedArgs a{int(cd.size()), base, {}, {}};
  int64_t max_off = std::llabs(base);
  for (size_t d = 0; d < cd.size(); ++d) {
    a.dims[d] = cd[d];
    a.strides[d] = cs[d];
    max_off += std::llabs(cs[d]) * (cd[d] - 1);
  }
  switch (esize) {
    case 1: return launch<uint8_t>(c, src, dst, a, n, max_off);
    case 2: return launch<uint16_t>(c, src, dst, a, n, max_off);
    case 4: return launch<uint32_t>(c, src, dst, a, n, max_off);
    case 8: return launch<unsigned long long>(c, src, dst, a, n, max_off);
    case 16: return launch<uint4>(c, src, dst, a, n, max_off);
    default: return c.fail("element size ", esize, " is not supported");
  }
}

Expected<std::vector<int64_t>> host_ints(const LaunchContext& c, size_t i, const char* what) {
  const Tensor* t = i < c.host_inputs.size() ? c.host_inputs[i] : nullptr;
  if (!t) return c.fail(what, " (input ", i, ") has no host value: the CUDA kernel needs it known when the engine runs");
  auto v = t->to_int64_vector();
  if (!v) return c.fail(what, ": ", v.status().message());
  return v;
}

namespace {

size_t esize_of(const LaunchContext& c) { return dtype_size(c.outputs[0].dtype); }

Status transpose(LaunchContext& c) {
  const DeviceTensor &x = c.inputs[0], &y = c.outputs[0];
  std::vector<int64_t> perm = c.node.attr_ints("perm");
  if (!c.node.has_attr("perm"))
    for (size_t i = x.dims.size(); i-- > 0;) perm.push_back(int64_t(i));
  if (perm.size() != x.dims.size()) return c.fail("perm has ", perm.size(), " entries for rank ", x.dims.size());
  std::vector<int64_t> in_strides = contiguous_strides(x.dims), strides;
  for (int64_t p : perm) strides.push_back(in_strides[size_t(p < 0 ? p + int64_t(x.dims.size()) : p)]);
  return strided_copy(c, x.data, 0, strides, y.data, y.dims, esize_of(c));
}

// Slice: starts/ends/axes/steps come from the host (attributes before opset 10, else the host
// copies of inputs 1-4) and are resolved by the same resolve_slice the CPU kernel uses.
Status slice(LaunchContext& c) {
  const DeviceTensor &x = c.inputs[0], &y = c.outputs[0];
  const bool attrs = c.node.opset < 10;
  auto ints = [&](size_t i, const char* attr) { return read_ints(c.node, c.host_inputs, i, attrs ? attr : nullptr); };
  KILN_ASSIGN_OR_RETURN(IntList starts, ints(1, "starts"));
  KILN_ASSIGN_OR_RETURN(IntList ends, ints(2, "ends"));
  KILN_ASSIGN_OR_RETURN(IntList axes, ints(3, "axes"));
  IntList steps;
  if (!attrs) { KILN_ASSIGN_OR_RETURN(steps, read_ints(c.node, c.host_inputs, 4, nullptr)); }
  for (const IntList* l : {&starts, &ends, &axes, &steps})
    if (l->present && !l->known) return c.fail("Slice parameters have no host value when the engine runs");
  auto r = resolve_slice(x.dims, starts.values, ends.values, axes, steps);
  if (!r) return c.fail(r.status().message());
  std::vector<int64_t> in_strides = contiguous_strides(x.dims), strides(x.dims.size());
  int64_t base = 0;
  for (size_t d = 0; d < x.dims.size(); ++d) {
    base += (*r)[d].start * in_strides[d];
    strides[d] = (*r)[d].step * in_strides[d];
  }
  return strided_copy(c, x.data, base, strides, y.data, y.dims, esize_of(c));
}

Status expand(LaunchContext& c) {
  const DeviceTensor &x = c.inputs[0], &y = c.outputs[0];
  if (x.dims.size() > y.dims.size()) return c.fail("input rank exceeds output rank");
  std::vector<int64_t> strides(y.dims.size(), 0), in_strides = contiguous_strides(x.dims);
  const size_t lead = y.dims.size() - x.dims.size();
  for (size_t d = 0; d < x.dims.size(); ++d) strides[lead + d] = x.dims[d] == 1 ? 0 : in_strides[d];
  return strided_copy(c, x.data, 0, strides, y.data, y.dims, esize_of(c));
}

// Tile's output, seen as [r0, d0, r1, d1, ...], reads the input with stride 0 on the r axes.
Status tile(LaunchContext& c) {
  const DeviceTensor &x = c.inputs[0], &y = c.outputs[0];
  std::vector<int64_t> in_strides = contiguous_strides(x.dims), dims, strides;
  for (size_t d = 0; d < x.dims.size(); ++d) {
    dims.push_back(x.dims[d] ? y.dims[d] / x.dims[d] : 0);
    dims.push_back(x.dims[d]);
    strides.push_back(0);
    strides.push_back(in_strides[d]);
  }
  return strided_copy(c, x.data, 0, strides, y.data, dims, esize_of(c));
}

// Same views as the CPU kernels (shape_slice.cc): DCR/CRD DepthToSpace and SpaceToDepth.
Status depth_to_space(LaunchContext& c) {
  const DeviceTensor& x = c.inputs[0];
  const int64_t b = c.node.attr_int("blocksize", 1);
  const int64_t C = x.dims[1], H = x.dims[2], W = x.dims[3], Cq = C / (b * b), HW = H * W;
  const bool dcr = c.node.attr_string("mode", "DCR") == "DCR";
  const int64_t s_c = dcr ? HW : b * b * HW, s_b1 = dcr ? b * Cq * HW : b * HW, s_b2 = dcr ? Cq * HW : HW;
  return strided_copy(c, x.data, 0, {C * HW, s_c, W, s_b1, 1, s_b2}, c.outputs[0].data, {x.dims[0], Cq, H, b, W, b},
                      esize_of(c));
}

Status space_to_depth(LaunchContext& c) {
  const DeviceTensor& x = c.inputs[0];
  const int64_t b = c.node.attr_int("blocksize", 1);
  const int64_t C = x.dims[1], H = x.dims[2], W = x.dims[3];
  return strided_copy(c, x.data, 0, {C * H * W, W, 1, H * W, b * W, b}, c.outputs[0].data,
                      {x.dims[0], b, b, C, H / b, W / b}, esize_of(c));
}

// Byte types, and a known input rank within `max_rank`.
template <int max_rank>
Support typed_rank(const Node& n) {
  Support s = byte_types(n);
  if (!s.ok) return s;
  const Value* x = n.inputs.empty() ? nullptr : n.inputs[0];
  if (!x || !x->shape.rank_known()) return Support::no("input rank unknown");
  if (x->shape.rank() > size_t(max_rank)) return Support::no("rank above " + std::to_string(max_rank));
  if (!n.outputs[0]->shape.rank_known() || n.outputs[0]->shape.rank() > size_t(kMaxRank))
    return Support::no("output rank unknown or above 8");
  return Support::yes();
}

Support check_space(const Node& n) {
  Support s = typed_rank<4>(n);
  if (!s.ok) return s;
  if (n.inputs[0]->shape.rank() != 4) return Support::no("input is not 4-D");
  return Support::yes();
}

}  // namespace
}  // namespace dm

void register_cuda_data_movement_kernels(CudaKernelTable& t) {
  using namespace dm;
  t.add({"", "Transpose", "cuda.data_movement", transpose, typed_rank<kMaxRank>});
  t.add({"", "Slice", "cuda.data_movement", slice, typed_rank<kMaxRank>});
  t.add({"", "Expand", "cuda.data_movement", expand, typed_rank<kMaxRank>});
  t.add({"", "Tile", "cuda.data_movement", tile, typed_rank<4>});  // 2 dims per input dim
  t.add({"", "DepthToSpace", "cuda.data_movement", depth_to_space, check_space});
  t.add({"", "SpaceToDepth", "cuda.data_movement", space_to_depth, check_space});
  register_concat_kernels(t);
  register_gather_kernels(t);
  register_pad_fill_kernels(t);
  register_resize_kernels(t);
}

}  // namespace kiln::cuda
