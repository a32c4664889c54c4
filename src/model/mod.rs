//! The Omnimatte coordination-game network (paper Sec. 3.2, supplementary Sec. 1).
//!
//! For one object i and a clip of T frames, the mask encoder turns the object's masks into
//! queries, the image encoder turns the frames into keys and values, a transformer decoder
//! lets the mask tokens gather what belongs to the object (its shadow, its reflection), and a
//! CNN decoder renders an RGBA layer per frame. Objects are independent batch elements: no
//! attention crosses objects, which is what makes each object a separate "player".
//!
//! Tensor conventions: frames are [B, T, 3, H, W] in [-1, 1] (with their difference to the
//! background beside them, [B, T, 6, H, W], where the network sees it: [`background_input`]);
//! masks are [B, L, T, 1, H, W] in {0, 1} (L objects); `visible` is [B, T] in {0, 1}; layers
//! come out as [B, L, T, 4, H, W] RGBA in [-1, 1].
//!
//! Size: 7 367 044 parameters (two 1.71 M encoders, a 2.11 M transformer, a 1.84 M decoder,
//! 4.9 k of embeddings), module for module the reference's layers; the design notes' "about 8.4 M" (docs/method.md)
//! is not reproduced by the reference code either (pinned in tests/model.rs).

pub mod background_input;
pub mod config;
mod decoder;
mod encoder;
mod layers;
pub mod loading;
mod positional;
pub mod precision;
mod transformer;
pub mod weights;

pub use config::{check_working_size, ModelConfig};
pub use encoder::Encoded;
pub use precision::{Precision, PrecisionChoice};

use decoder::Decoder;
use encoder::Encoder;
use positional::PositionalEmbedding;
use tch::{nn, Kind, Tensor};
use transformer::TransformerDecoder;

/// The network. Build it on a `VarStore` path; weights are saved and loaded with [`weights`].
#[derive(Debug)]
pub struct OmnimatteNet {
    cfg: ModelConfig,
    image_encoder: Encoder,
    mask_encoder: Encoder,
    image_position: PositionalEmbedding,
    mask_position: PositionalEmbedding,
    /// Added to the image tokens of frames the network sees.
    visible_embedding: Tensor,
    /// Added to the image tokens of frames hidden from it (the ones it must predict).
    hidden_embedding: Tensor,
    transformer: TransformerDecoder,
    decoder: Decoder,
}

impl OmnimatteNet {
    pub fn new(vs: &nn::Path, cfg: ModelConfig) -> anyhow::Result<Self> {
        cfg.validate()?;
        let f = cfg.base_filters;
        let compute = cfg.precision.kind();
        let emb = nn::Init::Randn {
            mean: 0.0,
            stdev: 0.02,
        };
        Ok(Self {
            image_encoder: Encoder::new(vs / "image_encoder", cfg.image_channels(), f, compute),
            mask_encoder: Encoder::new(vs / "mask_encoder", 1, f, compute),
            image_position: PositionalEmbedding::new(vs / "image_position", &cfg),
            mask_position: PositionalEmbedding::new(vs / "mask_position", &cfg),
            visible_embedding: vs.var("visible_embedding", &[cfg.token_dim], emb),
            hidden_embedding: vs.var("hidden_embedding", &[cfg.token_dim], emb),
            transformer: TransformerDecoder::new(vs / "transformer", &cfg),
            decoder: Decoder::new(vs / "decoder", f, compute),
            cfg,
        })
    }

    pub fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    /// The image encoder's input: `frames` [..., 3, H, W] as they are, or with their
    /// difference to `background` [..., 3, H, W] (broadcast over the leading dimensions)
    /// beside them where the network sees the background ([`background_input`]). Both in
    /// [-1, 1].
    pub fn image_input(&self, frames: &Tensor, background: &Tensor) -> Tensor {
        if self.cfg.background_input {
            background_input::with_background(frames, background)
        } else {
            frames.shallow_clone()
        }
    }

    /// Hidden frames are set to -1 (black in [-1, 1]) before encoding, so the network
    /// cannot copy them; their difference to the background, where the network sees it, to 0.
    /// `frames` [B, T, C, H, W] (the image input), `visible` [B, T].
    pub fn hide_frames(frames: &Tensor, visible: &Tensor) -> Tensor {
        let (b, t) = visible.size2().expect("visible is [B, T]");
        let c = frames.size()[2];
        let v = visible.to_kind(frames.kind()).view([b, t, 1, 1, 1]);
        let hidden = background_input::hidden_pixel(c)
            .to_device(frames.device())
            .to_kind(frames.kind())
            .view([1, 1, c, 1, 1]);
        frames * &v + hidden * (1.0 - v)
    }

