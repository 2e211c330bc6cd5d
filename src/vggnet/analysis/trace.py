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
- Receptive field and jump (the effective stride) are along the height, exact for every layer,
  adaptive pools included (see :mod:`vggnet.analysis.geometry`); the FC layers after a flatten see
  the whole map, as the equivalent k x k convolution of the fully-convolutional net.
- Backward MACs count only the gradients autograd computes: a frozen layer (weights with
  ``requires_grad=False``, e.g. vgg_fast's data-fitted whitening stem) has no weight gradient,
  and a layer with no trainable layer before it (the first one, or the first after a frozen
  stem) needs no input gradient.
"""

from __future__ import annotations

import copy
import operator
from dataclasses import dataclass, field

import torch
import torch.fx
from torch import nn

from vggnet.analysis import geometry
from vggnet.analysis.geometry import Field
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
    trains: bool = False
    input_grad: bool = False


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
    params_not_run: dict[str, int] = field(default_factory=dict)
    """Parameters of modules the eval-mode forward never calls (GoogLeNet's training-only
    auxiliary heads), by top-level module; counted in ``params`` but in no row."""
    row_fields: dict[str, geometry.Field] = field(default_factory=dict, repr=False)
    """Each row's receptive field as input pixel intervals per output row (along the height), by
    row name: where exactly one unit looks (``vggnet show field``)."""

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    @property
    def macs_backward(self) -> int:
        """Backward MACs: what autograd computes, each gradient costing as many MACs as the forward.

        A weight gradient for every layer whose weights train (``requires_grad``), and an input
        gradient for every layer with a trainable layer somewhere before it. So the layer reading
        the image needs no input gradient, and a frozen layer (vgg_fast's whitening stem) needs no
        weight gradient -- nor, when nothing before it trains, an input gradient, and neither
        does the layer right after it.
        """
        return sum(layer.macs * (layer.trains + layer.input_grad) for layer in self.layers)

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

    def call_module(self, m: nn.Module, forward, args, kwargs):  # fx's own signature
        """A container built on the fly (``self.classifier[:-1]``) is traced through to its
        installed children instead of failing as 'not installed as a submodule'."""
        try:
            self.path_of_module(m)
        except NameError:
            return forward(*args, **kwargs)
        return super().call_module(m, forward, args, kwargs)


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
        self.rf: dict[torch.fx.Node, Field | None] = {}
        self.grad: dict[torch.fx.Node, bool] = {}  # does a trainable weight feed this node?
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
        upstream = any(self.grad.get(a, False) for a in n.all_input_nodes)
        self.grad[n] = upstream or (n.op == "call_module" and _trains(self.module.get_submodule(n.target)))
        return result

    def _receptive_field(self, n: torch.fx.Node, result: object) -> Field | None:
        if n.op == "placeholder" and isinstance(result, torch.Tensor) and result.dim() == 4:
            return Field.image(result.shape[-2])
        inputs = [self.rf[a] for a in n.all_input_nodes if self.rf.get(a) is not None]
        if not inputs or not isinstance(result, torch.Tensor):
            return None
        field = geometry.merge(inputs)
        src_out = self.outputs.get(n.all_input_nodes[0])
        rows = result.shape[-2] if result.dim() == 4 else None
        if n.op == "call_module":
            geom = _geometry(self.module.get_submodule(n.target))
            if geom is not None and rows is not None:
                return geometry.sliding(field, *geom, rows)
        if isinstance(src_out, torch.Tensor) and src_out.dim() == 4 and result.dim() == 2:
            return geometry.flatten(field)  # flattening a k x k map: each output sees all of it
        if rows is not None and rows != len(field.spans):
            return geometry.adaptive(field, rows)  # adaptive pools, and any other resampling
        return field


def _trains(module: nn.Module) -> bool:
    """Whether ``module`` has a weight autograd computes a gradient for."""
    weight = getattr(module, "weight", None)
    if isinstance(weight, nn.Parameter):
        return weight.requires_grad
    return any(p.requires_grad for p in module.parameters())


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
    result.layers = _rows(gm, recorder, small, paper_names, per_image, result.row_fields)
    result.inference_peak_bytes = _inference_peak(gm, recorder, small)
    result.params_not_run = _params_not_run(gm, meta)
    return result


def _params_not_run(gm: torch.fx.GraphModule, model: nn.Module) -> dict[str, int]:
    """Parameters no node of the graph uses, by top-level module (e.g. training-only heads)."""
    used = {n.target for n in gm.graph.nodes if n.op in ("call_module", "get_attr")}
    unused: dict[str, int] = {}
    for name, p in model.named_parameters():
        owner = name.rpartition(".")[0]
        if name not in used and owner not in used:
            top = name.split(".")[0]
            unused[top] = unused.get(top, 0) + p.numel()
    return unused


def _run(recorder: _Recorder, x: torch.Tensor, context: str) -> None:
    """Run the graph; a failure (input too small, wrong channels) becomes a one-line error."""
    try:
        recorder.run(x)
    except (VggnetError, RuntimeError, ValueError) as err:
        raise VggnetError(f"{context}: {one_line(err)}") from None


def _rows(gm: torch.fx.GraphModule, recorder: _Recorder, batch: int, paper_names: dict[str, str],
          saved_per_image: dict[str, int], fields: dict[str, geometry.Field] | None = None) -> list[LayerStats]:
    rows: list[LayerStats] = []
    seen_storages: set[int] = set()
    uses: dict[str, int] = {}
    for n in gm.graph.nodes:
        out = recorder.outputs.get(n)
        if n.op == "output" or not isinstance(out, torch.Tensor) or _type_name(n, gm) in HIDDEN_FUNCTIONS:
            continue
        new = _storage(out) not in seen_storages
        seen_storages.add(_storage(out))
        if n.op == "placeholder":
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
                         input_grad=any(recorder.grad.get(a, False) for a in n.all_input_nodes))
        rf = recorder.rf.get(n)
        if rf is not None:
            row.receptive_field, row.jump = rf.size, float(rf.jump)
            if fields is not None:
                fields[name] = rf
        if n.op == "call_module":
            module = gm.get_submodule(n.target)
            if first_call:
                row.params = sum(p.numel() for p in module.parameters())
            row.macs = _macs(module, out, batch)
            row.trains = _trains(module)
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
