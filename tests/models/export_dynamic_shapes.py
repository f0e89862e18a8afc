#!/usr/bin/env python3
"""Exports small models whose batch (and sequence) dims are symbolic, so the passes' shape proofs
(canonicalize_reshape, fuse_attention, fuse_mha, fuse_epilogue's residual) meet the Shape ->
Gather -> Concat arithmetic exporters write for dynamic dims. Runs with PyTorch 1.13 and
torchvision (Debian's python3-torch). Usage: python3 export_dynamic_shapes.py OUT
Writes OUT/bert_dyn.onnx (x [batch, seq, 128], mask [batch, 1, 1, seq]; HF-BERT-style attention
written with x.view(x.shape[0], x.shape[1], H, D)) and OUT/vit_dyn.onnx (torchvision ViT, [batch, 3, 32, 32]).
"""
import math
import os
import sys

import torch


class SelfAttention(torch.nn.Module):
    def __init__(self, e=128, h=2):
        super().__init__()
        self.h, self.d = h, e // h
        self.q, self.k, self.v, self.o = (torch.nn.Linear(e, e) for _ in range(4))
        self.ln1, self.ln2 = torch.nn.LayerNorm(e), torch.nn.LayerNorm(e)
        self.ff1, self.ff2 = torch.nn.Linear(e, 4 * e), torch.nn.Linear(4 * e, e)

    def split(self, t):
        return t.view(t.shape[0], t.shape[1], self.h, self.d).permute(0, 2, 1, 3)

    def forward(self, x, mask):
        q, k, v = self.split(self.q(x)), self.split(self.k(x)), self.split(self.v(x))
        s = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.d) + mask
        a = torch.matmul(torch.softmax(s, dim=-1), v).permute(0, 2, 1, 3).contiguous()
        a = a.view(a.shape[0], a.shape[1], self.h * self.d)
        x = self.ln1(self.o(a) + x)
        return self.ln2(self.ff2(torch.nn.functional.gelu(self.ff1(x))) + x)


class Bert(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = torch.nn.ModuleList([SelfAttention(), SelfAttention()])

    def forward(self, x, mask):
        for l in self.layers:
            x = l(x, mask)
        return x


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    torch.onnx.export(Bert().eval(), (torch.randn(2, 16, 128), torch.zeros(2, 1, 1, 16)), os.path.join(out, "bert_dyn.onnx"),
                      opset_version=17, input_names=["x", "mask"], output_names=["y"],
                      dynamic_axes={"x": {0: "batch", 1: "seq"}, "mask": {0: "batch", 3: "seq"}, "y": {0: "batch", 1: "seq"}})
    import torchvision
    vit = torchvision.models.VisionTransformer(image_size=32, patch_size=16, num_layers=2, num_heads=2,
                                               hidden_dim=128, mlp_dim=256, num_classes=10).eval()
    torch.onnx.export(vit, (torch.randn(2, 3, 32, 32),), os.path.join(out, "vit_dyn.onnx"), opset_version=17,
                      input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
    print("exported")


if __name__ == "__main__":
    main()
