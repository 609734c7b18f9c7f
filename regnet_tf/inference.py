"""Inference copies of a Keras model: batch norm folded into convolutions, grouped convolutions split.

    from regnet_tf.inference import fold_batch_norm, split_grouped_convs
    fast = fold_batch_norm(model)                           # conv -> BN becomes one conv with a bias
    portable = split_grouped_convs(fold_batch_norm(model))  # and no grouped convolution op
    predict = freeze(fast)                                  # a TensorFlow function, the weights graph constants

Folding. At inference a BN computes y = (x - mean) / sqrt(var + eps) * gamma + beta per channel, with its moving
statistics. After a linear convolution x = conv(u, W) + b this is conv(u, W * s) + (b - mean) * s + beta with
s = gamma / sqrt(var + eps) (gamma = 1 without ``scale``, beta = 0 without ``center``). s multiplies the kernel's
output-channel axis: the last of a Conv2D kernel (kh, kw, C_in / groups, C_out), whatever the groups; the last two
of a DepthwiseConv2D kernel (kh, kw, C_in, multiplier), whose output channel c * multiplier + m is s reshaped to
(C_in, multiplier). The arithmetic is float64 numpy, cast to each variable's dtype at the end.

A BN is folded when all of these hold, else it stays as it is:
- its one input is the output of a Conv2D (Keras's or ours, any ``groups``) or DepthwiseConv2D, channels-last,
  with a linear activation;
- that output has no other consumer and is no model output (the conv's output must be the BN's alone);
- the conv and the BN are each called once in the model, the BN not with ``training=True``;
- the BN's output is no model output (the model's output names are its output layers' names).
The conv keeps its name and gets ``use_bias=True``; the BN is dropped from the graph (no identity layer).

Both functions copy the graph with `keras.models.clone_model`: every other layer is a fresh copy from its config
(dtype policies included, so mixed-precision models stay mixed) with the same weights, the copy shares no variable
with `model`, and `model` is unchanged. Nested Functional or Sequential models are copied recursively; a Sequential
model is processed as the Functional graph of its layers and returned as a Sequential. Subclassed models have no
graph to copy: ValueError. Both copies save to ``.keras`` and load back (our layers are registered serializable).
"""

from __future__ import annotations

from collections import Counter

import keras
import numpy as np

from regnet_tf import layers

CONVS = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)  # ours subclass these


def fold_batch_norm(model) -> keras.Model:
    """A copy of `model` with each BatchNormalization that follows a linear convolution folded into it (see the
    module docstring); other BNs and layers are copied as they are."""
    if isinstance(model, keras.Sequential):
        return _via_functional(model, fold_batch_norm)
    _check_graph(model, "fold_batch_norm")
    pairs = _foldable(model)
    folded, bn_of = {id(bn) for bn, _ in pairs}, {id(conv): bn for bn, conv in pairs}

    def replace(layer):
        if id(layer) in folded:
            return layer, None  # never called: `call` skips it
        if id(layer) in bn_of:  # the conv computing the BN's input
            conv = type(layer).from_config({**layer.get_config(), "use_bias": True})
            return conv, _folded_weights(layer, bn_of[id(layer)])
        return _fresh(layer, fold_batch_norm)

    def call(layer, *args, **kwargs):
        return args[0] if id(layer) in folded else layer(*args, **kwargs)

    return _copy(model, replace, call)


def split_grouped_convs(model) -> keras.Model:
    """A copy of `model` whose regnet_tf Conv2D layers with groups > 1 compute ``groups`` plain convolutions on
    channel slices, concatenated (``split_groups=True``), for runtimes and converters without grouped convolutions.
    Same weights; Keras's own grouped Conv2D layers are copied unchanged."""
    if isinstance(model, keras.Sequential):
        return _via_functional(model, split_grouped_convs)
    _check_graph(model, "split_grouped_convs")

    def replace(layer):
        split = isinstance(layer, layers.Conv2D) and layer.groups > 1
        return _fresh(layer, split_grouped_convs, **({"split_groups": True} if split else {}))

    return _copy(model, replace)


