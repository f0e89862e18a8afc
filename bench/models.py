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


def _torchvision(ctor: str):
    def build():
        import torch
        import torchvision
        torch.manual_seed(SEED)
        model = getattr(torchvision.models, ctor)(weights=None)
        return _randomize_zero_weights(_randomize_bn(model)).eval()
    return build


def _image_inputs(batch: int):
    import torch
    g = torch.Generator().manual_seed(SEED + 1 + batch)
    return (torch.randn(batch, *IMAGE, generator=g),)



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


def _bert_inputs(batch: int):
    """input_ids uniform over the vocabulary; attention_mask all ones (no padding), int64."""
    import torch
    g = torch.Generator().manual_seed(SEED + 1 + batch)
    ids = torch.randint(0, 30522, (batch, SEQ), generator=g, dtype=torch.int64)
    mask = torch.ones(batch, SEQ, dtype=torch.int64)
    return ids, mask


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

BY_NAME = {m.name: m for m in ZOO}


def select(names: Sequence[str]) -> List[ModelSpec]:
    """Models by name, in the order given; 'all' (or empty) means the whole zoo."""
    names = [n.strip() for n in names if n.strip()]
    if not names or names == ["all"]:
        return list(ZOO)
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
