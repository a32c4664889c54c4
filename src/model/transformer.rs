//! Transformer decoder (paper Sec. 3.2, supplementary Sec. 1, "Transformer Decoder"):
//! 2 pre-LayerNorm layers of 4 heads (key size 64). Each layer: self-attention over the mask
//! tokens (queries), cross-attention from the mask tokens to the image tokens, and a 4x-wide
//! GELU MLP, each added residually; a final LayerNorm closes the stack (GPT-2 layout, as in
//! the reference). Dropout acts on the branch outputs, so attention itself keeps the fused
//! scaled-dot-product kernel.

use super::config::ModelConfig;
use super::precision::{self, layer_norm};
use tch::nn;
use tch::{Kind, Tensor};

/// Multi-head attention with separate query/key/value projections and an output projection.
/// Linear layers use tch's default (Kaiming-uniform) initialisation rather than the
/// reference's variance-scaling truncated normal: both keep activations at unit scale, and
/// the layer-norms in front of every branch make the stack insensitive to the difference.
#[derive(Debug)]
struct MultiHeadAttention {
    query: nn::Linear,
    key: nn::Linear,
    value: nn::Linear,
    out: nn::Linear,
    heads: i64,
    key_size: i64,
    compute: Kind,
}

impl MultiHeadAttention {
    fn new(vs: nn::Path, dim: i64, heads: i64, key_size: i64, compute: Kind) -> Self {
        let inner = heads * key_size;
        let lin = |name: &str, i, o| nn::linear(&vs / name, i, o, Default::default());
        Self {
            query: lin("query", dim, inner),
            key: lin("key", dim, inner),
            value: lin("value", dim, inner),
            out: lin("out", inner, dim),
            heads,
            key_size,
            compute,
        }
    }

    /// [B, N, D] -> [B, heads, N, key_size]
    fn split_heads(&self, xs: Tensor) -> Tensor {
        let (b, n, _) = xs.size3().expect("tokens are [B, N, D]");
        xs.view([b, n, self.heads, self.key_size]).transpose(1, 2)
    }

    fn forward(&self, q: &Tensor, k: &Tensor, v: &Tensor) -> Tensor {
        let (b, n, _) = q.size3().expect("queries are [B, N, D]");
        let project = |layer: &nn::Linear, xs: &Tensor| {
            self.split_heads(precision::linear(layer, xs, self.compute))
        };
        let (q, k, v) = (
            project(&self.query, q),
            project(&self.key, k),
            project(&self.value, v),
        );
        // softmax(QK^T / sqrt(key_size)) V
        let attended = Tensor::scaled_dot_product_attention(
            &q,
            &k,
            &v,
            None::<Tensor>,
            0.0,
            false,
            None,
            false,
        );
        let merged = attended
            .transpose(1, 2)
            .contiguous()
            .view([b, n, self.heads * self.key_size]);
        precision::linear(&self.out, &merged, self.compute).to_kind(Kind::Float)
    }
}

/// One pre-LN decoder layer: self-attention, cross-attention, MLP.
#[derive(Debug)]
struct DecoderLayer {
    norm_self: nn::LayerNorm,
    self_attention: MultiHeadAttention,
    norm_cross: nn::LayerNorm,
    cross_attention: MultiHeadAttention,
    norm_mlp: nn::LayerNorm,
    mlp_in: nn::Linear,
    mlp_out: nn::Linear,
    compute: Kind,
}

impl DecoderLayer {
    fn new(vs: nn::Path, cfg: &ModelConfig) -> Self {
        let d = cfg.token_dim;
        let ln = |name: &str| nn::layer_norm(&vs / name, vec![d], Default::default());
        Self {
            norm_self: ln("norm_self"),
            self_attention: MultiHeadAttention::new(
                &vs / "self_attn",
                d,
                cfg.num_heads,
                cfg.key_size,
                cfg.precision.kind(),
            ),
            norm_cross: ln("norm_cross"),
            cross_attention: MultiHeadAttention::new(
                &vs / "cross_attn",
                d,
                cfg.num_heads,
                cfg.key_size,
                cfg.precision.kind(),
            ),
            norm_mlp: ln("norm_mlp"),
            mlp_in: nn::linear(&vs / "mlp_in", d, cfg.mlp_factor * d, Default::default()),
            mlp_out: nn::linear(&vs / "mlp_out", cfg.mlp_factor * d, d, Default::default()),
            compute: cfg.precision.kind(),
        }
    }

    /// `rows` (start, count): compute only those queries' outputs (every query still serves
    /// as a key and value of the self-attention); None: all.
    fn forward(
        &self,
        h: &Tensor,
        keys: &Tensor,
        values: &Tensor,
        dropout: f64,
        train: bool,
        rows: Option<(i64, i64)>,
    ) -> Tensor {
        let n = layer_norm(&self.norm_self, h);
        let (h, queries) = match rows {
            Some((start, count)) => (h.narrow(1, start, count), n.narrow(1, start, count)),
            None => (h.shallow_clone(), n.shallow_clone()),
        };
        let h = h + self
            .self_attention
            .forward(&queries, &n, &n)
            .dropout(dropout, train);
        let n = layer_norm(&self.norm_cross, &h);
        let h = &h
            + self
                .cross_attention
                .forward(&n, keys, values)
                .dropout(dropout, train);
        let n = layer_norm(&self.norm_mlp, &h);
        // jax.nn.gelu defaults to the tanh approximation; so does the reference.
        let hidden = precision::linear(&self.mlp_in, &n, self.compute).gelu("tanh");
        let mlp = precision::linear(&self.mlp_out, &hidden, self.compute).to_kind(Kind::Float);
        &h + mlp.dropout(dropout, train)
    }
}

/// The stack of decoder layers and the final LayerNorm.
#[derive(Debug)]
pub struct TransformerDecoder {
    layers: Vec<DecoderLayer>,
    final_norm: nn::LayerNorm,
    dropout: f64,
}

impl TransformerDecoder {
    pub fn new(vs: nn::Path, cfg: &ModelConfig) -> Self {
        Self {
            layers: (0..cfg.num_layers)
                .map(|i| DecoderLayer::new(&vs / i, cfg))
                .collect(),
            final_norm: nn::layer_norm(&vs / "final_norm", vec![cfg.token_dim], Default::default()),
            dropout: cfg.dropout,
        }
    }

    /// `queries`: mask tokens with position [B, Nq, D]; `keys`: image tokens with position
    /// [B, Nk, D]; `values`: image tokens without position [B, Nk, D]. Returns [B, Nq, D], or
    /// with `rows` (start, count) only those queries' outputs, [B, count, D]: only the last
    /// layer narrows, because every earlier layer's outputs are the next one's self-attention
    /// keys and values.
    pub fn forward(
        &self,
        queries: &Tensor,
        keys: &Tensor,
        values: &Tensor,
        train: bool,
        rows: Option<(i64, i64)>,
    ) -> Tensor {
        let h = match self.layers.split_last() {
            Some((last, earlier)) => {
                let h = earlier.iter().fold(queries.shallow_clone(), |h, l| {
                    l.forward(&h, keys, values, self.dropout, train, None)
                });
                last.forward(&h, keys, values, self.dropout, train, rows)
            }
            None => match rows {
                Some((start, count)) => queries.narrow(1, start, count),
                None => queries.shallow_clone(),
            },
        };
        layer_norm(&self.final_norm, &h)
    }
}
