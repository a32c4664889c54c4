//! A contact sheet of a decomposition: one row per chosen frame, columns input | masks | each
//! layer over a checkerboard (so transparency shows) | the frame's background | each removal.

use tch::{Kind, Tensor};

/// What one row shows, at the input's size; colours in [0, 1].
pub struct SheetRow {
    /// [3, H, W]
    pub input: Tensor,
    /// [H, W] label map (0 = background)
    pub labels: Tensor,
    /// [L, 4, H, W] straight-alpha layers
    pub layers: Tensor,
    /// [3, H, W]
    pub background: Tensor,
    /// [3, H, W] each: the frame with an object removed (`decompose --remove`).
    pub removed: Vec<Tensor>,
}

/// Colours of labels 1, 2, ... (label 0 stays black).
const PALETTE: [[f64; 3]; 6] = [
    [0.95, 0.30, 0.25],
    [0.25, 0.65, 0.95],
    [0.35, 0.85, 0.35],
    [0.95, 0.80, 0.25],
    [0.75, 0.40, 0.90],
    [0.30, 0.90, 0.85],
];

/// A light grey checkerboard [3, H, W] of 16-pixel squares.
fn checkerboard(h: i64, w: i64) -> Tensor {
    let square =
        |n: i64| Tensor::arange(n, (Kind::Int64, tch::Device::Cpu)).floor_divide_scalar(16);
    let odd = (square(h).view([h, 1]) + square(w).view([1, w]))
        .remainder(2)
        .to_kind(Kind::Float);
    (odd * 0.2 + 0.6).unsqueeze(0).expand([3, h, w], false)
}

fn colour_labels(labels: &Tensor) -> Tensor {
    let (h, w) = (labels.size()[0], labels.size()[1]);
    let mut image = Tensor::zeros([3, h, w], (Kind::Float, tch::Device::Cpu));
    let top = labels.max().int64_value(&[]);
    for label in 1..=top {
        let colour = PALETTE[(label as usize - 1) % PALETTE.len()];
        let colour = Tensor::from_slice(&colour.map(|c| c as f32)).view([3, 1, 1]);
        let here = labels.eq(label).unsqueeze(0);
        image = image.where_self(&here.logical_not(), &colour.expand([3, h, w], false));
    }
    image
}

/// The sheet [3, rows x H, (3 + L + removals) x W].
pub fn contact_sheet(rows: &[SheetRow]) -> Tensor {
    let lines: Vec<Tensor> = rows
        .iter()
        .map(|row| {
            let (h, w) = (row.input.size()[1], row.input.size()[2]);
            let board = checkerboard(h, w);
            let mut cells = vec![row.input.shallow_clone(), colour_labels(&row.labels)];
            for k in 0..row.layers.size()[0] {
                let layer = row.layers.get(k);
                let alpha = layer.narrow(0, 3, 1);
                let rgb = layer.narrow(0, 0, 3);
                cells.push(&alpha * rgb + (alpha.neg() + 1.0) * &board);
            }
            cells.push(row.background.shallow_clone());
            cells.extend(row.removed.iter().map(Tensor::shallow_clone));
            Tensor::cat(&cells, 2)
        })
        .collect();
    Tensor::cat(&lines, 1)
}
