"""Per-layer shapes, parameters, MACs, memory and receptive fields, traced from the model itself.

The model is traced with ``torch.fx`` into a graph and the graph is run on the meta device, so
no arithmetic is done and no activation memory is allocated, whatever the input size. Every
number comes from the built module and the tensors it produces; nothing restates the
architecture. Conventions (printed with every report):

- MACs count the multiply-accumulates of convolutions and FC layers (bias adds, ReLU, pooling
  and BatchNorm are not counted), the convention of the published "15.5 GMACs" for VGG-16.
- Forward activations count every distinct tensor the forward pass creates, the input included;
  an in-place ReLU or a view (flatten) creates none.
- Saved for backward is measured, not modelled: autograd's own saved-tensor hooks report what
  it keeps, deduplicated by storage, weights and buffers excluded.
- Receptive field and jump (the effective stride) are along the height; the FC layers after a
  flatten see the whole map, as the equivalent k x k convolution of the fully-convolutional net.
"""

from __future__ import annotations

import copy
import operator
from dataclasses import dataclass, field

import torch
import torch.fx
from torch import nn

from vggnet.errors import VggnetError, one_line
from vggnet.models.registry import create_model

TRACE_BATCHES = (2, 4)
"""Two batch sizes: everything per image is the difference, everything fixed is what remains."""

HIDDEN_FUNCTIONS = {"check_input", "getattr", "size"}


@dataclass
class LayerStats:
    """One row of the per-layer table. Counts are per image."""

    name: str
    type: str
    output_shape: tuple[int, ...]
    activations: int
    bytes: int
    new_tensor: bool
    params: int = 0
    macs: int = 0
    kernel: int | None = None
    stride: int | None = None
    padding: int | None = None
    filters: int | None = None
    receptive_field: int | None = None
    jump: float | None = None
    saved_bytes: int = 0
    reads_input: bool = False


@dataclass
class Trace:
    """The traced network: per-layer rows and totals. See :meth:`training_memory`."""

    model: str
    input_size: tuple[int, int, int]
    dtype: torch.dtype
    layers: list[LayerStats] = field(default_factory=list)
    params: int = 0
    param_bytes: int = 0
    saved_bytes_per_image: int = 0
    saved_bytes_fixed: int = 0
    inference_peak_bytes: int = 0

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    @property
    def macs_backward(self) -> int:
        """Backward MACs: a weight gradient for every layer (as many MACs as its forward) and an
        input gradient for every layer except those reading the image, which needs none."""
        return sum(layer.macs if layer.reads_input else 2 * layer.macs for layer in self.layers)

    @property
    def activations_forward(self) -> int:
        return sum(layer.activations for layer in self.layers if layer.new_tensor)

    @property
    def bytes_forward(self) -> int:
        return sum(layer.bytes for layer in self.layers if layer.new_tensor)

    @property
    def activations_every_output(self) -> int:
        """Every row counted, in-place outputs and views too (as if no layer ran in place)."""
        return sum(layer.activations for layer in self.layers)

    def layer(self, name: str) -> LayerStats:
        for row in self.layers:
            if row.name == name:
                return row
        raise KeyError(f"no layer {name!r} in the trace of {self.model}")

    def training_memory(self, batch_size: int = 1, optimizer: str = "sgd") -> dict[str, float]:
        """Bytes per image of one training step at ``batch_size`` (weights shared by the batch).

        ``optimizer``: 'sgd' (momentum: one buffer per weight), 'adam' (two), 'none'.
        The transient gradient buffers of the backward pass itself are not included.
        """
        states = {"none": 0, "sgd": 1, "adam": 2}
        if optimizer not in states:
            raise ValueError(f"unknown optimizer {optimizer!r}; valid: {', '.join(states)}")
        per_batch = {
            "saved_activations": self.saved_bytes_per_image * batch_size + self.saved_bytes_fixed,
            "weights": self.param_bytes,
            "gradients": self.param_bytes,
            "optimizer_state": self.param_bytes * states[optimizer],
        }
        per_image = {k: v / batch_size for k, v in per_batch.items()}
        per_image["total"] = sum(per_image.values())
        return per_image


