//! AdamW (Loshchilov & Hutter; supplementary Sec. 3 trains with it) written out over the
//! `VarStore`'s tensors, because libtorch's optimiser inside tch cannot hand out its moment
//! estimates: with them in a file, a resumed pretraining run continues exactly where it
//! stopped instead of restarting Adam's statistics.
//!
//! Price: about 30 ms more per update than libtorch's own loop for the 7.4 M parameters on
//! the 2-core CPU (80 vs 50 ms with a trivial loss), under 2% of a pretraining step.
//!
//! The update is PyTorch's `torch.optim.AdamW` (non-amsgrad) step for step:
//!   p <- p * (1 - lr * wd)
//!   m <- b1 m + (1 - b1) g;   v <- b2 v + (1 - b2) g^2
//!   p <- p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)

use anyhow::{bail, Context};
use std::collections::HashMap;
use std::path::Path;
use tch::{nn, Kind, Tensor};

/// Hyper-parameters (PyTorch's defaults but for the weight decay, which the caller sets).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWConfig {
    pub learning_rate: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl AdamWConfig {
    pub fn new(learning_rate: f64, weight_decay: f64) -> Self {
        Self {
            learning_rate,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay,
        }
    }
}

/// One parameter and its two moment estimates.
struct Slot {
    name: String,
    param: Tensor,
    m: Tensor,
    v: Tensor,
    /// Elementwise factor on this parameter's learning rate (broadcast to its shape), where
    /// some of its elements must learn faster than the rest ([`AdamW::scale_learning_rate`]).
    lr_scale: Option<Tensor>,
}

/// The optimiser: every trainable variable of a `VarStore`, with its state.
pub struct AdamW {
    config: AdamWConfig,
    slots: Vec<Slot>,
    /// Updates made so far (Adam's t, for the bias corrections).
    updates: i64,
}

impl AdamW {
    /// Tracks every variable of `vs` that requires a gradient, in name order.
    pub fn new(vs: &nn::VarStore, config: AdamWConfig) -> Self {
        let mut named: Vec<(String, Tensor)> = vs
            .variables()
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let slots = named
            .into_iter()
            .map(|(name, param)| Slot {
                m: param.zeros_like(),
                v: param.zeros_like(),
                name,
                param,
                lr_scale: None,
            })
            .collect();
        Self {
            config,
            slots,
            updates: 0,
        }
    }

    /// Multiplies the learning rate of parameter `name`, element by element, by `scale`
    /// (broadcast to the parameter's shape): new weights beside trained ones, such as the
    /// background channels of a widened network, can learn at a pretraining rate while the
    /// rest anneals. The weight decay is not scaled.
    pub fn scale_learning_rate(&mut self, name: &str, scale: &Tensor) -> anyhow::Result<()> {
        let slot = self
            .slots
            .iter_mut()
            .find(|s| s.name == name)
            .with_context(|| format!("no trainable parameter `{name}` to scale"))?;
        let scale = scale
            .to_device(slot.param.device())
            .to_kind(slot.param.kind());
        anyhow::ensure!(
            scale.f_broadcast_to(slot.param.size()).is_ok(),
            "a learning-rate scale of shape {:?} does not fit `{name}` {:?}",
            scale.size(),
            slot.param.size()
        );
        slot.lr_scale = Some(scale);
        Ok(())
    }

    /// The learning rate of the next updates (a schedule's: warm-up, decay).
    pub fn set_learning_rate(&mut self, learning_rate: f64) {
        self.config.learning_rate = learning_rate;
    }

    /// Updates made so far.
    pub fn updates(&self) -> i64 {
        self.updates
    }

    /// Clears the gradients, back-propagates `loss` and updates every parameter.
    pub fn backward_step(&mut self, loss: &Tensor) {
        self.zero_grad();
        loss.backward();
        self.step();
    }

    pub fn zero_grad(&mut self) {
        for slot in &mut self.slots {
            slot.param.zero_grad();
        }
    }

