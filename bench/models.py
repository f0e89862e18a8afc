"""The model zoo: one entry per model. Adding a model is one `ModelSpec` line in `ZOO`.

Every model is built from its architecture code with random weights from a fixed seed (the GPU
machine has no network). torch/torchvision/transformers are imported inside the builders, so this
table can be read (and unit-tested) without them.
"""
from dataclasses import dataclass
from typing import Callable, List, Sequence, Tuple

SEED = 0
IMAGE = (3, 224, 224)
SEQ = 128


@dataclass(frozen=True)
class ModelSpec:
    name: str
    build: Callable[[], "object"]          # () -> torch.nn.Module (eval, FP32, CPU); forward(*inputs)
    make_inputs: Callable[[int], "tuple"]  # batch -> tuple of CPU tensors (fixed seed)
    input_names: Tuple[str, ...]
    output_names: Tuple[str, ...]
    kind: str                               # "cnn" | "transformer"
    batches: Tuple[int, int]                # (small, large) default batches
    classifier: bool = True                 # top-1 agreement is reported for classifiers


def _randomize_bn(model):
    """Random weights from the seed, and BN statistics re-drawn so BN is not the identity."""
    import torch
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return model


def _randomize_zero_weights(model):
    """Layers that the architecture code initializes to zero (vit_b_16's classifier head) get
    small random weights, so that the output is not identically zero and the check means something."""
    import torch
    for m in model.modules():
        w = getattr(m, "weight", None)
        if isinstance(w, torch.nn.Parameter) and w.dim() >= 2 and not torch.any(w):
            torch.nn.init.normal_(w, std=0.02)
            if getattr(m, "bias", None) is not None:
                torch.nn.init.uniform_(m.bias, -0.1, 0.1)
    return model


def _bn_from_data(model, image):
    """BN statistics measured on one random batch (train-mode forward, cumulative average), so
    activations stay normalized: random BN statistics let a deep net without residuals (Inception)
    grow to 1e13, past float16's range, which no engine can then be checked on."""
    import torch
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    with torch.no_grad():
        model(torch.randn(8, *image, generator=torch.Generator().manual_seed(SEED + 99)))
    return model


def _torchvision(ctor: str, bn_image=None):
    def build():
        import torch
        import torchvision
        torch.manual_seed(SEED)
        model = getattr(torchvision.models, ctor)(weights=None)
        model = _bn_from_data(model, bn_image) if bn_image else _randomize_bn(model)
        return _randomize_zero_weights(model).eval()
    return build


def _image_inputs(batch: int, image=IMAGE):
    import torch
    g = torch.Generator().manual_seed(SEED + 1 + batch)
    return (torch.randn(batch, *image, generator=g),)



def _bert():
    import torch
    from transformers import BertConfig, BertModel

    class Bert(torch.nn.Module):
        """BertModel with positional (input_ids, attention_mask) and a plain tuple out."""

        def __init__(self):
            super().__init__()
            torch.manual_seed(SEED)
            self.bert = BertModel(BertConfig())

        def forward(self, input_ids, attention_mask):
            o = self.bert(input_ids=input_ids, attention_mask=attention_mask, return_dict=True)
            return o.last_hidden_state, o.pooler_output

    return Bert().eval()


def _bert_inputs(batch: int, vocab: int = 30522):
    """input_ids uniform over the vocabulary; attention_mask all ones (no padding), int64."""
    import torch
    g = torch.Generator().manual_seed(SEED + 1 + batch)
    ids = torch.randint(0, vocab, (batch, SEQ), generator=g, dtype=torch.int64)
    mask = torch.ones(batch, SEQ, dtype=torch.int64)
    return ids, mask


def _hf_encoder(config_name: str, model_name: str, **config):
    """A transformers model (random weights, fixed seed) as forward(input_ids, attention_mask) ->
    last_hidden_state; decoders (GPT-2, Llama) run one causal prefill pass without a KV cache."""
    def build():
        import torch
        import transformers

        class Wrapped(torch.nn.Module):
            def __init__(self):
                super().__init__()
                torch.manual_seed(SEED)
                cfg = getattr(transformers, config_name)(**config)
                self.model = getattr(transformers, model_name)(cfg)

            def forward(self, input_ids, attention_mask):
                kw = {"use_cache": False} if model_name != "T5EncoderModel" else {}
                o = self.model(input_ids=input_ids, attention_mask=attention_mask, return_dict=True, **kw)
                return o.last_hidden_state

        return Wrapped().eval()
    return build