class _LeafTracer(torch.fx.Tracer):
    """Stops at modules without children, so custom leaves (LRN, ...) become single rows."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return next(m.children(), None) is None


def _storage(t: torch.Tensor) -> int:
    return t.untyped_storage()._cdata


def _first(value: int | tuple[int, ...]) -> int:
    return value[0] if isinstance(value, tuple) else value


def _geometry(module: nn.Module) -> tuple[int, int, int] | None:
    """(kernel, stride, padding) of a sliding-window module, along the height."""
    if isinstance(module, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
        dilation = _first(getattr(module, "dilation", 1))
        kernel = dilation * (_first(module.kernel_size) - 1) + 1
        return kernel, _first(module.stride), _first(module.padding)
    return None


def _macs(module: nn.Module, out: torch.Tensor, batch: int) -> int:
    if isinstance(module, nn.Conv2d):
        per_output = module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
        return out.numel() // batch * per_output
    if isinstance(module, nn.Linear):
        return out.numel() // batch * module.in_features
    return 0


class _Recorder(torch.fx.Interpreter):
    """Runs the graph once, remembering each node's output, the saved tensors and the RF."""

    def __init__(self, gm: torch.fx.GraphModule, excluded_storages: set[int]) -> None:
        super().__init__(gm)
        self.outputs: dict[torch.fx.Node, object] = {}
        self.rf: dict[torch.fx.Node, tuple[int, float] | None] = {}
        self.saved: dict[str, int] = {}
        self._saved_storages = set(excluded_storages)
        self._node: torch.fx.Node | None = None

    def pack(self, t: torch.Tensor) -> torch.Tensor:
        key = _storage(t)
        if key not in self._saved_storages and self._node is not None:
            self._saved_storages.add(key)
            self.saved[self._node.name] = self.saved.get(self._node.name, 0) + t.untyped_storage().nbytes()
        return t

    def run_node(self, n: torch.fx.Node) -> object:
        self._node = n
        result = super().run_node(n)
        self.outputs[n] = result
        self.rf[n] = self._receptive_field(n, result)
        return result

    def _receptive_field(self, n: torch.fx.Node, result: object) -> tuple[int, float] | None:
        if n.op == "placeholder":
            return (1, 1.0)
        inputs = [self.rf[a] for a in n.all_input_nodes if self.rf.get(a) is not None]
        if not inputs or not isinstance(result, torch.Tensor):
            return None
        rf, jump = max(r for r, _ in inputs), max(j for _, j in inputs)
        source = n.all_input_nodes[0]
        src_out = self.outputs.get(source)
        if n.op == "call_module":
            module = self.module.get_submodule(n.target)
            geometry = _geometry(module)
            if geometry is not None:
                kernel, stride, _ = geometry
                return rf + (kernel - 1) * jump, jump * stride
            if isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)) and isinstance(src_out, torch.Tensor):
                size_in, size_out = src_out.shape[-2], result.shape[-2]
                # The widest window an adaptive pool uses: ceil((i+1)*in/out) - floor(i*in/out).
                window = max(-(-(i + 1) * size_in // size_out) - i * size_in // size_out for i in range(size_out))
                return rf + (window - 1) * jump, jump * size_in / size_out
        if (isinstance(src_out, torch.Tensor) and src_out.dim() == 4 and result.dim() == 2):
            # Flattening a k x k map: each output sees all of it, like a k x k convolution.
            return rf + (src_out.shape[-2] - 1) * jump, jump * src_out.shape[-2]
        return rf, jump


def _input_channels(model: nn.Module) -> int:
    """``model.in_chans`` where set, else what the first convolution takes."""
    if hasattr(model, "in_chans"):
        return int(model.in_chans)
    first = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    return first.in_channels if first is not None else 3


def _type_name(n: torch.fx.Node, gm: torch.fx.GraphModule) -> str:
    if n.op == "call_module":
        return type(gm.get_submodule(n.target)).__name__
    target = n.target
    if target in (operator.add, operator.iadd):
        return "add"
    return getattr(target, "__name__", str(target))


def trace(model: nn.Module | str, input_size: int | tuple[int, int] = 224,
          dtype: torch.dtype = torch.float32, **model_kwargs: object) -> Trace:
    """Trace ``model`` (a module, or a registered name built on the meta device) at ``input_size``.

    The model is analysed in eval mode for the forward figures and in train mode for what
    backward keeps; a module with real weights is copied to the meta device first.
    """
    if isinstance(model, str):
        with torch.device("meta"):
            meta = create_model(model, **model_kwargs).to(dtype)
        model = meta
    else:  # never touch the caller's module: trace a copy of it
        meta = copy.deepcopy(model).to(device="meta", dtype=dtype)
    name = getattr(model, "model_name", type(model).__name__)
    height, width = (input_size, input_size) if isinstance(input_size, int) else input_size
    in_chans = _input_channels(model)
    paper_names = {path: n for n, path in getattr(model, "layer_names", {}).items()}

    weights = [*meta.parameters(), *meta.buffers()]
    excluded = {_storage(t) for t in weights}
    result = Trace(model=name, input_size=(in_chans, height, width), dtype=dtype)
    result.params = sum(p.numel() for p in meta.parameters())
    result.param_bytes = sum(p.numel() * p.element_size() for p in meta.parameters())

    saved_by_batch = []
    train_graph = torch.fx.GraphModule(meta, _LeafTracer().trace(meta.train()))
    for batch in TRACE_BATCHES:
        recorder = _Recorder(train_graph, excluded)
        x = torch.empty(batch, in_chans, height, width, device="meta", dtype=dtype)
        with torch.autograd.graph.saved_tensors_hooks(recorder.pack, lambda t: t):
            _run(recorder, x, f"{name} cannot take a {in_chans}x{height}x{width} input")
        saved_by_batch.append(recorder.saved)
    small, large = TRACE_BATCHES
    per_image = {k: (saved_by_batch[1].get(k, 0) - saved_by_batch[0].get(k, 0)) // (large - small)
                 for k in saved_by_batch[1]}
    result.saved_bytes_per_image = sum(per_image.values())
    result.saved_bytes_fixed = sum(saved_by_batch[0].values()) - small * result.saved_bytes_per_image

    meta.eval()
    gm = torch.fx.GraphModule(meta, _LeafTracer().trace(meta))
    recorder = _Recorder(gm, excluded)
    with torch.no_grad():
        _run(recorder, torch.empty(small, in_chans, height, width, device="meta", dtype=dtype), name)
    result.layers = _rows(gm, recorder, small, paper_names, per_image)
    result.inference_peak_bytes = _inference_peak(gm, recorder, small)
    return result


def _run(recorder: _Recorder, x: torch.Tensor, context: str) -> None:
    """Run the graph; a failure (input too small, wrong channels) becomes a one-line error."""
    try:
        recorder.run(x)
    except (VggnetError, RuntimeError, ValueError) as err:
        raise VggnetError(f"{context}: {one_line(err)}") from None


def _rows(gm: torch.fx.GraphModule, recorder: _Recorder, batch: int, paper_names: dict[str, str],
          saved_per_image: dict[str, int]) -> list[LayerStats]:
    rows: list[LayerStats] = []
    seen_storages: set[int] = set()
    image: set[int] = set()  # storage of the input image (check_input passes it through)
    uses: dict[str, int] = {}
    for n in gm.graph.nodes:
        out = recorder.outputs.get(n)
        if n.op == "output" or not isinstance(out, torch.Tensor) or _type_name(n, gm) in HIDDEN_FUNCTIONS:
            continue
        new = _storage(out) not in seen_storages
        seen_storages.add(_storage(out))
        if n.op == "placeholder":
            image.add(_storage(out))
            name = "input"
        elif n.op == "call_module":
            name = paper_names.get(n.target, n.target)
        else:
            name = n.name
        uses[name] = uses.get(name, 0) + 1
        first_call = uses[name] == 1
        if not first_call:  # a module called twice (ResNet's shared ReLU): count its weights once
            name = f"{name}#{uses[name]}"
        numel = out.numel() // batch
        row = LayerStats(name=name, type="Input" if n.op == "placeholder" else _type_name(n, gm),
                         output_shape=tuple(out.shape[1:]), activations=numel,
                         bytes=numel * out.element_size(), new_tensor=new,
                         saved_bytes=saved_per_image.get(n.name, 0),
                         reads_input=any(isinstance(recorder.outputs.get(a), torch.Tensor)
                                         and _storage(recorder.outputs[a]) in image for a in n.all_input_nodes))
        rf = recorder.rf.get(n)
        if rf is not None:
            row.receptive_field, row.jump = rf
        if n.op == "call_module":
            module = gm.get_submodule(n.target)
            if first_call:
                row.params = sum(p.numel() for p in module.parameters())
            row.macs = _macs(module, out, batch)
            geometry = _geometry(module)
            if geometry is not None:
                row.kernel, row.stride, row.padding = geometry
            row.filters = getattr(module, "out_channels", getattr(module, "out_features", None))
        rows.append(row)
    return rows


def _inference_peak(gm: torch.fx.GraphModule, recorder: _Recorder, batch: int) -> int:
    """Largest total of tensors alive at once in a no-grad forward, per image.

    A tensor lives from the node that creates its storage to the last node that reads any
    tensor on that storage (in-place ops and views extend the life of the storage they share).
    """
    order = {n: i for i, n in enumerate(gm.graph.nodes)}
    life: dict[int, list[int]] = {}  # storage -> [first, last, bytes]
    for n in gm.graph.nodes:
        out = recorder.outputs.get(n)
        if not isinstance(out, torch.Tensor):
            continue
        key = _storage(out)
        last = max([order[u] for u in n.users if u.op != "output"] + [order[n]])
        if key in life:
            life[key][1] = max(life[key][1], last)
        else:
            life[key] = [order[n], last, out.untyped_storage().nbytes() // batch]
    steps = range(len(order))
    return max((sum(b for first, last, b in life.values() if first <= t <= last) for t in steps), default=0)
