//! A shaking camera's translations found, undone before the decomposition and done again to
//! its outputs; a still camera's clip left as it is.

#[path = "common/cli.rs"]
mod cli;

use cli::{decompose_args, files_under, succeeds};
use gstomnimatte::dataset::{read_png, write_png};
use gstomnimatte::stabilise::{estimate_camera_shifts, CameraShifts};
use tch::{Device, Kind, Tensor};

const H: i64 = 96;
const W: i64 = 128;

/// Ground with texture at several scales, [3, 160, 192] in [0, 1].
fn ground(seed: i64) -> Tensor {
    tch::manual_seed(seed);
    let opts = (Kind::Float, Device::Cpu);
    let mut texture = Tensor::zeros([1, 3, 160, 192], opts);
    for cell in [4, 8, 16] {
        let coarse = Tensor::rand([1, 3, 160 / cell, 192 / cell], opts);
        texture += coarse.upsample_bilinear2d([160, 192], false, None, None) / 3.0;
    }
    texture.squeeze_dim(0)
}

/// The frame a camera at (y, x) in the ground sees, with a bright square object at `object`
/// (top-left, in the frame) and its mask.
fn view(ground: &Tensor, y: i64, x: i64, object: (i64, i64)) -> (Tensor, Tensor) {
    let frame = ground.narrow(1, y, H).narrow(2, x, W).copy();
    let mask = Tensor::zeros([H, W], (Kind::Bool, Device::Cpu));
    let _ = frame
        .narrow(1, object.0, 20)
        .narrow(2, object.1, 16)
        .fill_(1.0);
    let _ = mask
        .narrow(0, object.0, 20)
        .narrow(1, object.1, 16)
        .fill_(1);
    (frame, mask)
}

#[test]
fn a_shaking_cameras_shifts_are_found_and_undone_while_its_object_moves() {
    let ground = ground(3);
    // The camera's place in the ground per frame: frame t shows the first frame's content
    // moved by minus the difference.
    let places = [(30, 30), (31, 28), (27, 33), (30, 36), (34, 29)];
    let frames: Vec<(Tensor, Tensor)> = places
        .iter()
        .enumerate()
        .map(|(t, &(y, x))| view(&ground, y, x, (40, 10 + 20 * t as i64)))
        .collect();
    let shifts = estimate_camera_shifts(frames.len() as i64, |t| {
        let (f, m) = &frames[t as usize];
        Ok((f.shallow_clone(), m.shallow_clone()))
    })
    .unwrap()
    .expect("the camera moves");
    for (t, &(y, x)) in places.iter().enumerate() {
        let want = [(places[0].0 - y) as f64, (places[0].1 - x) as f64];
        let got = shifts.shifts()[t];
        assert!(
            (got[0] - want[0]).abs() < 0.05 && (got[1] - want[1]).abs() < 0.05,
            "frame {t}: {got:?}, moved by {want:?}"
        );
    }
    // Aligned, a frame shows the first frame's ground away from the objects and the borders;
    // moved back, the frame itself.
    let interior = |x: &Tensor| x.narrow(1, 8, H - 16).narrow(2, 8, W - 16);
    let (first, first_mask) = &frames[0];
    for (t, (frame, mask)) in frames.iter().enumerate().skip(1) {
        let aligned = shifts.align(t as i64, frame);
        let labels = shifts.align_labels(t as i64, &mask.to_kind(Kind::Uint8));
        let free = labels
            .eq(0)
            .logical_and(&first_mask.logical_not())
            .unsqueeze(0);
        let error = (&aligned - first).abs() * &free;
        let mean = interior(&error).sum(Kind::Float).double_value(&[])
            / interior(&free.expand([3, -1, -1], false))
                .sum(Kind::Float)
                .double_value(&[]);
        assert!(mean < 0.01, "frame {t}: aligned off by {mean}");
        let back = shifts.restore(t as i64, &aligned);
        let round_trip = interior(&(&back - frame).abs())
            .mean(Kind::Float)
            .double_value(&[]);
        assert!(
            round_trip < 0.02,
            "frame {t}: moved back off by {round_trip}"
        );
        // The mask moved with its frame: its size kept.
        assert_eq!(
            labels.sum(Kind::Int64).int64_value(&[]),
            mask.sum(Kind::Int64).int64_value(&[])
        );
    }
}

#[test]
fn layers_are_moved_back_premultiplied() {
    // A layer opaque and black on its left half, transparent with a white colour nothing shows
    // on its right: moved back by half a pixel, its visible pixels stay black.
    let opts = (Kind::Float, Device::Cpu);
    let layer = Tensor::zeros([4, 8, 8], opts);
    let _ = layer.narrow(0, 0, 3).narrow(2, 4, 4).fill_(1.0);
    let _ = layer.narrow(0, 3, 1).narrow(2, 0, 4).fill_(1.0);
    let camera = CameraShifts::new(vec![[0.0, 0.5]]);
    let moved = camera.restore_rgba(0, &layer);
    let visible = moved.narrow(0, 3, 1).gt(0.01).expand([3, -1, -1], false);
    let colour = moved.narrow(0, 0, 3).masked_select(&visible);
    assert!(colour.numel() > 0);
    assert!(colour.max().double_value(&[]) < 1e-4, "{colour:?}");
    // Straight resampling mixes in the white.
    let straight = camera.restore(0, &layer);
    assert!(
        straight
            .narrow(0, 0, 3)
            .masked_select(&visible)
            .max()
            .double_value(&[])
            > 0.1
    );
}