    /// One update from the gradients in place; parameters without a gradient are left alone
    /// (as PyTorch does), but the clock advances for all.
    pub fn step(&mut self) {
        let c = self.config;
        self.updates += 1;
        let t = self.updates as i32;
        let bias1 = 1.0 - c.beta1.powi(t);
        let bias2 = 1.0 - c.beta2.powi(t);
        tch::no_grad(|| {
            for slot in &mut self.slots {
                let grad = slot.param.grad();
                if !grad.defined() {
                    continue;
                }
                // In place where possible, as PyTorch does: this runs on every parameter at
                // every step.
                let _ = slot
                    .param
                    .g_mul_scalar_(1.0 - c.learning_rate * c.weight_decay);
                let _ = slot.m.lerp_(&grad, 1.0 - c.beta1);
                let _ = slot.v.g_mul_scalar_(c.beta2);
                let _ = slot.v.g_add_(&grad.square().g_mul_scalar_(1.0 - c.beta2));
                let mut denom = slot.v.sqrt();
                let _ = denom.g_div_scalar_(bias2.sqrt()).g_add_scalar_(c.eps);
                let mut update = &slot.m / &denom;
                if let Some(scale) = &slot.lr_scale {
                    let _ = update.g_mul_(scale);
                }
                let _ = slot
                    .param
                    .g_sub_(&update.g_mul_scalar_(c.learning_rate / bias1));
            }
        });
    }

    /// Writes the moment estimates and the update count (safetensors, tensors on the CPU).
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let mut named: Vec<(String, Tensor)> = Vec::with_capacity(2 * self.slots.len() + 1);
        named.push((
            "updates".into(),
            Tensor::from_slice(&[self.updates]).to_kind(Kind::Int64),
        ));
        for slot in &self.slots {
            named.push((
                format!("m/{}", slot.name),
                slot.m.to_device(tch::Device::Cpu),
            ));
            named.push((
                format!("v/{}", slot.name),
                slot.v.to_device(tch::Device::Cpu),
            ));
        }
        Tensor::write_safetensors(&named, path)
            .with_context(|| format!("writing the optimiser state to {}", path.display()))
    }

    /// Restores what [`AdamW::save`] wrote; every parameter's moments must be in the file with
    /// their shapes, or nothing is changed.
    pub fn load(&mut self, path: &Path) -> anyhow::Result<()> {
        let file = path.display();
        let stored: HashMap<String, Tensor> = Tensor::read_safetensors(path)
            .with_context(|| format!("optimiser state {file} is not a readable safetensors file"))?
            .into_iter()
            .collect();
        let get = |name: &str, like: &Tensor| -> anyhow::Result<Tensor> {
            let Some(t) = stored.get(name) else {
                bail!("optimiser state {file} does not fit this model: `{name}` is missing");
            };
            // A network that now sees the background: zero moments for its new channels.
            let widened = crate::model::background_input::widen(name, t, &like.size());
            let t = widened.as_ref().unwrap_or(t);
            if t.size() != like.size() {
                bail!(
                    "optimiser state {file} does not fit this model: `{name}` has shape {:?}, needs {:?}",
                    t.size(),
                    like.size()
                );
            }
            Ok(t.to_device(like.device()).to_kind(like.kind()))
        };
        let updates = stored
            .get("updates")
            .with_context(|| format!("optimiser state {file} has no update count"))?
            .int64_value(&[0]);
        let mut moments = Vec::with_capacity(self.slots.len());
        for slot in &self.slots {
            moments.push((
                get(&format!("m/{}", slot.name), &slot.m)?,
                get(&format!("v/{}", slot.name), &slot.v)?,
            ));
        }
        for (slot, (m, v)) in self.slots.iter_mut().zip(moments) {
            slot.m = m;
            slot.v = v;
        }
        self.updates = updates;
        Ok(())
    }
}
