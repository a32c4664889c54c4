//! A contact sheet of a decomposition: one row per chosen frame, columns input | masks | each
//! layer over a checkerboard (so transparency shows) | the frame's background | each removal.

use gstomnimatte::working::resize_area;
use tch::{Kind, Tensor};

/// The most pixels a cell of the sheet is high: frames taller than this are shown smaller (a
/// 1080p clip's four rows of six cells would be a 11520x4320 picture, a gigabyte to make).
pub const CELL_HEIGHT: i64 = 270;

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

/// The sheet [3, rows x h, (3 + L + removals) x w], where (h, w) is the frames' size, or no
/// more than [`CELL_HEIGHT`] high in their shape.
pub fn contact_sheet(rows: &[SheetRow]) -> Tensor {
    let lines: Vec<Tensor> = rows
        .iter()
        .map(|row| {
            let (h, w) = (row.input.size()[1], row.input.size()[2]);
            let (cell_h, cell_w) = if h > CELL_HEIGHT {
                (CELL_HEIGHT, (w * CELL_HEIGHT + h / 2) / h)
            } else {
                (h, w)
            };
            let shrink =
                |cell: Tensor| resize_area(&cell.unsqueeze(0), cell_h, cell_w).squeeze_dim(0);
            let board = checkerboard(h, w);
            let mut cells = vec![
                shrink(row.input.shallow_clone()),
                shrink(colour_labels(&row.labels)),
            ];
            for k in 0..row.layers.size()[0] {
                let layer = row.layers.get(k);
                let alpha = layer.narrow(0, 3, 1);
                let rgb = layer.narrow(0, 0, 3);
                cells.push(shrink(&alpha * rgb + (alpha.neg() + 1.0) * &board));
            }
            cells.push(shrink(row.background.shallow_clone()));
            cells.extend(row.removed.iter().map(|r| shrink(r.shallow_clone())));
            Tensor::cat(&cells, 2)
        })
        .collect();
    Tensor::cat(&lines, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(h: i64, w: i64, objects: i64) -> SheetRow {
        let grey = |c: i64| Tensor::full([c, h, w], 0.5, (Kind::Float, tch::Device::Cpu));
        SheetRow {
            input: grey(3),
            labels: Tensor::ones([h, w], (Kind::Uint8, tch::Device::Cpu)),
            layers: Tensor::stack(&(0..objects).map(|_| grey(4)).collect::<Vec<_>>(), 0),
            background: grey(3),
            removed: vec![grey(3)],
        }
    }

    #[test]
    fn frames_up_to_the_cell_height_keep_their_size() {
        let sheet = contact_sheet(&[row(120, 160, 2), row(120, 160, 2)]);
        assert_eq!(sheet.size(), [3, 240, 6 * 160]);
    }

    #[test]
    fn taller_frames_are_shown_at_the_cell_height_in_their_shape() {
        let sheet = contact_sheet(&[row(1080, 1920, 2), row(1080, 1920, 2)]);
        assert_eq!(sheet.size(), [3, 2 * CELL_HEIGHT, 6 * 480]);
        // Shrunk by averaging: a uniform frame stays its grey.
        let input = sheet.narrow(1, 0, CELL_HEIGHT).narrow(2, 0, 480);
        let spread = (input - 0.5).abs().max().double_value(&[]);
        assert!(spread < 1e-6, "{spread}");
    }
}