#[test]
fn a_still_camera_and_a_bare_wall_are_left_as_they_are() {
    let ground = ground(5);
    // The same place every frame, with the sensor's noise: no frame is resampled.
    let still = estimate_camera_shifts(4, |t| {
        let (frame, mask) = view(&ground, 30, 30, (40, 10 + 20 * t));
        let noise = Tensor::randn([3, H, W], (Kind::Float, Device::Cpu)) * 0.01;
        Ok((frame + noise, mask))
    })
    .unwrap();
    assert_eq!(still, None);
    // A bare wall gives no peak: nothing to align by, and nothing is moved.
    let wall = estimate_camera_shifts(4, |t| {
        let (_, mask) = view(&ground, 30, 30, (40, 10 + 20 * t));
        Ok((
            Tensor::full([3, H, W], 0.6, (Kind::Float, Device::Cpu)),
            mask,
        ))
    })
    .unwrap();
    assert_eq!(wall, None);
}

/// Writes a clip of `places` (the camera's place per frame) as an Omnimatte folder, the object
/// moving across the ground.
fn write_clip(
    dir: &std::path::Path,
    ground: &Tensor,
    places: &[(i64, i64)],
) -> Vec<(Tensor, Tensor)> {
    std::fs::create_dir_all(dir.join("rgb")).unwrap();
    std::fs::create_dir_all(dir.join("mask/01")).unwrap();
    places
        .iter()
        .enumerate()
        .map(|(t, &(y, x))| {
            let (frame, mask) = view(ground, y, x, (40, 10 + 12 * t as i64));
            write_png(&dir.join(format!("rgb/{t:05}.png")), &frame).unwrap();
            let mask_image = mask.to_kind(Kind::Float).unsqueeze(0);
            write_png(&dir.join(format!("mask/01/{t:05}.png")), &mask_image).unwrap();
            (frame, mask)
        })
        .collect()
}

/// Mean difference of each frame's clean background output to the frame, away from the
/// object (its mask grown by 4 pixels) and the borders.
fn background_error(out: &std::path::Path, frames: &[(Tensor, Tensor)]) -> f64 {
    let mut errors = Vec::new();
    for (t, (frame, mask)) in frames.iter().enumerate() {
        let background = read_png(&out.join(format!("background/{t:05}.png"))).unwrap();
        let near = mask
            .to_kind(Kind::Float)
            .view([1, 1, H, W])
            .max_pool2d([9, 9], [1, 1], [4, 4], [1, 1], false)
            .view([1, H, W]);
        let away = (near * -1.0 + 1.0)
            .narrow(1, 8, H - 16)
            .narrow(2, 8, W - 16);
        let error = (background - frame)
            .abs()
            .narrow(1, 8, H - 16)
            .narrow(2, 8, W - 16)
            * &away;
        errors.push(
            error.sum(Kind::Float).double_value(&[])
                / (3.0 * away.sum(Kind::Float).double_value(&[])),
        );
    }
    errors.iter().sum::<f64>() / errors.len() as f64
}

#[test]
fn decompose_aligns_a_shaking_clip_and_gives_its_outputs_back_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let ground = ground(7);
    let shaking = dir.path().join("shaking");
    let places = [
        (30, 30),
        (32, 27),
        (28, 33),
        (31, 34),
        (27, 29),
        (33, 31),
        (29, 26),
        (30, 32),
    ];
    let frames = write_clip(&shaking, &ground, &places);
    let (aligned, kept) = (dir.path().join("aligned"), dir.path().join("kept"));
    let stderr = succeeds(&decompose_args(&shaking, None, &aligned));
    assert!(stderr.contains("the camera moves by up to"), "{stderr}");
    succeeds(
        &[
            &decompose_args(&shaking, None, &kept)[..],
            &["--stabilise", "false"],
        ]
        .concat(),
    );
    // Each frame's background, made on the aligned frames and moved back, shows that frame's
    // ground; the median of the shaken frames shows none of them.
    let (with, without) = (
        background_error(&aligned, &frames),
        background_error(&kept, &frames),
    );
    assert!(
        with < 0.02 && with < without / 2.0,
        "{with} against {without}"
    );
    assert_eq!(
        std::fs::read_dir(aligned.join("layer_01")).unwrap().count(),
        places.len()
    );

    // A still camera: nothing found, the same files as without stabilising.
    let still = dir.path().join("still");
    write_clip(&still, &ground, &[(30, 30); 8]);
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let stderr = succeeds(&decompose_args(&still, None, &a));
    assert!(!stderr.contains("the camera moves"), "{stderr}");
    succeeds(
        &[
            &decompose_args(&still, None, &b)[..],
            &["--stabilise", "false"],
        ]
        .concat(),
    );
    assert!(files_under(&a) == files_under(&b), "the outputs differ");
}
