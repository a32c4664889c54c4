//! A copy of a network's weights, handed from the training worker to inference.

use std::collections::HashMap;
use tch::{nn, Tensor};

pub struct WeightsSnapshot {
    tensors: HashMap<String, Tensor>,
    /// The training step the weights are from.
    pub step: u64,
}

impl WeightsSnapshot {
    /// Deep copies of every variable of `vs`: training may go on changing its own.
    pub fn take(vs: &nn::VarStore, step: u64) -> Self {
        let tensors = tch::no_grad(|| {
            vs.variables()
                .into_iter()
                .map(|(name, t)| (name, t.detach().copy()))
                .collect()
        });
        Self { tensors, step }
    }

    /// Writes the snapshot into `vs`, whose variables must have the same names and shapes
    /// (the same model configuration).
    pub fn load_into(&self, vs: &nn::VarStore) -> anyhow::Result<()> {
        let mut targets = vs.variables();
        anyhow::ensure!(
            targets.len() == self.tensors.len(),
            "weights snapshot has {} tensors, the network {}",
            self.tensors.len(),
            targets.len()
        );
        tch::no_grad(|| {
            for (name, source) in &self.tensors {
                let target = targets
                    .get_mut(name)
                    .ok_or_else(|| anyhow::anyhow!("the network has no tensor {name}"))?;
                anyhow::ensure!(
                    target.size() == source.size(),
                    "{name}: snapshot {:?}, network {:?}",
                    source.size(),
                    target.size()
                );
                target.copy_(&source.to_device(target.device()));
            }
            Ok(())
        })
    }
}
