//! A shaking camera's translations, turns and zooms found, undone before the decomposition and
//! done again to its outputs; a still camera's clip left as it is.

#[path = "common/cli.rs"]
mod cli;
mod common;
#[path = "common/gst_helpers.rs"]
mod helpers;

use cli::{decompose_args, files_under, succeeds};
use gst::prelude::*;
use gstomnimatte::dataset::{read_png, write_png};
use gstomnimatte::stabilise::{
    estimate_camera_shifts, CameraMotion, CameraShift, CameraShifts, CameraTracker,
    StreamStabiliser, STILL_PIXELS,
};
use gstomnimatte::stream::{Decomposer, FrameLayers, StreamConfig};
use gstomnimatte::synth::{generate, SynthConfig};
use std::time::Duration;
use tch::{Device, Kind, Tensor};

const H: i64 = 96;
const W: i64 = 128;

/// Ground with texture at several scales, [3, 160, 192] in [0, 1], the same for a seed
/// whatever else runs (the tests of this file share libtorch's generator, and seed it).
fn ground(seed: u64) -> Tensor {
    texture(seed, &[4, 8, 16])
}

/// Random values in [0, 1) on cells of each of `cells` pixels, upsampled smoothly to [3, 160,
/// 192] and averaged.
fn texture(seed: u64, cells: &[i64]) -> Tensor {
    let mut uniform = uniform(seed);
    let mut texture = Tensor::zeros([1, 3, 160, 192], (Kind::Float, Device::Cpu));
    for &cell in cells {
        let (h, w) = (160 / cell, 192 / cell);
        let values: Vec<f32> = (0..3 * h * w).map(|_| uniform()).collect();
        let coarse = Tensor::from_slice(&values).view([1, 3, h, w]);
        texture += coarse.upsample_bilinear2d([160, 192], false, None, None) / cells.len() as f64;
    }
    texture.squeeze_dim(0)
}

