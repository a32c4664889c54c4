//! Scratch: each layer's alpha solved again per pixel so that the layers over the background
//! reconstruct the frame (least squares, regularised towards the network's alpha).

use tch::{Kind, Tensor};

pub struct Params {
    pub lambda: f64,
    pub only_lower: bool,
    pub window: i64,
    pub sweeps: usize,
}

pub fn from_env() -> Option<Params> {
    let v = std::env::var("OMNI_RESOLVE").ok()?;
    let p: Vec<&str> = v.split(',').collect();
    Some(Params {
        lambda: p[0].parse().unwrap(),
        only_lower: p.get(1) == Some(&"lower"),
        window: p.get(2).map(|s| s.parse().unwrap()).unwrap_or(1),
        sweeps: p.get(3).map(|s| s.parse().unwrap()).unwrap_or(1),
    })
}

fn local_sum(x: &Tensor, window: i64) -> Tensor {
    if window <= 1 {
        return x.shallow_clone();
    }
    x.unsqueeze(0)
        .avg_pool2d([window, window], [1, 1], [window / 2, window / 2], false, false, None::<i64>)
        .squeeze_dim(0)
}

/// `rgba` [L, 4, h, w], `frame` and `background` [3, h, w], all in [0, 1].
pub fn reconcile(rgba: &Tensor, frame: &Tensor, background: &Tensor, p: &Params) -> Tensor {
    let l = rgba.size()[0];
    let colours: Vec<Tensor> = (0..l).map(|k| rgba.get(k).narrow(0, 0, 3)).collect();
    let network: Vec<Tensor> = (0..l).map(|k| rgba.get(k).narrow(0, 3, 1)).collect();
    let mut alphas: Vec<Tensor> = network.iter().map(|a| a.copy()).collect();
    for _ in 0..p.sweeps {
        for k in 0..l as usize {
            // Below: layers before k over the background.
            let below = (0..k).fold(background.shallow_clone(), |acc, j| {
                &alphas[j] * &colours[j] + (1.0 - &alphas[j]) * acc
            });
            // Above: transmittance and what the layers in front add.
            let mut through = Tensor::ones_like(&alphas[k]);
            let mut added = Tensor::zeros_like(background);
            for j in k + 1..l as usize {
                added = &alphas[j] * &colours[j] + (1.0 - &alphas[j]) * added;
                through = through * (1.0 - &alphas[j]);
            }
            let d = &through * (&colours[k] - &below);
            let y = frame - &through * &below - added;
            let num = local_sum(&(&d * &y).sum_dim_intlist(0, true, Kind::Float), p.window)
                + &network[k] * p.lambda;
            let den = local_sum(&d.square().sum_dim_intlist(0, true, Kind::Float), p.window)
                + p.lambda;
            let mut solved = (num / den).clamp(0.0, 1.0);
            if p.only_lower {
                solved = solved.minimum(&network[k]);
            }
            alphas[k] = solved;
        }
    }
    let layers: Vec<Tensor> = (0..l as usize)
        .map(|k| Tensor::cat(&[colours[k].shallow_clone(), alphas[k].shallow_clone()], 0))
        .collect();
    Tensor::stack(&layers, 0)
}
