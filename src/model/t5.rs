//! T5 encoder-decoder with HF transformers' weight names and numerics (`T5ForConditionalGeneration`).
//!
//! Every op is a fallible `f_*` call so that an allocation failure (out of memory) surfaces as
//! `Err(TchError)` to the trainer, which can recover, instead of a panic.

use super::config::{FeedForward, T5Config};
use tch::{nn, Kind, TchError, Tensor};

pub type TorchResult<T> = Result<T, TchError>;

/// Label value ignored by the loss (HF's convention for padding in `labels`).
pub const IGNORE_INDEX: i64 = -100;

fn linear(x: &Tensor, weight: &Tensor) -> TorchResult<Tensor> {
    x.f_linear::<&Tensor>(weight, None)
}

/// A normally initialized weight, drawn in place: `Init::Randn` computes `randn * stdev + mean`
/// through two temporaries of the weight's size, which the allocator may keep, and which made
/// loading a t5-small-sized checkpoint peak at 1.43× its size (1.16× with in-place draws).
fn randn(p: &nn::Path, name: &str, dims: &[i64], stdev: f64) -> Tensor {
    let mut weight = p.var(name, dims, nn::Init::Const(0.0));
    tch::no_grad(|| {
        let _ = weight.normal_(0.0, stdev);
    });
    weight
}

/// T5's RMS norm: no mean subtraction, no bias, variance in fp32.
fn rms_norm(x: &Tensor, weight: &Tensor, eps: f64) -> TorchResult<Tensor> {
    let variance = x.f_to_kind(Kind::Float)?.f_pow_tensor_scalar(2)?.f_mean_dim(-1, true, Kind::Float)?;
    let normed = x.f_mul(&variance.f_add_scalar(eps)?.f_rsqrt()?)?;
    normed.f_to_kind(weight.kind())?.f_mul(weight)
}

struct Attention {
    q: Tensor,
    k: Tensor,
    v: Tensor,
    o: Tensor,
    heads: i64,
    d_kv: i64,
}

impl Attention {
    fn new(p: &nn::Path, c: &T5Config) -> Self {
        let inner = c.inner_dim();
        let d = c.d_model;
        Attention {
            q: randn(&(p / "q"), "weight", &[inner, d], ((d * c.d_kv) as f64).powf(-0.5)),
            k: randn(&(p / "k"), "weight", &[inner, d], (d as f64).powf(-0.5)),
            v: randn(&(p / "v"), "weight", &[inner, d], (d as f64).powf(-0.5)),
            o: randn(&(p / "o"), "weight", &[d, inner], (inner as f64).powf(-0.5)),
            heads: c.num_heads,
            d_kv: c.d_kv,
        }
    }

    /// (batch, len, inner) -> (batch, heads, len, d_kv)
    fn split_heads(&self, x: &Tensor) -> TorchResult<Tensor> {
        let (b, len, _) = x.size3()?;
        x.f_view([b, len, self.heads, self.d_kv])?.f_transpose(1, 2)
    }

    fn project_kv(&self, x: &Tensor) -> TorchResult<(Tensor, Tensor)> {
        Ok((self.split_heads(&linear(x, &self.k)?)?, self.split_heads(&linear(x, &self.v)?)?))
    }

    /// Attention of `x` over already projected keys and values. T5 does not scale the scores.
    fn attend(
        &self,
        x: &Tensor,
        k: &Tensor,
        v: &Tensor,
        bias: &Tensor,
        dropout: f64,
        train: bool,
    ) -> TorchResult<Tensor> {
        let q = self.split_heads(&linear(x, &self.q)?)?;
        let scores = q.f_matmul(&k.f_transpose(2, 3)?)?.f_add(bias)?;
        let weights = scores.f_softmax(-1, Kind::Float)?.f_to_kind(scores.kind())?.f_dropout(dropout, train)?;
        let out = weights.f_matmul(v)?;
        let (b, _, len, _) = out.size4()?;
        let out = out.f_transpose(1, 2)?.f_contiguous()?.f_view([b, len, self.heads * self.d_kv])?;
        linear(&out, &self.o)
    }
}

enum FeedForwardWeights {
    Relu { wi: Tensor, wo: Tensor },
    GatedGelu { wi_0: Tensor, wi_1: Tensor, wo: Tensor },
}