    /// Image encoder Φ_enc on single frames' image input: [N, 3 or 6, H, W] in [-1, 1].
    pub fn encode_images(&self, frames: &Tensor) -> Encoded {
        self.image_encoder.forward(frames)
    }

    /// Mask encoder Φ_mask on single masks: [N, 1, H, W] in {0, 1}; returns [N, 256, H/16, W/16].
    pub fn encode_masks(&self, masks: &Tensor) -> Tensor {
        // The encoder sees masks in [-1, 1], like images.
        self.mask_encoder.forward(&(masks * 2.0 - 1.0)).features
    }

    /// Transformer stage: image tokens [B, T, D, h, w] (of frames already hidden), mask tokens
    /// [B, L, T, D, h, w], `visible` [B, T]. Returns per-object tokens [B, L, T, D, h, w].
    pub fn transform(
        &self,
        image_tokens: &Tensor,
        mask_tokens: &Tensor,
        visible: &Tensor,
        train: bool,
    ) -> Tensor {
        self.transform_queries(image_tokens, mask_tokens, visible, train, None)
    }

    /// Like [`transform`](Self::transform), for inference, but returns only frame `index`'s
    /// tokens [B, L, D, h, w]: the last layer computes its queries for that frame alone (the
    /// same numbers, a fifth of the last layer's work for a clip of five).
    pub fn transform_frame(
        &self,
        image_tokens: &Tensor,
        mask_tokens: &Tensor,
        visible: &Tensor,
        index: i64,
    ) -> Tensor {
        self.transform_queries(image_tokens, mask_tokens, visible, false, Some(index))
            .select(2, 0)
    }

    /// The transformer stage for every frame (`frame` None) or one: [B, L, T or 1, D, h, w].
    fn transform_queries(
        &self,
        image_tokens: &Tensor,
        mask_tokens: &Tensor,
        visible: &Tensor,
        train: bool,
        frame: Option<i64>,
    ) -> Tensor {
        let [b, t, d, h, w] = image_tokens.size()[..] else {
            panic!("image tokens must be [B, T, D, h, w]")
        };
        let l = mask_tokens.size()[1];
        let n = t * h * w;

        // Mark each frame as seen or hidden (one learnt vector per state).
        let v = visible.to_kind(image_tokens.kind()).view([b, t, 1, 1, 1]);
        let vis = self.visible_embedding.view([1, 1, d, 1, 1]);
        let hid = self.hidden_embedding.view([1, 1, d, 1, 1]);
        let image_tokens = image_tokens + &v * vis + v.neg().g_add_scalar(1.0) * hid;
        let image_tokens = image_tokens.permute([0, 1, 3, 4, 2]); // [B, T, h, w, D]

        // Keys carry position, values do not (reference); features are clipped to [-2, 2].
        let keys = (&image_tokens + self.image_position.grid(t, h, w))
            .reshape([b, 1, n, d])
            .clamp(-2.0, 2.0);
        let values = image_tokens.reshape([b, 1, n, d]).clamp(-2.0, 2.0);
        // The same keys and values serve every object: objects are batch elements.
        let keys = keys.expand([b, l, n, d], false).reshape([b * l, n, d]);
        let values = values.expand([b, l, n, d], false).reshape([b * l, n, d]);

        let queries = (mask_tokens.permute([0, 1, 2, 4, 5, 3]) + self.mask_position.grid(t, h, w))
            .reshape([b * l, n, d])
            .clamp(-2.0, 2.0);

        // Queries are ordered frame by frame: frame f's are rows f*h*w .. (f+1)*h*w.
        let rows = frame.map(|f| (f * h * w, h * w));
        let frames = if frame.is_some() { 1 } else { t };
        self.transformer
            .forward(&queries, &keys, &values, train, rows)
            .view([b, l, frames, h, w, d])
            .permute([0, 1, 2, 5, 3, 4])
    }

    /// CNN decoder: tokens [N, D, h, w] and image skips [N, f, H/2, W/2] to RGBA [N, 4, H, W].
    pub fn decode(&self, tokens: &Tensor, skip: &Tensor) -> Tensor {
        self.decoder.forward(tokens, skip)
    }

