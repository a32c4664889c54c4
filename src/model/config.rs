//! Network hyper-parameters. Defaults are the paper's (supplementary Sec. 1) and the
//! reference implementation's values (docs/method.md).

/// Sizes of the Omnimatte coordination-game network.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    /// Channels of the first encoder block; the blocks are f, 2f, 4f, 4f (64-128-256-256).
    pub base_filters: i64,
    /// Token width: 4f = 256, the sum of the x/y/t embedding widths.
    pub token_dim: i64,
    /// Positional embedding widths for x, y and t (96 + 96 + 64 = 256).
    pub pos_x_dim: i64,
    pub pos_y_dim: i64,
    pub pos_t_dim: i64,
    /// Height and width the positional tables are learnt at (pretraining size).
    /// Other working sizes resize the tables bilinearly (supplementary Sec. 1). The reference
    /// crops the tables for smaller inputs instead; resizing at every size keeps one rule, and
    /// keeps a token's embedding tied to its relative place in the frame, as during training.
    pub train_height: i64,
    pub train_width: i64,
    /// Length of the learnt time embedding table (frames per clip at most).
    pub max_frames: i64,
    pub num_heads: i64,
    pub key_size: i64,
    pub num_layers: i64,
    /// MLP widening factor in each transformer layer.
    pub mlp_factor: i64,
    /// Dropout on the attention and MLP branches while training.
    pub dropout: f64,
    /// What convolutions, matmuls and attention compute in (weights stay fp32).
    pub precision: super::Precision,
    /// Whether the image encoder also sees each frame's difference to the background estimate
    /// the layers are composited over (three more input channels). Not in the paper: see
    /// [`super::background_input`].
    pub background_input: bool,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            base_filters: 64,
            token_dim: 256,
            pos_x_dim: 96,
            pos_y_dim: 96,
            pos_t_dim: 64,
            train_height: 128,
            train_width: 128,
            max_frames: 10,
            num_heads: 4,
            key_size: 64,
            num_layers: 2,
            mlp_factor: 4,
            dropout: 0.1,
            precision: super::Precision::Fp32,
            background_input: false,
        }
    }
}

impl ModelConfig {
    /// Total down-sampling of the encoders: four stride-2 blocks.
    pub const STRIDE: i64 = 16;

    /// Channels of the image encoder's input: RGB, and the difference to the background's RGB
    /// when it sees it.
    pub fn image_channels(&self) -> i64 {
        if self.background_input {
            6
        } else {
            3
        }
    }

    /// Checks the internal consistency of the sizes, so a bad config fails early and clearly.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.pos_x_dim + self.pos_y_dim + self.pos_t_dim == self.token_dim,
            "positional widths {}+{}+{} must sum to the token width {}",
            self.pos_x_dim,
            self.pos_y_dim,
            self.pos_t_dim,
            self.token_dim
        );
        anyhow::ensure!(
            self.token_dim == 4 * self.base_filters,
            "token width {} must be 4x the base filters {}",
            self.token_dim,
            self.base_filters
        );
        anyhow::ensure!(
            self.num_heads * self.key_size > 0,
            "attention needs at least one head"
        );
        check_working_size(self.train_height, self.train_width)?;
        Ok(())
    }
}

/// The network needs both sides to be positive multiples of 16 (four stride-2 blocks).
pub fn check_working_size(height: i64, width: i64) -> anyhow::Result<()> {
    let s = ModelConfig::STRIDE;
    anyhow::ensure!(
        height >= s && width >= s && height % s == 0 && width % s == 0,
        "working size {height}x{width} (HxW) must be positive multiples of {s}"
    );
    Ok(())
}