impl FeedForwardWeights {
    fn new(p: &nn::Path, c: &T5Config) -> Self {
        let (d, ff) = (c.d_model, c.d_ff);
        let p = p / "DenseReluDense";
        let wo = randn(&(&p / "wo"), "weight", &[d, ff], (ff as f64).powf(-0.5));
        let std_in = (d as f64).powf(-0.5);
        match c.feed_forward().expect("config validated") {
            FeedForward::Relu => FeedForwardWeights::Relu { wi: randn(&(&p / "wi"), "weight", &[ff, d], std_in), wo },
            FeedForward::GatedGelu => FeedForwardWeights::GatedGelu {
                wi_0: randn(&(&p / "wi_0"), "weight", &[ff, d], std_in),
                wi_1: randn(&(&p / "wi_1"), "weight", &[ff, d], std_in),
                wo,
            },
        }
    }

    fn forward(&self, x: &Tensor, dropout: f64, train: bool) -> TorchResult<Tensor> {
        match self {
            FeedForwardWeights::Relu { wi, wo } => linear(&linear(x, wi)?.f_relu()?.f_dropout(dropout, train)?, wo),
            FeedForwardWeights::GatedGelu { wi_0, wi_1, wo } => {
                let gate = linear(x, wi_0)?.f_gelu("tanh")?;
                let hidden = gate.f_mul(&linear(x, wi_1)?)?.f_dropout(dropout, train)?;
                linear(&hidden, wo)
            }
        }
    }
}

struct Block {
    self_attention: Attention,
    self_norm: Tensor,
    cross_attention: Option<(Attention, Tensor)>,
    feed_forward: FeedForwardWeights,
    ff_norm: Tensor,
}

impl Block {
    fn new(p: &nn::Path, c: &T5Config, is_decoder: bool) -> Self {
        let ones = |p: nn::Path| p.var("weight", &[c.d_model], nn::Init::Const(1.0));
        let layer = |i: usize| p / "layer" / i;
        let cross_attention =
            is_decoder.then(|| (Attention::new(&(layer(1) / "EncDecAttention"), c), ones(layer(1) / "layer_norm")));
        let ff_layer = layer(if is_decoder { 2 } else { 1 });
        Block {
            self_attention: Attention::new(&(layer(0) / "SelfAttention"), c),
            self_norm: ones(layer(0) / "layer_norm"),
            cross_attention,
            feed_forward: FeedForwardWeights::new(&ff_layer, c),
            ff_norm: ones(ff_layer / "layer_norm"),
        }
    }
}

