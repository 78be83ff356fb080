"""Gradient models for explanations: input -> [feature map A of a target layer, class logits].

Every Grad-CAM-family method needs, in one differentiable pass, the activations A of a
convolutional layer and the *pre-softmax* class score y^c (the logit ``head_logits`` of
:mod:`neuropathology.models.neuropathology_model`). Differentiating the logit rather than
the softmax probability p_c avoids the saturation of p_c = exp(y^c) / sum_j exp(y^j): when
p_c is near 1, dp_c/dA is near 0 whatever the evidence, while dy^c/dA is not.

The flat graph that :func:`~neuropathology.models.build_model` builds makes this a plain
``keras.Model(model.input, [layer.output, logits])``. A model whose base is a *nested*
``keras.Model`` layer (the usual ``base = MobileNetV2(...); x = base(inputs)`` recipe) has
no path from ``model.input`` to an inner layer's output - the classic "graph disconnected"
error. :func:`feature_logit_model` handles it by splitting the outer graph at the nested
model's call: ``pre`` (outer input -> nested input), ``inner`` (nested input -> [A, nested
output], a valid graph *inside* the nested model) and ``post`` (nested output -> logits),
then chaining the three on a fresh input. Nesting depth is unlimited (it recurses).
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence

import keras

from neuropathology.utils.helpers import get_logger

log = get_logger("explain")

#: Name of the logits layer of models built by this project.
LOGITS_LAYER = "head_logits"

_POOLING = (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D,
            keras.layers.GlobalAveragePooling2D, keras.layers.GlobalMaxPooling2D)

_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class ExplainError(ValueError):
    """An explanation request that cannot be served (no conv layer, bad class); names the fix."""


def _graph(model: keras.Model) -> keras.Model:
    """The functional graph of a model (a built ``Sequential`` keeps one in ``_functional``)."""
    functional = getattr(model, "_functional", None)
    return functional if functional is not None else model


def _is_nested(layer: keras.layers.Layer) -> bool:
    return isinstance(layer, keras.Model)


def _spatial(layer: keras.layers.Layer) -> bool:
    try:
        shape = layer.output.shape
    except (AttributeError, ValueError):
        return False
    return len(shape) == 4 and not isinstance(layer, (*_POOLING, keras.layers.InputLayer))


def find_target_layer(model: keras.Model, layer_name: str | None = None) -> tuple[str, ...]:
    """Path of names from ``model`` down to the target layer, e.g. ``("mobilenetv2", "out_relu")``.

    Auto-detection (``layer_name=None``): the last layer with a 4-D (batch, h, w, c) output
    that is not a pooling layer, looking inside nested models - the deepest spatial feature
    map, where semantics are highest and the map is still spatial. A given name is looked up
    in the outer model first, then inside nested models.
    """
    path = _search(model, layer_name)
    if path is None:
        if layer_name is None:
            raise ExplainError(f"model {model.name!r} has no layer with a 4-D (spatial) output; "
                               "Grad-CAM needs a convolutional layer")
        raise ExplainError(f"no layer named {layer_name!r} in model {model.name!r} or its "
                           f"nested models; names of its layers: "
                           f"{', '.join(layer.name for layer in model.layers)}")
    return path


def _search(model: keras.Model, layer_name: str | None) -> tuple[str, ...] | None:
    layers = list(model.layers)
    if layer_name is not None:
        for layer in layers:
            if layer.name == layer_name:
                return (layer.name,)
        for layer in layers:
            if _is_nested(layer):
                sub = _search(layer, layer_name)
                if sub is not None:
                    return (layer.name, *sub)
        return None
    for layer in reversed(layers):
        if layer.name.startswith("head_") and not _is_nested(layer):
            continue
        if _is_nested(layer):
            sub = _search(layer, None)
            if sub is not None:
                return (layer.name, *sub)
        elif _spatial(layer):
            return (layer.name,)
    return None


def _node_in(layer: keras.layers.Layer, model: keras.Model):
    """The call node of ``layer`` that belongs to ``model``'s graph (a layer may be reused)."""
    graph = _graph(model)
    own = {id(node) for nodes in graph._nodes_by_depth.values() for node in nodes}
    nodes = [node for node in layer._inbound_nodes if id(node) in own]
    if len(nodes) != 1:
        raise ExplainError(f"layer {layer.name!r} is called {len(nodes)} times in model "
                           f"{model.name!r}; explanations need a layer called exactly once. "
                           "Pass layer_name= of a layer used once")
    return nodes[0]


def logits_tensor(model: keras.Model) -> keras.KerasTensor:
    """The class-score tensor: ``head_logits``'s output, else the input of a final softmax.

    A model whose last layer is a ``Dense(..., activation="softmax")`` has no logit tensor;
    its probabilities are used instead (with a warning): build such models with a separate
    softmax ``Activation`` layer so that the logit can be differentiated.
    """
    graph = _graph(model)
    names = {layer.name for layer in graph.layers}
    if LOGITS_LAYER in names:
        return _node_in(graph.get_layer(LOGITS_LAYER), model).output_tensors[0]
    last = graph.layers[-1]
    if isinstance(last, keras.layers.Activation) and getattr(
            last.activation, "__name__", "") == "softmax":
        return _node_in(last, model).input_tensors[0]
    if isinstance(last, keras.layers.Softmax):
        return _node_in(last, model).input_tensors[0]
    if getattr(getattr(last, "activation", None), "__name__", "") == "softmax":
        log.warning("model %r ends in a softmax inside %r: explaining probabilities, not "
                    "logits (use a separate softmax Activation layer to get logits)",
                    model.name, last.name)
    return graph.outputs[0]


def _inner_model(container: keras.Model, path: Sequence[str], out: keras.KerasTensor
                 ) -> keras.Model:
    """``container.inputs -> [A, out]`` for the layer at ``path`` (recursing into nesting)."""
    graph = _graph(container)
    head, rest = path[0], path[1:]
    layer = graph.get_layer(head)
    if not rest:
        return keras.Model(graph.inputs[0], [_node_in(layer, container).output_tensors[0], out])
    node = _node_in(layer, container)
    nested_in, nested_out = node.input_tensors[0], node.output_tensors[0]
    sub = _inner_model(layer, rest, _graph(layer).outputs[0])
    inp = keras.Input(shape=tuple(graph.inputs[0].shape[1:]), name="explain_input")
    z = inp if nested_in is graph.inputs[0] else keras.Model(graph.inputs[0], nested_in)(inp)
    features, nested = sub(z)
    tail = nested if nested_out is out else keras.Model(nested_out, out)(nested)
    return keras.Model(inp, [features, tail])


def feature_logit_model(model: keras.Model, layer_name: str | None = None) -> keras.Model:
    """``input -> [A (N, h, w, K), logits (N, C)]`` for the target layer (cached per model).

    Works for flat models and for models with nested ``keras.Model`` bases (see module
    docstring). ``layer_name`` defaults to :func:`find_target_layer`'s auto-detection.
    """
    per_model = _CACHE.setdefault(model, {})
    path = find_target_layer(model, layer_name)
    if path not in per_model:
        per_model[path] = _inner_model(model, path, logits_tensor(model))
    return per_model[path]


def logit_model(model: keras.Model) -> keras.Model:
    """``input -> logits (N, C)``: the pre-softmax scores that input-space methods differentiate."""
    per_model = _CACHE.setdefault(model, {})
    if "logits" not in per_model:
        graph = _graph(model)
        per_model["logits"] = keras.Model(graph.inputs[0], logits_tensor(model))
    return per_model["logits"]
