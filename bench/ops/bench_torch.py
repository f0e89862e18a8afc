#!/usr/bin/env python3
"""The dm_bench ops in PyTorch (fp16/fp32 on the GPU), timed the same way: mean of 100 runs."""
import torch
import torch.nn.functional as F

def t(name, f, *xs):
    for _ in range(5): f(*xs)
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize(); s.record()
    for _ in range(100): f(*xs)
    e.record(); torch.cuda.synchronize()
    print(f"torch {name:32s} {s.elapsed_time(e) * 10:9.1f} us")

h, f32 = dict(device="cuda", dtype=torch.float16), dict(device="cuda", dtype=torch.float32)
t("transpose_last2_f32", lambda x: x.transpose(1, 2).contiguous(), torch.randn(64, 512, 512, **f32))
t("transpose_nchw_nhwc_f16", lambda x: x.permute(0, 2, 3, 1).contiguous(), torch.randn(32, 256, 56, 56, **h))
t("transpose_nhwc_nchw_f16", lambda x: x.permute(0, 3, 1, 2).contiguous(), torch.randn(32, 56, 56, 256, **h))
t("transpose_bshd_f16", lambda x: x.permute(0, 2, 1, 3).contiguous(), torch.randn(16, 512, 16, 64, **h))
t("concat_f16", lambda a, b: torch.cat([a, b], 1), torch.randn(32, 128, 56, 56, **h), torch.randn(32, 128, 56, 56, **h))
t("split_f16", lambda x: [p.contiguous() for p in x.split(1024, 2)], torch.randn(16, 512, 3072, **h))
t("slice_f16", lambda x: x[:, :, 1:55, 1:55].contiguous(), torch.randn(32, 256, 56, 56, **h))
t("gather_emb_f16", lambda w, i: F.embedding(i, w), torch.randn(50000, 1024, **h), torch.zeros(16, 512, dtype=torch.long, device="cuda"))
t("expand_f16", lambda x: x.expand(32, 512, 1024).contiguous(), torch.randn(1, 512, 1024, **h))
t("pad_reflect_f16", lambda x: F.pad(x, (3, 3, 3, 3), mode="reflect"), torch.randn(32, 64, 112, 112, **h))
t("resize_linear_2x_f16", lambda x: F.interpolate(x, scale_factor=2, mode="bilinear"), torch.randn(16, 64, 128, 128, **h))
t("resize_nearest_2x_f16", lambda x: F.interpolate(x, scale_factor=2, mode="nearest"), torch.randn(16, 64, 128, 128, **h))
