#!/usr/bin/env python3
"""Exports small transformers with the same graph structure as the zoo's BERT-base and ViT-B/16
(fewer layers, narrower, small vocabulary), with both exporters, so the fusion passes can be
checked on the CPU against what today's exporters write. Run where PyTorch 2.x, torchvision and
transformers are installed (the GPU machine). Usage: python3 export_small_transformers.py OUT
Writes OUT/{bert,vit}_{torchscript,dynamo}.onnx (weights inside the file, random, fixed seed).
"""
import os
import sys

import torch


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    from transformers import BertConfig, BertModel
    import torchvision

    class Bert(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.bert = BertModel(BertConfig(vocab_size=1000, hidden_size=128, num_hidden_layers=2,
                                             num_attention_heads=2, intermediate_size=512))

        def forward(self, input_ids, attention_mask):
            o = self.bert(input_ids=input_ids, attention_mask=attention_mask, return_dict=True)
            return o.last_hidden_state, o.pooler_output

    vit = torchvision.models.VisionTransformer(image_size=32, patch_size=16, num_layers=2, num_heads=2,
                                               hidden_dim=128, mlp_dim=256, num_classes=10)
    cases = {
        "bert": (Bert().eval(), (torch.randint(0, 1000, (2, 128)), torch.ones(2, 128, dtype=torch.int64)),
                 ["input_ids", "attention_mask"], ["last_hidden_state", "pooler_output"]),
        "vit": (vit.eval(), (torch.randn(2, 3, 32, 32),), ["input"], ["output"]),
    }
    for name, (m, ex, ins, outs) in cases.items():
        dyn = {n: {0: "batch"} for n in ins + outs}
        torch.onnx.export(m, ex, os.path.join(out, f"{name}_torchscript.onnx"), opset_version=17, dynamo=False,
                          input_names=ins, output_names=outs, dynamic_axes=dyn)
        from torch.export import Dim
        b = Dim("batch", min=1, max=1024)
        torch.onnx.export(m, ex, os.path.join(out, f"{name}_dynamo.onnx"), dynamo=True, opset_version=18,
                          external_data=False, input_names=ins, output_names=outs,
                          dynamic_shapes=tuple({0: b} for _ in ex))
        print(name, "exported")


if __name__ == "__main__":
    main()