/// Uniform values in [0, 1), the same sequence for a seed (xorshift64*).
fn uniform(seed: u64) -> impl FnMut() -> f32 {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        (state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// The frame a camera at (y, x) in the ground sees, with a bright square object at `object`
/// (top-left, in the frame) and its mask.
fn view(ground: &Tensor, y: i64, x: i64, object: (i64, i64)) -> (Tensor, Tensor) {
    with_object(ground.narrow(1, y, H).narrow(2, x, W).copy(), object)
}

/// `frame` [3, H, W] with a bright square object at `object` (top-left), and its mask.
fn with_object(frame: Tensor, object: (i64, i64)) -> (Tensor, Tensor) {
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

/// The whole clip's camera motion ([`estimate_camera_shifts`]).
fn clip_shifts(frames: &[(Tensor, Tensor)]) -> Option<CameraShifts> {
    estimate_camera_shifts(frames.len() as i64, |t| {
        let (frame, mask) = &frames[t as usize];
        Ok((frame.shallow_clone(), mask.shallow_clone()))
    })
    .unwrap()
}

/// Asserts that each frame aligned by `shifts` shows the first frame's ground away from the
/// objects and `border` pixels from the edges, and that moved back it is the frame again.
/// Returns each frame's aligned label map.
fn assert_aligned(frames: &[(Tensor, Tensor)], shifts: &CameraShifts, border: i64) -> Vec<Tensor> {
    let interior = |x: &Tensor| {
        x.narrow(1, border, H - 2 * border)
            .narrow(2, border, W - 2 * border)
    };
    let (first, first_mask) = &frames[0];
    let mut aligned_labels = Vec::new();
    for (t, (frame, mask)) in frames.iter().enumerate() {
        let aligned = shifts.at(t as i64).align(frame);
        let labels = shifts.at(t as i64).align_labels(&mask.to_kind(Kind::Uint8));
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
        let back = shifts.at(t as i64).restore(&aligned);
        let round_trip = interior(&(&back - frame).abs())
            .mean(Kind::Float)
            .double_value(&[]);
        assert!(
            round_trip < 0.02,
            "frame {t}: moved back off by {round_trip}"
        );
        aligned_labels.push(labels);
    }
    aligned_labels
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
    let shifts = clip_shifts(&frames).expect("the camera moves");
    for (t, &(y, x)) in places.iter().enumerate() {
        let want = [(places[0].0 - y) as f64, (places[0].1 - x) as f64];
        let got = shifts.shifts()[t];
        assert!(
            (got.shift[0] - want[0]).abs() < 0.05
                && (got.shift[1] - want[1]).abs() < 0.05
                && got.turn().to_degrees().abs() < 0.05,
            "frame {t}: {got:?}, moved by {want:?}"
        );
    }
    // Aligned, a frame shows the first frame's ground away from the objects and the borders;
    // moved back, the frame itself. The mask moved with its frame: its size kept.
    let labels = assert_aligned(&frames, &shifts, 8);
    for (labels, (_, mask)) in labels.iter().zip(&frames) {
        assert_eq!(
            labels.sum(Kind::Int64).int64_value(&[]),
            mask.sum(Kind::Int64).int64_value(&[])
        );
    }
}

/// (dy, dx, degrees, zoom in percent): a camera's motion per frame that turns by about a
/// degree and zooms by about a percent as well as moving.
const HANDHELD: [Motion; 5] = [
    (0.0, 0.0, 0.0, 0.0),
    (1.5, -2.0, 0.8, 0.8),
    (-2.0, 1.0, -0.6, -0.5),
    (0.5, 2.5, 1.2, 1.0),
    (2.0, -1.0, -1.0, -0.7),
];

type Motion = (f64, f64, f64, f64);

/// The clip a camera moving by `motions` about the ground's centre (the frames' too) sees,
/// the object moving across the ground.
fn handheld_clip(ground: &Tensor, motions: &[Motion]) -> Vec<(Tensor, Tensor)> {
    let (gh, gw) = (ground.size()[1], ground.size()[2]);
    motions
        .iter()
        .enumerate()
        .map(|(t, &(dy, dx, degrees, percent))| {
            let (turn, zoom) = (degrees.to_radians(), (1.0 + percent / 100.0).ln());
            let turned = CameraShift::similarity([dy, dx], turn, zoom, [0.0; 2]).restore(ground);
            let frame = turned.narrow(1, (gh - H) / 2, H).narrow(2, (gw - W) / 2, W);
            with_object(frame, (40, 10 + 20 * t as i64))
        })
        .collect()
}

/// Whether `got` is the motion within 0.05 pixel, 0.05 degree and 0.05 percent.
fn is_motion(got: CameraShift, (dy, dx, degrees, percent): Motion) -> bool {
    (got.shift[0] - dy).abs() < 0.05
        && (got.shift[1] - dx).abs() < 0.05
        && (got.turn().to_degrees() - degrees).abs() < 0.05
        && ((got.zoom().exp() - 1.0) * 100.0 - percent).abs() < 0.05
}

/// A hand turns a camera as well as moving it, and a lens breathes: each frame's translation,
/// turn and zoom are found, and undone.
#[test]
fn a_turning_and_zooming_camera_is_followed() {
    let frames = handheld_clip(&ground(5), &HANDHELD);
    let shifts = clip_shifts(&frames).expect("the camera moves");
    for (t, &motion) in HANDHELD.iter().enumerate() {
        let got = shifts.at(t as i64);
        assert!(
            is_motion(got, motion),
            "frame {t}: {got}, moved by {motion:?}"
        );
        if t > 0 {
            assert_eq!(got.size, [H as f64, W as f64]);
        }
    }
    // The turn and the zoom take the corners out of the frame: a wider border is left out.
    assert_aligned(&frames, &shifts, 12);
}

#[test]
fn layers_are_moved_back_premultiplied() {
    // A layer opaque and black on its left half, transparent with a white colour nothing shows
    // on its right: moved back by half a pixel, its visible pixels stay black.
    let opts = (Kind::Float, Device::Cpu);
    let layer = Tensor::zeros([4, 8, 8], opts);
    let _ = layer.narrow(0, 0, 3).narrow(2, 4, 4).fill_(1.0);
    let _ = layer.narrow(0, 3, 1).narrow(2, 0, 4).fill_(1.0);
    let camera = CameraShift::translation([0.0, 0.5]);
    let moved = camera.restore_rgba(&layer);
    let visible = moved.narrow(0, 3, 1).gt(0.01).expand([3, -1, -1], false);
    let colour = moved.narrow(0, 0, 3).masked_select(&visible);
    assert!(colour.numel() > 0);
    assert!(colour.max().double_value(&[]) < 1e-4, "{colour:?}");
    // Straight resampling mixes in the white.
    let straight = camera.restore(&layer);
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

/// The camera's places of a shaking clip (frame t shows the first frame's content moved by
/// the first place minus its own).
const SHAKING: [(i64, i64); 8] = [
    (30, 30),
    (32, 27),
    (28, 33),
    (31, 34),
    (27, 29),
    (33, 31),
    (29, 26),
    (30, 32),
];

/// The clip the camera at `places` sees, the object moving across the ground.
fn clip(ground: &Tensor, places: &[(i64, i64)]) -> Vec<(Tensor, Tensor)> {
    places
        .iter()
        .enumerate()
        .map(|(t, &(y, x))| view(ground, y, x, (40, 10 + 8 * t as i64)))
        .collect()
}

/// Writes a clip of `places` (the camera's place per frame) as an Omnimatte folder, the object
/// moving across the ground.
fn write_clip(
    dir: &std::path::Path,
    ground: &Tensor,
    places: &[(i64, i64)],
) -> Vec<(Tensor, Tensor)> {
    let frames = clip(ground, places);
    write_frames(dir, &frames);
    frames
}

/// Writes `frames` (frame, mask) as an Omnimatte folder of one object.
fn write_frames(dir: &std::path::Path, frames: &[(Tensor, Tensor)]) {
    std::fs::create_dir_all(dir.join("rgb")).unwrap();
    std::fs::create_dir_all(dir.join("mask/01")).unwrap();
    for (t, (frame, mask)) in frames.iter().enumerate() {
        write_png(&dir.join(format!("rgb/{t:05}.png")), frame).unwrap();
        let mask_image = mask.to_kind(Kind::Float).unsqueeze(0);
        write_png(&dir.join(format!("mask/01/{t:05}.png")), &mask_image).unwrap();
    }
}

/// [`background_error_of`] the clean backgrounds `decompose` wrote in `out`.
fn background_error(out: &std::path::Path, frames: &[(Tensor, Tensor)]) -> f64 {
    let backgrounds: Vec<Tensor> = (0..frames.len())
        .map(|t| read_png(&out.join(format!("background/{t:05}.png"))).unwrap())
        .collect();
    background_error_of(&backgrounds, frames)
}

/// Runs `decompose` on the clip in `input` (`frames`) with the defaults and with `--stabilise
/// false`, into `dir`; returns the first's stderr and output folder. Asserts that each
/// frame's clean background, made on the frames moved onto one view and moved back, shows that
/// frame's ground, where the median of the frames as they came shows none of them; and that
/// the layers over the residual background are each frame as it came (the outputs are made
/// where the frame shows them, detail transferred from it, not resampled after).
fn assert_decompose_follows(
    dir: &std::path::Path,
    input: &std::path::Path,
    frames: &[(Tensor, Tensor)],
) -> (String, std::path::PathBuf) {
    let (followed, kept) = (dir.join("followed"), dir.join("kept"));
    let stderr = succeeds(&decompose_args(input, None, &followed));
    succeeds(
        &[
            &decompose_args(input, None, &kept)[..],
            &["--stabilise", "false"],
        ]
        .concat(),
    );
    let (with, without) = (
        background_error(&followed, frames),
        background_error(&kept, frames),
    );
    assert!(
        with < 0.02 && with < without / 2.0,
        "{with} against {without}"
    );
    for (t, (frame, _)) in frames.iter().enumerate() {
        let recon = read_png(&followed.join(format!("recon/{t:05}.png"))).unwrap();
        let error = (recon - frame).abs().max().double_value(&[]);
        assert!(error < 1.5 / 255.0, "frame {t}: {error}");
    }
    (stderr, followed)
}

#[test]
fn decompose_aligns_a_shaking_clip_and_gives_its_outputs_back_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let ground = ground(7);
    let shaking = dir.path().join("shaking");
    let frames = write_clip(&shaking, &ground, &SHAKING);
    let (stderr, aligned) = assert_decompose_follows(dir.path(), &shaking, &frames);
    assert!(stderr.contains("the camera moves by up to"), "{stderr}");
    assert_eq!(
        std::fs::read_dir(aligned.join("layer_01")).unwrap().count(),
        SHAKING.len()
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

#[test]
fn a_streams_stabiliser_follows_a_shaking_camera_and_leaves_a_still_one_alone() {
    let ground = ground(11);
    let mut stabiliser = StreamStabiliser::new();
    for (t, (frame, mask)) in clip(&ground, &SHAKING).iter().enumerate() {
        let got = stabiliser.follow(frame, mask).shift;
        let want = [
            (SHAKING[0].0 - SHAKING[t].0) as f64,
            (SHAKING[0].1 - SHAKING[t].1) as f64,
        ];
        assert!(
            (got[0] - want[0]).abs() < 0.05 && (got[1] - want[1]).abs() < 0.05,
            "frame {t}: {got:?}, moved by {want:?}"
        );
    }
    // A still camera with the sensor's noise, knocked by three pixels at one frame late in the
    // stream: no frame is moved (the knock is outvoted by the still frames before it).
    let mut places = [(30, 30); 12];
    places[9] = (33, 30);
    let mut stabiliser = StreamStabiliser::new();
    for (t, (frame, mask)) in clip(&ground, &places).iter().enumerate() {
        let noise = Tensor::randn([3, H, W], (Kind::Float, Device::Cpu)) * 0.01;
        let shift = stabiliser.follow(&(frame + noise), mask);
        assert_eq!(shift, CameraShift::NONE, "frame {t}");
    }
}

/// A still camera over a smooth, noise-free colour ramp, a square moving across it with a
/// shadow no mask holds: the shadow darkens a different minority of the free pixels in each
/// frame, which no shift of the camera explains (on a linear ramp a shift is the same as a
/// change of brightness: matched by the free pixels' mean, 13 of these 16 frames were taken
/// for moved, session 48).
#[test]
fn an_unmasked_shadow_moving_over_a_smooth_ramp_is_no_camera_motion() {
    let (frames, masks, _) = common::square_with_shadow(16, 64, 96);
    let frame = |t: i64| (frames.get(0).get(t) + 1.0) / 2.0;
    let covered = |t: i64| masks.get(0).get(0).get(t).get(0).gt(0.5);
    let mut tracker = CameraTracker::new(&frame(0), &covered(0)).expect("the ramp is textured");
    for t in 1..16 {
        let shift = tracker.follow(&frame(t), &covered(t));
        assert!(!shift.moved(), "frame {t}: {shift:?}");
    }
}

/// Every frame of `frames` (label maps from the masks) through a decomposer of `config`.
fn stream(config: &StreamConfig, frames: &[(Tensor, Tensor)]) -> Vec<FrameLayers> {
    stream_through(
        Decomposer::new(config.clone(), Device::Cpu).unwrap(),
        frames,
    )
}

/// Every frame of `frames` through `decomposer`.
fn stream_through(mut decomposer: Decomposer, frames: &[(Tensor, Tensor)]) -> Vec<FrameLayers> {
    let (_vs, net) = common::seeded_net(0);
    let mut outputs = Vec::new();
    for (frame, mask) in frames {
        let labels = mask.to_kind(Kind::Uint8);
        outputs.extend(decomposer.push(&net, frame, &labels).unwrap());
    }
    outputs.extend(decomposer.finish(&net).unwrap());
    outputs
}

/// Asserts that each frame's clean background shows that frame's ground with the camera
/// followed (`with`), and that it clearly does not without (`without`: the median of frames
/// that moved shows none of them).
fn assert_background_followed(
    with: &[FrameLayers],
    without: &[FrameLayers],
    frames: &[(Tensor, Tensor)],
) {
    let backgrounds = |outputs: &[FrameLayers]| -> Vec<Tensor> {
        outputs
            .iter()
            .map(|o| o.background_estimate.shallow_clone())
            .collect()
    };
    let (with_error, without_error) = (
        background_error_of(&backgrounds(with), frames),
        background_error_of(&backgrounds(without), frames),
    );
    assert!(
        with_error < 0.02 && with_error < without_error / 2.0,
        "{with_error} against {without_error}"
    );
}

/// Mean difference of each frame's clean background (`backgrounds`, [3, H, W] in [0, 1]) to
/// the frame, away from the object (its mask grown by 4 pixels) and the borders.
fn background_error_of(backgrounds: &[Tensor], frames: &[(Tensor, Tensor)]) -> f64 {
    let errors: Vec<f64> = backgrounds
        .iter()
        .zip(frames)
        .map(|(background, (frame, mask))| {
            let near = mask
                .to_kind(Kind::Float)
                .view([1, 1, H, W])
                .max_pool2d([9, 9], [1, 1], [4, 4], [1, 1], false)
                .view([1, H, W]);
            let inner = |x: Tensor| x.narrow(1, 8, H - 16).narrow(2, 8, W - 16);
            let away = inner(near * -1.0 + 1.0);
            let error = inner((background - frame).abs()) * &away;
            error.sum(Kind::Float).double_value(&[])
                / (3.0 * away.sum(Kind::Float).double_value(&[]))
        })
        .collect();
    errors.iter().sum::<f64>() / errors.len() as f64
}

/// A small decomposer of one object, the camera as by default.
fn small_config() -> StreamConfig {
    StreamConfig {
        working_height: 64,
        working_width: 64,
        objects: 1,
        ..StreamConfig::default()
    }
}

#[test]
fn the_stream_follows_a_shaking_camera_and_gives_its_outputs_back_in_place() {
    let frames = clip(&ground(7), &SHAKING);
    let config = small_config();
    assert_eq!(config.camera, CameraMotion::Followed, "the default");
    assert_stream_follows(&frames, |t, got| {
        let want = [
            (SHAKING[0].0 - SHAKING[t].0) as f64,
            (SHAKING[0].1 - SHAKING[t].1) as f64,
        ];
        let got = got.shift;
        assert!(
            (got[0] - want[0]).abs() < 0.05 && (got[1] - want[1]).abs() < 0.05,
            "frame {t}: {got:?}, moved by {want:?}"
        );
    });
    let still_config = StreamConfig {
        camera: CameraMotion::Still,
        ..config.clone()
    };

    // A still camera: the same outputs as without following it.
    let still = clip(&ground(7), &[(30, 30); 6]);
    for (a, b) in stream(&config, &still)
        .iter()
        .zip(&stream(&still_config, &still))
    {
        assert!(a.layers.equal(&b.layers) && a.background.equal(&b.background));
    }
}

/// The stream follows a turning and zooming camera too: each frame's clean background is its
/// own ground, and its outputs are where the frame shows them (the working size has another
/// aspect ratio than the frames, so the turn is no turn there).
#[test]
fn the_stream_follows_a_turning_and_zooming_camera() {
    let frames = handheld_clip(&ground(9), &HANDHELD);
    assert_stream_follows(&frames, |t, got| {
        assert!(is_motion(got, HANDHELD[t]), "frame {t}: {got}");
    });
}

/// Streams `frames` through a small decomposer, the camera followed and not: each output's
/// motion passes `check_motion` (frame, motion), its layers over the residual background are
/// the frame as it came (made where the frame shows them, detail transferred from it), and
/// its clean background shows its own ground ([`assert_background_followed`]).
fn assert_stream_follows(frames: &[(Tensor, Tensor)], check_motion: impl Fn(usize, CameraShift)) {
    let config = small_config();
    let still_config = StreamConfig {
        camera: CameraMotion::Still,
        ..config.clone()
    };
    let (with, without) = (stream(&config, frames), stream(&still_config, frames));
    assert_eq!(with.len(), frames.len());
    for (t, out) in with.iter().enumerate() {
        check_motion(t, out.camera_shift);
        let error = (&out.reconstruction - &frames[t].0)
            .abs()
            .max()
            .double_value(&[]);
        assert!(error < 1e-4, "frame {t}: {error}");
    }
    assert_background_followed(&with, &without, frames);
}

/// Frames followed before they reach the decomposer (the element's `before-output` training
/// gathers them aligned) take the shifts found then, and the stabiliser handed over follows
/// the frames after them as if it had followed all.
#[test]
fn a_camera_followed_ahead_is_not_followed_again() {
    let frames = clip(&ground(7), &SHAKING);
    let config = small_config();
    let mut ahead = StreamStabiliser::new();
    let mut shifts: Vec<CameraShift> = frames[..4]
        .iter()
        .map(|(frame, mask)| ahead.follow(frame, mask))
        .collect();
    // Marked, so that the decomposer's taking it shows.
    shifts[2].shift[0] += 1.0;
    let mut decomposer = Decomposer::new(config.clone(), Device::Cpu).unwrap();
    decomposer.follow_on(ahead, shifts.clone());
    let outputs = stream_through(decomposer, &frames);
    let followed = stream(&config, &frames);
    assert_eq!(outputs.len(), frames.len());
    for (t, (out, plain)) in outputs.iter().zip(&followed).enumerate() {
        let want = shifts.get(t).copied().unwrap_or(plain.camera_shift);
        assert_eq!(out.camera_shift, want, "frame {t}");
    }
}

/// Motions compose (`after`), undo each other (`inverse`), and say which pixels they take from
/// beyond the frame (`unseen`).
#[test]
fn camera_motions_compose_and_say_what_they_bring_from_beyond_the_frame() {
    let size = [H as f64, W as f64];
    let a = CameraShift::similarity([1.5, -2.0], 0.02, 0.01, size);
    let b = CameraShift::similarity([-0.5, 3.0], -0.01, -0.02, size);
    let (c, centre) = (a.after(b), [(H - 1) as f64 / 2.0, (W - 1) as f64 / 2.0]);
    let map = |m: CameraShift, p: [f64; 2]| {
        let (y, x) = (p[0] - centre[0], p[1] - centre[1]);
        let l = m.linear;
        [
            centre[0] + l[0][0] * y + l[0][1] * x + m.shift[0],
            centre[1] + l[1][0] * y + l[1][1] * x + m.shift[1],
        ]
    };
    for p in [[0.0, 0.0], [10.0, 90.0], [95.0, 127.0]] {
        let (want, got) = (map(a, map(b, p)), map(c, p));
        assert!((want[0] - got[0]).abs() < 1e-9 && (want[1] - got[1]).abs() < 1e-9);
    }
    assert!(a.after(a.inverse()).largest() < 1e-9);
    assert_eq!(CameraShift::NONE.after(a), a);
    assert_eq!(a.after(CameraShift::NONE), a);
    // Three pixels to the right: the last three columns come from beyond the frame.
    let unseen = CameraShift::translation([0.0, 3.0]).unseen(H, W, Device::Cpu);
    assert_eq!(unseen.sum(Kind::Int64).int64_value(&[]), 3 * H);
    assert!(bool::try_from(unseen.narrow(1, W - 3, 3).all()).unwrap());
    assert_eq!(
        CameraShift::NONE
            .unseen(H, W, Device::Cpu)
            .sum(Kind::Int64)
            .int64_value(&[]),
        0
    );
}

/// A camera's place (y, x) in the ground.
type Place = (i64, i64);

/// A camera panning a pixel a frame to the right and drifting down, 31 pixels (a third of
/// the frame's height) in 32 frames, the object walking across: far beyond a shake's reach
/// against the first frame.
fn panning_clip(ground: &Tensor) -> (Vec<Place>, Vec<(Tensor, Tensor)>) {
    let places: Vec<Place> = (0..32).map(|t| (30 + t / 3, 4 + t)).collect();
    let frames = places
        .iter()
        .enumerate()
        .map(|(t, &(y, x))| view(ground, y, x, (40, 10 + 3 * t as i64)))
        .collect();
    (places, frames)
}

/// Asserts that `got` (frame t's motion) puts every pixel within a quarter pixel (what counts
/// as no motion) of where the camera at `place` shows what it showed at `first` (each stretch
/// of a pan is followed against its own reference, so the errors add up).
fn assert_panned(t: usize, got: CameraShift, first: Place, place: Place) {
    assert_panned_within(STILL_PIXELS, t, got, first, place)
}

/// [`assert_panned`] within `pixels`.
fn assert_panned_within(pixels: f64, t: usize, got: CameraShift, first: Place, place: Place) {
    let want = CameraShift::translation([(first.0 - place.0) as f64, (first.1 - place.1) as f64]);
    let off = got.after(want.inverse()).largest();
    assert!(
        off < pixels,
        "frame {t}: {got}, moved by {want}: off by {off}"
    );
}

/// How far a pan seen through gaps may be off: the first frame found after a gap is twice or
/// three times as far from the last one found as a frame is from the one before, its estimate
/// a little less sure, and it can be the next reference (0.257 pixels at most measured).
const AFTER_GAPS: f64 = 0.3;

#[test]
fn a_panning_camera_is_followed_as_far_as_it_goes() {
    let (places, frames) = panning_clip(&ground(11));
    let shifts = clip_shifts(&frames).expect("the camera moves");
    for (t, &place) in places.iter().enumerate() {
        assert_panned(t, shifts.at(t as i64), places[0], place);
    }
}

/// A pan of 2 pixels a frame during which the camera sees nothing to align by for two frames
/// (a flat grey frame: covered, or a flash): those two are not found, and the pan is taken up
/// again after them from where it was last found, 6 pixels back.
#[test]
fn a_pan_missed_for_two_frames_is_taken_up_again() {
    assert_pan_followed_through_gaps(13, 28, |t| [12, 13].contains(&t));
}

/// Asserts that a pan of 2 pixels a frame over `ground(seed)`, `frames` long, whose frames
/// `blind` picks are flat grey (nothing to align by: covered, or a flash), is followed on
/// every other frame within [`AFTER_GAPS`].
fn assert_pan_followed_through_gaps(seed: u64, frames: i64, blind: impl Fn(usize) -> bool) {
    let ground = ground(seed);
    let places: Vec<Place> = (0..frames).map(|t| (30, 2 * t)).collect();
    let frames: Vec<(Tensor, Tensor)> = places
        .iter()
        .enumerate()
        .map(|(t, &(y, x))| {
            let (frame, mask) = view(&ground, y, x, (40, 10 + 3 * t as i64));
            match blind(t) {
                true => (frame.fill(0.5), mask),
                false => (frame, mask),
            }
        })
        .collect();
    let shifts = clip_shifts(&frames).expect("the camera moves");
    for (t, &place) in places.iter().enumerate() {
        if !blind(t) {
            assert_panned_within(AFTER_GAPS, t, shifts.at(t as i64), places[0], place);
        }
    }
}

/// A pan of 2 pixels a frame seen through a flicker: every other frame shows nothing to align
/// by. The frames between are followed as the pan leaves each reference behind: a frame missed
/// does not make the one after it the first to have moved beyond the reference (else the
/// reference never moves on, and the pan is lost once the frames hardly overlap it).
#[test]
fn a_pan_missed_every_other_frame_is_followed_as_far_as_it_goes() {
    assert_pan_followed_through_gaps(17, 30, |t| t % 2 == 1);
}

/// Rows of the ground above this are sky: a smooth ramp with nothing to align by.
const HORIZON: i64 = 92;

/// [`ground`] under a sky: the camera at row 30 sees it over its top 62 rows, two thirds of
/// the frame.
fn ground_under_sky(seed: u64) -> Tensor {
    let ground = ground(seed);
    let rows = Tensor::arange(HORIZON, (Kind::Float, Device::Cpu)).view([1, HORIZON, 1]);
    let sky = (rows * -0.0005 + 0.75).expand([3, HORIZON, 192], false);
    ground.narrow(1, 0, HORIZON).copy_(&sky);
    ground
}

/// A pan whose first frame is mostly sky, the ground textured only along its bottom: the
/// median of its gradient is the sky's, but its bottom parts are enough to align by, and the
/// pan is followed (the tracker counts the parts with texture, as the judgement of each
/// motion does).
#[test]
fn a_pan_under_a_bare_sky_is_followed() {
    let ground = ground_under_sky(19);
    let places: Vec<Place> = (0..24).map(|t| (30, 2 * t)).collect();
    assert_clip_followed(&ground, &places, |t| (20, 10 + 3 * t as i64));
    // The sky alone is a bare wall.
    let sky = ground.narrow(1, 0, H).narrow(2, 0, W).copy();
    let covered = Tensor::zeros([H, W], (Kind::Bool, Device::Cpu));
    assert!(CameraTracker::new(&sky, &covered).is_none());
}

/// A shaking camera under a sky, with something no mask holds changing all over one of the four
/// parts of the frame that have texture (leaves in the wind, a screen): three of the four parts
/// agree on each frame's motion, which is enough (70%; at 80% each frame was missed).
#[test]
fn a_shake_that_three_of_four_textured_parts_agree_on_is_followed() {
    let ground = ground_under_sky(31);
    let frames: Vec<(Tensor, Tensor)> = SHAKING
        .iter()
        .enumerate()
        .map(|(t, &(y, x))| {
            let (frame, mask) = view(&ground, y, x, (20, 10 + 3 * t as i64));
            let patch = crate::ground(100 + t as u64)
                .narrow(1, 0, 24)
                .narrow(2, 0, 30);
            frame.narrow(1, H - 26, 24).narrow(2, 0, 30).copy_(&patch);
            (frame, mask)
        })
        .collect();
    let shifts = clip_shifts(&frames).expect("the camera moves");
    for (t, &place) in SHAKING.iter().enumerate() {
        // Texture along the bottom alone holds the zoom loosely: a third of a pixel.
        assert_panned_within(0.5, t, shifts.at(t as i64), SHAKING[0], place);
    }
}

/// The project's own classic scene of seed 3014 (the validation set's classic_0014: a faint
/// checkerboard on a smooth ramp, camera noise, two objects with their shadows), each frame
/// moved by a shaking camera's whole-pixel translation. A fit with a turn and a zoom slid into
/// a zoom of 10-20% on its frames (then beyond reach: 11 of the 15 frames missed), where the
/// translation alone fits; from no motion Gauss-Newton can settle a period of the pattern
/// away, where from the best whole-pixel translation it does not. Each alone fails here
/// (without the search a frame is missed, without the translation alone one is read a period
/// away).
#[test]
fn a_shake_over_a_faint_checkerboard_is_followed() {
    assert_shaken_scene_followed(3014);
}

/// The project's classic scene of seed 3021 (the validation set's classic_0021: a clear
/// checkerboard, three objects with long shadows no mask holds), shaken as above. Ranked by
/// Cauchy's cost, a motion a period of the pattern away that laid a frame's shadows over the
/// first frame's beat the true one (its cost grows with a shadow's depth); the reference then
/// moved there and the frames after were read against it (session 54).
#[test]
fn a_shake_over_a_checkerboard_under_moving_shadows_is_followed() {
    assert_shaken_scene_followed(3021);
}

/// Asserts that each frame of the project's classic scene of `seed` (128x224), moved by a
/// shaking camera's whole-pixel translation ([`SHAKING`] and back), is followed within
/// [`STILL_PIXELS`].
fn assert_shaken_scene_followed(seed: u64) {
    let config = SynthConfig {
        width: 224,
        ..SynthConfig::default()
    };
    let scene = generate(&config, seed);
    let covered = scene.masks.amax([0], false).squeeze_dim(1).gt(0.5); // [T, H, W]
    let (h, w) = (config.height, config.width);
    let reach = 8;
    let moved = |image: &Tensor, (dy, dx): (i64, i64)| {
        image
            .unsqueeze(0)
            .to_kind(Kind::Float)
            .replication_pad2d([reach, reach, reach, reach])
            .squeeze_dim(0)
            .narrow(-2, reach - dy, h)
            .narrow(-1, reach - dx, w)
    };
    let places: Vec<Place> = SHAKING
        .iter()
        .chain(SHAKING.iter().rev())
        .copied()
        .collect();
    let frames: Vec<(Tensor, Tensor)> = places
        .iter()
        .enumerate()
        .map(|(t, &(y, x))| {
            // The camera at `place` sees the scene moved by the first place minus it.
            let shake = (places[0].0 - y, places[0].1 - x);
            let frame = moved(&scene.frames.get(t as i64), shake);
            let mask = moved(&covered.get(t as i64).unsqueeze(0), shake).squeeze_dim(0);
            (frame, mask.gt(0.5))
        })
        .collect();
    let shifts = clip_shifts(&frames).expect("the camera moves");
    for (t, &place) in places.iter().enumerate() {
        assert_panned(t, shifts.at(t as i64), places[0], place);
    }
}

/// A pan of a pixel a frame over smooth ground (texture on cells of 16 and 32 pixels alone,
/// camera noise) under an object walking the other way with a dark shadow no mask holds: the
/// shadow moves 2 pixels a frame against the first frame, 3 against the ground, and pulled
/// every fit towards its own motion (before session 55: frame 1 read 0.3 pixels off, frame 8,
/// the first after a new reference, 0.64, frames 15-19, after the next, about a pixel). The
/// parts of the frame the shadow is in are left out of the fit: each frame within
/// [`STILL_PIXELS`].
#[test]
fn a_pan_over_smooth_ground_under_a_faster_shadow_is_followed() {
    let ground = (texture(23, &[16, 32]) - 0.5) * 1.2 + 0.5;
    let mut noise = uniform(29);
    let places: Vec<Place> = (0..20).map(|t| (30, 4 + t)).collect();
    let frames: Vec<(Tensor, Tensor)> = places
        .iter()
        .enumerate()
        .map(|(t, &(y, x))| {
            let t = t as i64;
            let (frame, mask) = view(&ground, y, x, (52, 90 - 2 * t));
            // The object's shadow, beside it and below, 10 x 30 and half as bright.
            let _ = frame
                .narrow(1, 74, 10)
                .narrow(2, 80 - 2 * t, 30)
                .g_mul_scalar_(0.5);
            let values: Vec<f32> = (0..3 * H * W).map(|_| noise() * 0.08 - 0.04).collect();
            (frame + Tensor::from_slice(&values).view([3, H, W]), mask)
        })
        .collect();
    let shifts = clip_shifts(&frames).expect("the camera moves");
    for (t, &place) in places.iter().enumerate() {
        assert_panned(t, shifts.at(t as i64), places[0], place);
    }
}

/// The stream follows a pan beyond the first frame's view: its outputs say how far each frame
/// moved, are where the frame shows them, and each frame's clean background is its own ground
/// (the view the median works in moved on with the camera).
#[test]
fn the_stream_follows_a_panning_camera() {
    let (places, frames) = panning_clip(&ground(11));
    assert_stream_follows(&frames, |t, got| {
        assert_panned(t, got, places[0], places[t])
    });
}

/// `decompose` follows a pan too: the whole clip's median cannot hold it (it is made in the
/// first frame's view), so the background is made as the frames come, as the element makes it.
#[test]
fn decompose_follows_a_panning_camera() {
    let dir = tempfile::tempdir().unwrap();
    let (_, frames) = panning_clip(&ground(11));
    let panning = dir.path().join("panning");
    write_frames(&panning, &frames);
    let (stderr, _) = assert_decompose_follows(dir.path(), &panning, &frames);
    assert!(
        stderr.contains("pans beyond the first frame's view"),
        "{stderr}"
    );
}

/// A clip as the element takes it: RGB bytes and label maps.
fn as_bytes(frames: &[(Tensor, Tensor)]) -> Vec<helpers::Frame> {
    frames
        .iter()
        .map(|(frame, mask)| {
            let rgb = (frame * 255.0)
                .round()
                .to_kind(Kind::Uint8)
                .permute([1, 2, 0])
                .contiguous();
            let labels = mask.to_kind(Kind::Uint8).contiguous();
            (
                Vec::<u8>::try_from(rgb.view([-1])).unwrap(),
                Vec::<u8>::try_from(labels.view([-1])).unwrap(),
            )
        })
        .collect()
}

/// Each frame's clean background from the element with `props`, checking that its layers over
/// the residual background reproduce each frame as it came.
fn element_backgrounds(frames: &[(Tensor, Tensor)], props: &str) -> Vec<Tensor> {
    let video = as_bytes(frames);
    let result = helpers::run_frames(
        props,
        (W as usize, H as usize),
        &video,
        &["background"],
        Duration::from_secs(120),
    );
    assert!(result.error.is_none(), "{props}: {:?}", result.error);
    for (i, out) in result.outputs["src"].iter().enumerate() {
        let psnr = helpers::psnr_rgb(&out.bytes, &video[i].0);
        assert!(psnr > 40.0, "{props}: frame {i}: PSNR {psnr:.1} dB");
    }
    result.outputs["background"]
        .iter()
        .map(|b| {
            Tensor::from_slice(&b.bytes)
                .view([H, W, 4])
                .permute([2, 0, 1])
                .narrow(0, 0, 3)
                .to_kind(Kind::Float)
                / 255.0
        })
        .collect()
}

/// Asserts that the element's clean backgrounds of `frames` show each frame's ground with
/// `stabilise=true` and clearly do not with `stabilise=false`.
fn assert_element_follows(frames: &[(Tensor, Tensor)]) {
    let (with, without) = (
        background_error_of(&element_backgrounds(frames, "stabilise=true"), frames),
        background_error_of(&element_backgrounds(frames, "stabilise=false"), frames),
    );
    assert!(
        with < 0.02 && with < without / 2.0,
        "{with} against {without}"
    );
}

#[test]
fn the_element_follows_a_shaking_camera() {
    helpers::init();
    let frames = clip(&ground(7), &SHAKING);
    let element = gst::ElementFactory::make("omnimatte").build().unwrap();
    assert!(element.property::<bool>("stabilise"));
    assert_element_follows(&frames);
    // Test-time training before the output trains on the frames as the decomposer shows
    // them, then the same frames come out in place.
    let tuned = background_error_of(
        &element_backgrounds(
            &frames,
            "stabilise=true ttt=before-output ttt-frames=8 ttt-steps=2",
        ),
        &frames,
    );
    assert!(tuned < 0.02, "{tuned}");
}

#[test]
fn the_element_follows_a_panning_camera() {
    helpers::init();
    assert_element_follows(&panning_clip(&ground(11)).1);
}

/// A sky: brightness rising smoothly from the top to the bottom with faint clouds, [3, 160,
/// 192] as [`ground`].
fn sky(seed: u64) -> Tensor {
    let rows = Tensor::arange(160, (Kind::Float, Device::Cpu)).view([1, 160, 1]) / 160.0;
    (rows * 0.5 + 0.25 + (ground(seed) - 0.5) * 0.3).expand([3, 160, 192], false)
}

/// A shaking camera over a sky. A frame's brightness matched to the first's at no motion is
/// off by the rows the shake moved the gradient, and each difference held that offset, which
/// a motion along the gradient made up for: before session 54 (which matches the brightness at
/// each motion compared) the shake's rise and fall were read as about half what they were.
#[test]
fn a_shake_over_a_sky_is_followed() {
    let places: Vec<Place> = SHAKING
        .iter()
        .chain(SHAKING.iter().rev())
        .copied()
        .collect();
    assert_clip_followed(&sky(17), &places, |t| (40, 10 + 6 * t as i64));
}

/// Asserts that the clip a camera at `places` sees of `ground`, with the object at `object(t)`
/// in frame t, is followed within [`STILL_PIXELS`] (the whole clip's rule).
fn assert_clip_followed(ground: &Tensor, places: &[Place], object: impl Fn(usize) -> Place) {
    let frames: Vec<(Tensor, Tensor)> = places
        .iter()
        .enumerate()
        .map(|(t, &(y, x))| view(ground, y, x, object(t)))
        .collect();
    let shifts = clip_shifts(&frames).expect("the camera moves");
    for (t, &place) in places.iter().enumerate() {
        assert_panned(t, shifts.at(t as i64), places[0], place);
    }
}