def freeze(model, batch=None):
    """`model`'s inference (``training=False``) as one TensorFlow function whose weights are graph constants: a
    callable from a float32 batch of the model's input shape (any batch size, or ``batch``) to the output tensor
    (a list for several outputs). For predicting in Python on a CPU: TensorFlow's oneDNN kernels keep constant
    filters in their own layout between calls where variables are read and reordered per call (docs/SPEED.md:
    6-12% at batch 1 for RegNetY-1.6GF and ResNet-RS-50). Each Swish is written as x * sigmoid(x) without the
    training-only custom gradient of ``tf.nn.silu``, which hides the pattern from TensorFlow's graph optimizer: a
    conv -> bias -> Swish then runs as one fused oneDNN kernel (`_plain_swish`). The function is a snapshot: later
    changes to `model`'s weights do not reach it; ``predict.function`` is the frozen TensorFlow ConcreteFunction.
    ValueError for a model with several inputs or an input size left open (build it with ``input_shape``)."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    if len(model.inputs) != 1:
        raise ValueError(f"freeze takes a model with one input; {model.name!r} has {len(model.inputs)}")
    shape = tuple(model.inputs[0].shape[1:])
    if None in shape:
        raise ValueError(f"freeze needs the input size: {model.name!r} takes {(None, *shape)}; build the model with "
                         "input_shape=(H, W, 3)")
    spec = tf.TensorSpec((batch, *shape), model.inputs[0].dtype)
    frozen = convert_variables_to_constants_v2(
        tf.function(lambda x: model(x, training=False)).get_concrete_function(spec))
    graph_def = frozen.graph.as_graph_def()
    if _plain_swish(graph_def):
        frozen = _function_of(graph_def, frozen.inputs, frozen.outputs)
    single = len(model.outputs) == 1

    def predict(x):
        x = tf.convert_to_tensor(x, spec.dtype)
        if not spec.is_compatible_with(x):
            raise ValueError(f"{model.name!r} frozen for inputs of shape {tuple(spec.shape)}; got {tuple(x.shape)}: "
                             "resize the images or freeze a model built for that size")
        out = frozen(x)
        return out[0] if single else list(out)

    predict.function = frozen
    return predict


def _function_of(graph_def, inputs, outputs):
    """A ConcreteFunction of `graph_def` from the tensors named as `inputs` to those named as `outputs` (lists)."""
    import tensorflow as tf

    wrapped = tf.compat.v1.wrap_function(lambda: tf.compat.v1.import_graph_def(graph_def, name=""), [])
    tensor = wrapped.graph.get_tensor_by_name
    return wrapped.prune([tensor(t.name) for t in inputs], [tensor(t.name) for t in outputs])


def _plain_swish(graph_def) -> int:
    """Rewrites in place each ``tf.nn.silu`` of `graph_def` (x * sigmoid(beta * x) with beta a constant 1, under a
    custom gradient's IdentityN) as x * sigmoid(x) (the IdentityN becomes an Identity of the product); returns how
    many. The same values, and TensorFlow's remapper then fuses conv -> BiasAdd -> Swish into one oneDNN kernel
    (measured with `launch/benchmark.py`: docs/SPEED.md). Inference graphs only: it drops the custom gradient."""
    from tensorflow.python.framework import tensor_util

    nodes = {n.name: n for n in graph_def.node}
    used = {i for n in graph_def.node for i in n.input}

    def op(ref, *types):  # the node of output 0 `ref` if its op is one of `types`, else None
        n = nodes.get(ref.removesuffix(":0"))
        return n if n is not None and n.op in types else None

    count = 0
    for n in graph_def.node:
        if n.op != "IdentityN" or len(n.input) != 3 or {f"{n.name}:1", f"{n.name}:2"} & used:
            continue
        product, x, beta = op(n.input[0], "Mul"), n.input[1].removesuffix(":0"), op(n.input[2], "Const")
        sigmoid = [op(i, "Sigmoid") for i in (product.input if product else ()) if i.removesuffix(":0") != x]
        scaled = op(sigmoid[0].input[0], "Mul") if len(sigmoid) == 1 and sigmoid[0] else None
        if (scaled is None or beta is None or {i.removesuffix(":0") for i in scaled.input} != {x, beta.name}
                or tensor_util.MakeNdarray(beta.attr["value"].tensor).tolist() != 1.0):
            continue
        sigmoid[0].input[0] = n.input[1]
        dtype = product.attr["T"].type
        del n.input[1:], n.attr["T"]
        n.op = "Identity"
        n.attr["T"].type = dtype
        count += 1
    return count


def all_layers(model):
    """The layers of `model` and of the models nested in it (not the nested models themselves)."""
    for layer in model.layers:
        yield from all_layers(layer) if isinstance(layer, keras.Model) else [layer]


def _foldable(model):
    """[(bn, conv)] for the BNs of Functional `model` to fold into the conv feeding them (module docstring)."""
    # the model's own calls (a layer may also be called in other models: its `_inbound_nodes` has those too)
    nodes = [node for nodes in model._nodes_by_depth.values() for node in nodes if not node.is_input]
    calls = Counter(id(node.operation) for node in nodes)
    uses = Counter([id(t) for node in nodes for t in node.input_tensors] + [id(t) for t in model.outputs])
    producer = {id(t): node.operation for node in nodes for t in node.outputs}
    outputs = {id(t) for t in model.outputs}
    pairs = []
    for node in nodes:
        bn, inputs = node.operation, node.input_tensors
        if not isinstance(bn, keras.layers.BatchNormalization) or len(inputs) != 1:
            continue
        conv = producer.get(id(inputs[0]))
        if (isinstance(conv, CONVS) and conv.data_format == "channels_last"
                and conv.activation is keras.activations.linear and bn.axis in (-1, 3)
                and calls[id(conv)] == calls[id(bn)] == 1 and uses[id(inputs[0])] == 1
                and not node.arguments.kwargs.get("training") and id(node.outputs[0]) not in outputs):
            pairs.append((bn, conv))
    return pairs


def _folded_weights(conv, bn):
    """[kernel * s, (bias - mean) * s + beta] in float64 (module docstring)."""
    mean, var = _f64(bn.moving_mean), _f64(bn.moving_variance)
    gamma = _f64(bn.gamma) if bn.scale else 1.0
    beta = _f64(bn.beta) if bn.center else 0.0
    s = gamma / np.sqrt(var + bn.epsilon)
    kernel = _f64(conv.kernel)
    bias = _f64(conv.bias) if conv.use_bias else np.zeros_like(mean)
    return [kernel * s.reshape(kernel.shape[2:] if isinstance(conv, keras.layers.DepthwiseConv2D) else -1),
            (bias - mean) * s + beta]


def _f64(variable):
    return np.asarray(keras.ops.convert_to_numpy(variable), np.float64)


def _fresh(layer, recurse, **changes):
    """(copy of `layer` from its config with `changes`, its weights); nested models: (recurse(layer), None)."""
    if isinstance(layer, keras.Model):
        return recurse(layer), None
    try:
        return type(layer).from_config({**layer.get_config(), **changes}), layer.get_weights()
    except ValueError:  # e.g. a Lambda of a Python lambda (not deserializable in safe mode): share it if weightless
        if changes or layer.weights:
            raise
        return layer, None


def _copy(model, replace, call_function=None):
    """`keras.models.clone_model` with `replace(layer) -> (new layer, its weights or None)`; the weights are set,
    cast to each variable's dtype, once the copy has built its layers."""
    pending = []

    def clone(layer):
        new, weights = replace(layer)
        if weights is not None:
            pending.append((new, weights))
        return new

    # inputs named after the model's input layers (clone_model names them after the tensors: "keras_tensor")
    inputs = keras.tree.map_structure(lambda x: keras.Input(batch_shape=x.shape, dtype=x.dtype,
                                                            name=x._keras_history.operation.name), model.input)
    copy = keras.models.clone_model(model, inputs, clone_function=clone, call_function=call_function)
    for layer, weights in pending:
        layer.set_weights([np.asarray(w, v.dtype) for v, w in zip(layer.weights, weights, strict=True)])
    return copy


def _via_functional(model, transform):
    """`transform` of a Sequential model's Functional graph, as a Sequential (its first layer: the InputLayer)."""
    copy = transform(keras.Model(model.inputs, model.outputs, name=model.name))
    return keras.Sequential(copy.layers, name=model.name)


def _check_graph(model, what):
    # Keras's Functional class is not public: Functional models are the Models with a graph to run
    if not (isinstance(model, keras.Model) and hasattr(model, "_run_through_graph")):
        raise ValueError(f"{what} needs a Functional or Sequential Keras model; got {type(model).__name__}")