def _yolo_like():
    """A YOLOv8-style detector from plain torch (Conv-BN-SiLU, C2f blocks, SPPF, a top-down and
    bottom-up neck with Upsample + Concat, three decoupled heads), random weights, 640x640 input;
    output [N, 4 + 80, 8400] as YOLOv8 exports it (box regression + class scores, before NMS)."""
    import torch
    from torch import nn

    def conv(c1, c2, k=1, s=1):
        return nn.Sequential(nn.Conv2d(c1, c2, k, s, k // 2, bias=False), nn.BatchNorm2d(c2), nn.SiLU())

    class C2f(nn.Module):
        def __init__(self, c1, c2, n=1, shortcut=True):
            super().__init__()
            self.c = c2 // 2
            self.cv1 = conv(c1, 2 * self.c)
            self.cv2 = conv((2 + n) * self.c, c2)
            self.m = nn.ModuleList(nn.Sequential(conv(self.c, self.c, 3), conv(self.c, self.c, 3)) for _ in range(n))
            self.shortcut = shortcut

        def forward(self, x):
            y = list(self.cv1(x).chunk(2, 1))
            for m in self.m:
                y.append(y[-1] + m(y[-1]) if self.shortcut else m(y[-1]))
            return self.cv2(torch.cat(y, 1))

    class SPPF(nn.Module):
        def __init__(self, c1, c2):
            super().__init__()
            self.cv1, self.cv2, self.m = conv(c1, c1 // 2), conv(c1 * 2, c2), nn.MaxPool2d(5, 1, 2)

        def forward(self, x):
            x = self.cv1(x)
            y1 = self.m(x)
            y2 = self.m(y1)
            return self.cv2(torch.cat((x, y1, y2, self.m(y2)), 1))

    class Yolo(nn.Module):
        def __init__(self, w=(32, 64, 128, 256, 512), nc=80):
            super().__init__()
            a, b, c, d, e = w
            self.stem = nn.Sequential(conv(3, a, 3, 2), conv(a, b, 3, 2), C2f(b, b, 1))
            self.p3 = nn.Sequential(conv(b, c, 3, 2), C2f(c, c, 2))
            self.p4 = nn.Sequential(conv(c, d, 3, 2), C2f(d, d, 2))
            self.p5 = nn.Sequential(conv(d, e, 3, 2), C2f(e, e, 1), SPPF(e, e))
            self.up = nn.Upsample(scale_factor=2, mode="nearest")
            self.td4, self.td3 = C2f(e + d, d, 1, False), C2f(d + c, c, 1, False)
            self.dn3, self.bu4 = conv(c, c, 3, 2), C2f(c + d, d, 1, False)
            self.dn4, self.bu5 = conv(d, d, 3, 2), C2f(d + e, e, 1, False)
            self.box = nn.ModuleList(nn.Sequential(conv(ch, 64, 3), conv(64, 64, 3), nn.Conv2d(64, 64, 1)) for ch in (c, d, e))
            self.cls = nn.ModuleList(nn.Sequential(conv(ch, 80, 3), conv(80, 80, 3), nn.Conv2d(80, nc, 1)) for ch in (c, d, e))
            self.dfl = nn.Conv2d(16, 1, 1, bias=False)
            self.dfl.weight.data[:] = torch.arange(16, dtype=torch.float32).view(1, 16, 1, 1)

        def forward(self, x):
            x3 = self.p3(self.stem(x))
            x4 = self.p4(x3)
            x5 = self.p5(x4)
            t4 = self.td4(torch.cat((self.up(x5), x4), 1))
            t3 = self.td3(torch.cat((self.up(t4), x3), 1))
            b4 = self.bu4(torch.cat((self.dn3(t3), t4), 1))
            b5 = self.bu5(torch.cat((self.dn4(b4), x5), 1))
            outs = []
            for i, f in enumerate((t3, b4, b5)):
                n, _, h, w = f.shape
                box = self.box[i](f).view(n, 4, 16, h * w).transpose(2, 1).softmax(1)   # DFL: expected bin
                box = self.dfl(box).view(n, 4, h * w)
                outs.append(torch.cat((box, self.cls[i](f).sigmoid().view(n, -1, h * w)), 1))
            return torch.cat(outs, 2)

    torch.manual_seed(SEED)
    return _randomize_bn(Yolo()).eval()


def _cnn(name, ctor=None, batches=(1, 128)):
    return ModelSpec(name, _torchvision(ctor or name), _image_inputs, ("input",), ("output",), "cnn", batches)


ZOO: List[ModelSpec] = [
    _cnn("resnet50"),
    _cnn("mobilenet_v2"),
    _cnn("efficientnet_b0"),
    ModelSpec("vit_b_16", _torchvision("vit_b_16"), _image_inputs, ("input",), ("output",), "transformer", (1, 64)),
    ModelSpec("bert_base", _bert, _bert_inputs, ("input_ids", "attention_mask"),
              ("last_hidden_state", "pooler_output"), "transformer", (1, 64), classifier=False),
]

# Architectures kiln was not tuned on: speed and correctness must hold on them too
# (`--models outside`). Transformers read (input_ids, attention_mask) at sequence SEQ.
OUTSIDE: List[ModelSpec] = [
    _cnn("convnext_tiny"),
    _cnn("swin_t"),
    _cnn("densenet121"),
    ModelSpec("inception_v3", _torchvision("inception_v3", bn_image=(3, 299, 299)), lambda b: _image_inputs(b, (3, 299, 299)),
              ("input",), ("output",), "cnn", (1, 128)),
    _cnn("resnext50_32x4d"),
    ModelSpec("yolo_like", _yolo_like, lambda b: _image_inputs(b, (3, 640, 640)), ("input",), ("output",),
              "cnn", (1, 32), classifier=False),
    ModelSpec("gpt2", _hf_encoder("GPT2Config", "GPT2Model"), lambda b: _bert_inputs(b, 50257),
              ("input_ids", "attention_mask"), ("last_hidden_state",), "transformer", (1, 64), classifier=False),
    ModelSpec("llama_like", _hf_encoder("LlamaConfig", "LlamaModel", vocab_size=32000, hidden_size=1024,
                                        intermediate_size=2816, num_hidden_layers=8, num_attention_heads=16,
                                        num_key_value_heads=4, max_position_embeddings=2048),
              lambda b: _bert_inputs(b, 32000), ("input_ids", "attention_mask"), ("last_hidden_state",),
              "transformer", (1, 64), classifier=False),
    ModelSpec("t5_encoder", _hf_encoder("T5Config", "T5EncoderModel", vocab_size=32128, d_model=512, d_kv=64,
                                        d_ff=2048, num_layers=6, num_heads=8),
              lambda b: _bert_inputs(b, 32128), ("input_ids", "attention_mask"), ("last_hidden_state",),
              "transformer", (1, 64), classifier=False),
]

BY_NAME = {m.name: m for m in ZOO + OUTSIDE}


def select(names: Sequence[str]) -> List[ModelSpec]:
    """Models by name, in the order given; 'all' (or empty) means the whole zoo, 'outside' the
    models outside it."""
    names = [n.strip() for n in names if n.strip()]
    if not names or names == ["all"]:
        return list(ZOO)
    if names == ["outside"]:
        return list(OUTSIDE)
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        raise ValueError(f"unknown model(s): {', '.join(unknown)}; known: {', '.join(BY_NAME)}")
    return [BY_NAME[n] for n in names]


def resolve_batches(spec: ModelSpec, tokens: Sequence[str]) -> List[int]:
    """Batch tokens -> batches for one model: an integer, or 'small'/'large' (the model's defaults)."""
    out: List[int] = []
    for t in tokens:
        t = t.strip().lower()
        if t in ("small", "default_small"):
            b = spec.batches[0]
        elif t in ("large", "default_large"):
            b = spec.batches[1]
        else:
            try:
                b = int(t)
            except ValueError:
                raise ValueError(f"bad batch '{t}': an integer, 'small' or 'large'")
            if b < 1:
                raise ValueError(f"bad batch {b}: must be >= 1")
        if b not in out:
            out.append(b)
    return out