    /// Checks the shapes of a clip, so that bad input is an error rather than a libtorch panic.
    pub fn check_clip(
        &self,
        frames: &Tensor,
        masks: &Tensor,
        visible: &Tensor,
    ) -> anyhow::Result<()> {
        let fs = frames.size();
        let ms = masks.size();
        let c = self.cfg.image_channels();
        anyhow::ensure!(
            fs.len() == 5 && fs[2] == c,
            "frames must be [B, T, {c}, H, W] (the image input, `image_input`), got {fs:?}"
        );
        let [b, t, _, h, w] = fs[..] else {
            unreachable!()
        };
        anyhow::ensure!(
            ms.len() == 6 && ms[0] == b && ms[2] == t && ms[3] == 1 && ms[4] == h && ms[5] == w,
            "masks must be [B, L, T, 1, H, W] matching frames {fs:?}, got {ms:?}"
        );
        anyhow::ensure!(ms[1] >= 1, "a clip needs at least one object mask");
        anyhow::ensure!(
            visible.size() == [b, t],
            "visible must be [B, T] = [{b}, {t}], got {:?}",
            visible.size()
        );
        anyhow::ensure!(
            t <= self.cfg.max_frames,
            "clip of {t} frames exceeds the time embedding's {} frames",
            self.cfg.max_frames
        );
        check_working_size(h, w)
    }

    /// Encoders and transformer for a whole clip: per-object tokens [B, L, T, D, h, w] and the
    /// image skips [B, T, f, H/2, W/2].
    fn encode_clip(
        &self,
        frames: &Tensor,
        masks: &Tensor,
        visible: &Tensor,
        train: bool,
        frame: Option<i64>,
    ) -> (Tensor, Tensor) {
        let [b, t, c, h, w] = frames.size()[..] else {
            unreachable!()
        };
        let l = masks.size()[1];
        let hidden = Self::hide_frames(frames, visible);
        let enc = self.encode_images(&hidden.reshape([b * t, c, h, w]));
        let fe = enc.features.size();
        let image_tokens = enc.features.view([b, t, fe[1], fe[2], fe[3]]);
        let mask_tokens = self
            .encode_masks(&masks.reshape([b * l * t, 1, h, w]))
            .view([b, l, t, fe[1], fe[2], fe[3]]);
        let tokens = self.transform_queries(&image_tokens, &mask_tokens, visible, train, frame);
        let sk = enc.skip.size();
        (tokens, enc.skip.view([b, t, sk[1], sk[2], sk[3]]))
    }

    /// The whole network on a clip: RGBA layers [B, L, T, 4, H, W] in [-1, 1] for every frame.
    pub fn forward(
        &self,
        frames: &Tensor,
        masks: &Tensor,
        visible: &Tensor,
        train: bool,
    ) -> anyhow::Result<Tensor> {
        self.check_clip(frames, masks, visible)?;
        let (tokens, skip) = self.encode_clip(frames, masks, visible, train, None);
        let [b, l, t, d, th, tw] = tokens.size()[..] else {
            unreachable!()
        };
        let sk = skip.size();
        let skip = skip
            .unsqueeze(1)
            .expand([b, l, t, sk[2], sk[3], sk[4]], false)
            .reshape([b * l * t, sk[2], sk[3], sk[4]]);
        let rgba = self.decode(&tokens.reshape([b * l * t, d, th, tw]), &skip);
        let (h, w) = (rgba.size()[2], rgba.size()[3]);
        Ok(rgba.view([b, l, t, 4, h, w]))
    }

    /// Like [`forward`](Self::forward) but decodes only frame `index` of the clip (inference
    /// keeps one output per clip, and the CNN decoder is about half of the cost).
    /// Returns [B, L, 4, H, W].
    pub fn forward_frame(
        &self,
        frames: &Tensor,
        masks: &Tensor,
        visible: &Tensor,
        index: i64,
    ) -> anyhow::Result<Tensor> {
        self.check_clip(frames, masks, visible)?;
        let t = frames.size()[1];
        anyhow::ensure!(
            (0..t).contains(&index),
            "output index {index} outside a clip of {t} frames"
        );
        let (tokens, skip) = self.encode_clip(frames, masks, visible, false, Some(index));
        let [b, l, _, d, th, tw] = tokens.size()[..] else {
            unreachable!()
        };
        let tokens = tokens.reshape([b * l, d, th, tw]);
        let sk = skip.size();
        let skip = skip
            .select(1, index)
            .unsqueeze(1)
            .expand([b, l, sk[2], sk[3], sk[4]], false)
            .reshape([b * l, sk[2], sk[3], sk[4]]);
        let rgba = self.decode(&tokens, &skip);
        let (h, w) = (rgba.size()[2], rgba.size()[3]);
        Ok(rgba.view([b, l, 4, h, w]))
    }
}

/// Number of scalar parameters in a var store.
pub fn parameter_count(vs: &nn::VarStore) -> i64 {
    vs.trainable_variables()
        .iter()
        .map(Tensor::numel)
        .sum::<usize>() as i64
}

/// Float kind used throughout the model.
pub const KIND: Kind = Kind::Float;
