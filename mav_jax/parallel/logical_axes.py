"""The logical axis names that parameters and activations carry.

Models annotate every parameter dimension with one of these names; a rule table (see
`mav_jax.parallel.sharding.DEFAULT_RULES`, or a config's own) maps them to the physical mesh axes
`('data', 'fsdp', 'context', 'tensor')`. Keeping the names here, and only here, lets a new mesh
shard the model without touching it.
"""

# Activations.
BATCH = "batch"
FRAMES = "frames"
HEIGHT = "height"
WIDTH = "width"
TOKENS = "tokens"
# A video's pixels as the temporal layers see them, (B*H*W, F, C): the batch axes and `context`
# (what temporal attention reshards to, so each device holds whole frame sequences).
PIXELS = "pixels"

# Parameters.
EMBED = "embed"  # channel / model width of a dense layer's input or output
MLP = "mlp"  # hidden width of feed-forward and embedding MLPs
HEADS = "heads"  # attention heads
HEAD_DIM = "head_dim"  # features per head
CONV_WINDOW = "conv_window"  # spatial or temporal kernel taps
CONV_IN = "conv_in"  # conv input channels
CONV_OUT = "conv_out"  # conv output channels
NORM = "norm"  # scale and bias of normalisation layers
COND = "cond"  # width of a global conditioning vector (the CLIP image embedding)
VOCAB = "vocab"  # rows of a token embedding table

ALL = (
    BATCH,
    FRAMES,
    HEIGHT,
    WIDTH,
    TOKENS,
    PIXELS,
    EMBED,
    MLP,
    HEADS,
    HEAD_DIM,
    CONV_WINDOW,
    CONV_IN,
    CONV_OUT,
    NORM,
    COND,
    VOCAB,
)
