r"""Small autoregressive models in ``flax.nnx``, used as pure functions of a weights pytree.

Both models read a window of ``context`` tokens (BOS = index ``V`` pads the start of a
sequence) and return logits over the ``V`` tokens:

* ``mlp`` (Bengio et al. 2003, "A Neural Probabilistic Language Model"): embedding of
  each window token, concatenation, one ``tanh`` hidden layer, a linear read-out;
* ``transformer``: token and position embeddings, ``layers`` pre-norm blocks of causal
  multi-head self-attention and a GELU MLP, a final layer norm and a linear read-out
  of the last position (a decoder-only transformer over the window).

API choice. The modules are ``flax.nnx`` modules (flax 0.12's current API). A chain
needs its weights as plain data (vmapped over chains, carried by ``lax.scan``,
checkpointed), so each model is split once: :func:`model_fns` takes the static
``GraphDef`` from ``nnx.eval_shape`` + ``nnx.split`` and returns two pure functions,
``init(key) -> weights`` (a nested dict of arrays, ``nnx.split(...)[1]`` as a pure
dict) and ``apply(weights, windows) -> logits`` (``nnx.merge(graphdef, weights)``
called on the windows). Training is then an ordinary pure function of the weights,
batched over chains by the engine's ``vmap``; no ``nnx.vmap`` or ``nnx.jit`` (which
act on module objects) is needed, and no module object outlives a trace.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from flax import nnx

MODELS = ("mlp", "transformer")


class WindowMLP(nnx.Module):
    """Embedding + MLP over a fixed window (the n-gram neural model)."""

    def __init__(self, vocab, context, embed, hidden, dtype, rngs):
        self.embed = nnx.Embed(vocab + 1, embed, param_dtype=dtype, dtype=dtype, rngs=rngs)
        self.hidden = nnx.Linear(context * embed, hidden, param_dtype=dtype, dtype=dtype, rngs=rngs)
        self.out = nnx.Linear(hidden, vocab, param_dtype=dtype, dtype=dtype, rngs=rngs)

    def __call__(self, windows):  # (N, context) int -> (N, V)
        e = self.embed(windows)
        h = jnp.tanh(self.hidden(e.reshape(e.shape[0], -1)))
        return self.out(h)


class Block(nnx.Module):
    """Pre-norm causal self-attention and MLP."""

    def __init__(self, embed, heads, dtype, rngs):
        kw = dict(param_dtype=dtype, dtype=dtype, rngs=rngs)
        self.ln1 = nnx.LayerNorm(embed, **kw)
        self.attn = nnx.MultiHeadAttention(num_heads=heads, in_features=embed, decode=False, **kw)
        self.ln2 = nnx.LayerNorm(embed, **kw)
        self.up = nnx.Linear(embed, 4 * embed, **kw)
        self.down = nnx.Linear(4 * embed, embed, **kw)

    def __call__(self, x, mask):
        x = x + self.attn(self.ln1(x), mask=mask)
        return x + self.down(jax.nn.gelu(self.up(self.ln2(x))))


class WindowTransformer(nnx.Module):
    """A decoder-only transformer over the window; logits of the last position."""

    def __init__(self, vocab, context, embed, heads, layers, dtype, rngs):
        kw = dict(param_dtype=dtype, dtype=dtype, rngs=rngs)
        self.embed = nnx.Embed(vocab + 1, embed, **kw)
        self.pos = nnx.Embed(context, embed, **kw)
        self.blocks = nnx.List([Block(embed, heads, dtype, rngs) for _ in range(layers)])
        self.ln = nnx.LayerNorm(embed, **kw)
        self.out = nnx.Linear(embed, vocab, **kw)

    def __call__(self, windows):  # (N, context) int -> (N, V)
        n, k = windows.shape
        x = self.embed(windows) + self.pos(jnp.arange(k))[None]
        mask = nnx.make_causal_mask(jnp.ones((n, k)))
        for block in self.blocks:
            x = block(x, mask)
        return self.out(self.ln(x[:, -1]))


def _module(model, vocab, context, embed, hidden, heads, layers, dtype, rngs):
    if model == "mlp":
        return WindowMLP(vocab, context, embed, hidden, dtype, rngs)
    if model == "transformer":
        return WindowTransformer(vocab, context, embed, heads, layers, dtype, rngs)
    raise ValueError(f"model={model!r} is not one of {MODELS}")


@functools.cache
def model_fns(model, vocab, context, embed, hidden, heads, layers, dtype):
    """``(init, apply, num_params)`` of a model (module docstring); cached per setting.

    Example:
      >>> init, apply, n = model_fns("mlp", 5, 2, 4, 8, 1, 1, "float32")
      >>> w = init(jax.random.key(0))
      >>> apply(w, jnp.zeros((3, 2), jnp.int32)).shape
      (3, 5)
    """
    dt = jnp.dtype(dtype)
    build = functools.partial(_module, model, vocab, context, embed, hidden, heads, layers, dt)
    graphdef, abstract = nnx.split(nnx.eval_shape(lambda: build(nnx.Rngs(0))))
    num_params = sum(int(x.size) for x in jax.tree.leaves(abstract))

    def init(key):
        return nnx.to_pure_dict(nnx.split(build(nnx.Rngs(params=key)))[1])

    def apply(weights, windows):
        return nnx.merge(graphdef, weights)(windows)

    return init, apply, num_params
