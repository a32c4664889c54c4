//! Learnt spatio-temporal positional embedding (supplementary Sec. 1, "Positional Embedding"):
//! separate x (96), y (96) and t (64) tables concatenated to 256 channels, clipped to [-1, 1]
//! as in the reference. Tables are learnt at the pretraining size; a different working size
//! resizes the x and y tables bilinearly.

use super::config::ModelConfig;
use tch::{nn, Tensor};

#[derive(Debug)]
pub struct PositionalEmbedding {
    x: Tensor,
    y: Tensor,
    t: Tensor,
}

impl PositionalEmbedding {
    pub fn new(vs: nn::Path, cfg: &ModelConfig) -> Self {
        // Truncated-normal(0.02) in the reference; a plain normal of the same scale here.
        let init = nn::Init::Randn {
            mean: 0.0,
            stdev: 0.02,
        };
        let w = cfg.train_width / ModelConfig::STRIDE;
        let h = cfg.train_height / ModelConfig::STRIDE;
        Self {
            x: vs.var("x", &[w, cfg.pos_x_dim], init),
            y: vs.var("y", &[h, cfg.pos_y_dim], init),
            t: vs.var("t", &[cfg.max_frames, cfg.pos_t_dim], init),
        }
    }

    /// Resizes a [len, dim] table to [new_len, dim] bilinearly along its length.
    fn resize(table: &Tensor, new_len: i64) -> Tensor {
        let (len, dim) = table.size2().expect("positional table is 2-d");
        if len == new_len {
            return table.shallow_clone();
        }
        // [len, dim] -> [1, dim, len, 1] so that bilinear resizing acts on the length only.
        table
            .transpose(0, 1)
            .reshape([1, dim, len, 1])
            .upsample_bilinear2d([new_len, 1], false, None, None)
            .reshape([dim, new_len])
            .transpose(0, 1)
    }

    /// The embedding for `t` frames of `h` x `w` tokens: [t, h, w, 256].
    pub fn grid(&self, t: i64, h: i64, w: i64) -> Tensor {
        let x = Self::resize(&self.x, w);
        let y = Self::resize(&self.y, h);
        let tt = self.t.narrow(0, 0, t);
        let (dx, dy, dt) = (x.size()[1], y.size()[1], tt.size()[1]);
        Tensor::cat(
            &[
                x.view([1, 1, w, dx]).expand([t, h, w, dx], false),
                y.view([1, h, 1, dy]).expand([t, h, w, dy], false),
                tt.view([t, 1, 1, dt]).expand([t, h, w, dt], false),
            ],
            -1,
        )
        .clamp(-1.0, 1.0)
    }
}