/// What a decoder block attends to beyond its own input.
enum DecoderMemory<'a> {
    /// Training: the encoder states, projected for cross-attention on every call.
    Encoded(&'a Tensor),
    /// Generation: keys and values kept from earlier positions and the encoder.
    Cached(&'a mut LayerCache),
}

/// Keys and values a decoder layer has seen so far during generation.
pub struct LayerCache {
    self_kv: Option<(Tensor, Tensor)>,
    cross_kv: (Tensor, Tensor),
}

pub struct DecoderCache {
    layers: Vec<LayerCache>,
    /// Additive mask over encoder positions, (batch, 1, 1, src_len).
    cross_bias: Tensor,
    pub position: i64,
}

impl DecoderCache {
    /// Keeps only the rows in `indices` (used by beam search and finished-sequence pruning).
    pub fn select(&mut self, indices: &Tensor) -> TorchResult<()> {
        for layer in &mut self.layers {
            if let Some((k, v)) = &layer.self_kv {
                layer.self_kv = Some((k.f_index_select(0, indices)?, v.f_index_select(0, indices)?));
            }
            let (k, v) = &layer.cross_kv;
            layer.cross_kv = (k.f_index_select(0, indices)?, v.f_index_select(0, indices)?);
        }
        self.cross_bias = self.cross_bias.f_index_select(0, indices)?;
        Ok(())
    }
}

struct Stack {
    blocks: Vec<Block>,
    relative_bias: Tensor,
    final_norm: Tensor,
    is_decoder: bool,
}

impl Stack {
    fn new(p: &nn::Path, c: &T5Config, is_decoder: bool) -> Self {
        let layers = if is_decoder { c.decoder_layers() } else { c.num_layers };
        let blocks: Vec<Block> = (0..layers as usize).map(|i| Block::new(&(p / "block" / i), c, is_decoder)).collect();
        let bias_path = p / "block" / 0 / "layer" / 0 / "SelfAttention" / "relative_attention_bias";
        let relative_bias = randn(
            &bias_path,
            "weight",
            &[c.relative_attention_num_buckets, c.num_heads],
            (c.d_model as f64).powf(-0.5),
        );
        let final_norm = (p / "final_layer_norm").var("weight", &[c.d_model], nn::Init::Const(1.0));
        Stack { blocks, relative_bias, final_norm, is_decoder }
    }

    /// Position bias (1, heads, q_len, k_len) for queries at `q_offset..q_offset+q_len`.
    fn position_bias(&self, c: &T5Config, q_offset: i64, q_len: i64, k_len: i64) -> TorchResult<Tensor> {
        let device = self.relative_bias.device();
        let context = Tensor::f_arange_start(q_offset, q_offset + q_len, (Kind::Int64, device))?.f_unsqueeze(1)?;
        let memory = Tensor::f_arange(k_len, (Kind::Int64, device))?.f_unsqueeze(0)?;
        let relative = memory.f_sub(&context)?;
        let buckets = relative_position_bucket(
            &relative,
            !self.is_decoder,
            c.relative_attention_num_buckets,
            c.relative_attention_max_distance,
        )?;
        Tensor::f_embedding(&self.relative_bias, &buckets, -1, false, false)?.f_permute([2, 0, 1])?.f_unsqueeze(0)
    }
}

/// HF's `_relative_position_bucket`, op for op, so buckets agree exactly.
fn relative_position_bucket(
    relative: &Tensor,
    bidirectional: bool,
    num_buckets: i64,
    max_distance: i64,
) -> TorchResult<Tensor> {
    let mut buckets = relative.f_zeros_like()?;
    let mut num_buckets = num_buckets;
    let distance = if bidirectional {
        num_buckets /= 2;
        buckets = buckets.f_add(&relative.f_gt(0)?.f_to_kind(Kind::Int64)?.f_mul_scalar(num_buckets)?)?;
        relative.f_abs()?
    } else {
        relative.f_clamp_max(0)?.f_neg()?
    };
    let max_exact = num_buckets / 2;
    let is_small = distance.f_lt(max_exact)?;
    let log_ratio = distance.f_to_kind(Kind::Float)?.f_div_scalar(max_exact as f64)?.f_log()?;
    let scale = (max_distance as f64 / max_exact as f64).ln();
    let large = log_ratio
        .f_div_scalar(scale)?
        .f_mul_scalar((num_buckets - max_exact) as f64)?
        .f_to_kind(Kind::Int64)?
        .f_add_scalar(max_exact)?
        .f_clamp_max(num_buckets - 1)?;
    buckets.f_add(&distance.f_where_self(&is_small, &large)?)
}

/// Additive attention mask: 0 where attended, the dtype's minimum where masked.
fn additive_mask(keep: &Tensor, kind: Kind) -> TorchResult<Tensor> {
    let min = match kind {
        Kind::Half => -65504.0,
        Kind::BFloat16 => -3.3895313892515355e38,
        _ => f32::MIN as f64,
    };
    keep.f_to_kind(kind)?.f_neg()?.f_add_scalar(1.0)?.f_mul_scalar(min)
}

pub struct T5 {
    pub config: T5Config,
    shared: Tensor,
    encoder: Stack,
    decoder: Stack,
    lm_head: Option<Tensor>,
}

impl T5 {
    /// Creates the model's variables under `root` with HF's names and HF's initialisation.
    pub fn new(root: &nn::Path, config: T5Config) -> Self {
        let shared = randn(&(root / "shared"), "weight", &[config.vocab_size, config.d_model], 1.0);
        let encoder = Stack::new(&(root / "encoder"), &config, false);
        let decoder = Stack::new(&(root / "decoder"), &config, true);
        let lm_head = (!config.tie_word_embeddings)
            .then(|| randn(&(root / "lm_head"), "weight", &[config.vocab_size, config.d_model], 1.0));
        T5 { config, shared, encoder, decoder, lm_head }
    }

    fn dropout(&self) -> f64 {
        self.config.dropout_rate
    }

    /// Encoder hidden states (batch, src_len, d_model).
    pub fn encode(&self, input_ids: &Tensor, attention_mask: &Tensor, train: bool) -> TorchResult<Tensor> {
        let eps = self.config.layer_norm_epsilon;
        let mut x = Tensor::f_embedding(&self.shared, input_ids, -1, false, false)?.f_dropout(self.dropout(), train)?;
        let len = input_ids.size()[1];
        let mask = additive_mask(&attention_mask.f_unsqueeze(1)?.f_unsqueeze(1)?, x.kind())?;
        let bias = self.encoder.position_bias(&self.config, 0, len, len)?.f_add(&mask)?;
        for block in &self.encoder.blocks {
            let h = rms_norm(&x, &block.self_norm, eps)?;
            let (k, v) = block.self_attention.project_kv(&h)?;
            let attn = block.self_attention.attend(&h, &k, &v, &bias, self.dropout(), train)?;
            x = x.f_add(&attn.f_dropout(self.dropout(), train)?)?;
            let ff = block.feed_forward.forward(&rms_norm(&x, &block.ff_norm, eps)?, self.dropout(), train)?;
            x = x.f_add(&ff.f_dropout(self.dropout(), train)?)?;
        }
        rms_norm(&x, &self.encoder.final_norm, eps)?.f_dropout(self.dropout(), train)
    }

    /// Logits (batch, tgt_len, vocab) for teacher-forced decoder inputs.
    pub fn decode(
        &self,
        decoder_input_ids: &Tensor,
        encoded: &Tensor,
        attention_mask: &Tensor,
        train: bool,
    ) -> TorchResult<Tensor> {
        let len = decoder_input_ids.size()[1];
        let device = encoded.device();
        let causal = Tensor::f_ones([len, len], (Kind::Float, device))?.f_tril(0)?;
        let self_bias =
            self.decoder.position_bias(&self.config, 0, len, len)?.f_add(&additive_mask(&causal, encoded.kind())?)?;
        let cross_bias = additive_mask(&attention_mask.f_unsqueeze(1)?.f_unsqueeze(1)?, encoded.kind())?;
        let mut x =
            Tensor::f_embedding(&self.shared, decoder_input_ids, -1, false, false)?.f_dropout(self.dropout(), train)?;
        for block in &self.decoder.blocks {
            x = self.decoder_block(block, x, DecoderMemory::Encoded(encoded), &self_bias, &cross_bias, train)?;
        }
        self.lm_logits(&x, train)
    }

    /// One decoder block, over the whole target (training) or one new position (generation).
    #[allow(clippy::too_many_arguments)]
    fn decoder_block(
        &self,
        block: &Block,
        x: Tensor,
        memory: DecoderMemory,
        self_bias: &Tensor,
        cross_bias: &Tensor,
        train: bool,
    ) -> TorchResult<Tensor> {
        let eps = self.config.layer_norm_epsilon;
        let drop = self.dropout();
        let (cross_attention, cross_norm) = block.cross_attention.as_ref().expect("decoder block");
        let h = rms_norm(&x, &block.self_norm, eps)?;
        let (mut k, mut v) = block.self_attention.project_kv(&h)?;
        let (attn, cross_k, cross_v) = match memory {
            DecoderMemory::Encoded(encoded) => {
                let attn = block.self_attention.attend(&h, &k, &v, self_bias, drop, train)?;
                let (ck, cv) = cross_attention.project_kv(encoded)?;
                (attn, ck, cv)
            }
            DecoderMemory::Cached(cache) => {
                if let Some((past_k, past_v)) = &cache.self_kv {
                    k = Tensor::f_cat(&[past_k, &k], 2)?;
                    v = Tensor::f_cat(&[past_v, &v], 2)?;
                }
                let attn = block.self_attention.attend(&h, &k, &v, self_bias, drop, train)?;
                cache.self_kv = Some((k, v));
                let (ck, cv) = &cache.cross_kv;
                (attn, ck.shallow_clone(), cv.shallow_clone())
            }
        };
        let x = x.f_add(&attn.f_dropout(drop, train)?)?;
        let cross =
            cross_attention.attend(&rms_norm(&x, cross_norm, eps)?, &cross_k, &cross_v, cross_bias, drop, train)?;
        let x = x.f_add(&cross.f_dropout(drop, train)?)?;
        let ff = block.feed_forward.forward(&rms_norm(&x, &block.ff_norm, eps)?, drop, train)?;
        x.f_add(&ff.f_dropout(drop, train)?)
    }

    fn lm_logits(&self, x: &Tensor, train: bool) -> TorchResult<Tensor> {
        let mut x =
            rms_norm(x, &self.decoder.final_norm, self.config.layer_norm_epsilon)?.f_dropout(self.dropout(), train)?;
        if self.config.scales_decoder_output() {
            x = x.f_mul_scalar((self.config.d_model as f64).powf(-0.5))?;
        }
        linear(&x, self.lm_head.as_ref().unwrap_or(&self.shared))
    }

    /// Full forward pass: logits for teacher-forced decoder inputs.
    pub fn forward(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        decoder_input_ids: &Tensor,
        train: bool,
    ) -> TorchResult<Tensor> {
        let encoded = self.encode(input_ids, attention_mask, train)?;
        self.decode(decoder_input_ids, &encoded, attention_mask, train)
    }

    /// HF's `_shift_right`: the decoder start token, then the labels without their last position.
    pub fn shift_right(&self, labels: &Tensor) -> TorchResult<Tensor> {
        let (b, len) = labels.size2()?;
        let start = Tensor::f_full([b, 1], self.config.decoder_start_token_id, (Kind::Int64, labels.device()))?;
        let shifted = Tensor::f_cat(&[&start, &labels.f_narrow(1, 0, len - 1)?], 1)?;
        let ignored = shifted.f_eq(IGNORE_INDEX)?;
        shifted.f_masked_fill(&ignored, self.config.pad_token_id)
    }

    /// Summed cross-entropy over the label positions that are not `IGNORE_INDEX`. The trainer
    /// divides by the label tokens of the whole optimizer step, so splitting a step into
    /// micro-batches (accumulation, OOM recovery) does not change its gradient.
    pub fn loss_sum(logits: &Tensor, labels: &Tensor) -> TorchResult<Tensor> {
        let vocab = logits.size()[2];
        logits.f_view([-1, vocab])?.f_to_kind(Kind::Float)?.f_cross_entropy_loss::<&Tensor>(
            &labels.f_view([-1])?,
            None,
            tch::Reduction::Sum,
            IGNORE_INDEX,
            0.0,
        )
    }

    /// Starts incremental decoding: projects the encoder states once for every cross-attention.
    pub fn start_decoding(&self, encoded: &Tensor, attention_mask: &Tensor) -> TorchResult<DecoderCache> {
        let layers = self
            .decoder
            .blocks
            .iter()
            .map(|block| {
                let (cross, _) = block.cross_attention.as_ref().expect("decoder block");
                Ok(LayerCache { self_kv: None, cross_kv: cross.project_kv(encoded)? })
            })
            .collect::<TorchResult<Vec<_>>>()?;
        let cross_bias = additive_mask(&attention_mask.f_unsqueeze(1)?.f_unsqueeze(1)?, encoded.kind())?;
        Ok(DecoderCache { layers, cross_bias, position: 0 })
    }

    /// Logits (batch, vocab) for the next token after `tokens` (batch, 1), advancing `cache`.
    pub fn decode_step(&self, tokens: &Tensor, cache: &mut DecoderCache) -> TorchResult<Tensor> {
        let position = cache.position;
        let self_bias = self.decoder.position_bias(&self.config, position, 1, position + 1)?;
        let mut x = Tensor::f_embedding(&self.shared, tokens, -1, false, false)?;
        let cross_bias = cache.cross_bias.shallow_clone();
        for (block, layer) in self.decoder.blocks.iter().zip(cache.layers.iter_mut()) {
            x = self.decoder_block(block, x, DecoderMemory::Cached(layer), &self_bias, &cross_bias, false)?;
        }
        cache.position += 1;
        self.lm_logits(&x, false)?.f_squeeze_dim(1)
    }
}
